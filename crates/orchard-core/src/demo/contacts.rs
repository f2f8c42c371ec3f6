//! The demo's people: leads at every stage of the funnel and the contacts of customer accounts,
//! with their attributes, their deals and (through `journey`) their events.
//!
//! About one contact in ten works at a customer. Contact `10·b + slot(b)` is the one who bought
//! for account `b` (the slot is drawn per block of ten), so every account has a first contact
//! without any contact needing to see the others; a further 1 % are colleagues at a customer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use serde_json::Value;

use super::accounts::{self, Plan};
use super::data::{
    COMPETITORS, COUNTRIES, EDUCATION, FREE_MAIL, INDUSTRIES, INDUSTRY_WEIGHTS, INDUSTRY_WORDS,
    INTERESTS, INTERNATIONAL, LEAD_CORES, LOST_REASONS, NAME_GROUPS, NAME_PREFIXES, PRODUCTS,
    SOURCES, TITLES, VALUES,
};
use super::journey::{self, Attribution, Journey, Role, Scratch};
use super::{
    Clock, ContactBatch, DAY, DemoCompany, DemoSettings, HOUR, MINUTE, STREAM_CONTACT,
    STREAM_CUSTOMER_SLOT, STREAM_EVENTS, STREAM_VISITORS, Segment, account_count, pick_index_by,
    push_ascii, word,
};
use crate::account::Account;
use crate::auth::Role as UserRole;
use crate::contact::{Contact, ContactDetails, Demographics, Geography, Psychographics};
use crate::deal::{Deal, DealStatus};
use crate::rng::Rng;
use crate::stage::LifecycleStage;
use crate::{AccountId, ContactId, DealId, Email, UserId};

/// Pipeline stages of open deals.
const OPEN_STAGES: [&str; 3] = ["qualification", "proposal", "negotiation"];

/// Deal ids are `contact_index * DEALS_PER_CONTACT + k + 1`.
const DEALS_PER_CONTACT: usize = 4;

/// Lookups built once per batch rather than once per contact.
struct Ctx<'a> {
    seed: u64,
    clock: Clock,
    accounts: &'a [Account],
    reps: Vec<UserId>,
    /// Reps whose expertise names each industry of `INDUSTRIES`.
    experts: Vec<Vec<UserId>>,
}

pub(super) fn batch(s: &DemoSettings, company: &DemoCompany, range: Range<usize>) -> ContactBatch {
    let range = range.start.min(s.contacts)..range.end.min(s.contacts);
    let reps: Vec<UserId> = company
        .users
        .iter()
        .filter(|u| u.role == UserRole::Rep)
        .map(|u| u.id)
        .collect();
    let experts = INDUSTRIES
        .iter()
        .map(|ind| {
            company
                .users
                .iter()
                .filter(|u| u.role == UserRole::Rep && u.profile.expertise.iter().any(|e| e == ind))
                .map(|u| u.id)
                .collect()
        })
        .collect();
    let ctx = Ctx {
        seed: s.seed,
        clock: Clock::new(s),
        accounts: &company.accounts,
        reps,
        experts,
    };
    let mut out = ContactBatch {
        contacts: Vec::with_capacity(range.len()),
        // Room for the usual twenty-odd events per contact, so that the vector never has to be
        // moved while it grows.
        events: Vec::with_capacity(range.len() * 26),
        deals: Vec::new(),
    };
    let mut scratch = Scratch::default();
    for index in range {
        contact(&ctx, index, &mut out, &mut scratch);
        let mut r = Rng::for_item(s.seed, STREAM_VISITORS, index as u64);
        journey::visitors(&mut r, ctx.clock, index, &mut out.events);
    }
    out
}

fn customer_slot(seed: u64, block: usize) -> usize {
    Rng::for_item(seed, STREAM_CUSTOMER_SLOT, block as u64).range(0, 10) as usize
}

/// The contact who bought for account `account_index`, when the demo has that many contacts.
pub(super) fn primary_contact(s: &DemoSettings, account_index: usize) -> Option<ContactId> {
    let index = account_index * 10 + customer_slot(s.seed, account_index);
    (account_index < account_count(s.contacts) && index < s.contacts)
        .then(|| ContactId::new(index as i64 + 1))
}

