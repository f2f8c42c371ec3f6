//! The fixed part of the demo company: teams, the people who use Orchard, lead magnets and
//! their forms, monthly campaign spend, and the customer accounts.

use chrono::{Datelike, Months, NaiveTime};

use super::data::{
    ACCOUNT_CORES, COUNTRIES, INDUSTRIES, INDUSTRY_WEIGHTS, INDUSTRY_WORDS, MAGNETS, NAME_PREFIXES,
    NAME_THIRDS, NEWSLETTER_FORM, SOURCES,
};
use super::{
    Clock, DAY, DemoCompany, DemoSettings, STREAM_ACCOUNT, STREAM_NAMES, STREAM_SPEND, Segment,
    account_count, date_ms, pick_index_by, push_ascii, working_time,
};
use crate::account::Account;
use crate::auth::Role;
use crate::capture::{Form, FunnelStage, LeadMagnet};
use crate::rng::Rng;
use crate::spend::Spend;
use crate::team::{RepProfile, Seniority, Team, User, WorkingHours};
use crate::{AccountId, Email, FormId, LeadMagnetId, SpendId, TeamId, UserId};

pub(super) fn build(s: &DemoSettings) -> DemoCompany {
    let clock = Clock::new(s);
    let users = users();
    let lead_magnets = lead_magnets();
    let forms = forms();
    let spend = spend(s, clock);
    let managers: Vec<(UserId, Option<&str>)> = users
        .iter()
        .filter(|u| u.role == Role::AccountManager)
        .map(|u| (u.id, u.profile.region.as_deref()))
        .collect();
    let accounts = (0..account_count(s.contacts))
        .map(|i| account(s.seed, i, clock, &managers))
        .collect();
    DemoCompany {
        teams: teams(),
        users,
        lead_magnets,
        forms,
        spend,
        accounts,
    }
}

const TEAMS: [(&str, &str); 5] = [
    ("Marketing", "marketing"),
    ("Sales Industrial", "sales"),
    ("Sales Services", "sales"),
    ("Sales Retail & Education", "sales"),
    ("Account Management", "account_management"),
];

fn teams() -> Vec<Team> {
    TEAMS
        .iter()
        .zip(1..)
        .map(|((name, function), id)| Team {
            id: TeamId::new(id),
            name: (*name).to_owned(),
            function: (*function).to_owned(),
        })
        .collect()
}

/// One person of the demo company. Reps differ in everything routing looks at, so that each
/// assignment rule has something to choose between.
struct Person {
    name: &'static str,
    email: &'static str,
    role: Role,
    /// 1-based team id.
    team: Option<i64>,
    expertise: &'static [&'static str],
    seniority: Seniority,
    region: Option<&'static str>,
    tz: &'static str,
    capacity: i64,
    hours: (u32, u32),
    out_of_office: bool,
}

const fn person(name: &'static str, email: &'static str, role: Role, team: Option<i64>) -> Person {
    Person {
        name,
        email,
        role,
        team,
        expertise: &[],
        seniority: Seniority::Senior,
        region: None,
        tz: "Europe/Berlin",
        capacity: 50,
        hours: (9, 17),
        out_of_office: false,
    }
}

const fn rep(
    p: Person,
    expertise: &'static [&'static str],
    seniority: Seniority,
    region: &'static str,
    tz: &'static str,
    capacity: i64,
) -> Person {
    Person {
        expertise,
        seniority,
        region: Some(region),
        tz,
        capacity,
        ..p
    }
}

