//! Campaign spend, per source and campaign, so acquisition cost can be measured (SPEC A7).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::SpendId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub id: SpendId,
    pub external_id: String,
    pub day: NaiveDate,
    pub source: String,
    pub campaign: Option<String>,
    pub amount_cents: i64,
}
