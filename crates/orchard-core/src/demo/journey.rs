//! A contact's way through the funnel, and the events it leaves behind. The journey is planned
//! first (when the lead took which offer, became MQL, booked a call, bought), then turned into
//! events, so that the event log tells the same story as the contact's stage and deals: scoring
//! and stage rules replayed over the log land where the generator put the contact.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::data::{
    BLOG, CASE_STUDIES, CUSTOMER_NEWS, CUSTOMER_PAGES, FEATURES, GENERAL_PAGES, MAGNETS,
    MIDDLE_MAGNETS, NEWSLETTER_FORM, NEWSLETTERS, PRICING, Source, TALK_MAGNETS, TOP_MAGNETS,
    TRIAL_MAGNET,
};
use super::{Clock, DAY, HOUR, MINUTE, day_floor, lead_time_quantile, numbered, word};
use crate::ContactId;
use crate::capture::FunnelStage;
use crate::event::{EventType, NewEvent};
use crate::rng::Rng;
use crate::stage::LifecycleStage;

/// How a contact got to a milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// The sign-up itself was the step (a middle-of-funnel magnet makes an MQL at once).
    Entry,
    /// Another form, for this lead magnet (index into `MAGNETS`).
    Form(usize),
    /// Visiting the pricing page.
    Pricing,
    /// A booking link in an email or on the site.
    Link,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub at: i64,
    pub via: Via,
}

/// Where a contact came from: the first touch every report attributes them to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attribution {
    pub source: &'static Source,
    pub medium: &'static str,
    pub campaign: Option<&'static str>,
}

/// What the contact is to the demo company.
#[derive(Debug, Clone, Copy)]
pub(super) enum Role {
    Lead,
    /// The contact who bought for their account: a lead whose deal was won at `won`.
    Buyer {
        won: i64,
        value_cents: i64,
        product: &'static str,
        /// When the account stopped buying, if it has.
        churned: Option<i64>,
    },
    /// Someone else at a customer, who signed up for the newsletter while their company was
    /// already a customer.
    Colleague {
        since: i64,
        churned: Option<i64>,
    },
}

/// The planned path; times in epoch milliseconds, all between the window's start and now.
#[derive(Debug, Clone)]
pub(super) struct Journey {
    pub stage: LifecycleStage,
    pub created: i64,
    /// The magnet of the first form, or `None` for the newsletter.
    pub entry: Option<usize>,
    pub mql: Option<Step>,
    pub sql: Option<Step>,
    pub trial: Option<Step>,
    pub opportunity: Option<i64>,
    pub won: Option<i64>,
    pub disqualified: Option<i64>,
    /// From when the contact is spoken to as a customer.
    pub customer_since: Option<i64>,
    /// When their account stopped buying (the contact is then churned).
    pub churned: Option<i64>,
    pub purchase_cents: i64,
    pub product: &'static str,
    /// The contact's offset from UTC in hours, so that they act in their own daytime.
    pub utc: i64,
}

impl Journey {
    /// When the contact last changed stage: the contact's `updated_at`.
    pub fn last_change(&self) -> i64 {
        [
            self.mql.map(|s| s.at),
            self.sql.map(|s| s.at),
            self.trial.map(|s| s.at),
            self.opportunity,
            self.won,
            self.disqualified,
            self.churned,
        ]
        .into_iter()
        .flatten()
        .fold(self.created, i64::max)
    }
}

/// Shares of leads by stage: most never get past the newsletter or a first download.
const LEAD_STAGES: [(LifecycleStage, f64); 7] = [
    (LifecycleStage::Subscriber, 34.0),
    (LifecycleStage::Iql, 25.0),
    (LifecycleStage::Mql, 15.0),
    (LifecycleStage::Sql, 7.0),
    (LifecycleStage::Opportunity, 5.0),
    (LifecycleStage::Trial, 5.0),
    (LifecycleStage::Disqualified, 9.0),
];

/// An instant during the local day (07:00-22:00, weighted to office hours) near `ms`, kept
/// within [lo, hi].
fn daytime(r: &mut Rng, ms: i64, utc: i64, lo: i64, hi: i64) -> i64 {
    let hour = if r.chance(0.8) {
        8 + r.range(0, 10)
    } else {
        7 + r.range(0, 15)
    };
    let mut t = ms - ms.rem_euclid(DAY) + (hour - utc) * HOUR + r.range(0, HOUR);
    if t > hi {
        t -= DAY;
    }
    if t < lo {
        t += DAY;
    }
    t.clamp(lo, hi)
}

