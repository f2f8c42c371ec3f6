//! Revenue and touches of the demo accounts. Each account's history is simulated month by month
//! from its first purchase, with hazards that depend on the quality segment it was meant to be:
//! Money Makers buy many services and grow, Contributors hold a steady set of products, Fillers
//! mostly buy projects. Churn, expansion, contraction and reactivation all happen along the way,
//! so every MRR movement of SPEC "Definitions" shows up.

use std::ops::Range;

use chrono::{Days, NaiveDate};

use super::data::{
    CALL_SUBJECTS, CLOUD_BACKUP, CONSULTING, DATA_MIGRATION, EMAIL_SUBJECTS, LICENCES,
    MANAGED_SUPPORT, MEETING_SUBJECTS, NOTE_SUBJECTS, ONBOARDING, PRODUCTS, SECURITY_MONITORING,
    TRAINING,
};
use super::{
    AccountBatch, Clock, DAY, DemoCompany, DemoSettings, MINUTE, STREAM_ACTIVITY, STREAM_REVENUE,
    Segment, contacts, date_ms, working_time,
};
use crate::account::{Account, BillingPeriod, Order, Subscription};
use crate::activity::{Activity, ActivityKind};
use crate::rng::Rng;
use crate::{AccountId, ActivityId, ContactId, OrderId, SubscriptionId};

/// Id blocks per account: ids are `account_index * block + k + 1`, so they are dense enough,
/// unique, and independent of how the accounts are chunked.
const SUBSCRIPTIONS_PER_ACCOUNT: usize = 16;
const ORDERS_PER_ACCOUNT: usize = 32;
const ACTIVITIES_PER_ACCOUNT: usize = 512;

pub(super) fn batch(s: &DemoSettings, company: &DemoCompany, range: Range<usize>) -> AccountBatch {
    let clock = Clock::new(s);
    let n = company.accounts.len();
    let range = range.start.min(n)..range.end.min(n);
    let mut out = AccountBatch::default();
    for index in range {
        let account = &company.accounts[index];
        let plan = plan(s.seed, index, account, clock);
        let contact = contacts::primary_contact(s, index);
        activities(
            s.seed,
            index,
            account,
            &plan,
            clock,
            contact,
            &mut out.activities,
        );
        out.subscriptions.extend(plan.subscriptions);
        out.orders.extend(plan.orders);
    }
    out
}

/// An account's revenue history, and what the rest of the generator needs to know about it.
#[derive(Debug)]
pub(super) struct Plan {
    pub subscriptions: Vec<Subscription>,
    pub orders: Vec<Order>,
    /// The last day of recurring revenue, when the account held subscriptions but none today.
    pub churned_on: Option<NaiveDate>,
    /// What the first purchase was worth: a year of the first subscriptions plus the first
    /// orders. The won deal of the account's first contact carries this amount.
    pub first_value_cents: i64,
    pub main_product: &'static str,
}

impl Plan {
    /// A customer that pays nothing recurring any more and has not ordered for a while: its
    /// contacts are "churned".
    pub fn lost(&self, today: NaiveDate) -> bool {
        let recent_order = self
            .orders
            .iter()
            .any(|o| o.ordered_on + Days::new(120) > today);
        self.churned_on.is_some() && !recent_order
    }
}

/// Monthly hazards of a segment, and how it buys.
struct Behaviour {
    churn: f64,
    expansion: f64,
    contraction: f64,
    reactivation: f64,
    /// Chance of a one-off order in a month.
    order: f64,
    /// How the account's size scales its prices, relative to a typical customer.
    staff_reference: f64,
}

fn behaviour(segment: Segment) -> Behaviour {
    match segment {
        Segment::MoneyMaker => Behaviour {
            churn: 0.010,
            expansion: 0.06,
            contraction: 0.02,
            reactivation: 0.25,
            order: 0.25,
            staff_reference: 450.0,
        },
        Segment::Contributor => Behaviour {
            churn: 0.015,
            expansion: 0.025,
            contraction: 0.01,
            reactivation: 0.2,
            order: 0.05,
            staff_reference: 120.0,
        },
        Segment::Filler => Behaviour {
            churn: 0.05,
            expansion: 0.01,
            contraction: 0.01,
            reactivation: 0.2,
            order: 0.13,
            staff_reference: 30.0,
        },
    }
}

