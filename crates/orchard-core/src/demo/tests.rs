//! Tests of the demo generator: determinism, chunking, validity of everything it emits, and the
//! shape of the data (segment split, events per contact, neglected accounts).

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Utc};

use super::*;
use crate::AccountId;
use crate::account::Account;
use crate::capture::is_valid_slug;
use crate::email::Email;

fn settings(seed: u64, contacts: usize) -> DemoSettings {
    DemoSettings {
        seed,
        contacts,
        now: DateTime::parse_from_rfc3339("2026-03-15T10:30:00.123456Z")
            .unwrap()
            .with_timezone(&Utc),
    }
}

/// A whole small demo, generated in one go.
struct Demo {
    s: DemoSettings,
    company: DemoCompany,
    accounts: AccountBatch,
    contacts: ContactBatch,
}

fn demo(seed: u64, contacts: usize) -> Demo {
    let s = settings(seed, contacts);
    let company = company(&s);
    let accounts = account_batch(&s, &company, 0..company.accounts.len());
    let contacts = contact_batch(&s, &company, 0..s.contacts);
    Demo {
        s,
        company,
        accounts,
        contacts,
    }
}

fn assert_unique<T: std::hash::Hash + Eq + std::fmt::Debug>(
    what: &str,
    items: impl IntoIterator<Item = T>,
) {
    let mut seen = HashSet::new();
    for item in items {
        assert!(
            seen.insert(format!("{item:?}")),
            "duplicate {what}: {item:?}"
        );
    }
}

fn assert_dense(what: &str, ids: impl IntoIterator<Item = i64>) {
    for (expected, id) in (1..).zip(ids) {
        assert_eq!(id, expected, "{what} ids must be 1, 2, 3, ...");
    }
}

#[test]
fn same_seed_gives_the_same_demo() {
    let (a, b) = (demo(11, 400), demo(11, 400));
    assert_eq!(a.company, b.company);
    assert_eq!(a.accounts, b.accounts);
    assert_eq!(a.contacts, b.contacts);
}

#[test]
fn another_seed_gives_another_demo() {
    let (a, b) = (demo(11, 400), demo(12, 400));
    assert_ne!(a.company.accounts, b.company.accounts);
    assert_ne!(a.company.spend, b.company.spend);
    assert_ne!(a.accounts, b.accounts);
    assert_ne!(a.contacts.contacts, b.contacts.contacts);
    assert_ne!(a.contacts.events, b.contacts.events);
}

#[test]
fn contact_batches_do_not_depend_on_chunking() {
    let s = settings(5, 1_000);
    let c = company(&s);
    let whole = contact_batch(&s, &c, 0..100);
    let mut parts = contact_batch(&s, &c, 0..40);
    let rest = contact_batch(&s, &c, 40..100);
    parts.contacts.extend(rest.contacts);
    parts.events.extend(rest.events);
    parts.deals.extend(rest.deals);
    assert_eq!(whole, parts);
    // A range past the end is cut short, so callers can step in fixed chunks.
    assert_eq!(contact_batch(&s, &c, 990..2_000).contacts.len(), 10);
}

#[test]
fn account_batches_do_not_depend_on_chunking() {
    let s = settings(5, 1_000);
    let c = company(&s);
    let whole = account_batch(&s, &c, 0..100);
    let mut parts = account_batch(&s, &c, 0..33);
    for range in [33..34, 34..100] {
        let rest = account_batch(&s, &c, range);
        parts.subscriptions.extend(rest.subscriptions);
        parts.orders.extend(rest.orders);
        parts.activities.extend(rest.activities);
    }
    assert_eq!(whole, parts);
    assert!(!account_batch(&s, &c, 90..10_000).subscriptions.is_empty());
    assert_eq!(account_batch(&s, &c, 100..10_000), AccountBatch::default());
}