fn exp_ms(r: &mut Rng, mean_days: f64) -> i64 {
    r.exponential(mean_days * DAY as f64) as i64
}

pub(super) fn plan(r: &mut Rng, clock: Clock, role: Role, utc: i64) -> Journey {
    let mut j = Journey {
        stage: LifecycleStage::Subscriber,
        created: 0,
        entry: None,
        mql: None,
        sql: None,
        trial: None,
        opportunity: None,
        won: None,
        disqualified: None,
        customer_since: None,
        churned: None,
        purchase_cents: 0,
        product: "",
        utc,
    };
    match role {
        Role::Lead => plan_lead(r, clock, &mut j),
        Role::Buyer {
            won,
            value_cents,
            product,
            churned,
        } => {
            j.churned = churned.map(|t| t.max(won).min(clock.now));
            j.stage = if churned.is_some() {
                LifecycleStage::Churned
            } else {
                LifecycleStage::Customer
            };
            let cycle = (r.log_normal(55.0, 0.6) * DAY as f64) as i64;
            let cycle = cycle.clamp(10 * DAY, 200 * DAY);
            j.created = daytime(r, won - cycle, utc, clock.leads_from(), won - 2 * DAY);
            let span = (won - j.created) as f64;
            let created = j.created;
            let at = |f: f64| created + (span * f) as i64;
            if r.chance(0.2) {
                j.entry = Some(TRIAL_MAGNET);
                j.trial = Some(Step {
                    at: j.created,
                    via: Via::Entry,
                });
                j.mql = Some(Step {
                    at: j.created,
                    via: Via::Entry,
                });
                j.sql = Some(Step {
                    at: at(0.3 + 0.2 * r.f64()),
                    via: Via::Link,
                });
            } else {
                let a = 0.05 + 0.25 * r.f64();
                let b = a + 0.1 + 0.25 * r.f64();
                sales_path(r, &mut j, at(a), at(b));
            }
            j.opportunity = Some(at(0.7 + 0.2 * r.f64()));
            j.won = Some(won);
            j.customer_since = Some(won);
            j.purchase_cents = value_cents;
            j.product = product;
        }
        Role::Colleague { since, churned } => {
            j.stage = if churned.is_some() {
                LifecycleStage::Churned
            } else {
                LifecycleStage::Customer
            };
            let hi = clock.leads_until();
            let lo = since.min(hi);
            let raw = lo + ((hi - lo) as f64 * r.f64()) as i64;
            j.created = daytime(r, raw, utc, lo, hi);
            j.customer_since = Some(j.created);
            j.churned = churned.map(|t| t.max(j.created).min(clock.now));
        }
    }
    j
}

/// The path of a lead who reached SQL: a first offer, then interest (a second offer or the
/// pricing page), then asking to talk to sales.
fn sales_path(r: &mut Rng, j: &mut Journey, t_mql: i64, t_sql: i64) {
    let x = r.f64();
    if x < 0.2 {
        let m = *r.pick(&TALK_MAGNETS);
        j.entry = Some(m);
        j.mql = Some(Step {
            at: j.created,
            via: Via::Entry,
        });
        j.sql = Some(Step {
            at: j.created,
            via: Via::Entry,
        });
        return;
    }
    if x < 0.55 {
        j.entry = Some(*r.pick(&MIDDLE_MAGNETS));
        j.mql = Some(Step {
            at: j.created,
            via: Via::Entry,
        });
    } else {
        j.entry = Some(*r.pick(&TOP_MAGNETS));
        let via = if r.chance(0.5) {
            Via::Form(*r.pick(&MIDDLE_MAGNETS))
        } else {
            Via::Pricing
        };
        j.mql = Some(Step { at: t_mql, via });
    }
    let via = if r.chance(0.5) {
        Via::Form(*r.pick(&TALK_MAGNETS))
    } else {
        Via::Link
    };
    j.sql = Some(Step { at: t_sql, via });
}

