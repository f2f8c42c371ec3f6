//! Event types an expression names that no event has ever had, and properties it tests that no
//! event of their type has had. Any well-formed name is a valid type (integrations log their
//! own) and any a valid property, so `count(emial_opened) >= 1` and `count(page_viewed where uri
//! ~ "/pricing") >= 1` parse, and they count nothing, silently, for ever. The builder, the API
//! and the command line warn instead, and name the nearest type or property that does exist
//! when one is close enough to be the one meant.

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

/// A property a pattern tests that no recorded event of its type has carried, with the
/// nearest one such events have carried when the name looks like a misspelling of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrecordedProperty {
    pub event_type: String,
    pub property: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for UnrecordedProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "No {} event has had a property {}",
            self.event_type, self.property
        )?;
        match &self.suggestion {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => f.write_str("; the test matches nothing until one does"),
        }
    }
}

/// A custom attribute an expression reads (`custom.NAME`) that no contact has had, with the
/// nearest one contacts have had when the name looks like a misspelling of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrecordedAttribute {
    pub attribute: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for UnrecordedAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "No contact has had a custom attribute {}",
            self.attribute
        )?;
        match &self.suggestion {
            Some(s) => write!(f, "; did you mean custom.{s}?"),
            None => f.write_str("; it is empty for every contact until one has"),
        }
    }
}

/// The custom attributes among `names` (`Expr::custom_attributes`) that are not in
/// `recorded` (the names contacts' custom attributes have had), each once, in order. Names
/// no filter can write (`is_property_name`) are neither warned about nor suggested.
pub fn unrecorded_attributes<'a>(
    names: impl IntoIterator<Item = &'a str>,
    recorded: &[String],
) -> Vec<UnrecordedAttribute> {
    let mut out: Vec<UnrecordedAttribute> = Vec::new();
    for name in names {
        if !is_property_name(name)
            || recorded.iter().any(|r| r == name)
            || out.iter().any(|u| u.attribute == name)
        {
            continue;
        }
        // Only a name a filter can write is offered (an imported column may have any name).
        let writable = recorded
            .iter()
            .map(String::as_str)
            .filter(|r| is_property_name(r));
        out.push(UnrecordedAttribute {
            attribute: name.to_owned(),
            suggestion: nearest(name, writable).map(str::to_owned),
        });
    }
    out
}

/// Whether `name` is a property name the rule language can write (`where NAME …`) and Orchard
/// therefore records: a letter or `_` first, then letters, digits, `_` and `.`, at most 64.
pub fn is_property_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
}