const PEOPLE: [Person; 17] = [
    person("Ada Admin", "admin@orchard.demo", Role::Admin, None),
    person(
        "Mira Lange",
        "mira.lange@orchard.demo",
        Role::Marketer,
        Some(1),
    ),
    rep(
        person(
            "Jonas Becker",
            "jonas.becker@orchard.demo",
            Role::SalesManager,
            Some(2),
        ),
        &["Logistics", "Manufacturing", "Construction"],
        Seniority::Senior,
        "DACH",
        "Europe/Berlin",
        20,
    ),
    rep(
        person(
            "Emma Clarke",
            "emma.clarke@orchard.demo",
            Role::SalesManager,
            Some(3),
        ),
        &["Software", "Financial Services", "Healthcare"],
        Seniority::Senior,
        "UK&I",
        "Europe/London",
        20,
    ),
    rep(
        person(
            "Lukas Schneider",
            "lukas.schneider@orchard.demo",
            Role::Rep,
            Some(2),
        ),
        &["Manufacturing", "Logistics", "Managed Support"],
        Seniority::Senior,
        "DACH",
        "Europe/Berlin",
        60,
    ),
    rep(
        person(
            "Sofie de Vries",
            "sofie.devries@orchard.demo",
            Role::Rep,
            Some(2),
        ),
        &["Logistics", "Construction", "Cloud Backup"],
        Seniority::Mid,
        "Benelux",
        "Europe/Amsterdam",
        50,
    ),
    rep(
        person(
            "Erik Lindqvist",
            "erik.lindqvist@orchard.demo",
            Role::Rep,
            Some(2),
        ),
        &["Construction", "Manufacturing", "Licences"],
        Seniority::Junior,
        "Nordics",
        "Europe/Stockholm",
        35,
    ),
    rep(
        person(
            "Oliver Hughes",
            "oliver.hughes@orchard.demo",
            Role::Rep,
            Some(3),
        ),
        &["Financial Services", "Software", "Security Monitoring"],
        Seniority::Senior,
        "UK&I",
        "Europe/London",
        60,
    ),
    Person {
        out_of_office: true,
        ..rep(
            person(
                "Hannah Weber",
                "hannah.weber@orchard.demo",
                Role::Rep,
                Some(3),
            ),
            &["Healthcare", "Software", "Cloud Backup"],
            Seniority::Mid,
            "DACH",
            "Europe/Zurich",
            45,
        )
    },
    Person {
        hours: (8, 16),
        ..rep(
            person(
                "Ryan Mitchell",
                "ryan.mitchell@orchard.demo",
                Role::Rep,
                Some(3),
            ),
            &["Software", "Financial Services", "Security Monitoring"],
            Seniority::Senior,
            "North America",
            "America/New_York",
            70,
        )
    },
    rep(
        person(
            "Chloé Dubois",
            "chloe.dubois@orchard.demo",
            Role::Rep,
            Some(4),
        ),
        &["Retail", "Education", "Training"],
        Seniority::Mid,
        "France",
        "Europe/Paris",
        50,
    ),
    Person {
        hours: (8, 16),
        ..rep(
            person(
                "Ethan Brooks",
                "ethan.brooks@orchard.demo",
                Role::Rep,
                Some(4),
            ),
            &["Education", "Retail", "Healthcare"],
            Seniority::Junior,
            "North America",
            "America/Toronto",
            35,
        )
    },
    rep(
        person(
            "Katrin Vogel",
            "katrin.vogel@orchard.demo",
            Role::AccountManager,
            Some(5),
        ),
        &["Managed Support", "Security Monitoring"],
        Seniority::Senior,
        "DACH",
        "Europe/Berlin",
        120,
    ),
    rep(
        person(
            "Lars Nielsen",
            "lars.nielsen@orchard.demo",
            Role::AccountManager,
            Some(5),
        ),
        &["Cloud Backup", "Licences"],
        Seniority::Mid,
        "Nordics",
        "Europe/Copenhagen",
        100,
    ),
    rep(
        person(
            "Grace O'Neill",
            "grace.oneill@orchard.demo",
            Role::AccountManager,
            Some(5),
        ),
        &["Managed Support", "Training"],
        Seniority::Mid,
        "UK&I",
        "Europe/Dublin",
        100,
    ),
    rep(
        person(
            "Daniel Foster",
            "daniel.foster@orchard.demo",
            Role::AccountManager,
            Some(5),
        ),
        &["Security Monitoring", "Consulting"],
        Seniority::Senior,
        "North America",
        "America/Chicago",
        120,
    ),
    person(
        "Rita Fischer",
        "rita.fischer@orchard.demo",
        Role::ReadOnly,
        None,
    ),
];

fn users() -> Vec<User> {
    PEOPLE
        .iter()
        .zip(1..)
        .map(|(p, id)| User {
            id: UserId::new(id),
            email: Email::parse(p.email).expect("demo user addresses are valid"),
            name: p.name.to_owned(),
            role: p.role,
            team_id: p.team.map(TeamId::new),
            profile: RepProfile {
                expertise: p.expertise.iter().map(|e| (*e).to_owned()).collect(),
                seniority: p.seniority,
                region: p.region.map(str::to_owned),
                time_zone: p.tz.to_owned(),
                capacity: p.capacity,
                working_hours: WorkingHours {
                    start: NaiveTime::from_hms_opt(p.hours.0, 0, 0).expect("valid hour"),
                    end: NaiveTime::from_hms_opt(p.hours.1, 0, 0).expect("valid hour"),
                },
                out_of_office: p.out_of_office,
            },
        })
        .collect()
}