fn plan_lead(r: &mut Rng, clock: Clock, j: &mut Journey) {
    j.stage = *r.weighted(&LEAD_STAGES);
    let raw = clock.lead_time(r.f64());
    j.created = daytime(r, raw, j.utc, clock.leads_from(), clock.leads_until());
    // Waiting times between milestones, squeezed into the time left for recent leads.
    let end = clock.now - 10 * MINUTE;
    let available = (end - j.created) as f64 * 0.9;
    let mut gaps = [
        exp_ms(r, 18.0) + 2 * HOUR,
        exp_ms(r, 14.0) + 2 * HOUR,
        exp_ms(r, 10.0) + DAY,
    ];
    let total: i64 = gaps.iter().sum();
    if total as f64 > available {
        let f = available / total as f64;
        for g in &mut gaps {
            *g = (*g as f64 * f) as i64;
        }
    }
    let t1 = j.created + gaps[0];
    let t2 = t1 + gaps[1];
    let t3 = t2 + gaps[2];
    match j.stage {
        LifecycleStage::Subscriber => {}
        LifecycleStage::Iql => j.entry = Some(*r.pick(&TOP_MAGNETS)),
        LifecycleStage::Mql => {
            if r.chance(0.5) {
                j.entry = Some(*r.pick(&MIDDLE_MAGNETS));
                j.mql = Some(Step {
                    at: j.created,
                    via: Via::Entry,
                });
            } else {
                j.entry = Some(*r.pick(&TOP_MAGNETS));
                let via = if r.chance(0.6) {
                    Via::Form(*r.pick(&MIDDLE_MAGNETS))
                } else {
                    Via::Pricing
                };
                j.mql = Some(Step { at: t1, via });
            }
        }
        LifecycleStage::Sql => sales_path(r, j, t1, t2),
        LifecycleStage::Opportunity => {
            sales_path(r, j, t1, t2);
            j.opportunity = Some(t3.max(j.sql.map_or(t3, |s| s.at + HOUR)).min(end));
        }
        LifecycleStage::Trial => {
            if r.chance(0.6) {
                j.entry = Some(TRIAL_MAGNET);
                j.trial = Some(Step {
                    at: j.created,
                    via: Via::Entry,
                });
            } else {
                let m = *r.pick(&MIDDLE_MAGNETS);
                j.entry = Some(m);
                j.mql = Some(Step {
                    at: j.created,
                    via: Via::Entry,
                });
                j.trial = Some(Step {
                    at: t1,
                    via: Via::Form(TRIAL_MAGNET),
                });
            }
        }
        _ => {
            // Disqualified: some only after talking to sales, most on sight (a student, a
            // competitor, a company far too small).
            if r.chance(0.4) {
                sales_path(r, j, t1, t2);
                j.disqualified = Some(t3);
            } else {
                j.entry = Some(if r.chance(0.6) {
                    *r.pick(&TOP_MAGNETS)
                } else {
                    *r.pick(&MIDDLE_MAGNETS)
                });
                let wait = exp_ms(r, 5.0).min(gaps[0]);
                j.disqualified = Some(j.created + wait + MINUTE);
            }
        }
    }
}

/// Working memory reused from one contact to the next, so that a batch allocates for the events
/// it returns and little else.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    events: Vec<NewEvent>,
    sends: Vec<Send>,
    order: Vec<(DateTime<Utc>, usize)>,
}

/// What a moved-out event leaves behind: allocates nothing.
fn placeholder() -> NewEvent {
    NewEvent {
        client_id: String::new(),
        event_type: EventType::PageViewed,
        contact_id: None,
        visitor_id: None,
        at: DateTime::UNIX_EPOCH,
        properties: Map::new(),
    }
}

/// The newsletter goes out every ten weeks: often enough to stay in mind, rarely enough that
/// a million contacts' history stays around twenty events each.
const NEWSLETTER_EVERY_DAYS: i64 = 70;

/// One email the contact was sent.
#[derive(Debug, Clone, Copy)]
struct Send {
    at: i64,
    email: &'static str,
    sequence: &'static str,
    link: &'static str,
    /// Sent by a person (sales follow-up, onboarding): the kind people answer.
    personal: bool,
}

fn send(at: i64, email: &'static str, sequence: &'static str, link: &'static str) -> Send {
    Send {
        at,
        email,
        sequence,
        link,
        personal: false,
    }
}