/// A subscription currently held, by position in the plan's list.
#[derive(Debug, Clone, Copy)]
struct Held {
    sub: usize,
    product: usize,
    tier: usize,
    seats: i64,
}

struct Builder {
    index: usize,
    account_id: AccountId,
    period: BillingPeriod,
    scale: f64,
    employees: i64,
    subscriptions: Vec<Subscription>,
    orders: Vec<Order>,
    held: Vec<Held>,
}

impl Builder {
    fn can_subscribe(&self) -> bool {
        self.subscriptions.len() < SUBSCRIPTIONS_PER_ACCOUNT
    }

    fn subscribe(
        &mut self,
        r: &mut Rng,
        product: usize,
        tier: usize,
        seats: i64,
        start: NaiveDate,
    ) {
        if !self.can_subscribe() {
            return;
        }
        let p = &PRODUCTS[product];
        let tier = tier.min(p.plans.len() - 1);
        let (plan, base) = p.plans[tier];
        let monthly = if product == LICENCES {
            base * seats
        } else {
            // Prices are negotiated: round to whole euros around the list price.
            ((base as f64 * self.scale * r.log_normal(1.0, 0.08)) / 100.0).round() as i64 * 100
        };
        let k = self.subscriptions.len();
        let id = (self.index * SUBSCRIPTIONS_PER_ACCOUNT + k + 1) as i64;
        self.subscriptions.push(Subscription {
            id: SubscriptionId::new(id),
            external_id: format!("demo-sub-{id}"),
            account_id: self.account_id,
            product: p.name.to_owned(),
            plan: plan.to_owned(),
            amount_cents: monthly.max(100) * self.period.months(),
            period: self.period,
            start,
            end: None,
        });
        self.held.push(Held {
            sub: k,
            product,
            tier,
            seats,
        });
    }

    /// Ends a held subscription the day before `day`.
    fn end(&mut self, held: usize, day: NaiveDate) -> Held {
        let h = self.held.swap_remove(held);
        let end = day
            .pred_opt()
            .expect("demo dates are far from chrono's minimum");
        let s = &mut self.subscriptions[h.sub];
        s.end = Some(end.max(s.start));
        h
    }

    fn order(&mut self, r: &mut Rng, product: usize, factor: f64, day: NaiveDate) {
        let k = self.orders.len();
        if k >= ORDERS_PER_ACCOUNT {
            return;
        }
        let median = PRODUCTS[product].plans[0].1 as f64 * self.scale * factor;
        let amount = (r.log_normal(median, 0.35) / 1000.0).round() as i64 * 1000;
        let id = (self.index * ORDERS_PER_ACCOUNT + k + 1) as i64;
        self.orders.push(Order {
            id: OrderId::new(id),
            external_id: format!("demo-ord-{id}"),
            account_id: self.account_id,
            product: PRODUCTS[product].name.to_owned(),
            amount_cents: amount.max(10_000),
            ordered_on: day,
        });
    }

    fn seats(&self, r: &mut Rng) -> i64 {
        ((self.employees as f64 * (0.5 + 0.5 * r.f64())).round() as i64).max(5)
    }

    fn holds(&self, product: usize) -> bool {
        self.held.iter().any(|h| h.product == product)
    }
}

/// Contributors buy "a specific set of products": one of these bundles.
const BUNDLES: [[(usize, usize); 2]; 4] = [
    [(MANAGED_SUPPORT, 1), (CLOUD_BACKUP, 1)],
    [(SECURITY_MONITORING, 1), (LICENCES, 0)],
    [(MANAGED_SUPPORT, 0), (SECURITY_MONITORING, 0)],
    [(CLOUD_BACKUP, 1), (LICENCES, 0)],
];

