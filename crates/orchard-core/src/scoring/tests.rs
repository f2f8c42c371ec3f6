use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{Map, json};

use super::*;
use crate::contact::{Contact, ContactDetails};
use crate::event::EventType;
use crate::stage::LifecycleStage;
use crate::{ContactId, Email};

fn at(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + day * 86_400, 0).unwrap()
}

fn contact() -> Contact {
    Contact {
        id: ContactId::new(1),
        email: Email::parse("ann@acme.com").unwrap(),
        details: ContactDetails::default(),
        account_id: None,
        owner_id: None,
        stage: LifecycleStage::Subscriber,
        score: 0,
        source: None,
        created_at: at(0),
        updated_at: at(0),
        last_activity_at: None,
    }
}

fn ev(seq: i64, ty: &str, day: i64) -> Event {
    let mut properties = Map::new();
    if ty == "page_viewed" {
        properties.insert("url".into(), json!("/pricing"));
    }
    Event {
        seq: EventSeq::new(seq),
        client_id: format!("e{seq}"),
        event_type: EventType::parse(ty).unwrap(),
        contact_id: Some(ContactId::new(1)),
        visitor_id: None,
        at: at(day),
        properties,
    }
}

fn seed_set() -> RuleSet {
    RuleSet::compile(&seed(), 1).unwrap()
}

/// The issue's journey, a day apart: subscribe, open, click, visit /pricing, reply, book,
/// start a trial.
const SEED_JOURNEY: [&str; 7] = [
    "email_subscribed",
    "email_opened",
    "email_clicked",
    "page_viewed",
    "email_replied",
    "appointment_booked",
    "trial_started",
];

/// The seed rules `SEED_JOURNEY` fires, in order.
const SEED_FIRED: [&str; 7] = [
    "subscribed",
    "opened",
    "clicked",
    "pricing-visit",
    "replied",
    "booked",
    "trial",
];

/// Events of the given types, one a day from day 1, numbered from 1.
fn journey(types: &[&str]) -> Vec<Event> {
    types
        .iter()
        .enumerate()
        .map(|(i, t)| ev(i as i64 + 1, t, 1 + i as i64))
        .collect()
}

#[test]
fn the_seed_preset_gives_exactly_the_specs_points() {
    let mut events = journey(&SEED_JOURNEY);
    let set = seed_set();
    let s = score(&set, &contact(), None, &events, at(10));
    assert_eq!(s.score, 95);
    let fired: Vec<&str> = s.changes.iter().map(|c| &*c.rule_id).collect();
    assert_eq!(fired, SEED_FIRED);
    events.push(ev(8, "appointment_cancelled", 9));
    assert_eq!(score(&set, &contact(), None, &events, at(10)).score, 90);
    events.push(ev(9, "email_unsubscribed", 10));
    let s = score(&set, &contact(), None, &events, at(10));
    assert_eq!(s.score, 65);
    assert_eq!(s.changes.len(), 9, "exactly those rules: {:?}", s.changes);
    assert_eq!(s.score_at(at(3)), 20, "the score on a past date");
}

#[test]
fn an_open_31_days_old_costs_ten_points_with_no_new_event() {
    let set = seed_set();
    let events = vec![
        ev(1, "email_sent", 0),
        ev(2, "email_opened", 1),
        ev(3, "email_sent", 20),
    ];
    let day30 = score(&set, &contact(), None, &events, at(30));
    assert_eq!(day30.score, 5);
    // Due no later than when the open leaves the window (earlier edges may come first: the
    // index is conservative, rescoring then just finds nothing changed).
    assert!(
        day30.due.is_some_and(|d| d > at(30) && d <= at(31)),
        "{:?}",
        day30.due
    );
    let day32 = score(&set, &contact(), None, &events, at(32));
    assert_eq!(day32.score, -5);
    let absence = day32.changes.last().unwrap();
    assert_eq!(
        (
            &*absence.rule_id,
            absence.at,
            absence.event,
            &*absence.cause
        ),
        ("no-opens-30d", at(31), None, "began to hold")
    );
    // Opening again lifts it, caused by that event.
    let mut more = events.clone();
    more.push(ev(4, "email_opened", 40));
    let s = score(&set, &contact(), None, &more, at(41));
    assert_eq!(s.score, 5 + 5);
    assert_eq!(s.changes.last().unwrap().event, Some(EventSeq::new(4)));
}