#[test]
fn company_has_the_people_routing_needs() {
    let d = demo(3, 300);
    let users = &d.company.users;
    assert_eq!(users[0].email.as_str(), "admin@orchard.demo");
    assert_eq!(users[0].name, "Ada Admin");
    assert_eq!(users[0].role, crate::auth::Role::Admin);
    let count = |role| users.iter().filter(|u| u.role == role).count();
    assert_eq!(count(crate::auth::Role::Marketer), 1);
    assert_eq!(count(crate::auth::Role::SalesManager), 2);
    assert_eq!(count(crate::auth::Role::Rep), 8);
    assert_eq!(count(crate::auth::Role::AccountManager), 4);
    assert_eq!(count(crate::auth::Role::ReadOnly), 1);
    let reps: Vec<_> = users
        .iter()
        .filter(|u| u.role == crate::auth::Role::Rep)
        .collect();
    assert_eq!(reps.iter().filter(|u| u.profile.out_of_office).count(), 1);
    let sales_teams: HashSet<_> = reps.iter().map(|u| u.team_id).collect();
    assert!(sales_teams.len() >= 2);
    let regions: HashSet<_> = reps.iter().map(|u| u.profile.region.clone()).collect();
    assert!(regions.len() >= 4);
    for u in users {
        if let Some(t) = u.team_id {
            assert!(d.company.teams.iter().any(|team| team.id == t));
        }
    }
    assert_eq!(d.company.accounts.len(), account_count(300));
    for a in &d.company.accounts {
        let owner = users.iter().find(|u| Some(u.id) == a.owner_id).unwrap();
        assert_eq!(owner.role, crate::auth::Role::AccountManager);
    }
}

#[test]
fn ids_are_dense_and_unique() {
    let d = demo(21, 2_000);
    let c = &d.company;
    assert_dense("team", c.teams.iter().map(|x| x.id.get()));
    assert_dense("user", c.users.iter().map(|x| x.id.get()));
    assert_dense("lead magnet", c.lead_magnets.iter().map(|x| x.id.get()));
    assert_dense("form", c.forms.iter().map(|x| x.id.get()));
    assert_dense("spend", c.spend.iter().map(|x| x.id.get()));
    assert_dense("account", c.accounts.iter().map(|x| x.id.get()));
    assert_dense("contact", d.contacts.contacts.iter().map(|x| x.id.get()));
    assert_unique(
        "subscription",
        d.accounts.subscriptions.iter().map(|x| x.id),
    );
    assert_unique("order", d.accounts.orders.iter().map(|x| x.id));
    assert_unique("activity", d.accounts.activities.iter().map(|x| x.id));
    assert_unique("deal", d.contacts.deals.iter().map(|x| x.id));
    assert_unique("event", d.contacts.events.iter().map(|x| &x.client_id));
    assert_unique("account key", c.accounts.iter().map(|x| &x.external_id));
    assert_unique("account domain", c.accounts.iter().map(|x| &x.domain));
    assert_unique("spend key", c.spend.iter().map(|x| &x.external_id));
    assert_unique(
        "subscription key",
        d.accounts.subscriptions.iter().map(|x| &x.external_id),
    );
    assert_unique(
        "order key",
        d.accounts.orders.iter().map(|x| &x.external_id),
    );
    assert_unique(
        "activity key",
        d.accounts.activities.iter().map(|x| &x.external_id),
    );
    assert_unique("deal key", d.contacts.deals.iter().map(|x| &x.external_id));
    for x in &d.accounts.subscriptions {
        assert!(x.account_id.get() >= 1 && x.account_id.get() <= c.accounts.len() as i64);
    }
}

#[test]
fn account_names_stay_unique_at_benchmark_size() {
    let n = account_count(1_300_000);
    assert_unique(
        "account name",
        (0..n).map(|i| super::company::account_name(9, i).1),
    );
}

#[test]
fn every_email_parses_and_is_unique() {
    let d = demo(8, 2_000);
    let mut seen = HashSet::new();
    for e in d
        .contacts
        .contacts
        .iter()
        .map(|c| &c.email)
        .chain(d.company.users.iter().map(|u| &u.email))
    {
        assert_eq!(&Email::parse(e.as_str()).unwrap(), e);
        assert!(seen.insert(e.as_str().to_owned()), "duplicate email {e}");
    }
}