/// Fillers' projects: what they order, and how likely each is.
const PROJECTS: [(usize, f64); 4] = [
    (ONBOARDING, 0.3),
    (DATA_MIGRATION, 0.3),
    (CONSULTING, 0.25),
    (TRAINING, 0.15),
];

/// An account's revenue history. A pure function of the seed, the account's index and the
/// account itself, so that contacts can consult it without generating the account's batch.
pub(super) fn plan(seed: u64, index: usize, account: &Account, clock: Clock) -> Plan {
    let segment = Segment::of(seed, index);
    let how = behaviour(segment);
    let mut r = Rng::for_item(seed, STREAM_REVENUE, index as u64);
    let start = account.created_at.date_naive();
    let today = clock.today();
    let employees = account.employees.unwrap_or(50);
    let period = *r.weighted(&match segment {
        Segment::MoneyMaker => [
            (BillingPeriod::Year, 0.5),
            (BillingPeriod::Quarter, 0.35),
            (BillingPeriod::Month, 0.15),
        ],
        Segment::Contributor => [
            (BillingPeriod::Year, 0.4),
            (BillingPeriod::Quarter, 0.3),
            (BillingPeriod::Month, 0.3),
        ],
        Segment::Filler => [
            (BillingPeriod::Year, 0.1),
            (BillingPeriod::Quarter, 0.2),
            (BillingPeriod::Month, 0.7),
        ],
    });
    let mut b = Builder {
        index,
        account_id: account.id,
        period,
        scale: (employees as f64 / how.staff_reference)
            .powf(0.35)
            .clamp(0.6, 2.5),
        employees,
        subscriptions: Vec::new(),
        orders: Vec::new(),
        held: Vec::new(),
    };

    match segment {
        Segment::MoneyMaker => {
            let tier = 1 + r.chance(0.6) as usize;
            b.subscribe(&mut r, MANAGED_SUPPORT, tier, 0, start);
            let tier = 1 + r.chance(0.4) as usize;
            b.subscribe(&mut r, SECURITY_MONITORING, tier, 0, start);
            if r.chance(0.7) {
                let tier = 1 + r.chance(0.5) as usize;
                b.subscribe(&mut r, CLOUD_BACKUP, tier, 0, start);
            }
            if r.chance(0.6) {
                let seats = b.seats(&mut r);
                let tier = r.chance(0.5) as usize;
                b.subscribe(&mut r, LICENCES, tier, seats, start);
            }
            if r.chance(0.7) {
                b.order(&mut r, ONBOARDING, 1.0, start);
            }
        }
        Segment::Contributor => {
            for (product, tier) in *r.pick(&BUNDLES) {
                let seats = if product == LICENCES {
                    b.seats(&mut r)
                } else {
                    0
                };
                b.subscribe(&mut r, product, tier, seats, start);
            }
            if r.chance(0.4) {
                b.order(&mut r, ONBOARDING, 0.6, start);
            }
        }
        Segment::Filler => {
            let project = *r.weighted(&PROJECTS);
            b.order(&mut r, project, 0.5, start);
            if r.chance(0.3) {
                let product = *r.pick(&[CLOUD_BACKUP, LICENCES, MANAGED_SUPPORT]);
                let seats = if product == LICENCES {
                    (b.seats(&mut r) / 2).max(5)
                } else {
                    0
                };
                b.subscribe(&mut r, product, 0, seats, start);
            }
        }
    }
    let first_value_cents = b
        .subscriptions
        .iter()
        .map(|s| s.mrr_cents() * 12)
        .chain(b.orders.iter().map(|o| o.amount_cents))
        .sum();
    let main_product = b
        .held
        .first()
        .map(|h| PRODUCTS[h.product].name)
        .or_else(|| {
            let first = b.orders.first()?;
            PRODUCTS
                .iter()
                .find(|p| p.name == first.product)
                .map(|p| p.name)
        })
        .unwrap_or(PRODUCTS[MANAGED_SUPPORT].name);

    // Fillers stop buying projects at some point; the others keep ordering while they stay.
    let ordering_until = match segment {
        Segment::Filler => start + Days::new(r.exponential(300.0) as u64 + 30),
        _ => today,
    };
    let mut churned_on = None;
    let mut reactivate_on: Option<NaiveDate> = None;
    let mut first_product = b.held.first().map(|h| (h.product, h.tier, h.seats));
    let mut day = start + Days::new(30);
    while day <= today {
        if !b.held.is_empty() {
            let x = r.f64();
            if x < how.churn {
                while !b.held.is_empty() {
                    b.end(0, day);
                }
                churned_on = day.pred_opt();
                if r.chance(how.reactivation) {
                    reactivate_on = Some(day + Days::new(30 * r.range(1, 6) as u64));
                }
            } else if x < how.churn + how.expansion {
                expand(&mut b, &mut r, day);
            } else if x < how.churn + how.expansion + how.contraction {
                contract(&mut b, &mut r, day);
            }
        } else if let Some(on) = reactivate_on
            && day >= on
        {
            // A returning customer usually comes back on a smaller plan of what it had.
            if let Some((product, tier, seats)) = first_product {
                let seats = (seats as f64 * 0.8) as i64;
                b.subscribe(&mut r, product, tier.saturating_sub(1), seats.max(5), day);
            }
            reactivate_on = None;
            churned_on = None;
        }
        if day <= ordering_until && r.chance(how.order) {
            let on = (day + Days::new(r.range(0, 30) as u64)).min(today);
            let (product, factor) = match segment {
                Segment::MoneyMaker => (
                    *r.weighted(&[(CONSULTING, 0.5), (TRAINING, 0.3), (DATA_MIGRATION, 0.2)]),
                    1.0,
                ),
                Segment::Contributor => (*r.pick(&[TRAINING, CONSULTING]), 0.7),
                Segment::Filler => (*r.weighted(&PROJECTS), 0.5),
            };
            b.order(&mut r, product, factor, on);
        }
        if first_product.is_none() {
            first_product = b.held.first().map(|h| (h.product, h.tier, h.seats));
        }
        day = day + Days::new(30);
    }
    b.orders.sort_by_key(|o| o.ordered_on);
    // Ids follow the order dates, so renumber within the account's block.
    for (k, o) in b.orders.iter_mut().enumerate() {
        let id = (index * ORDERS_PER_ACCOUNT + k + 1) as i64;
        o.id = OrderId::new(id);
        o.external_id = format!("demo-ord-{id}");
    }
    Plan {
        subscriptions: b.subscriptions,
        orders: b.orders,
        churned_on,
        first_value_cents,
        main_product,
    }
}