/// A page a visitor reads, weighted the way a services company's traffic falls: mostly blog.
fn content_page(r: &mut Rng) -> &'static str {
    let x = r.f64();
    if x < 0.45 {
        word(r, &BLOG)
    } else if x < 0.67 {
        word(r, &FEATURES)
    } else if x < 0.80 {
        word(r, &CASE_STUDIES)
    } else if x < 0.92 {
        word(r, &GENERAL_PAGES)
    } else {
        PRICING
    }
}

/// Builds events with their time; `client_id` is filled once a contact's events are sorted.
struct Emitter<'a> {
    clock: Clock,
    contact: Option<ContactId>,
    events: &'a mut Vec<NewEvent>,
}

impl Emitter<'_> {
    /// Records an event unless it would lie in the future (the journey was cut short by now).
    fn emit(&mut self, at: i64, event_type: EventType, properties: Map<String, Value>) -> bool {
        if at > self.clock.now || at < self.clock.start {
            return false;
        }
        self.events.push(NewEvent {
            client_id: String::new(),
            event_type,
            contact_id: self.contact,
            visitor_id: None,
            at: self.clock.at(at),
            properties,
        });
        true
    }

    fn page(&mut self, at: i64, url: &'static str) -> bool {
        self.emit(at, EventType::PageViewed, props([("url", url.into())]))
    }
}

fn props<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_owned(), v);
    }
    m
}

fn landing(entry: Option<usize>) -> &'static str {
    entry.map_or("/newsletter", |m| MAGNETS[m].landing)
}

fn slug(entry: Option<usize>) -> &'static str {
    entry.map_or(NEWSLETTER_FORM, |m| MAGNETS[m].slug)
}

/// Per-contact engagement by stage: further down the funnel, more interest.
fn open_rate(stage: LifecycleStage) -> f64 {
    match stage {
        LifecycleStage::Subscriber => 0.22,
        LifecycleStage::Iql => 0.28,
        LifecycleStage::Mql => 0.36,
        LifecycleStage::Sql | LifecycleStage::Trial => 0.45,
        LifecycleStage::Opportunity => 0.5,
        LifecycleStage::Customer => 0.42,
        LifecycleStage::Churned => 0.25,
        LifecycleStage::Disqualified => 0.15,
    }
}

fn unsubscribe_rate(stage: LifecycleStage) -> f64 {
    match stage {
        LifecycleStage::Subscriber | LifecycleStage::Iql => 0.08,
        LifecycleStage::Mql | LifecycleStage::Trial => 0.05,
        LifecycleStage::Sql | LifecycleStage::Opportunity | LifecycleStage::Customer => 0.02,
        LifecycleStage::Churned => 0.1,
        LifecycleStage::Disqualified => 0.2,
    }
}

