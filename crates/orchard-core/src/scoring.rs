//! Lead scoring (SPEC A3): a versioned rule set turned into a contact's score by replaying its
//! events in order. Behaviour rules add points per matching event (optionally capped), state
//! rules add points while a condition holds (fit on attributes, absence over time windows: "no
//! open in 30 days"), disqualifying rules mark a contact unfit. Every change is recorded with its
//! rule, time and cause, so the score can be explained and read at any past date, and the same
//! function serves the incremental path and the rebuild: they cannot disagree.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::EventSeq;
use crate::account::Account;
use crate::contact::Contact;
use crate::event::{Event, EventType};
use crate::rules::{self, EventPattern, Expr, ParseError, Subject};

/// Longest period a rule set names in days (a cap's `per_days`, decay's `every_days`): ten
/// years, as the rule language's windows.
pub const MAX_DAYS: u32 = rules::MAX_DAYS;

/// How often a behaviour rule may count: `times` in all, or `times` per rolling `per_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    pub times: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_days: Option<u32>,
}

/// A rule as people write and store it: conditions as rule-language text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Stable and short: `opened`, `pricing-visit`. Explanations and history name it.
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// `behaviour`, `state` or `disqualify`.
    pub kind: String,
    /// Behaviour rules: the events they fire on, e.g. `page_viewed where url ~ "/pricing"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// Behaviour rules: an extra condition at the event's time; state and disqualifying
    /// rules: the condition itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default)]
    pub points: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Cap>,
}

/// A rule set as stored: its rules and thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetDef {
    pub name: String,
    pub rules: Vec<RuleDef>,
    /// Scores that make a lead an MQL or an SQL (sales-ready).
    #[serde(default)]
    pub thresholds: crate::lifecycle::Thresholds,
    /// Optional decay of behaviour points as they age: activity from last year says less
    /// than activity from last week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay: Option<Decay>,
}

/// Behaviour points lose `percent` of what is left of them every `every_days` days after the
/// event that earned them (rounded toward zero, so they reach zero). Each step is a score
/// change of its own, at its time, caused by the passing of time after that event. Fit,
/// absence and disqualifying rules describe the present and do not decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decay {
    /// 1-100.
    pub percent: u8,
    /// 1-3650.
    pub every_days: u32,
}