/// Growth: cross-sell a product the account lacks, or move a held one up a plan (more seats
/// for licences).
fn expand(b: &mut Builder, r: &mut Rng, day: NaiveDate) {
    if !b.can_subscribe() {
        return;
    }
    let missing = (0..PRODUCTS.len()).find(|p| PRODUCTS[*p].recurring && !b.holds(*p));
    let upgradable = b
        .held
        .iter()
        .position(|h| h.product == LICENCES || h.tier + 1 < PRODUCTS[h.product].plans.len());
    match (missing, upgradable) {
        (Some(product), _) if r.chance(0.5) || upgradable.is_none() => {
            let seats = if product == LICENCES { b.seats(r) } else { 0 };
            b.subscribe(r, product, 0, seats, day);
        }
        (_, Some(i)) => {
            let h = b.end(i, day);
            let (tier, seats) = if h.product == LICENCES {
                (
                    h.tier,
                    (h.seats as f64 * (1.2 + 0.3 * r.f64())).round() as i64,
                )
            } else {
                (h.tier + 1, h.seats)
            };
            b.subscribe(r, h.product, tier, seats, day);
        }
        _ => {}
    }
}

/// Shrinking: drop one of several products, or move one down a plan (fewer seats).
fn contract(b: &mut Builder, r: &mut Rng, day: NaiveDate) {
    if b.held.len() > 1 && r.chance(0.35) {
        let i = r.range(0, b.held.len() as i64) as usize;
        b.end(i, day);
        return;
    }
    let i = r.range(0, b.held.len() as i64) as usize;
    let h = b.held[i];
    if h.product == LICENCES && h.seats > 5 {
        b.end(i, day);
        let seats = ((h.seats as f64 * 0.75).round() as i64).max(5);
        b.subscribe(r, h.product, h.tier, seats, day);
    } else if h.tier > 0 {
        b.end(i, day);
        b.subscribe(r, h.product, h.tier - 1, h.seats, day);
    }
}

