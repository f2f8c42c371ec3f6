//! Lead magnets and forms: the offers a visitor trades contact details for (SPEC A1).

use serde::{Deserialize, Serialize};

use crate::{FormId, LeadMagnetId};

/// Where in the buying journey a lead magnet sits; taking one tells how far along a lead is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FunnelStage {
    Top,
    Middle,
    Bottom,
}

impl FunnelStage {
    pub const ALL: [FunnelStage; 3] = [Self::Top, Self::Middle, Self::Bottom];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Top => "top",
            Self::Middle => "middle",
            Self::Bottom => "bottom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "top" | "tofu" => Some(Self::Top),
            "middle" | "mofu" => Some(Self::Middle),
            "bottom" | "bofu" => Some(Self::Bottom),
            _ => None,
        }
    }

    /// The kinds of offer SPEC A1 lists for each stage.
    pub fn typical_kinds(self) -> &'static [&'static str] {
        match self {
            Self::Top => &["checklist", "ebook", "template", "worksheet", "cheat sheet"],
            Self::Middle => &[
                "training video",
                "case study",
                "webinar",
                "email course",
                "white paper",
            ],
            Self::Bottom => &[
                "live demo",
                "free trial",
                "discount coupon",
                "comparison chart",
                "free consultation",
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadMagnet {
    pub id: LeadMagnetId,
    pub slug: String,
    pub name: String,
    /// One of the stage's typical kinds, or the company's own word.
    pub kind: String,
    pub stage: FunnelStage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Form {
    pub id: FormId,
    /// The public capture address is `/f/{slug}`.
    pub slug: String,
    pub name: String,
    pub lead_magnet_id: Option<LeadMagnetId>,
    /// Field names besides `email` (which every form has).
    pub fields: Vec<String>,
    pub consent_text: String,
    /// Where a browser goes after a successful plain-HTML submission; a thank-you message
    /// is shown when absent.
    pub redirect_url: Option<String>,
    pub thank_you: String,
}

/// A URL-safe identifier: lower-case letters, digits and dashes, 1–64 characters.
pub fn is_valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() {
        assert!(is_valid_slug("pricing-checklist-2"));
        assert!(!is_valid_slug(""));
        assert!(!is_valid_slug("Has Space"));
        assert!(!is_valid_slug("../etc"));
    }

    #[test]
    fn every_stage_names_five_kinds() {
        for s in [FunnelStage::Top, FunnelStage::Middle, FunnelStage::Bottom] {
            assert_eq!(s.typical_kinds().len(), 5);
            assert_eq!(FunnelStage::parse(s.as_str()), Some(s));
        }
    }
}