impl Decay {
    /// The steps of `points` earned at `at`: (time, change), as many as it takes to reach 0.
    pub fn steps(
        self,
        points: i64,
        at: DateTime<Utc>,
    ) -> impl Iterator<Item = (DateTime<Utc>, i64)> {
        let keep = 100 - i64::from(self.percent.min(100));
        let every = Duration::days(i64::from(self.every_days.max(1)));
        let mut left = points;
        let mut k = 0;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            k += 1;
            // |left| shrinks at every step (percent >= 1), so this ends.
            let next = left * keep / 100;
            let change = next - left;
            left = next;
            Some((at + every * k, change))
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Behaviour {
        on: EventPattern,
        when: Option<Expr>,
    },
    State {
        condition: Expr,
    },
    Disqualify {
        condition: Expr,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Shared with every score change the rule makes (a copy of the text each was an
    /// allocation per change in a rebuild).
    pub id: Arc<str>,
    pub description: String,
    pub kind: RuleKind,
    pub points: i64,
    pub cap: Option<Cap>,
}

/// A checked rule set. `version` is assigned by the store when the set is saved.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    pub name: String,
    pub version: i64,
    pub rules: Vec<Rule>,
    pub thresholds: crate::lifecycle::Thresholds,
    pub decay: Option<Decay>,
}

/// Why a rule set cannot be used: which rule, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: {problem}")]
pub struct RuleError {
    /// The rule's id, or its position when it has none.
    pub rule: String,
    pub problem: String,
    /// A mistake in a rule's text: the field (`on` or `condition`) and where the parser
    /// stopped, for callers that point at it.
    pub text: Option<(&'static str, ParseError)>,
}

impl RuleError {
    fn of_set(problem: &str) -> Self {
        Self {
            rule: "(set)".into(),
            problem: problem.into(),
            text: None,
        }
    }
}

/// The longest description a rule may have.
pub const MAX_DESCRIPTION: usize = 500;

impl RuleSet {
    /// `compile` for a definition about to be saved or backtested: also the limits new
    /// definitions get, which sets saved before them need not meet (a stored set that once
    /// compiled must go on compiling, or no event could be appended).
    pub fn compile_new(def: &RuleSetDef) -> Result<RuleSet, RuleError> {
        let set = Self::compile(def, 0)?;
        // As the rule language's windows and decay's period.
        if let Some(r) = def.rules.iter().find(|r| {
            r.cap
                .is_some_and(|c| c.per_days.is_some_and(|d| d > MAX_DAYS))
        }) {
            return Err(RuleError {
                rule: r.id.clone(),
                problem: format!("cap: per_days at most {MAX_DAYS}"),
                text: None,
            });
        }
        // Shown in every explanation and on the contact page: a sentence, not a document.
        if let Some(r) = def
            .rules
            .iter()
            .find(|r| r.description.trim().chars().count() > MAX_DESCRIPTION)
        {
            return Err(RuleError {
                rule: r.id.clone(),
                problem: format!("description: at most {MAX_DESCRIPTION} characters"),
                text: None,
            });
        }
        Ok(set)
    }

    /// Checks a definition: ids unique and well-formed, conditions parsed, points in range,
    /// and no condition reading the score it is computing.
    pub fn compile(def: &RuleSetDef, version: i64) -> Result<RuleSet, RuleError> {
        let name = def.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(RuleError::of_set("name: 1-100 characters"));
        }
        if def.rules.len() > 500 {
            return Err(RuleError::of_set("at most 500 rules"));
        }
        let mut rules = Vec::with_capacity(def.rules.len());
        for (i, r) in def.rules.iter().enumerate() {
            let rule = || {
                if r.id.is_empty() {
                    format!("#{}", i + 1)
                } else {
                    r.id.clone()
                }
            };
            let err = |problem: String| RuleError {
                rule: rule(),
                problem,
                text: None,
            };
            let in_text = |field: &'static str, e: ParseError| RuleError {
                rule: rule(),
                problem: format!("{field}: {e}"),
                text: Some((field, e)),
            };
            if !crate::capture::is_valid_slug(&r.id) {
                return Err(err(
                    "id: use lower-case letters, digits and dashes (1-64)".into()
                ));
            }
            if rules.iter().any(|x: &Rule| *x.id == *r.id) {
                return Err(err("id: used twice".into()));
            }
            if !(-1000..=1000).contains(&r.points) {
                return Err(err("points: between -1000 and 1000".into()));
            }
            let condition = |required: bool| -> Result<Option<Expr>, RuleError> {
                match r
                    .condition
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    None if required => Err(err("condition: required".into())),
                    None => Ok(None),
                    Some(text) => {
                        let e = rules::parse(text).map_err(|e| in_text("condition", e))?;
                        if reads_score(text) {
                            return Err(err(
                                "condition: a scoring rule cannot depend on the score".into(),
                            ));
                        }
                        Ok(Some(e))
                    }
                }
            };
            let kind = match r.kind.as_str() {
                "behaviour" | "behavior" => {
                    let on =
                        r.on.as_deref()
                            .ok_or_else(|| err("on: a behaviour rule names its events".into()))?;
                    RuleKind::Behaviour {
                        on: rules::parse_pattern(on).map_err(|e| in_text("on", e))?,
                        when: condition(false)?,
                    }
                }
                "state" => RuleKind::State {
                    condition: condition(true)?.expect("required"),
                },
                "disqualify" => RuleKind::Disqualify {
                    condition: condition(true)?.expect("required"),
                },
                other => {
                    return Err(err(format!(
                        "kind: '{other}' is not behaviour, state or disqualify"
                    )));
                }
            };
            if r.cap.is_some() && !matches!(kind, RuleKind::Behaviour { .. }) {
                return Err(err("cap: only behaviour rules count events".into()));
            }
            if r.cap.is_some_and(|c| c.times == 0 || c.per_days == Some(0)) {
                return Err(err("cap: times and per_days must be at least 1".into()));
            }
            rules.push(Rule {
                id: r.id.as_str().into(),
                description: r.description.trim().to_owned(),
                kind,
                points: r.points,
                cap: r.cap,
            });
        }
        let t = def.thresholds;
        if t.mql.zip(t.sql).is_some_and(|(m, s)| m > s) {
            return Err(RuleError::of_set("thresholds: mql must not be above sql"));
        }
        if let Some(d) = def.decay
            && !((1..=100).contains(&d.percent) && (1..=MAX_DAYS).contains(&d.every_days))
        {
            return Err(RuleError::of_set(&format!(
                "decay: percent 1-100 every 1-{MAX_DAYS} days"
            )));
        }
        Ok(RuleSet {
            name: name.to_owned(),
            version,
            rules,
            thresholds: t,
            decay: def.decay,
        })
    }
}

