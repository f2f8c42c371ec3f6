//! Evaluating a parsed rule against one contact as of a moment: its attributes, its account's,
//! and its events up to that moment. Missing values never match, except that `!=` and
//! `is not set` hold for them (a contact with no country is "not in Germany").

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::ast::*;
use crate::account::Account;
use crate::contact::Contact;
use crate::event::Event;

/// What a rule is evaluated against. `events` are the contact's, oldest first; only those at or
/// before `now` count.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub contact: &'a Contact,
    pub account: Option<&'a Account>,
    pub events: &'a [Event],
    pub now: DateTime<Utc>,
}

/// A field's value, borrowed from the subject where it can be: conditions are evaluated for
/// every contact at every event of a replay, and copying each text cost an allocation apiece.
enum FieldValue<'a> {
    Num(Option<f64>),
    Text(Option<&'a str>),
    List(&'a [String]),
    Stage(crate::stage::LifecycleStage),
}

fn field_value<'a>(s: &Subject<'a>, f: &Field) -> FieldValue<'a> {
    let c = s.contact;
    let d = &c.details;
    let t = |v: &'a Option<String>| FieldValue::Text(v.as_deref());
    let n = |v: Option<f64>| FieldValue::Num(v);
    let text = FieldValue::Text;
    match f {
        Field::Score => n(Some(c.score as f64)),
        Field::Stage => FieldValue::Stage(c.stage),
        Field::Email => text(Some(c.email.as_str())),
        Field::Domain => text(c.email.as_str().rsplit_once('@').map(|(_, d)| d)),
        Field::FirstName => t(&d.first_name),
        Field::LastName => t(&d.last_name),
        Field::Source => t(&c.source),
        Field::JobTitle => t(&d.demographics.job_title),
        Field::Seniority => t(&d.demographics.seniority),
        Field::Company => t(&d.demographics.company),
        Field::CompanySize => n(d.demographics.company_size.map(|v| v as f64)),
        Field::Industry => t(&d.demographics.industry),
        Field::CompanyRevenue => n(d.demographics.company_revenue.map(|v| v as f64)),
        Field::Age => n(d.demographics.age.map(f64::from)),
        Field::Gender => t(&d.demographics.gender),
        Field::Nationality => t(&d.demographics.nationality),
        Field::Education => t(&d.demographics.education),
        Field::Occupation => t(&d.demographics.occupation),
        Field::Children => n(d.demographics.children.map(f64::from)),
        Field::Interests => FieldValue::List(&d.psychographics.interests),
        Field::Values => FieldValue::List(&d.psychographics.values),
        Field::Tags => FieldValue::List(&d.psychographics.tags),
        Field::Country => t(&d.geography.country),
        Field::Region => t(&d.geography.region),
        Field::City => t(&d.geography.city),
        Field::TimeZone => t(&d.geography.time_zone),
        Field::Custom(name) => match d.custom.get(name) {
            Some(Json::Number(x)) => n(x.as_f64()),
            Some(Json::String(s)) => text(Some(s)),
            Some(Json::Bool(b)) => text(Some(if *b { "true" } else { "false" })),
            _ => FieldValue::Text(None),
        },
        Field::AccountIndustry => text(s.account.and_then(|a| a.industry.as_deref())),
        Field::AccountEmployees => n(s.account.and_then(|a| a.employees).map(|v| v as f64)),
        Field::AccountCountry => text(s.account.and_then(|a| a.country.as_deref())),
        Field::AccountRegion => text(s.account.and_then(|a| a.region.as_deref())),
    }
}

fn text_eq(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn compare(v: &FieldValue<'_>, op: CmpOp, want: &Value) -> bool {
    let missing = op == CmpOp::Ne;
    match (v, want) {
        (FieldValue::Num(Some(x)), Value::Number(y)) => op.holds(*x, *y),
        (FieldValue::Text(Some(x)), Value::Number(y)) => match x.trim().parse::<f64>() {
            Ok(x) => op.holds(x, *y),
            Err(_) => missing,
        },
        (FieldValue::Text(Some(x)), Value::Text(y)) => match op {
            CmpOp::Eq => text_eq(x, y),
            CmpOp::Ne => !text_eq(x, y),
            _ => match (x.trim().parse::<f64>(), y.trim().parse::<f64>()) {
                (Ok(a), Ok(b)) => op.holds(a, b),
                _ => op.holds(x.to_lowercase(), y.to_lowercase()),
            },
        },
        (FieldValue::List(items), Value::Text(y)) => {
            let has = items.iter().any(|i| text_eq(i, y));
            if op == CmpOp::Ne { !has } else { has }
        }
        (FieldValue::Stage(st), Value::Stage(want)) => match op {
            CmpOp::Eq => st == want,
            CmpOp::Ne => st != want,
            _ => match (st.rank(), want.rank()) {
                (Some(a), Some(b)) => op.holds(a, b),
                _ => false,
            },
        },
        _ => missing,
    }
}

/// Whether `hay` contains `needle` once both are lowercased, without lowercasing copies when
/// both are ASCII (URLs, titles and tags nearly always are): a pattern such as
/// `page_viewed where url ~ "/pricing"` is tested against every page view of every replay.
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    contains_ci_from(hay, needle, rarest(needle.as_bytes()))
}