/// 5 points an open, at most `times` in `per_days` days.
fn capped_opens(times: u32, per_days: u32) -> RuleSetDef {
    RuleSetDef {
        name: "capped".into(),
        rules: vec![RuleDef {
            id: "opened".into(),
            description: String::new(),
            kind: "behaviour".into(),
            on: Some("email_opened".into()),
            condition: None,
            points: 5,
            cap: Some(Cap {
                times,
                per_days: Some(per_days),
            }),
        }],
        thresholds: Default::default(),
        decay: None,
    }
}

#[test]
fn caps_limit_how_often_a_rule_counts() {
    let def = capped_opens(2, 7);
    let set = RuleSet::compile(&def, 1).unwrap();
    let events: Vec<Event> = (0..5)
        .map(|i| ev(i, "email_opened", i))
        .chain([ev(9, "email_opened", 9)])
        .collect();
    assert_eq!(
        score(&set, &contact(), None, &events, at(10)).score,
        15,
        "two in the first week, one after"
    );
}

#[test]
fn a_cap_over_ten_years_is_refused_and_one_stored_before_scores() {
    let def = capped_opens(1, 100_000_000);
    let e = RuleSet::compile_new(&def).unwrap_err();
    assert_eq!(
        (e.rule.as_str(), e.problem.as_str()),
        ("opened", "cap: per_days at most 3650")
    );
    // Saved before the bound: it compiles, and counts once in the ten years it now means
    // (its period overflowed the date and panicked every refresh).
    let stored = RuleSet::compile(&def, 1).unwrap();
    let events = [ev(1, "email_opened", 1), ev(2, "email_opened", 2)];
    assert_eq!(score(&stored, &contact(), None, &events, at(3)).score, 5);
    assert!(RuleSet::compile_new(&capped_opens(1, MAX_DAYS)).is_ok());
}