#[test]
fn nothing_happens_after_now_or_before_the_window() {
    let d = demo(13, 2_000);
    let now = d.s.now;
    let start = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap()
        - chrono::Duration::days(WINDOW_DAYS);
    let today = now.date_naive();
    let check = |what: &str, t: DateTime<Utc>| {
        assert!(t <= now, "{what} {t} is after now {now}");
        assert!(t >= start, "{what} {t} is before the window");
        assert_eq!(
            t.timestamp_subsec_nanos() % 1_000_000,
            0,
            "{what} {t} has sub-milliseconds"
        );
    };
    for a in &d.company.accounts {
        check("account", a.created_at);
    }
    for x in &d.company.spend {
        assert!(x.day <= today && x.day >= start.date_naive());
    }
    for x in &d.accounts.subscriptions {
        assert!(x.start <= today && x.start >= start.date_naive());
        if let Some(end) = x.end {
            assert!(end >= x.start && end <= today);
        }
    }
    for x in &d.accounts.orders {
        assert!(x.ordered_on <= today && x.ordered_on >= start.date_naive());
    }
    for x in &d.accounts.activities {
        check("activity", x.at);
    }
    for c in &d.contacts.contacts {
        check("contact created", c.created_at);
        check("contact updated", c.updated_at);
        assert!(c.updated_at >= c.created_at);
        check("last activity", c.last_activity_at.unwrap());
    }
    for e in &d.contacts.events {
        check("event", e.at);
    }
    for deal in &d.contacts.deals {
        check("deal created", deal.created_at);
        match deal.closed_at {
            Some(closed) => {
                check("deal closed", closed);
                assert!(closed >= deal.created_at);
                assert_ne!(deal.status, crate::deal::DealStatus::Open);
            }
            None => {
                assert_eq!(deal.status, crate::deal::DealStatus::Open);
                assert!(deal.expected_close.unwrap() > today);
            }
        }
    }
}

#[test]
fn slugs_are_valid_and_every_magnet_has_its_form() {
    let c = company(&settings(1, 100));
    assert_eq!(c.lead_magnets.len(), 9);
    for stage in [
        crate::capture::FunnelStage::Top,
        crate::capture::FunnelStage::Middle,
        crate::capture::FunnelStage::Bottom,
    ] {
        assert_eq!(
            c.lead_magnets.iter().filter(|m| m.stage == stage).count(),
            3
        );
    }
    for m in &c.lead_magnets {
        assert!(is_valid_slug(&m.slug), "{}", m.slug);
        let form = c.forms.iter().find(|f| f.slug == m.slug).unwrap();
        assert_eq!(form.lead_magnet_id, Some(m.id));
        assert!(!form.consent_text.is_empty() && !form.thank_you.is_empty());
    }
    for f in &c.forms {
        assert!(is_valid_slug(&f.slug), "{}", f.slug);
    }
    assert_unique("form slug", c.forms.iter().map(|f| &f.slug));
}

#[test]
fn every_event_is_valid_and_each_contacts_events_are_in_order() {
    let d = demo(17, 2_000);
    let forms: HashSet<&str> = d.company.forms.iter().map(|f| f.slug.as_str()).collect();
    let mut last: Option<(Option<crate::ContactId>, DateTime<Utc>)> = None;
    for e in &d.contacts.events {
        let checked = NewEvent::validate(&e.client_id, e.event_type.as_str(), e.properties.clone());
        if e.event_type.as_str() == crate::lifecycle::STAGE_CHANGED {
            // Orchard's own record, which a client may not send: loaded as Orchard logs it
            // (`stage_changes_lead_to_each_contacts_stage` checks its properties).
            assert_eq!(
                checked,
                Err(crate::event::EventError::Recorded(
                    crate::lifecycle::STAGE_CHANGED
                ))
            );
        } else {
            assert!(checked.is_ok(), "{e:?}: {checked:?}");
        }
        if e.event_type == crate::event::EventType::FormSubmitted {
            assert!(forms.contains(e.properties["form"].as_str().unwrap()));
        }
        if e.contact_id.is_none() {
            assert!(e.visitor_id.as_deref().unwrap().starts_with("anon-"));
        }
        if let Some((contact, at)) = last
            && e.contact_id.is_some()
            && contact == e.contact_id
        {
            assert!(e.at >= at, "events of {contact:?} out of order");
        }
        last = Some((e.contact_id, e.at));
    }
}