/// Which account contact `index` works at, and whether they are the one who bought.
fn membership(ctx: &Ctx<'_>, r: &mut Rng, index: usize) -> Option<(usize, bool)> {
    let n = ctx.accounts.len();
    if n == 0 {
        return None;
    }
    let block = index / 10;
    if index % 10 == customer_slot(ctx.seed, block) {
        return Some((block % n, block < n));
    }
    if r.chance(0.01) {
        // Larger customers have more people who read the newsletter.
        let mut a = r.range(0, n as i64) as usize;
        if Segment::of(ctx.seed, a) != Segment::MoneyMaker && !r.chance(0.4) {
            a = r.range(0, n as i64) as usize;
        }
        return Some((a, false));
    }
    None
}

struct Customer<'a> {
    index: usize,
    account: &'a Account,
    plan: Plan,
    buyer: bool,
}

fn contact(ctx: &Ctx<'_>, index: usize, out: &mut ContactBatch, scratch: &mut Scratch) {
    let mut r = Rng::for_item(ctx.seed, STREAM_CONTACT, index as u64);
    let id = ContactId::new(index as i64 + 1);
    let customer = membership(ctx, &mut r, index).map(|(a, buyer)| {
        let account = &ctx.accounts[a];
        Customer {
            index: a,
            account,
            plan: accounts::plan(ctx.seed, a, account, ctx.clock),
            buyer,
        }
    });

    let country_index = customer
        .as_ref()
        .and_then(|c| c.account.country.as_deref())
        .and_then(|code| COUNTRIES.iter().position(|c| c.code == code))
        .unwrap_or_else(|| pick_index_by(&mut r, &COUNTRIES, |c| c.weight));
    let country = &COUNTRIES[country_index];
    let city = r.pick(country.cities);
    let group = if r.chance(0.1) {
        INTERNATIONAL
    } else {
        country.names
    };
    let names = &NAME_GROUPS[group];
    let female = r.chance(0.46);
    let first = *r.pick(if female { names.female } else { names.male });
    let last = *r.pick(names.last);

    // The company: the account's for customers, an invented one for leads.
    let mut email = String::with_capacity(64);
    push_ascii(&mut email, first);
    email.push('.');
    push_ascii(&mut email, last);
    let _ = write!(email, ".{index}@");
    let (company, industry, size) = match &customer {
        Some(c) => {
            let a = c.account;
            email.push_str(a.domain.as_deref().unwrap_or("example.com"));
            let industry = a
                .industry
                .as_deref()
                .and_then(|i| INDUSTRIES.iter().position(|x| *x == i))
                .unwrap_or(0);
            (a.name.clone(), industry, a.employees.unwrap_or(50))
        }
        None => {
            let industry = pick_index_by(&mut r, &INDUSTRY_WEIGHTS, |w| *w);
            let prefix = *r.pick(&NAME_PREFIXES);
            let core = *r.pick(&LEAD_CORES);
            let company = format!(
                "{prefix}{core} {} {}",
                r.pick(&INDUSTRY_WORDS[industry]),
                r.pick(country.legal)
            );
            if r.chance(0.15) {
                email.push_str(word(&mut r, &FREE_MAIL));
            } else {
                push_ascii(&mut email, prefix);
                push_ascii(&mut email, core);
                email.push('.');
                email.push_str(country.tld);
            }
            let size = r.log_normal(60.0, 1.3).clamp(1.0, 100_000.0).round() as i64;
            (company, industry, size)
        }
    };
    let email = Email::parse(&email).expect("demo addresses are built valid");

    let source_index = pick_index_by(&mut r, &SOURCES, |s| s.weight);
    let source = &SOURCES[source_index];
    let paid = r.chance(source.paid_share) && !source.campaigns.is_empty();
    let attribution = Attribution {
        source,
        medium: if paid {
            source.paid_medium
        } else {
            source.organic_medium
        },
        campaign: paid.then(|| *r.weighted(source.campaigns)),
    };

    let role = match &customer {
        None => Role::Lead,
        Some(c) => {
            // The churn day's morning, 10:00 UTC.
            let churned = c
                .plan
                .lost(ctx.clock.today())
                .then_some(c.plan.churned_on)
                .flatten()
                .and_then(|d| d.and_hms_opt(10, 0, 0))
                .map(|t| t.and_utc().timestamp_millis());
            if c.buyer {
                Role::Buyer {
                    won: c.account.created_at.timestamp_millis(),
                    value_cents: c.plan.first_value_cents,
                    product: c.plan.main_product,
                    churned,
                }
            } else {
                Role::Colleague {
                    since: c.account.created_at.timestamp_millis(),
                    churned,
                }
            }
        }
    };
    let j = journey::plan(&mut r, ctx.clock, role, city.utc);

    let mut details = details(
        &mut r,
        country_index,
        city,
        first,
        last,
        female,
        &j,
        source.name,
    );
    fill_company(
        &mut details.demographics,
        &mut r,
        company.clone(),
        industry,
        size,
    );
    let owner = deals(
        ctx,
        &mut r,
        index,
        &j,
        &company,
        industry,
        size,
        customer.as_ref(),
        &mut out.deals,
    );

    // Events draw from their own stream, so that tuning the event mix leaves who the contacts
    // are untouched.
    let mut er = Rng::for_item(ctx.seed, STREAM_EVENTS, index as u64);
    let last_event = journey::events(
        &mut er,
        ctx.clock,
        index,
        &j,
        attribution,
        scratch,
        &mut out.events,
    );

    out.contacts.push(Contact {
        id,
        email,
        details,
        account_id: customer
            .as_ref()
            .map(|c| AccountId::new(c.index as i64 + 1)),
        owner_id: owner,
        stage: j.stage,
        score: 0,
        source: Some(source.name.to_owned()),
        created_at: ctx.clock.at(j.created),
        updated_at: ctx.clock.at(j.last_change().max(j.created)),
        last_activity_at: Some(ctx.clock.at(last_event)),
    });
}