impl RuleSet {
    /// The event types the rules look at: the only events scoring needs to read.
    pub fn event_types(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .patterns()
            .into_iter()
            .map(|p| p.event_type.as_str())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every event pattern the rules match events with: what they fire on and what their
    /// conditions count. Scoring reads an event's properties only through these.
    pub fn patterns(&self) -> Vec<&EventPattern> {
        let mut out = Vec::new();
        for r in &self.rules {
            let (on, condition) = match &r.kind {
                RuleKind::Behaviour { on, when } => (Some(on), when.as_ref()),
                RuleKind::State { condition } | RuleKind::Disqualify { condition } => {
                    (None, Some(condition))
                }
            };
            out.extend(on);
            out.extend(condition.into_iter().flat_map(Expr::patterns));
        }
        out
    }
}

impl RuleSet {
    /// The custom attributes the rules' conditions read (`custom.NAME`).
    pub fn custom_attributes(&self) -> Vec<&str> {
        self.rules
            .iter()
            .flat_map(|r| match &r.kind {
                RuleKind::Behaviour { when, .. } => when
                    .as_ref()
                    .map(Expr::custom_attributes)
                    .unwrap_or_default(),
                RuleKind::State { condition } | RuleKind::Disqualify { condition } => {
                    condition.custom_attributes()
                }
            })
            .collect()
    }

    /// The members of a contact's details document the rules read (their fit and absence
    /// conditions): the only ones a refresh need parse for scoring.
    pub fn detail_keys(&self) -> Vec<&'static str> {
        self.rules
            .iter()
            .flat_map(|r| match &r.kind {
                RuleKind::Behaviour { when, .. } => {
                    when.as_ref().map(Expr::detail_keys).unwrap_or_default()
                }
                RuleKind::State { condition } | RuleKind::Disqualify { condition } => {
                    condition.detail_keys()
                }
            })
            .collect()
    }
}

impl Scored {
    /// A digest of the score history under rule set `version`, stable across builds and
    /// platforms (a word-wise hash over every change, each word mixed by SplitMix64's
    /// finaliser), so that a store can tell an unchanged history without reading it back.
    /// (Digests stored by a build before this hash match none, so the first refresh of each
    /// contact after an upgrade rewrites its history once.)
    pub fn digest(&self, version: i64) -> i64 {
        let mut last = 0;
        self.each_prefix_digest(version, |d| last = d);
        last
    }

    /// The digest of each prefix of the history: element `k` is what [`Scored::digest`] would
    /// be for the first `k` changes alone, so there are `changes.len() + 1`. A store holding a
    /// history whose digest is element `k` holds exactly the first `k` changes of this one and
    /// need only append the rest, which is what a new event usually does to a history.
    pub fn prefix_digests(&self, version: i64) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.changes.len() + 1);
        self.each_prefix_digest(version, |d| out.push(d));
        out
    }

    fn each_prefix_digest(&self, version: i64, mut each: impl FnMut(i64)) {
        // A word at a time: xor, then SplitMix64's finaliser, a bijection of the state, so two
        // inputs that differ in one word always digest apart, and one that spreads every bit
        // of a difference over the whole state, so that a second word cannot undo it short of
        // chance. (A plain multiply and rotate carried a difference in the top bits almost
        // unchanged, and two rule ids differing in two chosen bytes digested equal. Byte by
        // byte, as FNV-1a, the digests were a fortieth of a rebuild's instructions.)
        let mix = |h: &mut u64, word: u64| {
            let mut x = *h ^ word;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *h = x ^ (x >> 31);
        };
        let eat = |h: &mut u64, bytes: &[u8]| {
            let mut words = bytes.chunks_exact(8);
            for w in &mut words {
                let mut b = [0; 8];
                b.copy_from_slice(w);
                mix(h, u64::from_le_bytes(b));
            }
            let rest = words.remainder();
            if !rest.is_empty() {
                let mut b = [0; 8];
                b[..rest.len()].copy_from_slice(rest);
                mix(h, u64::from_le_bytes(b));
            }
            // The length ends the text, so that ("ab", "c") and ("a", "bc") differ.
            mix(h, bytes.len() as u64 ^ 0xff00_0000_0000_0000);
        };
        let number = |h: &mut u64, n: i64| mix(h, n as u64);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        number(&mut h, version);
        each(h as i64);
        for c in &self.changes {
            eat(&mut h, c.rule_id.as_bytes());
            number(&mut h, c.points);
            number(&mut h, c.at.timestamp_millis());
            number(&mut h, c.event.map_or(-1, EventSeq::get));
            eat(&mut h, c.cause.as_bytes());
            each(h as i64);
        }
    }
}