/// The contact's events in time order, appended to `out`. Returns the time of the last one.
pub(super) fn events(
    r: &mut Rng,
    clock: Clock,
    index: usize,
    j: &Journey,
    attribution: Attribution,
    scratch: &mut Scratch,
    out: &mut Vec<NewEvent>,
) -> i64 {
    let contact = ContactId::new(index as i64 + 1);
    let Scratch {
        events,
        sends,
        order,
    } = scratch;
    events.clear();
    sends.clear();
    let mut e = Emitter {
        clock,
        contact: Some(contact),
        events,
    };
    let t0 = j.created;
    let visitor = numbered("v-", &[index]);

    // Before the sign-up: an anonymous visitor, whose page views are attached to the contact
    // once the form identifies them. The first carries the campaign that brought them.
    let views = *r.weighted(&[(1, 0.4), (2, 0.35), (3, 0.25)]);
    let first = (t0 - exp_ms(r, 4.0) - 5 * MINUTE).max(t0 - 30 * DAY);
    let src = attribution.source;
    for v in 0..views {
        let last = v == views - 1;
        let at = if last {
            t0 - r.range(1, 6) * MINUTE
        } else {
            let raw = first + (t0 - first) * v / views;
            daytime(r, raw, j.utc, clock.start, t0 - 6 * MINUTE)
        };
        let url = if last {
            landing(j.entry)
        } else {
            content_page(r)
        };
        let mut p = props([("url", url.into())]);
        if v == 0 {
            p.insert("utm_source".into(), src.name.into());
            p.insert("utm_medium".into(), attribution.medium.into());
            if let Some(c) = attribution.campaign {
                p.insert("utm_campaign".into(), c.into());
            }
            if let Some(referrer) = src.referrer {
                p.insert("referrer".into(), referrer.into());
            }
        }
        if e.emit(at, EventType::PageViewed, p)
            && let Some(ev) = e.events.last_mut()
        {
            ev.visitor_id = Some(visitor.clone());
        }
    }

    let mut p = props([
        ("form", slug(j.entry).into()),
        ("utm_source", src.name.into()),
        ("utm_medium", attribution.medium.into()),
        ("landing_page", landing(j.entry).into()),
    ]);
    if let Some(c) = attribution.campaign {
        p.insert("utm_campaign".into(), c.into());
    }
    if e.emit(t0, EventType::FormSubmitted, p)
        && let Some(ev) = e.events.last_mut()
    {
        ev.visitor_id = Some(visitor);
    }
    let subscribed = j.entry.is_none() || r.chance(0.85);
    if subscribed {
        e.emit(
            t0 + r.range(2, 30) * 1000,
            EventType::EmailSubscribed,
            props([("list", "newsletter".into())]),
        );
    }

    let mut steps = Vec::new();
    if let Some(m) = j.entry {
        steps.push(offer_step(t0, m));
    }
    milestones(r, &mut e, j, &mut steps);
    stage_history(&mut e, j, steps);

    // Emails: the welcome series, the ten-weekly newsletter (quarterly customer news once a
    // customer), nurture for early-stage leads, and the personal mails of sales, trial and
    // onboarding.
    let customer_from = j.customer_since.unwrap_or(i64::MAX);
    // Broadcasts go out on the same mornings for everybody, 08:00 UTC.
    let first_send = day_floor(clock.start) + 21 * DAY + 8 * HOUR;
    if subscribed {
        sends.push(send(t0 + 2 * MINUTE, "welcome-1", "welcome", BLOG[0]));
        sends.push(send(t0 + 3 * DAY, "welcome-2", "welcome", CASE_STUDIES[0]));
        for (n, issue) in NEWSLETTERS.iter().enumerate() {
            let at = first_send + n as i64 * NEWSLETTER_EVERY_DAYS * DAY;
            if at > t0 && at < customer_from {
                sends.push(send(at, issue, "newsletter", BLOG[(n * 5) % BLOG.len()]));
            }
        }
        for (n, issue) in CUSTOMER_NEWS.iter().enumerate() {
            let at = first_send + 24 * DAY + n as i64 * 91 * DAY;
            if at > customer_from.max(t0) {
                sends.push(send(at, issue, "customer-news", CUSTOMER_PAGES[n % 5]));
            }
        }
        if matches!(j.stage, LifecycleStage::Iql | LifecycleStage::Mql) {
            sends.push(send(t0 + 7 * DAY, "nurture-1", "nurture", CASE_STUDIES[1]));
            sends.push(send(t0 + 18 * DAY, "nurture-2", "nurture", PRICING));
            if r.chance(0.3) {
                let at = t0 + r.range(10, 40) * DAY;
                let link = MAGNETS[MIDDLE_MAGNETS[0]].landing;
                sends.push(send(at, "webinar-invitation", "webinar", link));
            }
        }
    }
    if let Some(t) = j.trial {
        sends.push(send(
            t.at + DAY,
            "trial-day-1",
            "trial-upgrade",
            FEATURES[2],
        ));
        sends.push(send(
            t.at + 7 * DAY,
            "trial-day-7",
            "trial-upgrade",
            CASE_STUDIES[2],
        ));
        sends.push(send(
            t.at + 12 * DAY,
            "trial-day-12",
            "trial-upgrade",
            PRICING,
        ));
    }
    if let Some(s) = j.sql {
        for (k, (email, after)) in [("sales-follow-up-1", 1), ("sales-follow-up-2", 6)]
            .into_iter()
            .enumerate()
        {
            if k == 0 || r.chance(0.6) {
                sends.push(Send {
                    personal: true,
                    ..send(s.at + after * DAY, email, "sales", PRICING)
                });
            }
        }
    }
    if let Some(w) = j.won {
        for (email, after) in [("onboarding-1", 1), ("onboarding-2", 14)] {
            sends.push(Send {
                personal: true,
                ..send(w + after * DAY, email, "onboarding", CUSTOMER_PAGES[1])
            });
        }
    }
    sends.retain(|s| s.at < clock.now);
    sends.sort_by_key(|s| s.at);
    emails(r, &mut e, j, sends);

    // Reading on the site after signing up, more the further along the lead is.
    let (lo, hi) = match j.stage {
        LifecycleStage::Subscriber | LifecycleStage::Disqualified => (0, 1),
        LifecycleStage::Iql | LifecycleStage::Churned => (0, 2),
        LifecycleStage::Mql => (1, 2),
        _ => (1, 3),
    };
    let horizon = (clock.now - t0).clamp(HOUR, 150 * DAY);
    for _ in 0..r.range(lo, hi + 1) {
        let at = t0 + HOUR.min(horizon / 2) + r.range(0, horizon);
        let url = if at >= customer_from && r.chance(0.6) {
            *r.pick(&CUSTOMER_PAGES)
        } else {
            content_page(r)
        };
        e.page(at, url);
    }
    if j.mql.is_some() && r.chance(0.12) {
        let at = t0 + r.range(0, horizon);
        e.emit(
            at,
            EventType::ChatStarted,
            props([("page", PRICING.into())]),
        );
    }

    // Sort a small index rather than the events themselves, which are large to move around.
    order.clear();
    order.extend(e.events.iter().enumerate().map(|(i, ev)| (ev.at, i)));
    order.sort_unstable();
    let mut last = t0;
    for (k, (at, i)) in order.iter().enumerate() {
        let mut ev = std::mem::replace(&mut e.events[*i], placeholder());
        ev.client_id = numbered("demo-c", &[index, k]);
        // A stage change is Orchard's record, not something the contact did.
        if ev.event_type.as_str() != crate::lifecycle::STAGE_CHANGED {
            last = last.max(at.timestamp_millis());
        }
        out.push(ev);
    }
    e.events.clear();
    last
}