fn fill_company(d: &mut Demographics, r: &mut Rng, company: String, industry: usize, size: i64) {
    d.company = Some(company);
    d.industry = Some(INDUSTRIES[industry].to_owned());
    d.company_size = Some(size);
    // Revenue per employee varies by trade; a log-normal spread around €150k is typical.
    if r.chance(0.8) {
        let revenue = size as f64 * r.log_normal(150_000.0, 0.5);
        d.company_revenue = Some((revenue / 1000.0).round() as i64 * 1000);
    }
}

#[allow(clippy::too_many_arguments)]
fn details(
    r: &mut Rng,
    country_index: usize,
    city: &super::data::City,
    first: &str,
    last: &str,
    female: bool,
    j: &Journey,
    source: &str,
) -> ContactDetails {
    let country = &COUNTRIES[country_index];
    let title = &TITLES[pick_index_by(r, &TITLES, |t| t.weight)];
    let demographics = Demographics {
        age: r
            .chance(0.75)
            .then(|| (43.0 + 10.0 * r.normal()).clamp(22.0, 66.0).round() as i32),
        gender: r
            .chance(0.85)
            .then(|| if female { "female" } else { "male" }.to_owned()),
        nationality: Some(if r.chance(0.9) {
            country.code.to_owned()
        } else {
            r.pick(&COUNTRIES).code.to_owned()
        }),
        education: r.chance(0.6).then(|| r.weighted(&EDUCATION).to_string()),
        occupation: Some(title.occupation.to_owned()),
        children: r
            .chance(0.5)
            .then(|| *r.weighted(&[(0, 30.0), (1, 20.0), (2, 30.0), (3, 12.0), (4, 5.0)])),
        job_title: Some(title.title.to_owned()),
        seniority: Some(title.seniority.to_owned()),
        company: None,
        company_size: None,
        industry: None,
        company_revenue: None,
    };

    let mut interests = Vec::with_capacity(3);
    for _ in 0..r.range(1, 4) {
        let i = *r.pick(&INTERESTS);
        if !interests.iter().any(|x: &String| x == i) {
            interests.push(i.to_owned());
        }
    }
    let mut values = Vec::new();
    for _ in 0..r.range(0, 3) {
        let v = *r.pick(&VALUES);
        if !values.iter().any(|x: &String| x == v) {
            values.push(v.to_owned());
        }
    }
    let mut tags = Vec::new();
    if source == "partner" {
        tags.push("partner-list".to_owned());
    }
    if r.chance(0.08) {
        tags.push("trade-show".to_owned());
    }
    if j.customer_since.is_some() {
        tags.push("customer".to_owned());
    } else if j.sql.is_some() && r.chance(0.25) {
        tags.push("priority".to_owned());
    }
    if j.trial.is_some() {
        tags.push("trial".to_owned());
    }

    let jitter = |r: &mut Rng| ((r.f64() - 0.5) * 0.12 * 10_000.0).round() / 10_000.0;
    let geography = Geography {
        country: Some(country.code.to_owned()),
        region: Some(country.region.to_owned()),
        city: Some(city.name.to_owned()),
        time_zone: Some(city.tz.to_owned()),
        latitude: Some(((city.lat + jitter(r)) * 10_000.0).round() / 10_000.0),
        longitude: Some(((city.lon + jitter(r)) * 10_000.0).round() / 10_000.0),
    };

    let mut custom = BTreeMap::new();
    custom.insert(
        "preferred_language".to_owned(),
        Value::from(country.language),
    );
    if r.chance(0.5) {
        let team = r.log_normal(4.0, 0.8).clamp(1.0, 400.0).round() as i64;
        custom.insert("it_team_size".to_owned(), Value::from(team));
    }
    if r.chance(0.6) {
        custom.insert("uses_microsoft_365".to_owned(), Value::from(r.chance(0.7)));
    }
    if r.chance(0.3) {
        let q = *r.pick(&["Q1", "Q2", "Q3", "Q4"]);
        custom.insert("budget_cycle".to_owned(), Value::from(q));
    }

    let phone = (j.sql.is_some() || r.chance(0.35)).then(|| {
        format!(
            "{} {} {}",
            country.phone,
            r.range(20, 990),
            r.range(1_000_000, 10_000_000)
        )
    });
    ContactDetails {
        first_name: Some(first.to_owned()),
        last_name: Some(last.to_owned()),
        phone,
        demographics,
        psychographics: Psychographics {
            interests,
            values,
            tags,
        },
        geography,
        custom,
    }
}

