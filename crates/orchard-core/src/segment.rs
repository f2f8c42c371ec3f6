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
}
