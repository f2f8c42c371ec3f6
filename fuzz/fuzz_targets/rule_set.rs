//! Any JSON given as a rule set, as `PUT /api/v1/scoring/rule-set` takes it: compiling never
//! panics, and a set that compiles scores a history without panicking, its changes adding up
//! to its score.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orchard_core::scoring::{RuleSet, RuleSetDef, score};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(def) = serde_json::from_slice::<RuleSetDef>(data) else {
        return;
    };
    let Ok(set) = RuleSet::compile_new(&def) else {
        return;
    };
    let (c, events) = (common::contact(), common::events());
    let scored = score(&set, &c, None, &events, common::at(400));
    let sum: i64 = scored.changes.iter().map(|ch| ch.points).sum();
    assert_eq!(sum, scored.score, "the changes add up to the score");
});
