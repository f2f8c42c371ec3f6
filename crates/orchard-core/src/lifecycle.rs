//! Lifecycle stage transitions by rule (SPEC A3): subscriber → IQL → MQL → SQL → opportunity →
//! customer, with trial and disqualified beside the path. Each transition has a time and a cause,
//! so cycle times can be measured. Automatic transitions only move forward; a person may move a
//! contact anywhere by hand, and automation then only acts on what happens after that.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EventSeq;
use crate::deal::DealStatus;
use crate::event::{Event, EventType};
use crate::scoring::ScoreChange;
use crate::stage::LifecycleStage;

/// Score thresholds that qualify a lead; part of a rule set, so they are versioned with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// At or above this score a lead becomes an MQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mql: Option<i64>,
    /// The sales-ready threshold: at or above it a lead becomes an SQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<i64>,
}

/// A deal as the stage rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealFact {
    pub status: DealStatus,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// The property a `stage_changed` event carries to say it was made by hand.
pub const STAGE_CHANGED: &str = "stage_changed";

/// The properties the stage rules read (`transitions`, `last_manual_change`): a store may load
/// the events of `EVENT_TYPES` with these alone.
pub const PROPERTY_KEYS: [&str; 4] = ["funnel_stage", "lead_magnet", "manual", "url"];

/// The event types the stage rules read (`transitions`); other events cannot move a stage.
pub const EVENT_TYPES: [&str; 6] = [
    "appointment_booked",
    "form_submitted",
    "page_viewed",
    "purchase",
    STAGE_CHANGED,
    "trial_started",
];

/// Everything the rules read about one contact.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub stage: LifecycleStage,
    /// The contact's events, oldest first.
    pub events: &'a [Event],
    /// Its score changes, oldest first (empty when no rule set is live).
    pub score_changes: &'a [ScoreChange],
    pub deals: &'a [DealFact],
    /// Ids of disqualifying rules that hold now.
    pub disqualified_by: &'a [std::sync::Arc<str>],
    pub thresholds: Thresholds,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: LifecycleStage,
    pub to: LifecycleStage,
    pub at: DateTime<Utc>,
    pub cause: String,
    pub event: Option<EventSeq>,
}

/// When the contact was last moved by hand: automation considers only what came after.
pub fn last_manual_change(events: &[Event]) -> Option<DateTime<Utc>> {
    events.iter().rev().find(|e| is_manual(e)).map(|e| e.at)
}

fn is_manual(e: &Event) -> bool {
    e.event_type.as_str() == STAGE_CHANGED
        && e.properties.get("manual").and_then(|v| v.as_bool()) == Some(true)
}

/// The stage the rules give a contact as of `f.now`, replayed from its log rather than moved on
/// from its stored stage: from the stage a person last set at or before then (a subscriber
/// when nobody did), through every transition the rules make up to then. A backtest asks it
/// under two rule sets (`f.score_changes`, `f.disqualified_by` and `f.thresholds` of each);
/// `f.stage` is not read. `f.events` must be oldest first, as `transitions` takes them, and
/// carry the `to` of hand-set `stage_changed` events, which `PROPERTY_KEYS` leaves out (a
/// refresh never needs it).
pub fn replayed_stage(f: &Facts<'_>) -> LifecycleStage {
    let events = &f.events[..f.events.partition_point(|e| e.at <= f.now)];
    let start = events
        .iter()
        .rev()
        .find(|e| is_manual(e))
        .and_then(|e| LifecycleStage::parse(e.properties.get("to")?.as_str()?))
        .unwrap_or(LifecycleStage::Subscriber);
    let facts = Facts {
        stage: start,
        events,
        ..*f
    };
    transitions(&facts).last().map_or(start, |t| t.to)
}

struct Candidate<'a> {
    to: LifecycleStage,
    at: DateTime<Utc>,
    cause: Cause<'a>,
    event: Option<EventSeq>,
}

/// Why a candidate would move the stage, put into words only for the transitions made: most
/// candidates lead nowhere (a contact long past MQL visits the pricing page again), and a
/// refresh weighs every contact's candidates.
enum Cause<'a> {
    Fixed(&'static str),
    /// A lead magnet's form or page, with the magnet's name.
    Magnet(&'static str, &'a str),
    /// A score threshold: the score, the threshold's name and its value.
    Threshold(i64, &'static str, i64),
}

impl Cause<'_> {
    fn text(&self) -> String {
        match *self {
            Cause::Fixed(cause) => cause.to_owned(),
            Cause::Magnet(cause, magnet) => format!("{cause} ({magnet})"),
            Cause::Threshold(running, name, t) => {
                format!("score reached {running} (the {name} threshold is {t})")
            }
        }
    }
}