/// A rep for a lead in `industry`: usually one whose expertise covers it, as routing would.
fn pick_rep(ctx: &Ctx<'_>, r: &mut Rng, industry: usize) -> Option<UserId> {
    let experts = &ctx.experts[industry];
    if !experts.is_empty() && r.chance(0.85) {
        Some(*r.pick(experts))
    } else if ctx.reps.is_empty() {
        None
    } else {
        Some(*r.pick(&ctx.reps))
    }
}

fn deal_amount(r: &mut Rng, size: i64) -> i64 {
    let median = 1_500_000.0 * (size as f64 / 100.0).powf(0.3).clamp(0.5, 4.0);
    (r.log_normal(median, 0.6) / 10_000.0).round().max(1.0) as i64 * 10_000
}

/// Deals of SQL and later contacts; returns the contact's owner.
#[allow(clippy::too_many_arguments)]
fn deals(
    ctx: &Ctx<'_>,
    r: &mut Rng,
    index: usize,
    j: &Journey,
    company: &str,
    industry: usize,
    size: i64,
    customer: Option<&Customer<'_>>,
    out: &mut Vec<Deal>,
) -> Option<UserId> {
    let clock = ctx.clock;
    let today = clock.today();
    let contact = ContactId::new(index as i64 + 1);
    let account_id = customer.map(|c| c.account.id);
    let mut k = 0;
    let mut push = |out: &mut Vec<Deal>, d: DealDraft| {
        if k >= DEALS_PER_CONTACT {
            return;
        }
        let id = (index * DEALS_PER_CONTACT + k + 1) as i64;
        k += 1;
        let closed = d.closed.map(|t| clock.at(t));
        out.push(Deal {
            id: DealId::new(id),
            external_id: format!("demo-deal-{id}"),
            name: format!("{company} - {}", d.product),
            contact_id: Some(contact),
            account_id,
            owner_id: d.owner,
            pipeline_stage: d.stage.to_owned(),
            status: d.status,
            amount_cents: d.amount,
            expected_close: d.expected.or_else(|| closed.map(|c| c.date_naive())),
            created_at: clock.at(d.created),
            closed_at: closed,
            lost_reason: d.lost_reason.map(str::to_owned),
            competitor: d.competitor.map(str::to_owned),
        });
    };
    let product = |r: &mut Rng| PRODUCTS[r.range(0, 4) as usize].name;
    let open_until = |r: &mut Rng| today + chrono::Days::new(r.range(7, 120) as u64);
    let lost = |r: &mut Rng| {
        let reason = *r.weighted(&LOST_REASONS);
        (
            reason,
            (reason == "competitor").then(|| *r.pick(&COMPETITORS)),
        )
    };

    if let Some(c) = customer {
        if !c.buyer {
            return c.account.owner_id;
        }
        let won = j.won.unwrap_or(j.created);
        let rep = pick_rep(ctx, r, industry);
        let created = j.opportunity.unwrap_or(j.created).min(won - HOUR);
        push(
            out,
            DealDraft {
                product: j.product,
                owner: rep,
                stage: "closed",
                status: DealStatus::Won,
                amount: j.purchase_cents.max(10_000),
                created,
                closed: Some(won),
                expected: None,
                lost_reason: None,
                competitor: None,
            },
        );
        // An upsell in progress, worked by the account manager.
        let upsell = won + r.range(30, 300) * DAY;
        if !c.plan.lost(today) && upsell < clock.now - HOUR && r.chance(0.15) {
            let amount = deal_amount(r, size) / 2;
            push(
                out,
                DealDraft {
                    product: product(r),
                    owner: c.account.owner_id,
                    stage: word(r, &OPEN_STAGES),
                    status: DealStatus::Open,
                    amount: amount.max(10_000),
                    created: upsell,
                    closed: None,
                    expected: Some(open_until(r)),
                    lost_reason: None,
                    competitor: None,
                },
            );
        }
        return c.account.owner_id;
    }

    let sql = j.sql?;
    let rep = pick_rep(ctx, r, industry);
    let created = (sql.at + r.range(1, 5 * 24) * HOUR).min(clock.now - 5 * MINUTE);
    match j.stage {
        LifecycleStage::Opportunity => {
            let at = j.opportunity.unwrap_or(created).max(sql.at);
            push(
                out,
                DealDraft {
                    product: product(r),
                    owner: rep,
                    stage: OPEN_STAGES[pick_index_by(r, &[0.3, 0.4, 0.3], |w| *w)],
                    status: DealStatus::Open,
                    amount: deal_amount(r, size),
                    created: at,
                    closed: None,
                    expected: Some(open_until(r)),
                    lost_reason: None,
                    competitor: None,
                },
            );
        }
        LifecycleStage::Disqualified => {
            if r.chance(0.6) {
                let closed = j
                    .disqualified
                    .unwrap_or(clock.now)
                    .max(created + HOUR)
                    .min(clock.now);
                let (reason, competitor) = lost(r);
                push(
                    out,
                    DealDraft {
                        product: product(r),
                        owner: rep,
                        stage: "closed",
                        status: DealStatus::Lost,
                        amount: deal_amount(r, size),
                        created: created.min(closed - MINUTE),
                        closed: Some(closed),
                        expected: None,
                        lost_reason: Some(reason),
                        competitor,
                    },
                );
            }
        }
        _ => {
            // SQL: some deals are still being qualified, some were already lost.
            let x = r.f64();
            let closed = created + r.range(10, 60) * DAY;
            if x < 0.25 && closed < clock.now {
                let (reason, competitor) = lost(r);
                push(
                    out,
                    DealDraft {
                        product: product(r),
                        owner: rep,
                        stage: "closed",
                        status: DealStatus::Lost,
                        amount: deal_amount(r, size),
                        created,
                        closed: Some(closed),
                        expected: None,
                        lost_reason: Some(reason),
                        competitor,
                    },
                );
            } else if x < 0.7 {
                push(
                    out,
                    DealDraft {
                        product: product(r),
                        owner: rep,
                        stage: "qualification",
                        status: DealStatus::Open,
                        amount: deal_amount(r, size),
                        created,
                        closed: None,
                        expected: Some(open_until(r)),
                        lost_reason: None,
                        competitor: None,
                    },
                );
            }
        }
    }
    rep
}

/// A deal before it gets its id.
struct DealDraft {
    product: &'static str,
    owner: Option<UserId>,
    stage: &'static str,
    status: DealStatus,
    amount: i64,
    created: i64,
    closed: Option<i64>,
    expected: Option<chrono::NaiveDate>,
    lost_reason: Option<&'static str>,
    competitor: Option<&'static str>,
}
