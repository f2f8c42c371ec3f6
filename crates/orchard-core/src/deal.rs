//! Deals: the sales pipeline (SPEC A6), source of conversions, deal size and cycle length.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, ContactId, DealId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

impl DealStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Some(Self::Open),
            "won" | "closed won" | "closedwon" => Some(Self::Won),
            "lost" | "closed lost" | "closedlost" => Some(Self::Lost),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    pub id: DealId,
    pub external_id: String,
    pub name: String,
    pub contact_id: Option<ContactId>,
    pub account_id: Option<AccountId>,
    pub owner_id: Option<UserId>,
    /// Pipeline stage name, e.g. "qualification", "proposal", "negotiation".
    pub pipeline_stage: String,
    pub status: DealStatus,
    pub amount_cents: i64,
    pub expected_close: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub lost_reason: Option<String>,
    pub competitor: Option<String>,
}