#[test]
fn events_tell_the_contacts_story() {
    use crate::event::EventType;
    let d = demo(23, 1_000);
    for c in &d.contacts.contacts {
        let evs: Vec<_> = d
            .contacts
            .events
            .iter()
            .filter(|e| e.contact_id == Some(c.id))
            .collect();
        let first_form = evs
            .iter()
            .find(|e| e.event_type == EventType::FormSubmitted)
            .unwrap();
        assert_eq!(first_form.at, c.created_at);
        assert!(first_form.visitor_id.is_some());
        // Page views before identification carry the visitor id they were made under.
        assert!(
            evs.iter()
                .any(|e| e.at < c.created_at && e.visitor_id.is_some())
        );
        // Stage changes are Orchard's records, not the contact's activity.
        let activity = evs
            .iter()
            .filter(|e| e.event_type.as_str() != "stage_changed");
        assert_eq!(c.last_activity_at, activity.map(|e| e.at).max());
        let has = |t: EventType| evs.iter().any(|e| e.event_type == t);
        match c.stage {
            crate::stage::LifecycleStage::Trial => assert!(has(EventType::TrialStarted)),
            crate::stage::LifecycleStage::Sql | crate::stage::LifecycleStage::Opportunity => {
                assert!(has(EventType::AppointmentBooked));
                let owner = d.company.users.iter().find(|u| Some(u.id) == c.owner_id);
                assert_eq!(owner.unwrap().role, crate::auth::Role::Rep);
            }
            _ => {}
        }
        if let Some(account_id) = c.account_id {
            let account = &d.company.accounts[account_id.get() as usize - 1];
            assert_eq!(c.owner_id, account.owner_id);
            assert!(matches!(
                c.stage,
                crate::stage::LifecycleStage::Customer | crate::stage::LifecycleStage::Churned
            ));
        }
    }
    // Every account's first contact bought: a purchase event and a won deal.
    let purchases = d
        .contacts
        .events
        .iter()
        .filter(|e| e.event_type == EventType::Purchase)
        .count();
    let won = d
        .contacts
        .deals
        .iter()
        .filter(|x| x.status == crate::deal::DealStatus::Won)
        .count();
    assert_eq!(purchases, d.company.accounts.len().min(100));
    assert_eq!(won, purchases);
}

#[test]
fn contacts_spread_over_the_funnel() {
    use crate::stage::LifecycleStage as S;
    let d = demo(29, 3_000);
    let n = d.contacts.contacts.len() as f64;
    let share = |st: S| d.contacts.contacts.iter().filter(|c| c.stage == st).count() as f64 / n;
    let customers = share(S::Customer) + share(S::Churned);
    assert!((0.08..0.14).contains(&customers), "{customers}");
    assert!(share(S::Subscriber) > share(S::Iql));
    assert!(share(S::Iql) > share(S::Mql));
    assert!(share(S::Mql) > share(S::Sql));
    for st in [S::Opportunity, S::Trial, S::Disqualified, S::Churned] {
        assert!(share(st) > 0.0, "{st}");
    }
    for deal in &d.contacts.deals {
        let owner = d
            .company
            .users
            .iter()
            .find(|u| Some(u.id) == deal.owner_id)
            .unwrap();
        assert!(matches!(
            owner.role,
            crate::auth::Role::Rep | crate::auth::Role::AccountManager
        ));
        let contact = &d.contacts.contacts[deal.contact_id.unwrap().get() as usize - 1];
        assert!(deal.created_at >= contact.created_at);
        if deal.status == crate::deal::DealStatus::Lost {
            let reason = deal.lost_reason.as_deref().unwrap();
            assert_eq!(reason == "competitor", deal.competitor.is_some());
        }
        assert!(deal.amount_cents > 0);
    }
    let sources: HashSet<_> = d
        .contacts
        .contacts
        .iter()
        .map(|c| c.source.clone())
        .collect();
    assert_eq!(sources.len(), 7);
}

