//! Event types an expression names that no event has ever had. Any well-formed name is a valid
//! type (integrations log their own), so `count(emial_opened) >= 1` parses, and it counts
//! nothing, silently, for ever. The builder, the API and the command line warn instead, and name
//! the nearest type that does exist when one is close enough to be the one meant.

use std::fmt;

use super::EventPattern;
use crate::event::{EventType, RECORDED_BY_ORCHARD};

/// A type an expression names of which no event has been stored, with the nearest type that
/// is known or recorded when the name looks like a misspelling of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrecordedType {
    pub event_type: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for UnrecordedType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "No {} event has been recorded yet", self.event_type)?;
        match &self.suggestion {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => f.write_str("; the condition counts nothing until one is"),
        }
    }
}

/// The types among `patterns` that are neither the SPEC's, nor logged by Orchard itself, nor
/// in `recorded` (the types of which the log holds an event), each once, in the order named.
pub fn unrecorded_types<'a>(
    patterns: impl IntoIterator<Item = &'a EventPattern>,
    recorded: &[String],
) -> Vec<UnrecordedType> {
    let mut known: Vec<&str> = EventType::known().chain(RECORDED_BY_ORCHARD).collect();
    known.extend(recorded.iter().map(String::as_str));
    let mut out: Vec<UnrecordedType> = Vec::new();
    for p in patterns {
        let name = p.event_type.as_str();
        if known.contains(&name) || out.iter().any(|u| u.event_type == name) {
            continue;
        }
        out.push(UnrecordedType {
            event_type: name.to_owned(),
            suggestion: nearest(name, known.iter().copied()).map(str::to_owned),
        });
    }
    out
}

/// The candidate closest to `name` by edits (a letter added, dropped, changed, or two
/// neighbours swapped), if it is close enough to be a slip of the keyboard: at most two edits,
/// and at most a third of the name's length, so that short names do not suggest unrelated
/// ones. Ties go to the first candidate.
fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).min(2);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edits(name, c);
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The optimal string alignment distance between `a` and `b`, by characters.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two back (for a swap), the last, and the one being filled.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut before, &mut last);
        std::mem::swap(&mut last, &mut row);
    }
    last[b.len()]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::rules::parse;

    fn warnings(filter: &str, recorded: &[&str]) -> Vec<UnrecordedType> {
        let expr = parse(filter).unwrap();
        let recorded: Vec<String> = recorded.iter().map(|s| (*s).to_owned()).collect();
        unrecorded_types(expr.patterns(), &recorded)
    }

    #[test]
    fn a_misspelt_type_is_named_with_the_one_meant() {
        let w = warnings(
            "count(emial_opened) >= 1 and last(email_opened) older than 3d",
            &[],
        );
        assert_eq!(
            w,
            vec![UnrecordedType {
                event_type: "emial_opened".into(),
                suggestion: Some("email_opened".into()),
            }]
        );
        assert_eq!(
            w[0].to_string(),
            "No emial_opened event has been recorded yet; did you mean email_opened?"
        );
    }

    #[test]
    fn spec_orchard_and_recorded_types_need_no_warning() {
        assert!(warnings("count(trial_started) >= 1", &[]).is_empty());
        assert!(warnings("count(segment_entered) >= 1", &[]).is_empty());
        assert!(warnings("count(webinar_attended) >= 1", &["webinar_attended"]).is_empty());
    }

    #[test]
    fn a_custom_type_not_yet_seen_is_named_once_without_a_guess() {
        let w = warnings(
            "count(webinar_attended) >= 1 or last(webinar_attended) older than 2d",
            &["email_opened"],
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].suggestion, None);
        assert_eq!(
            w[0].to_string(),
            "No webinar_attended event has been recorded yet; the condition counts nothing until one is"
        );
    }

    #[test]
    fn recorded_custom_types_are_suggested_too() {
        let w = warnings("count(webinar_atended) >= 1", &["webinar_attended"]);
        assert_eq!(w[0].suggestion.as_deref(), Some("webinar_attended"));
    }

    #[test]
    fn short_names_are_not_matched_to_unrelated_ones() {
        // Two edits would be half of a four-letter name: one is the most it takes.
        assert_eq!(warnings("count(demo) >= 1", &["deal"])[0].suggestion, None);
        assert_eq!(
            warnings("count(dela) >= 1", &["deal"])[0].suggestion,
            Some("deal".into())
        );
    }

    #[test]
    fn edits_count_swaps_as_one() {
        assert_eq!(edits("email_opened", "emial_opened"), 1);
        assert_eq!(edits("email_opened", "email_opend"), 1);
        assert_eq!(edits("email_opened", "email_opened"), 0);
        assert_eq!(edits("", "abc"), 3);
        assert_eq!(edits("abc", ""), 3);
        assert_eq!(edits("ca", "abc"), 3);
    }

    proptest! {
        #[test]
        fn edits_is_a_distance(a in "[a-e_]{0,8}", b in "[a-e_]{0,8}") {
            let d = edits(&a, &b);
            prop_assert_eq!(d, edits(&b, &a));
            prop_assert_eq!(d == 0, a == b);
            prop_assert!(d <= a.len().max(b.len()));
            prop_assert!(d >= a.len().abs_diff(b.len()));
        }

        #[test]
        fn one_slip_is_always_caught(i in 0usize..12, c in "[a-z_]") {
            // Any one letter changed in a SPEC type of 9 letters or more is suggested back as
            // that type or as one as close.
            for known in EventType::known().filter(|k| k.len() >= 9) {
                let mut slipped: Vec<char> = known.chars().collect();
                let at = i % slipped.len();
                slipped[at] = c.chars().next().unwrap();
                let slipped: String = slipped.into_iter().collect();
                // Still a type's name: a slip to an underscore at the start is a parse error.
                if slipped == known || slipped.starts_with('_') {
                    continue;
                }
                let w = warnings(&format!("count({slipped}) >= 1"), &[]);
                match w.first() {
                    Some(first) => {
                        let s = first.suggestion.as_deref().unwrap();
                        prop_assert!(edits(&slipped, s) <= 1, "{} suggested {}", slipped, s);
                    }
                    // Only another type's own name goes without a warning.
                    None => prop_assert!(
                        EventType::known().chain(RECORDED_BY_ORCHARD).any(|k| k == slipped)
                    ),
                }
            }
        }
    }
}