/// The properties the patterns test that no event of their type has carried, each once, in
/// the order named. `recorded` gives, for each type the log holds, the property names its
/// events have carried; a type it does not give is left alone (no event of it was ever
/// stored, which `unrecorded_types` says, or it is not known), so that a type whose events
/// carry no properties at all warns about every property tested.
pub fn unrecorded_properties<'a, 'r>(
    patterns: impl IntoIterator<Item = &'a EventPattern>,
    recorded: impl Fn(&str) -> Option<&'r [String]>,
) -> Vec<UnrecordedProperty> {
    let mut out: Vec<UnrecordedProperty> = Vec::new();
    for p in patterns {
        let event_type = p.event_type.as_str();
        let Some(keys) = recorded(event_type) else {
            continue;
        };
        for f in &p.filters {
            let name = f.property.as_str();
            // A name longer than any recorded one cannot be known either way.
            if !is_property_name(name)
                || keys.iter().any(|k| k == name)
                || out
                    .iter()
                    .any(|u| u.event_type == event_type && u.property == name)
            {
                continue;
            }
            out.push(UnrecordedProperty {
                event_type: event_type.to_owned(),
                property: name.to_owned(),
                suggestion: nearest(name, keys.iter().map(String::as_str)).map(str::to_owned),
            });
        }
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

    fn property_warnings(filter: &str, recorded: &[(&str, &[&str])]) -> Vec<UnrecordedProperty> {
        let expr = parse(filter).unwrap();
        let recorded: Vec<(String, Vec<String>)> = recorded
            .iter()
            .map(|(t, keys)| {
                (
                    (*t).to_owned(),
                    keys.iter().map(|k| (*k).to_owned()).collect(),
                )
            })
            .collect();
        unrecorded_properties(expr.patterns(), |t| {
            recorded
                .iter()
                .find(|(r, _)| r == t)
                .map(|(_, k)| k.as_slice())
        })
    }

    #[test]
    fn a_misspelt_property_is_named_with_the_one_meant() {
        let w = property_warnings(
            r#"count(page_viewed where uri ~ "/pricing" and url ~ "/x", 14d) >= 1
               or last(page_viewed where uri ~ "/demo") within 3d"#,
            &[("page_viewed", &["referrer", "url", "utm_source"])],
        );
        assert_eq!(
            w,
            vec![UnrecordedProperty {
                event_type: "page_viewed".into(),
                property: "uri".into(),
                suggestion: Some("url".into()),
            }]
        );
        assert_eq!(
            w[0].to_string(),
            "No page_viewed event has had a property uri; did you mean url?"
        );
    }

    #[test]
    fn properties_of_types_never_recorded_are_left_to_the_type_warning() {
        assert!(
            property_warnings(r#"count(webinar_attended where room = "A") >= 1"#, &[]).is_empty()
        );
        // Recorded, but never with properties: every test is warned about, without a guess.
        let w = property_warnings(
            r#"count(email_opened where campaign = "spring") >= 1"#,
            &[("email_opened", &[])],
        );
        assert_eq!(
            w[0].to_string(),
            "No email_opened event has had a property campaign; the test matches nothing until one does"
        );
    }

    #[test]
    fn property_names_are_what_the_language_can_write() {
        for ok in ["url", "utm_source", "_x", "a.b", "Plan2"] {
            assert!(is_property_name(ok), "{ok}");
        }
        for bad in ["", "2fa", "with space", "ümlaut", "a-b", &"x".repeat(65)] {
            assert!(!is_property_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_misspelt_custom_attribute_is_named_with_the_one_meant() {
        let expr =
            parse(r#"custom.plna = "pro" and custom.plan = "pro" or not custom.tier is set"#)
                .unwrap();
        let recorded = vec!["plan".to_owned(), "seats".to_owned()];
        let w = unrecorded_attributes(expr.custom_attributes(), &recorded);
        assert_eq!(
            w.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "No contact has had a custom attribute plna; did you mean custom.plan?",
                "No contact has had a custom attribute tier; it is empty for every contact until one has",
            ]
        );
    }

    #[test]
    fn only_writable_names_are_suggested_or_checked() {
        let recorded = vec!["Favourite colour".to_owned(), "plan".to_owned()];
        let w = unrecorded_attributes(["favourite_colour", "plna"], &recorded);
        assert_eq!(w[0].suggestion, None, "not a name a filter can write");
        assert_eq!(w[1].suggestion.as_deref(), Some("plan"));
        let long = "x".repeat(65);
        assert!(unrecorded_attributes([long.as_str()], &recorded).is_empty());
        let filter = format!(r#"count(page_viewed where {long} = "a") >= 1"#);
        assert!(property_warnings(&filter, &[("page_viewed", &["url"])]).is_empty());
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

        #[test]
        fn a_property_some_event_had_is_never_warned_about(
            keys in proptest::collection::vec("[a-z_]{1,10}", 1..6),
            pick in 0usize..6,
        ) {
            let used = &keys[pick % keys.len()];
            let filter = format!(r#"count(page_viewed where {used} = "x") >= 1"#);
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            prop_assert!(property_warnings(&filter, &[("page_viewed", &refs)]).is_empty());
        }
    }
}
