//! Activities: the touches (calls, meetings, emails, notes) that are the leading indicators of
//! an account's health (SPEC B5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, ActivityId, ContactId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Call,
    Meeting,
    Email,
    Note,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Meeting => "meeting",
            Self::Email => "email",
            Self::Note => "note",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "call" | "phone" => Some(Self::Call),
            "meeting" | "visit" => Some(Self::Meeting),
            "email" => Some(Self::Email),
            "note" => Some(Self::Note),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub id: ActivityId,
    pub external_id: String,
    pub kind: ActivityKind,
    pub account_id: Option<AccountId>,
    pub contact_id: Option<ContactId>,
    pub user_id: Option<UserId>,
    pub at: DateTime<Utc>,
    pub minutes: i64,
    pub subject: String,
}