/// `contains_ci` searching from the needle's byte at `anchor` (`rarest`, found once where the
/// needle is parsed).
pub(crate) fn contains_ci_from(hay: &str, needle: &str, anchor: usize) -> bool {
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        let Some(&b) = n.get(anchor) else {
            return n.is_empty();
        };
        if h.len() < n.len() {
            return false;
        }
        // Only where the needle's rarest byte agrees, in either case, is the rest compared, and
        // those places are found by `memchr` (callgrind, a rebuild of 20 000 contacts with
        // `url ~ "/pricing"` rules: 84 M instructions here at first, 66 M when the first byte
        // was tested here one place at a time, which a later build counted at 97 M; 84 M with
        // `memchr2` on the first byte. That byte was the `/` that every path of a URL has, so
        // most places found were compared for nothing: a rebuild of 5 000 demo contacts spent
        // 20.7 M here anchored on it, 13.5 M anchored on the `p`).
        // A match starting at `i` has the anchor at `i + anchor`: the anchors searched for are
        // those from `anchor` to `anchor` past the last start.
        let anchors = &h[anchor..=h.len() - n.len() + anchor];
        memchr::memchr2_iter(b.to_ascii_lowercase(), b.to_ascii_uppercase(), anchors)
            .any(|i| h[i..i + n.len()].eq_ignore_ascii_case(n))
    } else {
        hay.to_lowercase().contains(&needle.to_lowercase())
    }
}

/// How common a byte is in URLs and text, by a rough rank: URL punctuation and spaces most,
/// then letters by their frequency in English (either case), digits, anything else least.
const COMMONNESS: [u8; 256] = {
    const LETTERS: &[u8; 26] = b"etaoinshrdlcumwfgypbvkjxqz";
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 26 {
        t[LETTERS[i] as usize] = 90 - i as u8;
        t[LETTERS[i].to_ascii_uppercase() as usize] = 90 - i as u8;
        i += 1;
    }
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = 50;
        d += 1;
    }
    let punctuation = b"/.-_:=&?% ";
    let mut p = 0;
    while p < punctuation.len() {
        t[punctuation[p] as usize] = 100;
        p += 1;
    }
    t
};

/// The place in `needle` of its least common byte (`COMMONNESS`; the first of equals), where
/// `contains_ci_from` anchors its search.
pub(crate) const fn rarest(needle: &[u8]) -> usize {
    let mut best = 0;
    let mut i = 1;
    while i < needle.len() {
        if COMMONNESS[needle[i] as usize] < COMMONNESS[needle[best] as usize] {
            best = i;
        }
        i += 1;
    }
    best
}

fn prop_matches(props: &serde_json::Map<String, Json>, f: &PropFilter) -> bool {
    let Some(v) = props.get(&f.property) else {
        return matches!(f.test, PropTest::Cmp(CmpOp::Ne, _));
    };
    match &f.test {
        PropTest::Contains(needle) => match v {
            Json::String(s) => contains_ci_from(s, needle.text(), needle.anchor()),
            _ => false,
        },
        PropTest::Cmp(op, want) => {
            let fv = match v {
                Json::Number(n) => FieldValue::Num(n.as_f64()),
                Json::String(s) => FieldValue::Text(Some(s)),
                Json::Bool(b) => FieldValue::Text(Some(if *b { "true" } else { "false" })),
                _ => FieldValue::Text(None),
            };
            compare(&fv, *op, want)
        }
    }
}

/// Whether an event is one the pattern counts. Inlined into the walks over a contact's events
/// (counts, `last`, window edges), where the type test alone decides for most events.
#[inline]
pub fn matches(pattern: &EventPattern, e: &Event) -> bool {
    e.event_type == pattern.event_type && filters_match(pattern, e)
}