/// Touches by the account owner: a kick-off, then calls, meetings, emails and notes at the
/// cadence the segment deserves, until the account churns. About one account in seven is
/// neglected: nobody has touched it for two months or more.
fn activities(
    seed: u64,
    index: usize,
    account: &Account,
    plan: &Plan,
    clock: Clock,
    contact: Option<ContactId>,
    out: &mut Vec<Activity>,
) {
    let segment = Segment::of(seed, index);
    let mut r = Rng::for_item(seed, STREAM_ACTIVITY, index as u64);
    let start = account.created_at.timestamp_millis();
    let mut end = match plan.churned_on {
        Some(d) if plan.lost(clock.today()) => date_ms(d) + 2 * DAY,
        _ => clock.now,
    };
    if r.chance(0.12) {
        end = end.min(clock.now - (60.0 * DAY as f64 + r.exponential(45.0 * DAY as f64)) as i64);
    }
    let (mean_gap_days, kinds) = match segment {
        Segment::MoneyMaker => (6.0, [35.0, 25.0, 30.0, 10.0]),
        Segment::Contributor => (14.0, [35.0, 10.0, 40.0, 15.0]),
        Segment::Filler => (30.0, [25.0, 5.0, 55.0, 15.0]),
    };
    let kinds = [
        (ActivityKind::Call, kinds[0]),
        (ActivityKind::Meeting, kinds[1]),
        (ActivityKind::Email, kinds[2]),
        (ActivityKind::Note, kinds[3]),
    ];
    // Region offsets are not known per account here; Europe's working day is close enough for
    // most of the book, and the Americas' accounts are nudged later below.
    let utc = match account.region.as_deref() {
        Some("North America") => -6,
        Some("UK&I") => 0,
        _ => 1,
    };
    let mut t = start + r.range(1, 6) * DAY;
    let mut first = true;
    let base = index * ACTIVITIES_PER_ACCOUNT;
    let mut k = 0;
    while t < end && k < ACTIVITIES_PER_ACCOUNT {
        let at = working_time(&mut r, t, utc).clamp(start, end.min(clock.now) - MINUTE);
        let (kind, subject, minutes) = if first {
            (ActivityKind::Meeting, "Kick-off meeting", 60)
        } else {
            let kind = *r.weighted(&kinds);
            match kind {
                ActivityKind::Call => (kind, *r.pick(&CALL_SUBJECTS), r.range(1, 10) * 5),
                ActivityKind::Meeting => (kind, *r.pick(&MEETING_SUBJECTS), r.range(2, 9) * 15),
                ActivityKind::Email => (kind, *r.pick(&EMAIL_SUBJECTS), r.range(5, 21)),
                ActivityKind::Note => (kind, *r.pick(&NOTE_SUBJECTS), r.range(2, 11)),
            }
        };
        first = false;
        let id = (base + k + 1) as i64;
        k += 1;
        out.push(Activity {
            id: ActivityId::new(id),
            external_id: format!("demo-act-{id}"),
            kind,
            account_id: Some(account.id),
            contact_id: if kind != ActivityKind::Note && r.chance(0.75) {
                contact
            } else {
                None
            },
            user_id: account.owner_id,
            at: clock.at(at),
            minutes,
            subject: subject.to_owned(),
        });
        t += (r.exponential(mean_gap_days * DAY as f64) as i64).max(DAY / 2);
    }
}