fn reads_score(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .any(|w| w == "score")
}

/// The named presets `orchard score preset NAME` makes live.
pub fn preset(name: &str) -> Option<RuleSetDef> {
    match name {
        "seed" => Some(seed()),
        _ => None,
    }
}

pub const PRESETS: [&str; 1] = ["seed"];

/// SPEC's reference rule set, exactly: +5 subscribes, +5 opens, +10 clicks, +10 visits pricing,
/// +15 replies, +25 books an appointment, +25 starts a trial, −5 cancels an appointment, −25
/// unsubscribes, −10 while a contact who has been sent email (for 30 days or more) has opened
/// none in the last 30 days.
pub fn seed() -> RuleSetDef {
    let behaviour = |id: &str, description: &str, on: &str, points: i64| RuleDef {
        id: id.into(),
        description: description.into(),
        kind: "behaviour".into(),
        on: Some(on.into()),
        condition: None,
        points,
        cap: None,
    };
    RuleSetDef {
        name: "seed".into(),
        rules: vec![
            behaviour(
                "subscribed",
                "Subscribes to the email list",
                "email_subscribed",
                5,
            ),
            behaviour("opened", "Opens an email", "email_opened", 5),
            behaviour("clicked", "Clicks a link in an email", "email_clicked", 10),
            behaviour(
                "pricing-visit",
                "Visits the pricing page",
                r#"page_viewed where url ~ "/pricing""#,
                10,
            ),
            behaviour("replied", "Replies to an email", "email_replied", 15),
            behaviour("booked", "Books an appointment", "appointment_booked", 25),
            behaviour("trial", "Starts a free trial", "trial_started", 25),
            behaviour(
                "cancelled",
                "Cancels an appointment",
                "appointment_cancelled",
                -5,
            ),
            behaviour("unsubscribed", "Unsubscribes", "email_unsubscribed", -25),
            RuleDef {
                id: "no-opens-30d".into(),
                description: "Has been sent email but opened none in the last 30 days".into(),
                kind: "state".into(),
                on: None,
                // Sent email for 30 days and opened none in them: a new subscriber's first
                // unopened email does not cost points on the day it is sent.
                condition: Some(
                    "first(email_sent) older than 30d and count(email_opened, 30d) = 0".into(),
                ),
                points: -10,
                cap: None,
            },
        ],
        thresholds: crate::lifecycle::Thresholds {
            mql: Some(40),
            sql: Some(70),
        },
        decay: None,
    }
}

/// One change of a contact's score: a rule that fired (or began or stopped holding), when, and
/// the event that caused it (`None` when the passing of time did).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreChange {
    pub rule_id: Arc<str>,
    pub points: i64,
    pub at: DateTime<Utc>,
    pub event: Option<EventSeq>,
    /// What happened, in words: "email_opened", "began to hold", "stopped holding". Borrowed
    /// where it is a fixed text or a SPEC event type's name.
    pub cause: Cow<'static, str>,
}

/// A contact scored by a rule set as of a moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scored {
    pub changes: Vec<ScoreChange>,
    pub score: i64,
    /// Ids of disqualifying rules that hold now.
    pub disqualified_by: Vec<Arc<str>>,
    /// When a time window next may change the score with no new event.
    pub due: Option<DateTime<Utc>>,
}

impl Scored {
    /// The score as it stood at `t`.
    pub fn score_at(&self, t: DateTime<Utc>) -> i64 {
        score_at(&self.changes, t)
    }
}