/// A stage the journey reaches, when, and why, as the stage rules word it (`manual`: set by a
/// person, which no rule does).
struct StageStep {
    at: i64,
    to: LifecycleStage,
    cause: String,
    manual: bool,
}

fn step(at: i64, to: LifecycleStage, cause: &str) -> StageStep {
    StageStep {
        at,
        to,
        cause: cause.to_owned(),
        manual: false,
    }
}

/// The stage a form for lead magnet `m` makes, with the stage rules' cause.
fn offer_step(at: i64, m: usize) -> StageStep {
    let (to, cause) = match MAGNETS[m].stage {
        FunnelStage::Top => (LifecycleStage::Iql, "took a top-of-funnel lead magnet"),
        FunnelStage::Middle => (LifecycleStage::Mql, "took a middle-of-funnel lead magnet"),
        FunnelStage::Bottom => (LifecycleStage::Sql, "asked for a bottom-of-funnel offer"),
    };
    StageStep {
        cause: format!("{cause} ({})", MAGNETS[m].slug),
        ..step(at, to, "")
    }
}

/// The contact's stage changes as `stage_changed` events, as the stage rules would have logged
/// them had the contact lived through them with Orchard (each with its time and cause), and as
/// people would have for what no rule does: disqualifying, the colleague of a customer, the
/// account's churn. In time order from subscriber; a step the rules would not take (backwards,
/// or out of a side stage) is left out, so the last one is the contact's stage.
fn stage_history(e: &mut Emitter<'_>, j: &Journey, mut steps: Vec<StageStep>) {
    if let Some(t) = j.opportunity {
        steps.push(step(t, LifecycleStage::Opportunity, "a deal was opened"));
    }
    let manual = |at: i64, to: LifecycleStage, cause: &str| StageStep {
        manual: true,
        ..step(at, to, cause)
    };
    if let Some(t) = j.disqualified {
        steps.push(manual(
            t,
            LifecycleStage::Disqualified,
            "disqualified by sales",
        ));
    }
    if let (None, Some(t)) = (j.won, j.customer_since) {
        steps.push(manual(
            t,
            LifecycleStage::Customer,
            "a contact of a customer account",
        ));
    }
    if let Some(t) = j.churned {
        steps.push(manual(
            t,
            LifecycleStage::Churned,
            "the account stopped buying",
        ));
    }
    steps.sort_by_key(|s| s.at);
    let mut stage = LifecycleStage::Subscriber;
    for s in steps {
        if s.to == stage || !(s.manual || crate::lifecycle::may_move(stage, s.to)) {
            continue;
        }
        let recorded = e.emit(
            s.at,
            EventType::Custom(crate::lifecycle::STAGE_CHANGED.into()),
            props([
                ("from", stage.as_str().into()),
                ("to", s.to.as_str().into()),
                ("cause", s.cause.into()),
                ("manual", s.manual.into()),
            ]),
        );
        if recorded {
            stage = s.to;
        }
    }
}