#[test]
fn intended_segments_split_20_40_40() {
    let n = account_count(2_000);
    let share = |name: &str| {
        (0..n).filter(|i| intended_segment(4, *i) == name).count() as f64 * 100.0 / n as f64
    };
    for (name, target) in [
        ("money_maker", 20.0),
        ("contributor", 40.0),
        ("filler", 40.0),
    ] {
        let got = share(name);
        assert!(
            (got - target).abs() <= 8.0,
            "{name}: {got:.1}% vs {target}%"
        );
    }
}

#[test]
fn segments_differ_the_way_the_spec_describes() {
    let d = demo(31, 3_000);
    let today = d.s.now.date_naive();
    // Per segment: accounts, MRR today, distinct products, service hours, one-off share.
    let mut stats = [(0usize, 0i64, 0usize, 0.0f64, 0i64, 0i64); 3];
    for (i, a) in d.company.accounts.iter().enumerate() {
        let k = match intended_segment(d.s.seed, i) {
            "money_maker" => 0,
            "contributor" => 1,
            _ => 2,
        };
        let subs: Vec<_> = d
            .accounts
            .subscriptions
            .iter()
            .filter(|x| x.account_id == a.id)
            .collect();
        let orders: Vec<_> = d
            .accounts
            .orders
            .iter()
            .filter(|x| x.account_id == a.id)
            .collect();
        let products: HashSet<&str> = subs
            .iter()
            .map(|x| x.product.as_str())
            .chain(orders.iter().map(|x| x.product.as_str()))
            .collect();
        let st = &mut stats[k];
        st.0 += 1;
        st.1 += subs
            .iter()
            .filter(|x| x.active_on(today))
            .map(|x| x.mrr_cents())
            .sum::<i64>();
        st.2 += products.len();
        st.3 += a.service_hours;
        st.4 += orders.iter().map(|x| x.amount_cents).sum::<i64>();
        st.5 += subs.iter().map(|x| x.mrr_cents() * 12).sum::<i64>();
    }
    let avg = |k: usize, v: f64| v / stats[k].0 as f64;
    let (mm, co, fi) = (0, 1, 2);
    assert!(avg(mm, stats[mm].1 as f64) > 2.0 * avg(co, stats[co].1 as f64));
    assert!(avg(co, stats[co].1 as f64) > 3.0 * avg(fi, stats[fi].1 as f64));
    assert!(avg(mm, stats[mm].2 as f64) > avg(co, stats[co].2 as f64));
    assert!(avg(mm, stats[mm].3) > 3.0 * avg(co, stats[co].3));
    assert!(avg(co, stats[co].3) > avg(fi, stats[fi].3));
    // Fillers earn mostly from projects.
    assert!(stats[fi].4 > stats[fi].5);
}

#[test]
fn revenue_history_has_every_movement() {
    let d = demo(37, 3_000);
    let subs = &d.accounts.subscriptions;
    let today = d.s.now.date_naive();
    // Churn: accounts whose subscriptions all ended.
    let mut churned = 0;
    let mut reactivated = 0;
    let mut expanded = 0;
    for a in &d.company.accounts {
        let mine: Vec<_> = subs.iter().filter(|x| x.account_id == a.id).collect();
        if mine.is_empty() {
            continue;
        }
        if mine.iter().all(|x| x.end.is_some()) {
            churned += 1;
        }
        if mine.iter().any(|x| x.start > a.created_at.date_naive()) {
            expanded += 1;
        }
        // A gap in which nothing was active, followed by a new start.
        let gap = mine.iter().any(|x| {
            x.start > a.created_at.date_naive()
                && !mine.iter().any(|y| {
                    y.start < x.start && y.end.is_none_or(|e| e + chrono::Days::new(1) >= x.start)
                })
        });
        if gap {
            reactivated += 1;
        }
    }
    assert!(
        churned > 0 && reactivated > 0 && expanded > 0,
        "{churned} {reactivated} {expanded}"
    );
    assert!(subs.iter().any(|x| x.end.is_some_and(|e| e < today)));
    assert!(!d.accounts.orders.is_empty());
    for x in subs {
        assert!(x.amount_cents > 0);
    }
}

