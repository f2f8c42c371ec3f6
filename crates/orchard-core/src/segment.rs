//! Segments (SPEC A2): saved, named filters in the rule language whose membership stays current
//! as events arrive, attributes change and time passes. Membership is decided here, purely; the
//! store keeps it, and the changes become `segment_entered` / `segment_left` events.

use chrono::{DateTime, Utc};

use crate::SegmentId;
use crate::rules::{self, Expr, ParseError, Subject};

/// The event types a membership change is logged as.
pub const ENTERED: &str = "segment_entered";
pub const LEFT: &str = "segment_left";

/// A segment as stored and listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: SegmentId,
    pub name: String,
    /// The filter as written; `filter` is its parse.
    pub text: String,
    pub filter: Expr,
    pub created_at: DateTime<Utc>,
}

/// Why a segment definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("name: 1-100 printable characters")]
    Name,
    #[error("filter: {0}")]
    Filter(#[from] ParseError),
}

/// Checks a new segment's name and filter.
pub fn define(
    name: &str,
    filter: &str,
    created_at: DateTime<Utc>,
) -> Result<Segment, SegmentError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(SegmentError::Name);
    }
    let text = filter.trim().to_owned();
    let filter = rules::parse(&text)?;
    Ok(Segment {
        id: SegmentId::new(0),
        name: name.to_owned(),
        text,
        filter,
        created_at,
    })
}

/// Whether a contact is in the segment as of the subject's moment, and when that may change
/// with no new event.
pub fn membership(segment: &Segment, s: &Subject<'_>) -> (bool, Option<DateTime<Utc>>) {
    rules::decide(&segment.filter, s)
}

/// A contact's membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Entered,
    Left,
}

impl Change {
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Entered => ENTERED,
            Self::Left => LEFT,
        }
    }
}

/// What changes when a contact's membership goes from `was` to `is`.
pub fn change(was: bool, is: bool) -> Option<Change> {
    match (was, is) {
        (false, true) => Some(Change::Entered),
        (true, false) => Some(Change::Left),
        _ => None,
    }
}

/// A segment's size as a preview gives it: exact when every live contact was evaluated,
/// otherwise estimated from a sample of them, with a 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeEstimate {
    /// The size, or its estimate.
    pub count: i64,
    /// The interval's bounds (both `count` when exact).
    pub low: i64,
    pub high: i64,
    /// Contacts evaluated, and how many live contacts there are (equal when exact).
    pub evaluated: i64,
    pub live: i64,
}

impl SizeEstimate {
    pub fn is_exact(&self) -> bool {
        self.evaluated >= self.live
    }
}

/// The size of a segment from `matched` of `evaluated` contacts, a simple random (or
/// systematic) sample of `live` ones: `matched / evaluated` of `live`, with the Wilson score
/// interval at 95% (which stays inside 0–1 and is not degenerate when nothing or everything
/// of the sample matched, as the normal approximation is for rare segments), narrowed by the
/// finite population correction, so that it closes on the exact count as the sample grows to
/// the whole. The bounds never claim fewer members than the sample found, nor more than the
/// sample left possible.
pub fn estimate_size(matched: i64, evaluated: i64, live: i64) -> SizeEstimate {
    let evaluated = evaluated.max(0);
    let matched = matched.clamp(0, evaluated);
    // Contacts created while the sample was read can make the sample outnumber the count.
    let live = live.max(evaluated);
    let exact = SizeEstimate {
        count: matched,
        low: matched,
        high: matched,
        evaluated,
        live,
    };
    if evaluated == live {
        return exact;
    }
    if evaluated == 0 {
        return SizeEstimate {
            count: 0,
            low: 0,
            high: live,
            ..exact
        };
    }
    let (m, n, big_n) = (matched as f64, evaluated as f64, live as f64);
    let p = m / n;
    // Sampling without replacement: the variance shrinks by (N - n) / (N - 1), as if the
    // sample were this much larger.
    let n_eff = n * (big_n - 1.0) / (big_n - n);
    const Z: f64 = 1.959_963_984_540_054;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n_eff)) / (1.0 + z2 / n_eff);
    let half = Z / (1.0 + z2 / n_eff) * (p * (1.0 - p) / n_eff + z2 / (4.0 * n_eff * n_eff)).sqrt();
    let floor = matched;
    let ceiling = live - (evaluated - matched);
    let low = ((centre - half) * big_n).floor() as i64;
    let high = ((centre + half) * big_n).ceil() as i64;
    let (low, high) = (low.clamp(floor, ceiling), high.clamp(floor, ceiling));
    SizeEstimate {
        count: ((p * big_n).round() as i64).clamp(low, high),
        low,
        high,
        ..exact
    }
}

