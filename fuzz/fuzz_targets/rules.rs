//! Any text given to the rule language's parser: it never panics, a refusal names a column
//! inside the text (or just past its end), and what it accepts evaluates, finds its next change
//! and lists its event types without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orchard_core::rules::{self, Subject};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match rules::parse(text) {
        Err(e) => {
            let chars = text.chars().count();
            assert!(
                e.column >= 1 && e.column <= chars + 1,
                "column {} of a text of {chars} characters: {e}",
                e.column
            );
        }
        Ok(expr) => {
            let (c, events) = (common::contact(), common::events());
            for day in [0, 4, 40] {
                let s = Subject {
                    contact: &c,
                    account: None,
                    events: &events,
                    now: common::at(day),
                };
                let (holds, next) = rules::decide(&expr, &s);
                assert_eq!(holds, rules::eval(&expr, &s), "decide and eval agree");
                assert_eq!(
                    next,
                    rules::next_change(&expr, &s),
                    "and on the next change"
                );
            }
            let _ = rules::unrecorded_types(expr.patterns(), &["webinar_attended".to_owned()]);
        }
    }
});