#[test]
fn events_per_contact_average_about_twenty() {
    let d = demo(41, 3_000);
    let per_contact = d.contacts.events.len() as f64 / d.contacts.contacts.len() as f64;
    assert!((15.0..25.0).contains(&per_contact), "{per_contact}");
    let anonymous = d
        .contacts
        .events
        .iter()
        .filter(|e| e.contact_id.is_none())
        .count();
    let visitors: HashSet<_> = d
        .contacts
        .events
        .iter()
        .filter(|e| e.contact_id.is_none())
        .map(|e| e.visitor_id.clone())
        .collect();
    let per = visitors.len() as f64 / d.contacts.contacts.len() as f64;
    assert!(
        (2.5..3.5).contains(&per),
        "{per} anonymous visitors per contact"
    );
    assert!(anonymous > visitors.len());
}

#[test]
fn some_accounts_are_neglected() {
    let d = demo(43, 2_000);
    let cutoff = d.s.now - chrono::Duration::days(60);
    let neglected = d
        .company
        .accounts
        .iter()
        .filter(|a| {
            d.accounts
                .activities
                .iter()
                .any(|x| x.account_id == Some(a.id))
                && !d
                    .accounts
                    .activities
                    .iter()
                    .any(|x| x.account_id == Some(a.id) && x.at > cutoff)
        })
        .count();
    assert!(neglected > 0);
    for x in &d.accounts.activities {
        let a = &d.company.accounts[x.account_id.unwrap().get() as usize - 1];
        assert_eq!(x.user_id, a.owner_id);
        assert!(x.minutes > 0 && !x.subject.is_empty());
    }
}

#[test]
fn spend_covers_every_month_and_source() {
    let c = company(&settings(2, 5_000));
    let sources: HashSet<&str> = c.spend.iter().map(|x| x.source.as_str()).collect();
    assert_eq!(sources.len(), 5);
    let months: HashSet<_> = c
        .spend
        .iter()
        .map(|x| (x.day.year(), x.day.month()))
        .collect();
    assert!(months.len() >= 18);
    assert!(
        c.spend
            .iter()
            .all(|x| x.amount_cents > 0 && x.campaign.is_some())
    );
}