/// A view of the pricing page: its URL holds `/pricing`, whatever the case.
fn pricing(url: &str) -> bool {
    const PRICING: &str = "/pricing";
    const ANCHOR: usize = crate::rules::rarest(PRICING.as_bytes());
    crate::rules::contains_ci_from(url, PRICING, ANCHOR)
}

fn candidates<'a>(f: &Facts<'a>, since: Option<DateTime<Utc>>) -> Vec<Candidate<'a>> {
    let after = |t: DateTime<Utc>| since.is_none_or(|s| t > s) && t <= f.now;
    let mut out = Vec::new();
    for e in f.events.iter().filter(|e| after(e.at)) {
        let prop = |k: &str| {
            e.properties
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        };
        let (to, cause) = match &e.event_type {
            EventType::FormSubmitted => match prop("funnel_stage") {
                "top" => (LifecycleStage::Iql, "took a top-of-funnel lead magnet"),
                "middle" => (LifecycleStage::Mql, "took a middle-of-funnel lead magnet"),
                "bottom" => (LifecycleStage::Sql, "asked for a bottom-of-funnel offer"),
                _ => continue,
            },
            EventType::PageViewed if pricing(prop("url")) => {
                (LifecycleStage::Mql, "visited the pricing page")
            }
            EventType::AppointmentBooked => (LifecycleStage::Sql, "booked an appointment"),
            EventType::TrialStarted => (LifecycleStage::Trial, "started a trial"),
            EventType::Purchase => (LifecycleStage::Customer, "made a purchase"),
            _ => continue,
        };
        let lead_magnet = prop("lead_magnet");
        out.push(Candidate {
            to,
            at: e.at,
            cause: if lead_magnet.is_empty() {
                Cause::Fixed(cause)
            } else {
                Cause::Magnet(cause, lead_magnet)
            },
            event: Some(e.seq),
        });
    }
    let mut running = 0;
    let (mut mql_done, mut sql_done) = (false, false);
    for c in f.score_changes {
        running += c.points;
        if !after(c.at) {
            continue;
        }
        for (threshold, to, done, name) in [
            (f.thresholds.mql, LifecycleStage::Mql, &mut mql_done, "MQL"),
            (
                f.thresholds.sql,
                LifecycleStage::Sql,
                &mut sql_done,
                "sales-ready",
            ),
        ] {
            if let Some(t) = threshold
                && running >= t
                && !*done
            {
                *done = true;
                out.push(Candidate {
                    to,
                    at: c.at,
                    cause: Cause::Threshold(running, name, t),
                    event: c.event,
                });
            }
        }
    }
    for d in f.deals {
        if after(d.created_at) {
            out.push(Candidate {
                to: LifecycleStage::Opportunity,
                at: d.created_at,
                cause: Cause::Fixed("a deal was opened"),
                event: None,
            });
        }
        if d.status == DealStatus::Won
            && let Some(closed) = d.closed_at.filter(|t| after(*t))
        {
            out.push(Candidate {
                to: LifecycleStage::Customer,
                at: closed,
                cause: Cause::Fixed("won a deal"),
                event: None,
            });
        }
    }
    out.sort_by_key(|c| c.at);
    out
}

/// Whether automation may move a contact from `from` to `to`: forward on the main path; into
/// a trial only before a deal is opened (an SQL who starts a trial is trialling); out of a side
/// stage only by becoming an opportunity or a customer.
pub(crate) fn may_move(from: LifecycleStage, to: LifecycleStage) -> bool {
    use LifecycleStage::*;
    match (from.rank(), to.rank()) {
        (Some(a), Some(b)) => b > a,
        (Some(a), None) => to == Trial && a <= Sql.rank().unwrap_or(0),
        (None, Some(_)) => to == Customer || (to == Opportunity && from != Churned),
        (None, None) => false,
    }
}