fn filters_match(pattern: &EventPattern, e: &Event) -> bool {
    pattern
        .filters
        .iter()
        .all(|f| prop_matches(&e.properties, f))
}

fn seen<'a>(s: &'a Subject<'_>) -> &'a [Event] {
    let end = s.events.partition_point(|e| e.at <= s.now);
    &s.events[..end]
}

/// How many events the pattern counts in the window, counting no further than `cap`.
fn count(
    s: &Subject<'_>,
    pattern: &EventPattern,
    window: Option<chrono::Duration>,
    cap: usize,
) -> i64 {
    count_since(seen(s), pattern, window.map(|w| s.now - w), cap)
}

/// How many of `seen` (oldest first) after `since` the pattern counts, counting no further than
/// `cap`.
fn count_since(
    seen: &[Event],
    pattern: &EventPattern,
    since: Option<DateTime<Utc>>,
    cap: usize,
) -> i64 {
    // A plain loop: as an iterator chain it was compiled out of line or in, by whatever else
    // changed nearby, and counted for a seventh of a rebuild's rule evaluation when out.
    let mut n = 0;
    for e in seen.iter().rev() {
        if since.is_some_and(|t| e.at <= t) {
            break;
        }
        if matches(pattern, e) {
            n += 1;
            if n >= cap {
                break;
            }
        }
    }
    n as i64
}

/// Any count past `n` compares with `n` as `n + 1` does, whatever the operator, so a walk stops
/// there: `count(email_opened) >= 1` looks no further than one open.
fn count_cap(n: i64) -> usize {
    usize::try_from(n.saturating_add(1)).unwrap_or(0).max(1)
}

/// A `last` or `first` test of the time `t` it found.
fn time_test(t: Option<DateTime<Utc>>, test: &LastTest, now: DateTime<Utc>, last: bool) -> bool {
    match (t, test) {
        // Nothing ever happened: as long ago as can be for `last`, never for `first`.
        (None, LastTest::OlderThan(_)) => last,
        (None, LastTest::Within(_)) => false,
        (Some(t), LastTest::OlderThan(d)) => t < now - *d,
        (Some(t), LastTest::Within(d)) => t >= now - *d,
    }
}

fn last(s: &Subject<'_>, pattern: &EventPattern) -> Option<DateTime<Utc>> {
    seen(s)
        .iter()
        .rev()
        .find(|e| matches(pattern, e))
        .map(|e| e.at)
}

/// Walked from the start, without halving for the end of what is seen first: the first match
/// is usually among the first events (a replay asks at every event a state rule reads).
fn first(s: &Subject<'_>, pattern: &EventPattern) -> Option<DateTime<Utc>> {
    s.events
        .iter()
        .take_while(|e| e.at <= s.now)
        .find(|e| matches(pattern, e))
        .map(|e| e.at)
}

/// Great-circle distance in kilometres (haversine on a sphere of radius 6371 km).
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

fn condition(s: &Subject<'_>, c: &Condition) -> bool {
    match c {
        Condition::Cmp { field, op, value } => compare(&field_value(s, field), *op, value),
        Condition::In { field, values } => {
            let v = field_value(s, field);
            values.iter().any(|want| compare(&v, CmpOp::Eq, want))
        }
        Condition::Contains { field, needle } => match field_value(s, field) {
            FieldValue::Text(Some(t)) => contains_ci(t, needle),
            FieldValue::List(items) => items.iter().any(|i| contains_ci(i, needle)),
            _ => false,
        },
        Condition::IsSet { field, set } => {
            let present = match field_value(s, field) {
                FieldValue::Num(v) => v.is_some(),
                FieldValue::Text(v) => v.is_some_and(|t| !t.trim().is_empty()),
                FieldValue::List(v) => !v.is_empty(),
                FieldValue::Stage(_) => true,
            };
            present == *set
        }
        Condition::Count {
            pattern,
            window,
            op,
            n,
        } => op.holds(count(s, pattern, *window, count_cap(*n)), *n),
        Condition::Last { pattern, test } => time_test(last(s, pattern), test, s.now, true),
        Condition::First { pattern, test } => time_test(first(s, pattern), test, s.now, false),
        Condition::Distance { lat, lon, op, km } => {
            let g = &s.contact.details.geography;
            match (g.latitude, g.longitude) {
                (Some(a), Some(b)) => op.holds(distance_km(a, b, *lat, *lon), *km),
                _ => false,
            }
        }
    }
}