#[test]
fn fit_and_disqualifying_rules_read_attributes() {
    let def = RuleSetDef {
        name: "fit".into(),
        rules: vec![
            RuleDef {
                id: "big-company".into(),
                description: String::new(),
                kind: "state".into(),
                on: None,
                condition: Some("company_revenue >= 100000".into()),
                points: 20,
                cap: None,
            },
            RuleDef {
                id: "competitor".into(),
                description: String::new(),
                kind: "disqualify".into(),
                on: None,
                condition: Some(r#"domain = "rival.com""#.into()),
                points: 0,
                cap: None,
            },
        ],
        thresholds: Default::default(),
        decay: None,
    };
    let set = RuleSet::compile(&def, 3).unwrap();
    let mut c = contact();
    c.details.demographics.company_revenue = Some(250_000);
    let s = score(&set, &c, None, &[], at(1));
    assert_eq!((s.score, s.disqualified_by.len()), (20, 0));
    c.email = Email::parse("x@rival.com").unwrap();
    assert_eq!(
        score(&set, &c, None, &[], at(1)).disqualified_by,
        ["competitor".into()]
    );
}

#[test]
fn bad_rule_sets_name_the_rule_and_the_problem() {
    let mut def = seed();
    def.rules[3].on = Some(r#"page_viewed where url ~ "/pricing"#.into());
    let e = RuleSet::compile(&def, 1).unwrap_err();
    assert_eq!(e.rule, "pricing-visit");
    assert!(e.problem.starts_with("on: at column"), "{e}");
    let mut def = seed();
    def.rules[9].condition = Some("score > 10".into());
    assert!(
        RuleSet::compile(&def, 1)
            .unwrap_err()
            .problem
            .contains("cannot depend on the score")
    );
    let mut def = seed();
    def.rules[1].id = "subscribed".into();
    assert!(
        RuleSet::compile(&def, 1)
            .unwrap_err()
            .problem
            .contains("used twice")
    );
    let mut def = seed();
    def.rules[0].kind = "bonus".into();
    assert!(RuleSet::compile(&def, 1).is_err());
    let mut def = seed();
    def.rules[2].description = "x".repeat(1024 * 1024);
    let e = RuleSet::compile_new(&def).unwrap_err();
    assert_eq!(
        (e.rule.as_str(), e.problem.as_str()),
        (
            def.rules[2].id.as_str(),
            "description: at most 500 characters"
        )
    );
    assert!(
        RuleSet::compile(&def, 1).is_ok(),
        "a set saved before the limit still compiles"
    );
    def.rules[2].description = "é".repeat(MAX_DESCRIPTION);
    assert!(
        RuleSet::compile_new(&def).is_ok(),
        "500 letters of two bytes"
    );
}

proptest! {
    /// Scoring is a fold over the log: the score equals the sum of its changes, the score at
    /// any past date equals scoring as of that date, and event order in the input does not
    /// matter.
    #[test]
    fn scoring_is_a_function_of_the_log(
        raw in proptest::collection::vec((0usize..10, 0i64..90), 0..40),
        now in 0i64..120,
        probe in 0i64..120,
    ) {
        let types = ["email_subscribed", "email_opened", "email_clicked", "page_viewed", "email_replied",
                     "appointment_booked", "trial_started", "appointment_cancelled", "email_unsubscribed", "email_sent"];
        let events: Vec<Event> = raw.iter().enumerate().map(|(i, (t, d))| ev(i as i64, types[*t], *d)).collect();
        let set = seed_set();
        let s = score(&set, &contact(), None, &events, at(now));
        prop_assert_eq!(s.score, s.changes.iter().map(|c| c.points).sum::<i64>());
        let probe = probe.min(now);
        let then = score(&set, &contact(), None, &events, at(probe) + Duration::seconds(1) - Duration::seconds(1));
        prop_assert_eq!(s.score_at(at(probe)), then.score);
        let mut reversed = events.clone();
        reversed.reverse();
        prop_assert_eq!(&score(&set, &contact(), None, &reversed, at(now)), &s);
        // Sorted input with nothing after `now` is read in place rather than copied: same result.
        let mut sorted: Vec<Event> = events.iter().filter(|e| e.at <= at(now)).cloned().collect();
        sorted.sort_by_key(|e| (e.at, e.seq));
        prop_assert_eq!(&score(&set, &contact(), None, &sorted, at(now)), &s);
    }

    /// A store loads only the event types a rule set reads: dropping every other event changes
    /// nothing.
    #[test]
    fn scoring_reads_only_its_event_types(
        raw in proptest::collection::vec((0usize..13, 0i64..90), 0..40),
        now in 0i64..120,
    ) {
        let types = ["email_subscribed", "email_opened", "email_clicked", "page_viewed", "email_replied",
                     "appointment_booked", "trial_started", "appointment_cancelled", "email_unsubscribed",
                     "email_sent", "segment_entered", "chat_started", "email_bounced"];
        let events: Vec<Event> = raw.iter().enumerate().map(|(i, (t, d))| ev(i as i64, types[*t], *d)).collect();
        let set = seed_set();
        let read = set.event_types();
        let kept: Vec<Event> = events.iter().filter(|e| read.contains(&e.event_type.as_str())).cloned().collect();
        prop_assert_eq!(score(&set, &contact(), None, &kept, at(now)), score(&set, &contact(), None, &events, at(now)));
    }

    /// Each prefix digest is the digest of that prefix of the history alone, so a store that
    /// finds its stored digest among them holds exactly that prefix.
    #[test]
    fn prefix_digests_are_the_digests_of_the_prefixes(
        raw in proptest::collection::vec((0usize..10, 0i64..90), 0..30),
        version in 1i64..5,
    ) {
        let types = ["email_subscribed", "email_opened", "email_clicked", "page_viewed", "email_replied",
                     "appointment_booked", "trial_started", "appointment_cancelled", "email_unsubscribed", "email_sent"];
        let events: Vec<Event> = raw.iter().enumerate().map(|(i, (t, d))| ev(i as i64, types[*t], *d)).collect();
        let s = score(&seed_set(), &contact(), None, &events, at(120));
        let all = s.prefix_digests(version);
        prop_assert_eq!(all.len(), s.changes.len() + 1);
        prop_assert_eq!(*all.last().unwrap(), s.digest(version));
        for (k, d) in all.iter().enumerate() {
            let prefix = Scored { changes: s.changes[..k].to_vec(), ..s.clone() };
            prop_assert_eq!(*d, prefix.digest(version));
        }
    }
}

proptest! {
    /// A state rule's points stand, at every moment from the contact's first appearance on, as
    /// its condition decided afresh at that moment says: the replay flips it at every event
    /// that changes it and at every window edge in between, and nowhere else. Checked at each
    /// day's start and just after it (the edges of day-long windows and of `older than`), and at
    /// noon, against conditions of every time-dependent kind, among events they do not read.
    #[test]
    fn state_rules_hold_exactly_when_their_conditions_do(
        raw in proptest::collection::vec((0usize..7, 0i64..60, 0i64..3), 0..30),
        now in 0i64..90,
    ) {
        let types = ["email_sent", "email_opened", "email_clicked", "page_viewed", "chat_started",
                     "email_bounced", "purchase"];
        // Some events at noon, some at midnight, so that instants hold several events and
        // edges coincide with events.
        let events: Vec<Event> = raw.iter().enumerate().map(|(i, (t, d, h))| {
            let mut e = ev(i as i64, types[*t], *d);
            e.at += Duration::hours(12 * (h % 2));
            e
        }).collect();
        let state = |id: &str, condition: &str, points: i64| RuleDef {
            id: id.into(),
            description: String::new(),
            kind: "state".into(),
            on: None,
            condition: Some(condition.into()),
            points,
            cap: None,
        };
        let def = RuleSetDef {
            name: "states".into(),
            rules: vec![
                state("silent", "first(email_sent) older than 30d and count(email_opened, 30d) = 0", -10),
                state("clicky", "count(email_clicked, 7d) >= 2", 7),
                state("browsing", "last(page_viewed) within 3d", 3),
                state("quiet", "not count(email_opened, 14d) >= 1 and count(email_sent) > 0", -2),
                state("old-hand", "first(email_clicked) older than 20d", 11),
            ],
            thresholds: Default::default(),
            decay: None,
        };
        let set = RuleSet::compile(&def, 1).unwrap();
        let scored = score(&set, &contact(), None, &events, at(now));
        // Leaving alone the rules an instant's events cannot move changes nothing: flips, their
        // causes, the score and the due time are those of deciding every rule at every instant.
        prop_assert_eq!(&scored, &replay(&set, &contact(), None, &events, at(now), false));
        // The due time is the earliest edge after `now` of any rule, as asked afresh.
        let seen: Vec<Event> = sorted(&events).into_iter().filter(|e| e.at <= at(now)).collect();
        let afresh = set.rules.iter()
            .filter_map(|r| match &r.kind {
                RuleKind::State { condition } => rules::next_change(condition, &Subject { contact: &contact(), account: None, events: &seen, now: at(now) }),
                _ => None,
            })
            .min();
        prop_assert_eq!(scored.due, afresh);
        let start = events.iter().map(|e| e.at).min().map_or(at(0), |t| t.min(at(0)));
        for day in 0..=now {
            for probe in [at(day), at(day) + Duration::milliseconds(1), at(day) + Duration::hours(12)] {
                if probe < start || probe > at(now) {
                    continue;
                }
                let subject = Subject { contact: &contact(), account: None, events: &events, now: probe };
                for r in &set.rules {
                    let RuleKind::State { condition } = &r.kind else { unreachable!() };
                    let stood: i64 = scored.changes.iter()
                        .filter(|c| c.rule_id == r.id && c.at <= probe)
                        .map(|c| c.points)
                        .sum();
                    let holds = rules::eval(condition, &Subject { events: &sorted(&events), ..subject });
                    prop_assert_eq!(stood, if holds { r.points } else { 0 }, "{} at {}", r.id, probe);
                }
            }
        }
    }
}

fn sorted(events: &[Event]) -> Vec<Event> {
    let mut out = events.to_vec();
    out.sort_by_key(|e| (e.at, e.seq));
    out
}

#[test]
fn the_seed_reads_the_event_types_of_its_rules() {
    assert_eq!(
        seed_set().event_types(),
        [
            "appointment_booked",
            "appointment_cancelled",
            "email_clicked",
            "email_opened",
            "email_replied",
            "email_sent",
            "email_subscribed",
            "email_unsubscribed",
            "page_viewed",
            "trial_started",
        ]
    );
}

#[test]
fn the_digest_tells_histories_and_versions_apart() {
    let events = [ev(1, "email_opened", 1), ev(2, "email_clicked", 2)];
    let set = seed_set();
    let a = score(&set, &contact(), None, &events, at(10));
    let b = score(&set, &contact(), None, &events[..1], at(10));
    assert_eq!(a.digest(1), a.clone().digest(1));
    assert_ne!(a.digest(1), b.digest(1));
    assert_ne!(a.digest(1), a.digest(2));
    let mut moved = a.clone();
    moved.changes[0].at += Duration::milliseconds(1);
    assert_ne!(a.digest(1), moved.digest(1));
    // Stored digests outlive the build that wrote them: the algorithm must not drift.
    let pinned = Scored {
        changes: vec![ScoreChange {
            rule_id: "opened".into(),
            points: 5,
            at: DateTime::from_timestamp_millis(1_790_000_000_000).unwrap(),
            event: Some(EventSeq::new(7)),
            cause: "email_opened".into(),
        }],
        ..Scored::default()
    };
    assert_eq!(pinned.digest(1), -6_068_495_170_534_916_066);
    // Two words that each differ, in the bits a multiplication carries over and back: a
    // weaker mix digested these two rule ids equal under half of all versions.
    for version in 1..=1000 {
        let mut a = pinned.clone();
        a.changes[0].rule_id = "fit_de_p_sales_x".into();
        let mut b = pinned.clone();
        b.changes[0].rule_id = "fit_de_0_sades_x".into();
        assert_ne!(a.digest(version), b.digest(version), "version {version}");
    }
    // Where one text ends and the next begins is part of what is digested, for texts that
    // end inside a word and on a word's end alike.
    for (rule, cause) in [
        ("openedx", "y"),
        ("opened", "xy"),
        ("12345678", ""),
        ("1234567", "8"),
    ] {
        let mut split = pinned.clone();
        split.changes[0].rule_id = rule.into();
        split.changes[0].cause = cause.into();
        assert_ne!(split.digest(1), pinned.digest(1), "{rule}/{cause}");
        let mut other = split.clone();
        other.changes[0].rule_id = format!("{rule}{cause}").into();
        other.changes[0].cause = "".into();
        if !cause.is_empty() {
            assert_ne!(split.digest(1), other.digest(1), "{rule}/{cause}");
        }
    }
}

#[test]
fn decay_takes_its_share_of_what_is_left_each_period_down_to_zero() {
    let d = Decay {
        percent: 50,
        every_days: 30,
    };
    let steps: Vec<(DateTime<Utc>, i64)> = d.steps(10, at(0)).collect();
    // 10 → 5 → 2 → 1 → 0 (rounded toward zero).
    assert_eq!(
        steps,
        [(at(30), -5), (at(60), -3), (at(90), -1), (at(120), -1)]
    );
    assert_eq!(d.steps(-25, at(0)).map(|(_, c)| c).sum::<i64>(), 25);
}

#[test]
fn decayed_points_are_changes_of_their_own_and_set_the_next_due_time() {
    let mut def = seed();
    def.decay = Some(Decay {
        percent: 50,
        every_days: 30,
    });
    let set = RuleSet::compile(&def, 2).unwrap();
    // A click (+10) on day 1; no email sent, so the absence rule never holds.
    let events = [ev(1, "email_clicked", 1)];
    let s = score(&set, &contact(), None, &events, at(70));
    assert_eq!(s.score, 2, "10, then -5 on day 31 and -3 on day 61");
    let decayed: Vec<(i64, DateTime<Utc>, &str)> = s
        .changes
        .iter()
        .filter(|c| c.cause == "decayed")
        .map(|c| (c.points, c.at, &*c.rule_id))
        .collect();
    assert_eq!(decayed, [(-5, at(31), "clicked"), (-3, at(61), "clicked")]);
    assert!(s.changes.iter().all(|c| c.event == Some(EventSeq::new(1))));
    assert_eq!(
        s.due,
        Some(at(91)),
        "the next step is due with no new event"
    );
    assert_eq!(s.score_at(at(40)), 5);
    let bad = RuleSetDef {
        decay: Some(Decay {
            percent: 0,
            every_days: 30,
        }),
        ..seed()
    };
    assert!(
        RuleSet::compile(&bad, 1)
            .unwrap_err()
            .problem
            .contains("decay")
    );
}

proptest! {
    /// With decay, every behaviour rule's points still add up to what its events earned
    /// minus what time took, never changing sign, and reaching zero after enough periods.
    #[test]
    fn decay_never_overshoots(points in -1000i64..1000, percent in 1u8..=100, every in 1u32..400) {
        let d = Decay { percent, every_days: every };
        let mut left = points;
        for (_, change) in d.steps(points, at(0)) {
            left += change;
            prop_assert!(left == 0 || left.signum() == points.signum());
            prop_assert!(left.abs() < (left - change).abs());
        }
        prop_assert_eq!(left, 0);
    }
}

/// Events reach the behaviour rules of their own type, custom types included, in rule order,
/// whether the set is small enough for `behaviour_masks` or too large for it.
#[test]
fn behaviour_rules_fire_for_their_own_types_in_sets_of_any_size() {
    let webinar = RuleDef {
        id: "webinar".into(),
        description: String::new(),
        kind: "behaviour".into(),
        on: Some("webinar_attended".into()),
        condition: None,
        points: 7,
        cap: None,
    };
    let filler = |i: usize| RuleDef {
        id: format!("never-{i}"),
        description: String::new(),
        kind: "state".into(),
        on: None,
        condition: Some(r#"country = "ZZ""#.into()),
        points: 1,
        cap: None,
    };
    let mut small = seed();
    small.rules.push(webinar.clone());
    let mut large = seed();
    large.rules.extend((0..70).map(filler));
    large.rules.push(webinar);
    assert!(large.rules.len() > 64);
    // A webinar on the second day, between the subscription and the first open.
    let mut types = SEED_JOURNEY.to_vec();
    types.insert(1, "webinar_attended");
    let events = journey(&types);
    let mut expected = SEED_FIRED.to_vec();
    expected.insert(1, "webinar");
    for def in [small, large] {
        let set = RuleSet::compile(&def, 1).unwrap();
        let s = score(&set, &contact(), None, &events, at(20));
        assert_eq!(s.score, 102, "{} rules", def.rules.len());
        let fired: Vec<&str> = s.changes.iter().map(|c| &*c.rule_id).collect();
        assert_eq!(fired, expected, "{} rules", def.rules.len());
    }
}