/// Prints the shape of a demo: run with `--ignored --nocapture` when tuning the generator.
#[test]
#[ignore]
fn print_stats() {
    use std::collections::BTreeMap;
    let s = settings(42, 6_000);
    let c = company(&s);
    let a = account_batch(&s, &c, 0..c.accounts.len());
    let b = contact_batch(&s, &c, 0..s.contacts);
    let mut types: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &b.events {
        *types.entry(e.event_type.as_str()).or_default() += 1;
    }
    let mut stages: BTreeMap<&str, usize> = BTreeMap::new();
    for ct in &b.contacts {
        *stages.entry(ct.stage.as_str()).or_default() += 1;
    }
    eprintln!(
        "accounts {} subs {} orders {} activities {}",
        c.accounts.len(),
        a.subscriptions.len(),
        a.orders.len(),
        a.activities.len()
    );
    eprintln!(
        "contacts {} events {} ({:.2}/contact) deals {}",
        b.contacts.len(),
        b.events.len(),
        b.events.len() as f64 / b.contacts.len() as f64,
        b.deals.len()
    );
    eprintln!("stages {stages:?}");
    for (t, n) in &types {
        eprintln!("  {t:24} {n:8} {:.2}", *n as f64 / b.contacts.len() as f64);
    }
    let mut deal_status: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &b.deals {
        *deal_status.entry(d.status.as_str()).or_default() += 1;
    }
    eprintln!("deals {deal_status:?}");
    // Monthly logo churn and MRR, per SPEC "Definitions", over 30-day steps.
    let today = s.now.date_naive();
    let mrr_on = |acc: AccountId, day: chrono::NaiveDate| -> i64 {
        a.subscriptions
            .iter()
            .filter(|x| x.account_id == acc && x.active_on(day))
            .map(|x| x.mrr_cents())
            .sum()
    };
    let mut line = String::new();
    for m in (1..=17).rev() {
        let d0 = today - chrono::Days::new(30 * m);
        let d1 = today - chrono::Days::new(30 * (m - 1));
        let (mut active, mut churned, mut mrr) = (0, 0, 0);
        for acc in c.accounts.iter().take(600) {
            let (x0, x1) = (mrr_on(acc.id, d0), mrr_on(acc.id, d1));
            if x0 > 0 {
                active += 1;
                if x1 == 0 {
                    churned += 1;
                }
            }
            mrr += x1;
        }
        line.push_str(&format!(
            " [{d1} act {active} churn {:.1}% mrr {}k]",
            100.0 * churned as f64 / active.max(1) as f64,
            mrr / 100_000
        ));
    }
    eprintln!("first 600 accounts:{line}");
    let mut seg: BTreeMap<&str, (usize, i64, usize)> = BTreeMap::new();
    for (i, acc) in c.accounts.iter().enumerate() {
        let e = seg.entry(intended_segment(s.seed, i)).or_default();
        e.0 += 1;
        e.1 += a
            .subscriptions
            .iter()
            .filter(|x| x.account_id == acc.id)
            .map(|x| x.mrr_cents() * 12)
            .sum::<i64>()
            / 100;
        e.2 += a.orders.iter().filter(|x| x.account_id == acc.id).count();
    }
    eprintln!("segments (count, annualised sub value EUR, orders): {seg:?}");
    let cutoff = s.now - chrono::Duration::days(60);
    let live: Vec<&Account> = c
        .accounts
        .iter()
        .filter(|acc| {
            a.subscriptions
                .iter()
                .any(|x| x.account_id == acc.id && x.active_on(today))
                || a.orders.iter().any(|o| {
                    o.account_id == acc.id && o.ordered_on + chrono::Days::new(120) > today
                })
        })
        .collect();
    let neglected = live
        .iter()
        .filter(|acc| {
            !a.activities
                .iter()
                .any(|x| x.account_id == Some(acc.id) && x.at > cutoff)
        })
        .count();
    eprintln!(
        "live accounts {}, of which neglected {neglected}",
        live.len()
    );
    eprintln!(
        "spend rows {} total {}",
        c.spend.len(),
        c.spend.iter().map(|x| x.amount_cents).sum::<i64>() / 100
    );
}

/// Times the benchmark-sized demo: `cargo test -p orchard-core --release -- --ignored
/// --nocapture million`.
#[test]
#[ignore]
fn million_contacts_timing() {
    let contacts = std::env::var("DEMO_CONTACTS").map_or(1_000_000, |v| v.parse().unwrap());
    let s = settings(7, contacts);
    let started = std::time::Instant::now();
    let c = company(&s);
    let (mut subs, mut activities) = (0, 0);
    for from in (0..c.accounts.len()).step_by(10_000) {
        let a = account_batch(&s, &c, from..from + 10_000);
        subs += a.subscriptions.len();
        activities += a.activities.len();
    }
    let accounts_done = started.elapsed();
    let (mut contacts, mut events, mut deals) = (0, 0, 0);
    let mut dropping = std::time::Duration::ZERO;
    let mut drop_events = std::time::Duration::ZERO;
    for from in (0..s.contacts).step_by(10_000) {
        let b = contact_batch(&s, &c, from..from + 10_000);
        contacts += b.contacts.len();
        events += b.events.len();
        deals += b.deals.len();
        let t = std::time::Instant::now();
        let ContactBatch {
            contacts: cs,
            events: es,
            deals: ds,
        } = b;
        drop(es);
        drop_events += t.elapsed();
        drop(cs);
        drop(ds);
        dropping += t.elapsed();
    }
    let total = started.elapsed();
    eprintln!(
        "accounts {} (subs {subs}, activities {activities}) in {accounts_done:?}; \
         contacts {contacts}, events {events}, deals {deals}; total {total:?} \
         (of which dropping batches {dropping:?}, events {drop_events:?})",
        c.accounts.len()
    );
    assert_eq!(contacts, s.contacts);
}

