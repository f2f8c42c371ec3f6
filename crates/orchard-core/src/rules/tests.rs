use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{Map, json};

use super::*;
use crate::contact::{Contact, ContactDetails};
use crate::event::{Event, EventType};
use crate::stage::LifecycleStage;
use crate::{ContactId, Email, EventSeq};

fn at(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + day * 86_400, 0).unwrap()
}

fn contact() -> Contact {
    let mut details = ContactDetails::default();
    details.geography.country = Some("DE".into());
    details.geography.latitude = Some(52.52);
    details.geography.longitude = Some(13.40);
    details.demographics.industry = Some("Logistics".into());
    details.demographics.company_size = Some(120);
    details.psychographics.tags = vec!["VIP".into()];
    details.custom.insert("plan".into(), json!("pro"));
    Contact {
        id: ContactId::new(1),
        email: Email::parse("ann@acme.com").unwrap(),
        details,
        account_id: None,
        owner_id: None,
        stage: LifecycleStage::Mql,
        score: 45,
        source: Some("google".into()),
        created_at: at(0),
        updated_at: at(0),
        last_activity_at: None,
    }
}

fn event(seq: i64, ty: &str, day: i64, props: serde_json::Value) -> Event {
    let properties: Map<String, serde_json::Value> = props.as_object().cloned().unwrap_or_default();
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

fn holds(rule: &str, events: &[Event], day: i64) -> bool {
    let c = contact();
    let expr = parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    eval(
        &expr,
        &Subject {
            contact: &c,
            account: None,
            events,
            now: at(day),
        },
    )
}

#[test]
fn an_instant_moves_what_counts_or_dates_its_events_and_nothing_else() {
    let events = [
        event(1, "email_sent", 1, json!({})),
        event(2, "page_viewed", 5, json!({"url": "/blog"})),
        event(3, "email_sent", 5, json!({})),
    ];
    let c = contact();
    let moved = |rule: &str, upto: usize, day: i64| {
        let subject = Subject {
            contact: &c,
            account: None,
            events: &events[..upto],
            now: at(day),
        };
        let instant: Vec<Event> = events[..upto]
            .iter()
            .filter(|e| e.at == at(day))
            .cloned()
            .collect();
        moved_by(&parse(rule).unwrap(), &subject, &instant)
    };
    // The second email sent leaves the first where it was; it is counted, and it is the last.
    assert!(!moved("first(email_sent) older than 30d", 3, 5));
    assert!(moved("first(email_sent) older than 30d", 1, 1));
    assert!(moved("count(email_sent, 7d) >= 2", 3, 5));
    assert!(moved("last(email_sent) within 3d", 3, 5));
    // A page view moves only what reads page views, and only when its filter takes it.
    assert!(!moved(
        r#"count(page_viewed where url ~ "/pricing") >= 1"#,
        3,
        5
    ));
    assert!(moved(
        r#"count(page_viewed where url ~ "/blog") >= 1"#,
        3,
        5
    ));
    // Attributes are not events; any moved part moves the whole.
    assert!(!moved(
        r#"country = "DE" and not first(email_sent) within 9d"#,
        3,
        5
    ));
    assert!(moved(
        r#"country = "DE" or not count(email_sent) = 2"#,
        3,
        5
    ));
}

#[test]
fn the_issues_examples_parse_and_decide() {
    let events = vec![
        event(1, "page_viewed", 1, json!({"url": "/pricing"})),
        event(2, "email_opened", 2, json!({})),
        event(3, "page_viewed", 10, json!({"url": "/Pricing?plan=pro"})),
        event(4, "page_viewed", 11, json!({"url": "/blog"})),
    ];
    assert!(holds(
        r#"count(page_viewed where url ~ "/pricing", 14d) >= 2"#,
        &events,
        12
    ));
    assert!(
        !holds(
            r#"count(page_viewed where url ~ "/pricing", 14d) >= 2"#,
            &events,
            16
        ),
        "the first view left the window"
    );
    assert!(holds("count(page_viewed) = 3", &events, 16));
    assert!(holds("last(email_opened) older than 30d", &events, 33));
    assert!(!holds("last(email_opened) older than 30d", &events, 31));
    assert!(holds("last(email_opened) within 30d", &events, 31));
    assert!(
        holds("last(email_clicked) older than 30d", &events, 1),
        "never is older than any age"
    );
    assert!(holds("first(page_viewed) older than 30d", &events, 32));
    assert!(!holds("first(page_viewed) older than 30d", &events, 30));
    assert!(
        !holds("first(email_clicked) older than 1d", &events, 30),
        "first needs an event"
    );
    assert!(holds("score >= 40", &events, 0));
    assert!(holds("stage in [MQL, SQL]", &events, 0));
    assert!(holds("stage >= IQL and stage < opportunity", &events, 0));
    assert!(holds(r#"country in ["DE","AT"]"#, &events, 0));
    assert!(
        holds("distance_km(52.37, 9.73) < 300", &events, 0),
        "Berlin to Hanover is about 250 km"
    );
    assert!(
        !holds("distance_km(48.14, 11.58) < 300", &events, 0),
        "Berlin to Munich is about 500 km"
    );
    assert!(holds(
        r#"industry = "logistics" and not tags = "competitor" and tags = "vip""#,
        &events,
        0
    ));
    assert!(holds(
        r#"company_size > 100 and custom.plan = "pro" and region is not set"#,
        &events,
        0
    ));
    assert!(holds(
        r#"(country = "FR" or country = "DE") and domain = "acme.com""#,
        &events,
        0
    ));
    assert!(
        holds(r#"country != "FR" and region != "Bavaria""#, &events, 0),
        "a missing value is not equal"
    );
}

#[test]
fn every_field_reads_only_the_detail_members_it_names() {
    // A contact with every detail set, and a second with only the members a condition says
    // it reads: each condition decides both alike (a refresh parses no other member).
    let mut full = contact();
    let d = &mut full.details;
    d.first_name = Some("Ann".into());
    d.last_name = Some("Lee".into());
    d.phone = Some("+49 1".into());
    let m = &mut d.demographics;
    m.age = Some(40);
    m.gender = Some("female".into());
    m.nationality = Some("DE".into());
    m.education = Some("Master".into());
    m.occupation = Some("Sales".into());
    m.children = Some(2);
    m.job_title = Some("Head of Sales".into());
    m.seniority = Some("head".into());
    m.company = Some("Acme".into());
    m.company_revenue = Some(1_000_000);
    d.psychographics.interests = vec!["ai".into()];
    d.psychographics.values = vec!["speed".into()];
    d.geography.region = Some("DACH".into());
    d.geography.city = Some("Berlin".into());
    d.geography.time_zone = Some("Europe/Berlin".into());
    let account = crate::account::Account {
        id: crate::AccountId::new(1),
        external_id: "acme".into(),
        name: "Acme".into(),
        domain: Some("acme.com".into()),
        industry: Some("Logistics".into()),
        employees: Some(120),
        region: Some("DACH".into()),
        country: Some("DE".into()),
        owner_id: None,
        service_hours: 0.0,
        cost_to_serve: None,
        created_at: at(0),
    };
    let document = serde_json::to_value(&full.details).unwrap();
    let mut rules: Vec<String> = FIELDS
        .iter()
        .map(|(name, _)| format!("{name} is set"))
        .collect();
    rules.extend([
        "custom.plan is set".into(),
        "distance_km(52.5, 13.4) < 50".into(),
    ]);
    for rule in rules {
        let expr = parse(&rule).unwrap();
        let keys = expr.detail_keys();
        let mut only = document.clone();
        only.as_object_mut()
            .unwrap()
            .retain(|k, _| keys.contains(&k.as_str()));
        let mut projected = full.clone();
        projected.details = serde_json::from_value(only).unwrap();
        let decide = |c: &Contact| {
            eval(
                &expr,
                &Subject {
                    contact: c,
                    account: Some(&account),
                    events: &[],
                    now: at(1),
                },
            )
        };
        assert!(decide(&full), "{rule}");
        assert_eq!(decide(&projected), decide(&full), "{rule} reads {keys:?}");
        // And the keys are needed: without them the condition no longer holds.
        if !keys.is_empty() {
            let mut none = full.clone();
            none.details = ContactDetails::default();
            assert!(!decide(&none), "{rule}");
        }
    }
}

#[test]
fn errors_point_at_the_column_and_say_what_was_expected() {
    let e = parse("score >= ").unwrap_err();
    assert_eq!((e.column, e.expected.as_str()), (10, "a number"));
    let e = parse(r#"count(page_viewed, 14x) > 1"#).unwrap_err();
    assert_eq!(e.column, 22);
    assert!(e.expected.contains("unit"), "{e}");
    let e = parse("countryy = \"DE\"").unwrap_err();
    assert_eq!(e.column, 1);
    assert!(
        e.expected.contains("a field") && e.found == "'countryy'",
        "{e}"
    );
    let e = parse("stage in [MQL, lead]").unwrap_err();
    assert_eq!(e.column, 16);
    let e = parse("score >= 40 and").unwrap_err();
    assert_eq!((e.column, e.found.as_str()), (16, "the end of the rule"));
    let e = parse("(score >= 40").unwrap_err();
    assert_eq!(e.expected, "')'");
    let e = parse(r#"country > "DE""#).unwrap_err();
    assert!(e.expected.contains("'='"), "{e}");
    let e = parse(r#"last(email_opened) sometime"#).unwrap_err();
    assert!(e.expected.contains("older than"), "{e}");
    assert!(parse("").is_err() && parse("   ").is_err());
    assert!(parse(&"not ".repeat(200)).is_err(), "nesting is bounded");
    assert!(parse(&"(".repeat(200)).is_err());
    let e = parse("email = \"a\" ä").unwrap_err();
    assert_eq!(e.column, 13, "columns count characters, not bytes");
}

#[test]
fn next_change_is_when_an_event_leaves_its_window() {
    let c = contact();
    let events = vec![
        event(1, "email_opened", 5, json!({})),
        event(2, "email_opened", 9, json!({})),
    ];
    let s = Subject {
        contact: &c,
        account: None,
        events: &events,
        now: at(10),
    };
    let e = parse("count(email_opened, 14d) >= 2").unwrap();
    assert_eq!(next_change(&e, &s), Some(at(19)));
    let e = parse("last(email_opened) older than 30d").unwrap();
    assert_eq!(
        next_change(&e, &s),
        Some(at(39) + Duration::milliseconds(1))
    );
    assert_eq!(next_change(&parse("score > 1").unwrap(), &s), None);
    assert_eq!(
        next_change(&parse("count(email_opened) >= 2").unwrap(), &s),
        None,
        "a count over the whole history never changes by itself"
    );
}

#[test]
fn a_search_anchors_on_the_needles_least_common_byte() {
    // Not the `/` every URL path has, nor a common letter: the `p`.
    assert_eq!(super::eval::rarest(b"/pricing"), 1);
    assert_eq!(super::eval::rarest(b"/-."), 0);
    assert_eq!(super::eval::rarest(b""), 0);
    let parsed = parse(r#"count(page_viewed where url ~ "/Pricing") >= 1"#).unwrap();
    let [pattern] = parsed.patterns()[..] else {
        panic!("one pattern")
    };
    assert_eq!(
        pattern.filters[0].test,
        PropTest::Contains(Needle::new("/Pricing".into()))
    );
}

proptest! {
    /// `~` finds a text inside another whatever the case, as comparing lowercased copies does.
    #[test]
    fn contains_ignores_case_as_lowercased_copies_do(
        ascii in proptest::bool::ANY,
        hay in "[a-cA-CxyzXYZ/-]{0,24}",
        needle in "[a-cA-CxyzXYZ/-]{0,4}",
        at in 0usize..25,
    ) {
        // ASCII texts take a path of their own; an `ü` sends both to the general one.
        let mut hay = hay;
        if !ascii {
            hay.insert(at.min(hay.len()), 'ü');
        }
        prop_assert_eq!(
            super::eval::contains_ci(&hay, &needle),
            hay.to_lowercase().contains(&needle.to_lowercase())
        );
    }

    #[test]
    fn the_parser_never_panics(text in "\\PC{0,80}") {
        let _ = parse(&text);
    }

    #[test]
    fn near_misses_of_real_rules_never_panic(
        cut in 0usize..80,
        junk in "[ ()\\[\\],~<>=!\"a-z0-9.-]{0,6}",
    ) {
        let rule = r#"count(page_viewed where url ~ "/pricing", 14d) >= 2 and not (stage in [MQL, SQL] or last(email_opened) older than 30d)"#;
        let cut = cut.min(rule.len());
        let mut text = rule[..cut].to_owned();
        text.push_str(&junk);
        text.push_str(&rule[cut..]);
        if let Ok(e) = parse(&text) {
            let c = contact();
            let _ = eval(&e, &Subject { contact: &c, account: None, events: &[], now: at(0) });
        }
    }

    /// A count condition decides as comparing the full count would, for every operator and
    /// bound, though it stops counting past the bound.
    #[test]
    fn a_count_decides_as_the_full_count_would(
        days in proptest::collection::vec((0i64..40, proptest::bool::ANY), 0..25),
        n in 0i64..6,
        op in 0usize..6,
        window in proptest::option::of(1i64..30),
        now in 0i64..45,
    ) {
        let ops = ["=", "!=", "<", "<=", ">", ">="];
        let mut events: Vec<Event> = days
            .iter()
            .enumerate()
            .map(|(i, (d, opened))| {
                event(i as i64, if *opened { "email_opened" } else { "email_sent" }, *d, json!({}))
            })
            .collect();
        events.sort_by_key(|e| (e.at, e.seq));
        let rule = match window {
            Some(w) => format!("count(email_opened, {w}d) {} {n}", ops[op]),
            None => format!("count(email_opened) {} {n}", ops[op]),
        };
        let since = window.map(|w| at(now) - Duration::days(w));
        let full = events
            .iter()
            .filter(|e| e.at <= at(now) && since.is_none_or(|t| e.at > t))
            .filter(|e| e.event_type.as_str() == "email_opened")
            .count() as i64;
        let expected = match ops[op] {
            "=" => full == n,
            "!=" => full != n,
            "<" => full < n,
            "<=" => full <= n,
            ">" => full > n,
            _ => full >= n,
        };
        prop_assert_eq!(holds(&rule, &events, now), expected, "{} with {} counted", rule, full);
    }

    #[test]
    fn a_window_count_never_exceeds_the_total(days in proptest::collection::vec(0i64..60, 0..30), now in 0i64..70, w in 1i64..40) {
        let mut events: Vec<Event> = days.iter().enumerate().map(|(i, d)| event(i as i64, "email_opened", *d, json!({}))).collect();
        events.sort_by_key(|e| e.at);
        let c = contact();
        let s = Subject { contact: &c, account: None, events: &events, now: at(now) };
        let windowed = (0..=30).rev().find(|n| eval(&parse(&format!("count(email_opened, {w}d) >= {n}")).unwrap(), &s)).unwrap_or(0);
        let total = (0..=30).rev().find(|n| eval(&parse(&format!("count(email_opened) >= {n}")).unwrap(), &s)).unwrap_or(0);
        prop_assert!(windowed <= total);
        prop_assert_eq!(total as usize, events.iter().filter(|e| e.at <= at(now)).count());
    }

    #[test]
    fn a_window_count_changes_when_its_oldest_event_leaves(
        events in proptest::collection::vec((0i64..60, any::<bool>()), 0..30),
        now in 0i64..70,
        w in 1i64..40,
    ) {
        let mut events: Vec<Event> = events
            .iter()
            .enumerate()
            .map(|(i, (d, open))| event(i as i64, if *open { "email_opened" } else { "page_viewed" }, *d, json!({})))
            .collect();
        events.sort_by_key(|e| (e.at, e.seq));
        let c = contact();
        let s = Subject { contact: &c, account: None, events: &events, now: at(now) };
        let rule = parse(&format!("count(email_opened, {w}d) >= 1")).unwrap();
        // By definition: the oldest counted open still in the window leaves it `w` days on.
        let since = at(now) - Duration::days(w);
        let expected = events
            .iter()
            .filter(|e| e.at <= at(now) && e.at > since && e.event_type.as_str() == "email_opened")
            .map(|e| e.at + Duration::days(w))
            .min()
            .filter(|t| *t > at(now));
        prop_assert_eq!(next_change(&rule, &s), expected);
    }

    /// `decide` gives `eval`'s value, and nothing changes before the moment it names: with no
    /// new event the expression holds as it does now at every hour until then.
    #[test]
    fn decided_values_hold_until_the_moment_named(
        events in proptest::collection::vec((0i64..60, 0usize..3), 0..25),
        conditions in proptest::collection::vec((0usize..8, 1i64..40, 0i64..4), 1..4),
        joins in proptest::collection::vec((any::<bool>(), any::<bool>()), 3),
        now in 0i64..70,
        hour in 0i64..24,
    ) {
        let types = ["email_opened", "page_viewed", "email_sent"];
        let mut events: Vec<Event> = events
            .iter()
            .enumerate()
            .map(|(i, (d, t))| event(i as i64, types[*t], *d, json!({})))
            .collect();
        events.sort_by_key(|e| (e.at, e.seq));
        let text: Vec<String> = conditions
            .iter()
            .map(|(k, w, n)| match k {
                0 => format!("count(email_opened, {w}d) >= {n}"),
                1 => format!("count(email_opened) >= {n}"),
                2 => format!("count(page_viewed, {w}d) = {n}"),
                3 => format!("last(email_opened) older than {w}d"),
                4 => format!("last(page_viewed) within {w}d"),
                5 => format!("first(email_sent) older than {w}d"),
                6 => format!("first(email_sent) within {w}d"),
                _ => "country = \"DE\"".to_owned(),
            })
            .collect();
        let mut rule = text[0].clone();
        for (i, more) in text.iter().enumerate().skip(1) {
            let (or, not) = joins[i - 1];
            let more = if not { format!("not ({more})") } else { more.clone() };
            rule = format!("({rule}) {} {more}", if or { "or" } else { "and" });
        }
        let expr = parse(&rule).unwrap();
        let c = contact();
        let start = at(now) + Duration::hours(hour);
        // No new event: only those up to the start.
        events.retain(|e| e.at <= start);
        let subject = |t| Subject { contact: &c, account: None, events: &events, now: t };
        let (holds, due) = decide(&expr, &subject(start));
        prop_assert_eq!(holds, eval(&expr, &subject(start)), "{}", rule);
        prop_assert!(due.is_none_or(|d| d > start));
        let end = due.unwrap_or(start + Duration::days(100));
        let mut t = start + Duration::hours(1);
        while t < end {
            prop_assert_eq!(eval(&expr, &subject(t)), holds, "{} changed at {} before {:?}", rule, t, due);
            t += Duration::hours(1);
        }
    }

    #[test]
    fn contains_ignores_case_as_lowercasing_does(hay in "\\PC{0,12}", needle in "\\PC{0,4}", ascii_hay in "[a-zA-Z/ -]{0,12}", ascii_needle in "[a-zA-Z/]{0,3}") {
        for (h, n) in [(&hay, &needle), (&ascii_hay, &ascii_needle), (&hay, &ascii_needle)] {
            let mut c = contact();
            c.details.demographics.job_title = Some(h.clone());
            let s = Subject { contact: &c, account: None, events: &[], now: at(0) };
            let rule = parse(&format!("job_title ~ {}", serde_json::to_string(n).unwrap()));
            let Ok(rule) = rule else { continue };
            prop_assert_eq!(eval(&rule, &s), h.to_lowercase().contains(&n.to_lowercase()), "{:?} ~ {:?}", h, n);
        }
    }
}
