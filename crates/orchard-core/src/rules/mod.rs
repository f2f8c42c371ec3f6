//! The rule language shared by scoring rules and segment filters (SPEC A2, A3): conditions on a
//! contact's attributes, its account's, and aggregates of its events over time windows, joined
//! with `and`, `or`, `not`:
//!
//! ```text
//! count(page_viewed where url ~ "/pricing", 14d) >= 2
//! last(email_opened) older than 30d
//! score >= 40 and stage in [MQL, SQL]
//! country in ["DE", "AT"] or distance_km(52.52, 13.40) < 50
//! industry = "Logistics" and not tags = "competitor"
//! ```
//!
//! `parse` turns text into a typed [`Expr`] (errors name the column and what was expected);
//! `eval` decides it for one contact at one moment; `next_change` says when its value may change
//! with no new event, for the due-time index; `decide` gives both in one walk.

mod ast;
mod eval;
mod parse;
mod unrecorded;

pub use ast::*;
pub use eval::{Subject, decide, distance_km, eval, matches, moved_by, next_change};
pub(crate) use eval::{contains_ci_from, rarest};
pub use parse::{MAX_DAYS, MAX_LEN, ParseError, parse, parse_pattern};
pub use unrecorded::{
    UnrecordedAttribute, UnrecordedProperty, UnrecordedType, is_property_name,
    unrecorded_attributes, unrecorded_properties, unrecorded_types,
};

#[cfg(test)]
mod tests;
