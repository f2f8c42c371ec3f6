//! Typed identifiers. Every entity has its own id type so that a contact id can never be passed
//! where an account id is expected. Ids are 64-bit integers assigned by the database: compact in
//! indexes and cheap to compare on the hot path of event processing.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    )*};
}

id_type!(
    /// A known person (lead, prospect or customer contact).
    ContactId,
    /// A company that buys, or may buy.
    AccountId,
    /// A stored event in the append-only log.
    EventSeq,
    UserId,
    TeamId,
    LeadMagnetId,
    FormId,
    DealId,
    SubscriptionId,
    OrderId,
    ActivityId,
    SpendId,
    TokenId,
    /// A saved filter whose membership Orchard keeps current.
    SegmentId,
);