/// The score that a contact's changes (any order) add up to at `t`.
pub fn score_at<'a>(changes: impl IntoIterator<Item = &'a ScoreChange>, t: DateTime<Utc>) -> i64 {
    changes
        .into_iter()
        .filter(|c| c.at <= t)
        .map(|c| c.points)
        .sum()
}

struct Replay<'a> {
    set: &'a RuleSet,
    contact: &'a Contact,
    account: Option<&'a Account>,
    /// Per rule: the times a capped behaviour rule fired (the others need not be kept).
    fired: Vec<Vec<DateTime<Utc>>>,
    /// Per rule: whether a state or disqualifying rule holds.
    holding: Vec<bool>,
    /// Per rule: when a state or disqualifying rule may next flip with no event, as last
    /// decided.
    edges: Vec<Option<DateTime<Utc>>>,
    /// Whether `states` leaves alone a rule that the events of an instant cannot move
    /// (`rules::moved_by`); off only to test that it changes nothing.
    skip_unmoved: bool,
    changes: Vec<ScoreChange>,
}

impl Replay<'_> {
    /// Decides the state and disqualifying rules as of `now` over `events`, recording flips;
    /// `cause` holds the events at `now` (none when only time has passed). Returns the next
    /// moment after `now` at which one may flip with no event (`next_due`), found in the same
    /// walk over the conditions.
    fn states(
        &mut self,
        events: &[Event],
        now: DateTime<Utc>,
        cause: &[Event],
    ) -> Option<DateTime<Utc>> {
        let s = Subject {
            contact: self.contact,
            account: self.account,
            events,
            now,
        };
        let mut due: Option<DateTime<Utc>> = None;
        for (i, r) in self.set.rules.iter().enumerate() {
            let condition = match &r.kind {
                RuleKind::State { condition } | RuleKind::Disqualify { condition } => condition,
                RuleKind::Behaviour { .. } => continue,
            };
            // At an instant of events none of which can move the rule, with its next edge
            // still ahead, it holds as it did and keeps that edge: most events a state rule
            // reads leave it as it was (a second email sent, for "first(email_sent) older
            // than 30d"), and deciding it again at each was a fifth of a replay.
            let unmoved = self.skip_unmoved
                && !cause.is_empty()
                && self.edges[i].is_none_or(|edge| edge > now)
                && !rules::moved_by(condition, &s, cause);
            let (holds, next) = if unmoved {
                (self.holding[i], self.edges[i])
            } else {
                let decided = rules::decide(condition, &s);
                self.edges[i] = decided.1;
                decided
            };
            if let Some(next) = next {
                due = Some(due.map_or(next, |d| d.min(next)));
            }
            if holds == self.holding[i] {
                continue;
            }
            self.holding[i] = holds;
            let disqualifies = matches!(r.kind, RuleKind::Disqualify { .. });
            if disqualifies || r.points != 0 {
                // A disqualifying rule moves no points; its flips are kept for the explanation.
                let points = match (disqualifies, holds) {
                    (true, _) => 0,
                    (false, true) => r.points,
                    (false, false) => -r.points,
                };
                self.changes.push(ScoreChange {
                    rule_id: r.id.clone(),
                    points,
                    at: now,
                    // Only an event the condition reads can have caused the flip (the last
                    // such at this instant); otherwise it was the passing of time (and the
                    // history does not depend on events no rule reads, which a store need not
                    // load).
                    event: cause
                        .iter()
                        .rev()
                        .find(|e| {
                            condition
                                .patterns()
                                .iter()
                                .any(|p| p.event_type == e.event_type)
                        })
                        .map(|e| e.seq),
                    cause: match (disqualifies, holds) {
                        (true, true) => "disqualifies".into(),
                        (true, false) => "no longer disqualifies".into(),
                        (false, true) => "began to hold".into(),
                        (false, false) => "stopped holding".into(),
                    },
                });
            }
        }
        due
    }

    /// The next moment after `now` at which a state rule may flip with no event.
    fn next_due(&self, events: &[Event], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let s = Subject {
            contact: self.contact,
            account: self.account,
            events,
            now,
        };
        self.set
            .rules
            .iter()
            .filter_map(|r| match &r.kind {
                RuleKind::State { condition } | RuleKind::Disqualify { condition } => {
                    rules::next_change(condition, &s)
                }
                RuleKind::Behaviour { .. } => None,
            })
            .min()
    }

    /// Applies the flips that the passing of time causes up to `until` (exclusive when
    /// `inclusive` is false), over `events`. `due` carries the next such moment between calls
    /// (`None`: not known yet): it stays right while no event a state rule reads is added, as
    /// an edge depends only on those events, and deciding the rules (`states`) finds it anew,
    /// so a replay walks the conditions once per event a state rule reads and once per flip,
    /// not once per event.
    fn advance(
        &mut self,
        events: &[Event],
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        inclusive: bool,
        due: &mut Option<Option<DateTime<Utc>>>,
    ) {
        let mut t = from;
        // Each step moves past at least one event's window edge, so this ends; the bound only
        // guards against a rule set that could oscillate.
        for _ in 0..10_000 {
            let next = match *due {
                Some(d) if d.is_none_or(|d| d >= t) => d,
                _ => *due.insert(self.next_due(events, t)),
            };
            let Some(next) = next else {
                return;
            };
            if next > until || (!inclusive && next == until) {
                return;
            }
            // Only later edges are left, and deciding the rules there finds them.
            *due = Some(self.states(events, next, &[]));
            t = next;
        }
    }
}

