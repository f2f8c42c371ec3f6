//! Orchard's domain, pure: the types a revenue engine talks about (contacts, accounts, events,
//! deals, revenue, reps) and the calculations over them. Nothing here performs I/O or reads the
//! clock; callers pass `now` in, so every result is reproducible from the event log.

pub mod account;
pub mod activity;
pub mod auth;
pub mod backtest;
pub mod capture;
pub mod contact;
pub mod deal;
pub mod demo;
pub mod email;
pub mod event;
pub mod event_input;
pub mod ids;
pub mod import;
pub mod lifecycle;
pub mod rng;
pub mod rules;
pub mod scoring;
pub mod segment;
pub mod spend;
pub mod stage;
pub mod submission;
pub mod team;
pub mod tracking;

pub use email::Email;
pub use ids::*;