/// The events of the stage changes: second offers, pricing visits, bookings, trials, purchase;
/// the stages they make go to `steps`.
fn milestones(r: &mut Rng, e: &mut Emitter<'_>, j: &Journey, steps: &mut Vec<StageStep>) {
    let form = |e: &mut Emitter<'_>, at: i64, m: usize| {
        e.page(at - 2 * MINUTE, MAGNETS[m].landing);
        e.emit(
            at,
            EventType::FormSubmitted,
            props([
                ("form", MAGNETS[m].slug.into()),
                ("utm_source", "orchard".into()),
                ("utm_medium", "email".into()),
                ("utm_campaign", "nurture".into()),
            ]),
        );
    };
    if let Some(s) = j.mql {
        match s.via {
            Via::Form(m) => {
                form(e, s.at, m);
                steps.push(offer_step(s.at, m));
            }
            Via::Pricing => {
                steps.push(step(s.at, LifecycleStage::Mql, "visited the pricing page"));
                e.page(s.at, PRICING);
                if r.chance(0.5) {
                    e.page(s.at + r.range(1, 10) * DAY, PRICING);
                }
            }
            Via::Entry | Via::Link => {}
        }
    }
    if let Some(s) = j.sql {
        let booked = match s.via {
            Via::Form(m) => {
                form(e, s.at, m);
                steps.push(offer_step(s.at, m));
                s.at + r.range(1, 15) * MINUTE
            }
            Via::Entry => s.at + r.range(1, 15) * MINUTE,
            Via::Link | Via::Pricing => {
                // Pricing readers are the ones who book.
                if r.chance(0.7) {
                    e.page(s.at - r.range(10, 60) * MINUTE, PRICING);
                }
                s.at
            }
        };
        let kind = match j.entry {
            Some(m) if MAGNETS[m].slug == "live-demo" => "demo",
            _ => "discovery call",
        };
        e.emit(
            booked,
            EventType::AppointmentBooked,
            props([("type", kind.into())]),
        );
        steps.push(step(booked, LifecycleStage::Sql, "booked an appointment"));
        if r.chance(0.15) {
            let cancelled = booked + r.range(1, 4) * DAY;
            if e.emit(
                cancelled,
                EventType::AppointmentCancelled,
                props([("type", kind.into())]),
            ) && r.chance(0.7)
            {
                e.emit(
                    cancelled + r.range(1, 5) * DAY,
                    EventType::AppointmentBooked,
                    props([("type", kind.into())]),
                );
            }
        }
    }
    if let Some(s) = j.trial {
        if let Via::Form(m) = s.via {
            form(e, s.at, m);
            steps.push(offer_step(s.at, m));
        }
        let started = s.at + r.range(1, 10) * MINUTE;
        steps.push(step(started, LifecycleStage::Trial, "started a trial"));
        e.emit(
            started,
            EventType::TrialStarted,
            props([
                ("product", "Security Monitoring".into()),
                ("days", 14.into()),
            ]),
        );
    }
    if let Some(t) = j.opportunity
        && r.chance(0.5)
    {
        e.page(t - r.range(1, 48) * HOUR, PRICING);
    }
    if let Some(w) = j.won {
        steps.push(step(w, LifecycleStage::Customer, "made a purchase"));
        e.emit(
            w,
            EventType::Purchase,
            props([
                ("amount", (j.purchase_cents as f64 / 100.0).into()),
                ("currency", "EUR".into()),
                ("product", j.product.into()),
            ]),
        );
    }
}