/// The behaviour rules an event can fire, a bit per rule: by the SPEC's types, and for any
/// custom type the rules on custom types. An event used to be matched against every rule of
/// the set (a twentieth of a rebuild's instructions went to those tests). `None` for a set of
/// more than 64 rules, whose events are matched against every rule.
fn behaviour_masks(set: &RuleSet) -> Option<([u64; EventType::KNOWN], u64)> {
    if set.rules.len() > 64 {
        return None;
    }
    let mut known = [0u64; EventType::KNOWN];
    let mut custom = 0u64;
    for (k, rule) in set.rules.iter().enumerate() {
        if let RuleKind::Behaviour { on, .. } = &rule.kind {
            match on.event_type.known_index() {
                Some(ty) => known[ty] |= 1 << k,
                None => custom |= 1 << k,
            }
        }
    }
    Some((known, custom))
}

/// Scores a contact by replaying its events (any order; sorted here by time, then sequence)
/// as of `now`. Events after `now` are ignored.
pub fn score(
    set: &RuleSet,
    contact: &Contact,
    account: Option<&Account>,
    events: &[Event],
    now: DateTime<Utc>,
) -> Scored {
    replay(set, contact, account, events, now, true)
}

/// `score`, with `states` deciding every rule at every instant when `skip_unmoved` is false.
fn replay(
    set: &RuleSet,
    contact: &Contact,
    account: Option<&Account>,
    events: &[Event],
    now: DateTime<Utc>,
    skip_unmoved: bool,
) -> Scored {
    // Stores hand events over sorted, and a refresh at the present has none after `now`:
    // then they are read as given, not copied.
    let owned: Vec<Event>;
    let events: &[Event] = if events.is_sorted_by_key(|e| (e.at, e.seq))
        && events.last().is_none_or(|e| e.at <= now)
    {
        events
    } else {
        let mut copy: Vec<Event> = events.iter().filter(|e| e.at <= now).cloned().collect();
        copy.sort_by_key(|e| (e.at, e.seq));
        owned = copy;
        &owned
    };
    let n = set.rules.len();
    let mut r = Replay {
        set,
        contact,
        account,
        fired: vec![Vec::new(); n],
        holding: vec![false; n],
        edges: vec![None; n],
        skip_unmoved,
        // Most events fire a rule or flip one: sized for that, where growing by doubling
        // reallocated several times a contact.
        changes: Vec::with_capacity(events.len()),
    };
    // Attribute rules (fit) hold from the contact's first appearance.
    let start = events
        .first()
        .map_or(contact.created_at, |e| e.at.min(contact.created_at));
    // What it finds is what `advance` would ask next, over the same events at the same time.
    let mut pending = Some(r.states(&[], start, &[]));
    // The event types the state and disqualifying rules read: at an instant with none of
    // them, only the passing of time can flip those rules.
    let state_types: Vec<&EventType> = set
        .rules
        .iter()
        .flat_map(|r| match &r.kind {
            RuleKind::State { condition } | RuleKind::Disqualify { condition } => {
                condition.patterns()
            }
            RuleKind::Behaviour { .. } => Vec::new(),
        })
        .map(|p| &p.event_type)
        .collect();
    let masks = behaviour_masks(set);
    let mut t = start;
    for i in 0..events.len() {
        let e = &events[i];
        r.advance(&events[..i], t, e.at, false, &mut pending);
        let upto = &events[..=i];
        let candidates = match (&masks, e.event_type.known_index()) {
            (Some((known, _)), Some(ty)) => known[ty],
            (Some((_, custom)), None) => *custom,
            (None, _) => u64::MAX,
        };
        for (k, rule) in set.rules.iter().enumerate() {
            if k < 64 && candidates & (1 << k) == 0 {
                continue;
            }
            let RuleKind::Behaviour { on, when } = &rule.kind else {
                continue;
            };
            if !rules::matches(on, e) {
                continue;
            }
            let at_event = Subject {
                contact,
                account,
                events: upto,
                now: e.at,
            };
            if let Some(cond) = when
                && !rules::eval(cond, &at_event)
            {
                continue;
            }
            if let Some(cap) = rule.cap {
                // Bounded for new sets (`compile_new`); one stored before the bound may name
                // millions of days, which overflowed the date here.
                let since = cap
                    .per_days
                    .map(|d| e.at - Duration::days(i64::from(d.min(MAX_DAYS))));
                let counted = r.fired[k]
                    .iter()
                    .filter(|t| since.is_none_or(|s| **t > s))
                    .count();
                if counted >= cap.times as usize {
                    continue;
                }
            }
            if rule.cap.is_some() {
                r.fired[k].push(e.at);
            }
            r.changes.push(ScoreChange {
                rule_id: rule.id.clone(),
                points: rule.points,
                at: e.at,
                event: Some(e.seq),
                cause: e.event_type.name(),
            });
        }
        // State rules are decided once per instant, after every event at it: deciding them
        // between two events of one instant would log flips that the same instant undoes, and
        // an event no rule reads would change the history by adding such a stop. At an
        // instant with no event they read, they are left to the passing of time: a flip due
        // at this very instant is applied, as deciding them here would have.
        if events.get(i + 1).is_none_or(|next| next.at != e.at) {
            let first = events[..i]
                .iter()
                .rposition(|x| x.at != e.at)
                .map_or(0, |p| p + 1);
            let instant = &events[first..=i];
            if instant.iter().any(|x| state_types.contains(&&x.event_type)) {
                pending = Some(r.states(upto, e.at, instant));
            } else {
                r.advance(upto, e.at, e.at, true, &mut pending);
            }
        }
        t = e.at;
    }
    r.advance(events, t, now, true, &mut pending);
    // `advance` applied every flip up to `now` and left the next edge after it, found over
    // the events the state rules read (no later one was added): no need to walk them again.
    let mut due = match pending {
        Some(d) if d.is_none_or(|d| d > now) => d,
        _ => r.next_due(events, now),
    };
    if let Some(decay) = set.decay {
        let earned: Vec<ScoreChange> = r
            .changes
            .iter()
            .filter(|c| {
                set.rules
                    .iter()
                    .any(|x| x.id == c.rule_id && matches!(x.kind, RuleKind::Behaviour { .. }))
            })
            .cloned()
            .collect();
        for c in earned {
            for (at, change) in decay.steps(c.points, c.at) {
                if at > now {
                    due = Some(due.map_or(at, |d| d.min(at)));
                    break;
                }
                r.changes.push(ScoreChange {
                    rule_id: c.rule_id.clone(),
                    points: change,
                    at,
                    event: c.event,
                    cause: "decayed".into(),
                });
            }
        }
        // In time order, as the thresholds read them.
        r.changes.sort_by_key(|c| c.at);
    }
    let score = r.changes.iter().map(|c| c.points).sum();
    let disqualified_by = set
        .rules
        .iter()
        .zip(&r.holding)
        .filter(|(rule, h)| **h && matches!(rule.kind, RuleKind::Disqualify { .. }))
        .map(|(rule, _)| rule.id.clone())
        .collect();
    Scored {
        changes: r.changes,
        score,
        disqualified_by,
        due,
    }
}

#[cfg(test)]
mod tests;