/// Prints a few generated records: run with `--ignored --nocapture` to eyeball the data.
#[test]
#[ignore]
fn print_samples() {
    let s = settings(42, 200);
    let c = company(&s);
    eprintln!("{:#?}", &c.accounts[..2]);
    let a = account_batch(&s, &c, 0..1);
    eprintln!("{:#?}", a.subscriptions);
    eprintln!("{:#?}", &a.activities[..a.activities.len().min(2)]);
    let b = contact_batch(&s, &c, 0..12);
    for ct in &b.contacts {
        eprintln!(
            "{} {} <{}> {} {:?} owner {:?} created {} ({} {:?})",
            ct.id,
            ct.display_name(),
            ct.email,
            ct.stage,
            ct.source,
            ct.owner_id,
            ct.created_at,
            ct.details.demographics.job_title.as_deref().unwrap_or(""),
            ct.details.demographics.company,
        );
    }
    for e in b
        .events
        .iter()
        .filter(|e| e.contact_id.map(|x| x.get()) == Some(1))
    {
        eprintln!("  {} {} {:?}", e.at, e.event_type, e.properties);
    }
    eprintln!("{:#?}", b.deals);
}

/// Each contact's stage changes are logged as the rules log theirs: from subscriber, each
/// from the stage the last one reached, in time order, ending at the contact's stage, with a
/// cause; set by hand only where no rule could have (disqualified, churned, a customer's
/// colleague).
#[test]
fn stage_changes_lead_to_each_contacts_stage() {
    use crate::stage::LifecycleStage as S;
    let d = demo(29, 2_000);
    let mut by_cause: std::collections::BTreeMap<String, usize> = Default::default();
    for c in &d.contacts.contacts {
        let changes: Vec<_> = d
            .contacts
            .events
            .iter()
            .filter(|e| e.contact_id == Some(c.id) && e.event_type.as_str() == "stage_changed")
            .collect();
        let mut stage = S::Subscriber;
        let mut at = None;
        for e in &changes {
            let p = |k: &str| e.properties[k].as_str().unwrap_or_default().to_owned();
            assert_eq!(p("from"), stage.as_str(), "{}: {changes:?}", c.email);
            assert!(at.is_none_or(|t| t <= e.at), "in time order");
            at = Some(e.at);
            stage = S::parse(&p("to")).unwrap();
            let manual = e.properties["manual"].as_bool().unwrap();
            assert_eq!(
                manual,
                matches!(stage, S::Disqualified | S::Churned)
                    || (stage == S::Customer && p("cause") == "a contact of a customer account"),
                "{}: {changes:?}",
                c.email
            );
            *by_cause
                .entry(p("cause").split(" (").next().unwrap().to_owned())
                .or_default() += 1;
        }
        assert_eq!(stage, c.stage, "{}: {changes:?}", c.email);
    }
    // Every kind of cause occurs.
    for cause in [
        "took a top-of-funnel lead magnet",
        "took a middle-of-funnel lead magnet",
        "asked for a bottom-of-funnel offer",
        "visited the pricing page",
        "booked an appointment",
        "started a trial",
        "a deal was opened",
        "made a purchase",
        "disqualified by sales",
        "a contact of a customer account",
        "the account stopped buying",
    ] {
        assert!(
            by_cause.get(cause).is_some_and(|n| *n > 0),
            "{cause}: {by_cause:?}"
        );
    }
}