fn lead_magnets() -> Vec<LeadMagnet> {
    MAGNETS
        .iter()
        .zip(1..)
        .map(|(m, id)| LeadMagnet {
            id: LeadMagnetId::new(id),
            slug: m.slug.to_owned(),
            name: m.name.to_owned(),
            kind: m.kind.to_owned(),
            stage: m.stage,
        })
        .collect()
}

const CONSENT: &str = "I agree that Orchard IT Services may email me about this offer and \
related services. I can unsubscribe at any time with one click.";

/// One form per lead magnet, asking for more the further down the funnel the offer sits
/// (a checklist is worth a first name, a consultation a phone number), plus the newsletter.
fn forms() -> Vec<Form> {
    let strings = |fields: &[&str]| fields.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
    let mut forms: Vec<Form> = MAGNETS
        .iter()
        .zip(1..)
        .map(|(m, id)| {
            let fields = match m.stage {
                FunnelStage::Top => strings(&["first_name", "company"]),
                FunnelStage::Middle => {
                    strings(&["first_name", "last_name", "company", "job_title"])
                }
                FunnelStage::Bottom => strings(&[
                    "first_name",
                    "last_name",
                    "company",
                    "job_title",
                    "phone",
                    "company_size",
                ]),
            };
            let thank_you = match m.stage {
                FunnelStage::Top => format!("Thank you! {} is on its way to your inbox.", m.name),
                FunnelStage::Middle => {
                    format!("Thank you! We have sent you the link to \"{}\".", m.name)
                }
                FunnelStage::Bottom => {
                    "Thank you! One of our specialists will contact you within one working day."
                        .to_owned()
                }
            };
            Form {
                id: FormId::new(id),
                slug: m.slug.to_owned(),
                name: m.name.to_owned(),
                lead_magnet_id: Some(LeadMagnetId::new(id)),
                fields,
                consent_text: CONSENT.to_owned(),
                redirect_url: None,
                thank_you,
            }
        })
        .collect();
    forms.push(Form {
        id: FormId::new(forms.len() as i64 + 1),
        slug: NEWSLETTER_FORM.to_owned(),
        name: "Newsletter".to_owned(),
        lead_magnet_id: None,
        fields: strings(&["first_name"]),
        consent_text: "I would like to receive the Orchard IT Services newsletter every two \
months. I can unsubscribe at any time."
            .to_owned(),
        redirect_url: None,
        thank_you: "Thank you for subscribing! Please look out for our welcome email.".to_owned(),
    });
    forms
}

/// Below this a campaign month is not worth running; it also keeps small demos' spend from
/// looking like pocket money.
const MIN_CAMPAIGN_MONTH_CENTS: i64 = 20_000;

/// Monthly spend per paid source and campaign, sized to the leads the campaign brought in that
/// month at the source's typical cost per lead, so CPL reports look like a real business at any
/// demo size.
fn spend(s: &DemoSettings, clock: Clock) -> Vec<Spend> {
    let total_weight: f64 = SOURCES.iter().map(|src| src.weight).sum();
    let first_day = clock.date(clock.start);
    let today = clock.today();
    let mut month = first_day.with_day(1).expect("every month has a first day");
    let mut out = Vec::new();
    while month <= today {
        let next = month + Months::new(1);
        let day = month.max(first_day);
        let share = clock.lead_share_before(date_ms(next).min(clock.now))
            - clock.lead_share_before(date_ms(day));
        for src in &SOURCES {
            for (campaign, campaign_share) in src.campaigns {
                let id = out.len() as i64 + 1;
                let mut r = Rng::for_item(s.seed, STREAM_SPEND, id as u64);
                let leads = s.contacts as f64 * src.weight / total_weight
                    * src.paid_share
                    * campaign_share
                    * share;
                let cents = (leads * src.cpl_cents as f64 * r.log_normal(1.0, 0.15)) as i64;
                out.push(Spend {
                    id: SpendId::new(id),
                    external_id: format!("demo-spend-{id}"),
                    day,
                    source: src.name.to_owned(),
                    campaign: Some((*campaign).to_owned()),
                    amount_cents: cents.max(MIN_CAMPAIGN_MONTH_CENTS),
                });
            }
        }
        month = next;
    }
    out
}