/// The step between the contact ids a preview evaluates so that about `at_most` of `live`
/// contacts, whose ids span `span` integers, are read (every `step`-th id from the first):
/// `None` when there are no more than `at_most`, and all are read. Ids are handed out in
/// order of creation, so a step through them samples every period of the list's growth
/// alike.
pub fn sample_step(span: i64, live: i64, at_most: i64) -> Option<i64> {
    if at_most <= 0 || live <= at_most {
        return None;
    }
    // Ceiling division: no more than `at_most` ids.
    let step = (span + at_most - 1) / at_most;
    (step > 1).then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_checked() {
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        assert_eq!(define(" ", "score > 1", now), Err(SegmentError::Name));
        let e = define("Hot DE", "country = \"DE\" and score >=", now).unwrap_err();
        assert!(e.to_string().starts_with("filter: at column 28"), "{e}");
        let s = define(" Hot DE ", " country = \"DE\" ", now).unwrap();
        assert_eq!(
            (s.name.as_str(), s.text.as_str()),
            ("Hot DE", "country = \"DE\"")
        );
    }

    #[test]
    fn only_a_flip_is_a_change() {
        assert_eq!(change(false, true), Some(Change::Entered));
        assert_eq!(change(true, false), Some(Change::Left));
        assert_eq!(change(true, true), None);
        assert_eq!(Change::Entered.event_type(), "segment_entered");
    }
    #[test]
    fn a_whole_population_is_counted_exactly() {
        let e = estimate_size(12, 40, 40);
        assert!(e.is_exact());
        assert_eq!((e.count, e.low, e.high), (12, 12, 12));
        // Contacts created while the sample was read.
        assert!(estimate_size(3, 41, 40).is_exact());
    }

    #[test]
    fn a_sample_is_scaled_with_an_interval() {
        // 300 of 20 000 sampled, of 1 000 000: 15 000, give or take about 1 700.
        let e = estimate_size(300, 20_000, 1_000_000);
        assert!(!e.is_exact());
        assert_eq!(e.count, 15_000);
        assert!((13_200..13_600).contains(&e.low), "{e:?}");
        assert!((16_600..17_000).contains(&e.high), "{e:?}");
        // Nothing matched in the sample: still possibly some, never fewer than none.
        let none = estimate_size(0, 20_000, 1_000_000);
        assert_eq!((none.count, none.low), (0, 0));
        assert!(none.high > 0 && none.high < 300, "{none:?}");
        // Everything matched: at most all, at least most.
        let all = estimate_size(20_000, 20_000, 1_000_000);
        assert_eq!((all.count, all.high), (1_000_000, 1_000_000));
        assert!(all.low > 999_000, "{all:?}");
        // An empty sample says nothing.
        let empty = estimate_size(0, 0, 50);
        assert_eq!((empty.count, empty.low, empty.high), (0, 0, 50));
    }

    #[test]
    fn samples_step_through_the_ids() {
        assert_eq!(sample_step(1_000, 1_000, 20_000), None);
        assert_eq!(sample_step(1_000_000, 999_000, 20_000), Some(50));
        assert_eq!(sample_step(1_000_001, 999_000, 20_000), Some(51));
        // More live contacts than asked for, but ids so dense a step of one reads them all.
        assert_eq!(sample_step(20_001, 20_001, 20_000), Some(2));
        assert_eq!(sample_step(100, 30, 0), None);
    }

    proptest::proptest! {
        #[test]
        fn estimates_hold_what_the_sample_proves(
            live in 1i64..2_000_000,
            share in 0.0f64..=1.0,
            hit in 0.0f64..=1.0,
        ) {
            let evaluated = ((live as f64) * share).round() as i64;
            let matched = ((evaluated as f64) * hit).round() as i64;
            let e = estimate_size(matched, evaluated, live);
            proptest::prop_assert!(e.low <= e.count && e.count <= e.high, "{:?}", e);
            proptest::prop_assert!(e.low >= matched, "{:?}", e);
            proptest::prop_assert!(e.high <= live - (evaluated - matched), "{:?}", e);
            if evaluated == live {
                proptest::prop_assert_eq!((e.low, e.high), (matched, matched));
            }
        }

        #[test]
        fn a_step_reads_no_more_than_asked(span in 1i64..5_000_000, at_most in 1i64..100_000) {
            let live = span;
            match sample_step(span, live, at_most) {
                None => proptest::prop_assert!(live <= at_most || span <= at_most),
                Some(step) => {
                    proptest::prop_assert!(step >= 2);
                    // Ids first, first + step, ... within the span.
                    proptest::prop_assert!((span + step - 1) / step <= at_most);
                }
            }
        }
    }
}