/// Sent, opened, clicked (openers click more), the odd bounce, reply and unsubscribe.
fn emails(r: &mut Rng, e: &mut Emitter<'_>, j: &Journey, sends: &[Send]) {
    if sends.is_empty() {
        return;
    }
    let p_open = (open_rate(j.stage) * r.log_normal(1.0, 0.5)).min(0.9);
    let p_click = 0.1 + 0.45 * p_open;
    let bounce = r.chance(0.015);
    let unsubscribe_at = r
        .chance(unsubscribe_rate(j.stage))
        .then(|| r.range(0, sends.len() as i64) as usize);
    let mut replied = false;
    for (k, s) in sends.iter().enumerate() {
        // Only the send names its sequence: the email's name identifies it for the rest, and
        // every property is an allocation repeated twenty million times in a benchmark demo.
        let mail = || props([("email", s.email.into())]);
        let mut sent = mail();
        sent.insert("sequence".into(), s.sequence.into());
        if !e.emit(s.at, EventType::EmailSent, sent) {
            break;
        }
        if bounce {
            e.emit(s.at + 2_000, EventType::EmailBounced, mail());
            break;
        }
        let mut seen = s.at;
        if r.chance(if s.personal { 0.8 } else { p_open }) {
            seen = s.at + MINUTE + r.exponential(5.0 * HOUR as f64) as i64;
            e.emit(seen, EventType::EmailOpened, mail());
            if r.chance(p_click) {
                let click = seen + 5_000 + r.exponential(3.0 * MINUTE as f64) as i64;
                let mut p = mail();
                p.insert("url".into(), s.link.into());
                if e.emit(click, EventType::EmailClicked, p) {
                    e.page(click + 2_000, s.link);
                }
            }
            if s.personal && !replied && r.chance(0.4) {
                replied = true;
                let at = seen + 10 * MINUTE + r.exponential(3.0 * HOUR as f64) as i64;
                e.emit(at, EventType::EmailReplied, mail());
            }
        }
        if unsubscribe_at == Some(k) {
            let at = seen + MINUTE + r.range(0, HOUR);
            e.emit(at, EventType::EmailUnsubscribed, mail());
            break;
        }
    }
}

/// Visitors who never sign up: about three per contact, each reading one to four pages (half
/// of them bounce after one), so that opt-in rates have a denominator. Their traffic grows over
/// the window like sign-ups do.
pub(super) fn visitors(r: &mut Rng, clock: Clock, index: usize, out: &mut Vec<NewEvent>) {
    let span = (clock.now - clock.start) as f64;
    for v in 0..r.range(1, 6) as usize {
        let visitor = numbered("anon-", &[index, v]);
        let mut at = clock.start + (span * lead_time_quantile(r.f64())) as i64;
        // Office-hours browsing, in Europe's day for most of the traffic.
        let day = at - at.rem_euclid(DAY);
        at = day + 6 * HOUR + r.range(0, 14 * HOUR);
        if at < clock.start {
            at += DAY;
        }
        at = at.min(clock.now);
        let pages: usize = *r.weighted(&[(1, 0.5), (2, 0.3), (3, 0.15), (4, 0.05)]);
        for k in 0..pages {
            if at > clock.now {
                break;
            }
            let url = if k == 0 && r.chance(0.3) {
                "/"
            } else {
                content_page(r)
            };
            let mut p = props([("url", url.into())]);
            if k == 0 && r.chance(0.4) {
                let referrer = *r.pick(&[
                    "https://www.google.com/",
                    "https://www.google.com/",
                    "https://www.linkedin.com/",
                    "https://www.bing.com/",
                ]);
                p.insert("referrer".into(), referrer.into());
            }
            out.push(NewEvent {
                client_id: numbered("demo-v", &[index, v, k]),
                event_type: EventType::PageViewed,
                contact_id: None,
                visitor_id: Some(visitor.clone()),
                at: clock.at(at),
                properties: p,
            });
            at += if r.chance(0.85) {
                10_000 + r.exponential(2.0 * MINUTE as f64) as i64
            } else {
                DAY + r.exponential(6.0 * DAY as f64) as i64
            };
        }
    }
}