/// Account names are unique: the first 2,400 accounts combine a prefix and a core ("Nordlog"),
/// in an order shuffled per seed; later ones add a third word and then a number, so domains
/// (which identify companies on import) never collide.
pub(super) fn account_name(seed: u64, index: usize) -> (String, String) {
    let combos = NAME_PREFIXES.len() * ACCOUNT_CORES.len();
    let level = index / combos;
    let offset = Rng::for_item(seed, STREAM_NAMES, 0).range(0, combos as i64) as usize;
    // 7919 is prime and does not divide 2,400, so this is a bijection on 0..combos.
    let j = ((index % combos + offset) * 7919) % combos;
    let (prefix, core) = (
        NAME_PREFIXES[j % NAME_PREFIXES.len()],
        ACCOUNT_CORES[j / NAME_PREFIXES.len()],
    );
    let mut name = format!("{prefix}{core}");
    let mut stem = String::with_capacity(24);
    push_ascii(&mut stem, &name);
    if level > 0 {
        let third = NAME_THIRDS[(level - 1) % NAME_THIRDS.len()];
        let round = (level - 1) / NAME_THIRDS.len();
        name.push(' ');
        name.push_str(&third[..1].to_ascii_uppercase());
        name.push_str(&third[1..]);
        stem.push('-');
        stem.push_str(third);
        if round > 0 {
            name.push_str(&format!(" {}", round + 1));
            stem.push_str(&(round + 1).to_string());
        }
    }
    (name, stem)
}

fn account(seed: u64, index: usize, clock: Clock, managers: &[(UserId, Option<&str>)]) -> Account {
    let mut r = Rng::for_item(seed, STREAM_ACCOUNT, index as u64);
    let segment = Segment::of(seed, index);
    let country = &COUNTRIES[pick_index_by(&mut r, &COUNTRIES, |c| c.weight)];
    let city = r.pick(country.cities);
    let industry = pick_index_by(&mut r, &INDUSTRY_WEIGHTS, |w| *w);
    let (base, stem) = account_name(seed, index);
    let name = if r.chance(0.6) {
        format!(
            "{base} {} {}",
            r.pick(&INDUSTRY_WORDS[industry]),
            r.pick(country.legal)
        )
    } else {
        format!("{base} {}", r.pick(country.legal))
    };
    // Money Makers are the larger companies; Fillers the small ones that buy a project now
    // and then.
    let (median_staff, median_hours) = match segment {
        Segment::MoneyMaker => (450.0, 260.0),
        Segment::Contributor => (120.0, 45.0),
        Segment::Filler => (30.0, 14.0),
    };
    let employees = r.log_normal(median_staff, 0.7).clamp(3.0, 60_000.0).round() as i64;
    let service_hours = (r.log_normal(median_hours, 0.4) * 2.0).round() / 2.0;
    let cost_to_serve = r
        .chance(0.35)
        .then(|| (service_hours * r.range(85, 131) as f64 + r.range(500, 3_000) as f64).round());
    let local: Vec<UserId> = managers
        .iter()
        .filter(|(_, region)| *region == Some(country.region))
        .map(|(id, _)| *id)
        .collect();
    let owner = if !local.is_empty() && r.chance(0.85) {
        *r.pick(&local)
    } else {
        r.pick(managers).0
    };
    // First purchase: spread over the window, denser early on, so that the first months
    // already show a customer base that later months retain, grow or lose.
    let lo = clock.leads_from() + 10 * DAY;
    let hi = clock.now - 10 * DAY;
    let raw = lo + ((hi - lo) as f64 * r.f64().powf(1.3)) as i64;
    let created = working_time(&mut r, raw, city.utc).min(clock.now - DAY);
    Account {
        id: AccountId::new(index as i64 + 1),
        external_id: format!("demo-acc-{}", index + 1),
        name,
        domain: Some(format!("{stem}.{}", country.tld)),
        industry: Some(INDUSTRIES[industry].to_owned()),
        employees: Some(employees),
        region: Some(country.region.to_owned()),
        country: Some(country.code.to_owned()),
        owner_id: Some(owner),
        service_hours,
        cost_to_serve,
        created_at: clock.at(created),
    }
}