/// Whether the expression holds for the subject.
pub fn eval(expr: &Expr, s: &Subject<'_>) -> bool {
    match expr {
        Expr::And(xs) => xs.iter().all(|x| eval(x, s)),
        Expr::Or(xs) => xs.iter().any(|x| eval(x, s)),
        Expr::Not(x) => !eval(x, s),
        Expr::Cond(c) => condition(s, c),
    }
}

/// The earliest moment after `s.now` at which the expression's value may change with no new
/// event: an event leaving a window, or a `last` test crossing its age. `None` when only a new
/// event or attribute change can change it. This feeds the due-time index, so that "no open in
/// 30 days" applies on day 31 without a periodic scan of every contact.
pub fn next_change(expr: &Expr, s: &Subject<'_>) -> Option<DateTime<Utc>> {
    decide(expr, s).1
}

/// Whether events at `s.now` (`instant`, among `s.events`) can change the expression's value:
/// some of them counted (`count`), the latest of a pattern (`last`), or the first one there
/// has been (`first`; a later one leaves it as it was). Attributes are not events, so nothing
/// else can. When this is false, the value at `s.now` is the value just before, and the next
/// change (`next_change`) is the one due then.
pub fn moved_by(expr: &Expr, s: &Subject<'_>, instant: &[Event]) -> bool {
    let mut moved = false;
    expr.walk(&mut |c| {
        moved = moved
            || match c {
                Condition::Count { pattern, .. } | Condition::Last { pattern, .. } => {
                    instant.iter().any(|e| matches(pattern, e))
                }
                Condition::First { pattern, .. } => {
                    instant.iter().any(|e| matches(pattern, e))
                        && first(s, pattern).is_none_or(|t| t == s.now)
                }
                _ => false,
            };
    });
    moved
}

/// `(eval(expr, s), next_change(expr, s))` in one walk over the conditions, each condition's
/// events walked once for both: a replay decides every state rule and then asks when it may
/// next flip at every event such a rule reads, and a refresh decides every segment and asks
/// the same, and the two walks found the same window starts and the same `first` and `last`
/// events twice. Unlike `eval` it decides every condition (`next_change` must see them all).
pub fn decide(expr: &Expr, s: &Subject<'_>) -> (bool, Option<DateTime<Utc>>) {
    let earliest = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match expr {
        Expr::And(xs) | Expr::Or(xs) => {
            let and = matches!(expr, Expr::And(_));
            let mut holds = and;
            let mut due = None;
            for x in xs {
                let (h, d) = decide(x, s);
                holds = if and { holds && h } else { holds || h };
                due = earliest(due, d);
            }
            (holds, due)
        }
        Expr::Not(x) => {
            let (h, d) = decide(x, s);
            (!h, d)
        }
        Expr::Cond(c) => {
            let (holds, edge) = condition_and_edge(s, c);
            (holds, edge.filter(|t| *t > s.now))
        }
    }
}

/// A condition's value and, for those that time alone can change, when it may next change
/// (possibly not after `s.now`; `decide` drops those).
fn condition_and_edge(s: &Subject<'_>, c: &Condition) -> (bool, Option<DateTime<Utc>>) {
    match c {
        Condition::Count {
            pattern,
            window: Some(w),
            op,
            n,
        } => {
            let since = s.now - *w;
            let seen = seen(s);
            let holds = op.holds(count_since(seen, pattern, Some(since), count_cap(*n)), *n);
            // Events are oldest first: the window's start found by halving, then the first
            // match after it is the oldest in the window, the first to leave it (walking back
            // over the whole window to find it cost a replay, which asks at every event, a
            // walk per event).
            let start = seen.partition_point(|e| e.at <= since);
            let edge = seen[start..]
                .iter()
                .find(|e| matches(pattern, e))
                .map(|oldest| oldest.at + *w);
            (holds, edge)
        }
        Condition::Last { pattern, test } | Condition::First { pattern, test } => {
            let is_last = matches!(c, Condition::Last { .. });
            let t = if is_last {
                last(s, pattern)
            } else {
                first(s, pattern)
            };
            let d = match test {
                LastTest::OlderThan(d) | LastTest::Within(d) => *d,
            };
            // Strictly older than `d` from the next millisecond on (the two spans added first:
            // a date's arithmetic costs many times a span's).
            let edge = t.map(|t| t + (d + chrono::Duration::milliseconds(1)));
            (time_test(t, test, s.now, is_last), edge)
        }
        other => (condition(s, other), None),
    }
}