/// The transitions the rules make now, in time order, from the contact's current stage.
pub fn transitions(f: &Facts<'_>) -> Vec<Transition> {
    let since = last_manual_change(f.events);
    let mut stage = f.stage;
    let mut out = Vec::new();
    for c in candidates(f, since) {
        if may_move(stage, c.to) {
            out.push(Transition {
                from: stage,
                to: c.to,
                at: c.at,
                cause: c.cause.text(),
                event: c.event,
            });
            stage = c.to;
        }
    }
    // Disqualified from when the rule began to hold (its score change says when), unless a
    // person has moved the contact since.
    let began = f
        .score_changes
        .iter()
        .rev()
        .find(|c| c.cause == "disqualifies" && f.disqualified_by.contains(&c.rule_id));
    if let Some(c) = began
        && !matches!(
            stage,
            LifecycleStage::Customer | LifecycleStage::Disqualified
        )
        && since.is_none_or(|s| c.at > s)
    {
        out.push(Transition {
            from: stage,
            to: LifecycleStage::Disqualified,
            at: c.at,
            cause: format!("disqualified by rule {}", c.rule_id),
            event: c.event,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::ContactId;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + day * 86_400, 0).unwrap()
    }

    fn ev(seq: i64, ty: &str, day: i64, props: serde_json::Value) -> Event {
        Event {
            seq: EventSeq::new(seq),
            client_id: format!("e{seq}"),
            event_type: EventType::parse(ty).unwrap(),
            contact_id: Some(ContactId::new(1)),
            visitor_id: None,
            at: at(day),
            properties: props.as_object().cloned().unwrap_or_else(Map::new),
        }
    }

    fn change(points: i64, day: i64) -> ScoreChange {
        ScoreChange {
            rule_id: "r".into(),
            points,
            at: at(day),
            event: None,
            cause: "x".into(),
        }
    }

    fn facts<'a>(
        stage: LifecycleStage,
        events: &'a [Event],
        changes: &'a [ScoreChange],
        deals: &'a [DealFact],
    ) -> Facts<'a> {
        Facts {
            stage,
            events,
            score_changes: changes,
            deals,
            disqualified_by: &[],
            thresholds: Thresholds {
                mql: Some(40),
                sql: Some(70),
            },
            now: at(100),
        }
    }

    /// A store loads only `EVENT_TYPES` for the stage rules: no other event, whatever its
    /// properties, moves a stage.
    #[test]
    fn only_the_listed_event_types_move_stages() {
        let props = json!({"funnel_stage": "bottom", "url": "/pricing", "manual": true,
                           "lead_magnet": "demo", "from": "subscriber", "to": "customer"});
        for ty in EventType::known().chain(["segment_entered", "segment_left", "chat_started"]) {
            let events = [ev(1, ty, 1, props.clone())];
            let moved =
                !transitions(&facts(LifecycleStage::Subscriber, &events, &[], &[])).is_empty();
            assert_eq!(
                moved,
                EVENT_TYPES.contains(&ty) && ty != STAGE_CHANGED,
                "{ty}"
            );
        }
    }

    /// Events of every type the stage rules read, with their properties cut down to
    /// `PROPERTY_KEYS`, move the stages exactly as with all of them: each on its own, and all
    /// together.
    #[test]
    fn only_the_listed_properties_move_stages() {
        let variants = [
            json!({"funnel_stage": "top", "lead_magnet": "checklist", "form": "f", "utm_source": "x"}),
            json!({"funnel_stage": "middle", "lead_magnet": "webinar", "landing_page": "/w"}),
            json!({"url": "/Pricing/plans", "referrer": "https://example.com/", "utm_medium": "cpc"}),
            json!({"manual": true, "from": "mql", "to": "subscriber", "cause": "by hand"}),
            json!({"funnel_stage": "bottom", "lead_magnet": "demo", "landing_page": "/demo"}),
            json!({"plan": "pro", "url": "/pricing"}),
            json!({"amount": 1200, "currency": "EUR"}),
        ];
        let cut = |events: &[Event]| -> Vec<Event> {
            events
                .iter()
                .cloned()
                .map(|mut e| {
                    e.properties
                        .retain(|k, _| PROPERTY_KEYS.contains(&k.as_str()));
                    e
                })
                .collect()
        };
        let stages = [LifecycleStage::Subscriber, LifecycleStage::Iql];
        let mut all = Vec::new();
        let mut moved = 0;
        for (day, ty) in EVENT_TYPES.iter().enumerate() {
            for props in &variants {
                let seq = all.len() as i64 + 1;
                let one = [ev(seq, ty, day as i64 * 3 + seq % 3, props.clone())];
                for stage in stages {
                    let with_all = transitions(&facts(stage, &one, &[], &[]));
                    moved += with_all.len();
                    assert_eq!(
                        transitions(&facts(stage, &cut(&one), &[], &[])),
                        with_all,
                        "{ty} {props}"
                    );
                }
                assert_eq!(last_manual_change(&cut(&one)), last_manual_change(&one));
                all.extend(one);
            }
        }
        assert!(moved > 10, "the variants move stages: {moved}");
        all.sort_by_key(|e| (e.at, e.seq));
        for stage in stages {
            assert_eq!(
                transitions(&facts(stage, &cut(&all), &[], &[])),
                transitions(&facts(stage, &all, &[], &[]))
            );
        }
        assert!(last_manual_change(&all).is_some());
    }

    #[test]
    fn the_path_follows_magnets_pricing_bookings_and_deals_with_causes() {
        let events = vec![
            ev(
                1,
                "form_submitted",
                1,
                json!({"funnel_stage": "top", "lead_magnet": "checklist"}),
            ),
            ev(2, "page_viewed", 3, json!({"url": "/pricing"})),
            ev(3, "appointment_booked", 5, json!({})),
        ];
        let deals = [DealFact {
            status: DealStatus::Won,
            created_at: at(6),
            closed_at: Some(at(20)),
        }];
        let t = transitions(&facts(LifecycleStage::Subscriber, &events, &[], &deals));
        let path: Vec<(LifecycleStage, DateTime<Utc>)> = t.iter().map(|t| (t.to, t.at)).collect();
        use LifecycleStage::*;
        assert_eq!(
            path,
            [
                (Iql, at(1)),
                (Mql, at(3)),
                (Sql, at(5)),
                (Opportunity, at(6)),
                (Customer, at(20))
            ]
        );
        assert_eq!(t[0].cause, "took a top-of-funnel lead magnet (checklist)");
        assert_eq!(t[1].event, Some(EventSeq::new(2)));
        // Already a customer: nothing more to do, so a refresh changes nothing.
        assert!(transitions(&facts(Customer, &events, &[], &deals)).is_empty());
    }

    #[test]
    fn score_thresholds_qualify_and_never_move_backwards() {
        let changes = [change(30, 1), change(20, 2), change(30, 3), change(-60, 4)];
        let t = transitions(&facts(LifecycleStage::Iql, &[], &changes, &[]));
        let path: Vec<_> = t.iter().map(|t| (t.to, t.at)).collect();
        assert_eq!(
            path,
            [(LifecycleStage::Mql, at(2)), (LifecycleStage::Sql, at(3))]
        );
        assert!(
            t[1].cause
                .contains("score reached 80 (the sales-ready threshold is 70)")
        );
    }

    #[test]
    fn a_manual_change_is_respected_until_something_new_happens() {
        let mut events = vec![
            ev(1, "appointment_booked", 1, json!({})),
            ev(2, "stage_changed", 2, json!({"manual": true, "to": "MQL"})),
        ];
        assert!(transitions(&facts(LifecycleStage::Mql, &events, &[], &[])).is_empty());
        events.push(ev(3, "appointment_booked", 5, json!({})));
        let t = transitions(&facts(LifecycleStage::Mql, &events, &[], &[]));
        assert_eq!((t[0].to, t[0].at), (LifecycleStage::Sql, at(5)));
    }

    #[test]
    fn a_replayed_stage_starts_from_the_last_hand_set_one_and_stops_at_its_date() {
        use LifecycleStage::*;
        let events = [
            ev(1, "appointment_booked", 1, json!({})),
            ev(2, "stage_changed", 2, json!({"manual": true, "to": "MQL"})),
            ev(3, "page_viewed", 5, json!({"url": "/pricing"})),
            // Automatic moves in the log are what a replay recomputes, not where it starts.
            ev(
                4,
                "stage_changed",
                6,
                json!({"manual": false, "to": "customer"}),
            ),
            ev(5, "appointment_booked", 120, json!({})),
        ];
        // The stored stage is not read.
        let mut f = facts(Customer, &events, &[], &[]);
        assert_eq!(
            replayed_stage(&f),
            Mql,
            "set by hand; the booking comes later"
        );
        f.now = at(1);
        assert_eq!(replayed_stage(&f), Sql, "before the hand-set change");
        f.now = at(150);
        assert_eq!(replayed_stage(&f), Sql);
        f.now = at(0);
        assert_eq!(replayed_stage(&f), Subscriber);

        // The same score changes under two sets' thresholds.
        let changes = [change(30, 1), change(20, 2)];
        let mut f = facts(Subscriber, &[], &changes, &[]);
        assert_eq!(replayed_stage(&f), Mql);
        f.thresholds.sql = Some(50);
        assert_eq!(replayed_stage(&f), Sql);
    }

    #[test]
    fn side_stages() {
        use LifecycleStage::*;
        let trial = [ev(1, "trial_started", 1, json!({}))];
        assert_eq!(transitions(&facts(Iql, &trial, &[], &[]))[0].to, Trial);
        assert!(
            transitions(&facts(Opportunity, &trial, &[], &[])).is_empty(),
            "a trial does not undo an opportunity"
        );
        let pricing = [ev(1, "page_viewed", 1, json!({"url": "/pricing"}))];
        assert!(transitions(&facts(Trial, &pricing, &[], &[])).is_empty());
        let flip = [ScoreChange {
            rule_id: "competitor".into(),
            points: 0,
            at: at(9),
            event: None,
            cause: "disqualifies".into(),
        }];
        let mut f = facts(Sql, &[], &flip, &[]);
        let rules = ["competitor".into()];
        f.disqualified_by = &rules;
        let t = transitions(&f);
        assert_eq!(
            (t[0].to, t[0].cause.as_str()),
            (Disqualified, "disqualified by rule competitor")
        );
        f.stage = Customer;
        assert!(
            transitions(&f).is_empty(),
            "customers are not disqualified by rule"
        );
    }
}
