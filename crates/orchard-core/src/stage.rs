//! Lifecycle stages of a contact (SPEC A3). The main path runs subscriber → IQL → MQL → SQL →
//! opportunity → customer; trial user, disqualified and churned are side stages.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LifecycleStage {
    #[serde(rename = "subscriber")]
    Subscriber,
    #[serde(rename = "IQL")]
    Iql,
    #[serde(rename = "MQL")]
    Mql,
    #[serde(rename = "SQL")]
    Sql,
    #[serde(rename = "opportunity")]
    Opportunity,
    #[serde(rename = "customer")]
    Customer,
    #[serde(rename = "trial")]
    Trial,
    #[serde(rename = "disqualified")]
    Disqualified,
    #[serde(rename = "churned")]
    Churned,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 9] = [
        Self::Subscriber,
        Self::Iql,
        Self::Mql,
        Self::Sql,
        Self::Opportunity,
        Self::Customer,
        Self::Trial,
        Self::Disqualified,
        Self::Churned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscriber => "subscriber",
            Self::Iql => "IQL",
            Self::Mql => "MQL",
            Self::Sql => "SQL",
            Self::Opportunity => "opportunity",
            Self::Customer => "customer",
            Self::Trial => "trial",
            Self::Disqualified => "disqualified",
            Self::Churned => "churned",
        }
    }

    /// Accepts the stored name in any case ("mql", "MQL").
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }

    /// Position on the main path; side stages have none.
    pub fn rank(self) -> Option<u8> {
        match self {
            Self::Subscriber => Some(0),
            Self::Iql => Some(1),
            Self::Mql => Some(2),
            Self::Sql => Some(3),
            Self::Opportunity => Some(4),
            Self::Customer => Some(5),
            Self::Trial | Self::Disqualified | Self::Churned => None,
        }
    }

    /// Automatic progression only moves a contact forward on the main path: a rule that would
    /// make an SQL an MQL again is ignored (a person may still move a contact back by hand).
    pub fn advances_to(self, next: Self) -> bool {
        match (self.rank(), next.rank()) {
            (Some(a), Some(b)) => b > a,
            (None, _) | (_, None) => self != next,
        }
    }
}

impl std::fmt::Display for LifecycleStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hot / warm / cold: how urgently a lead wants attention, derived from its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Temperature {
    Hot,
    Warm,
    Cold,
}

impl Temperature {
    pub const ALL: [Temperature; 3] = [Self::Hot, Self::Warm, Self::Cold];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Warm => "warm",
            Self::Cold => "cold",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hot" => Some(Self::Hot),
            "warm" => Some(Self::Warm),
            "cold" => Some(Self::Cold),
            _ => None,
        }
    }
}

/// Score bands. Configuration, not code: later the scoring model versions them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bands {
    pub warm_from: i64,
    pub hot_from: i64,
}

impl Default for Bands {
    fn default() -> Self {
        Self {
            warm_from: 20,
            hot_from: 50,
        }
    }
}

impl Bands {
    pub fn temperature(&self, score: i64) -> Temperature {
        if score >= self.hot_from {
            Temperature::Hot
        } else if score >= self.warm_from {
            Temperature::Warm
        } else {
            Temperature::Cold
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_case_insensitively() {
        assert_eq!(LifecycleStage::parse("mql"), Some(LifecycleStage::Mql));
        assert_eq!(
            LifecycleStage::parse("Customer"),
            Some(LifecycleStage::Customer)
        );
        assert_eq!(LifecycleStage::parse("lead"), None);
    }

    #[test]
    fn automatic_progression_never_moves_back() {
        assert!(LifecycleStage::Iql.advances_to(LifecycleStage::Mql));
        assert!(!LifecycleStage::Sql.advances_to(LifecycleStage::Mql));
        assert!(LifecycleStage::Mql.advances_to(LifecycleStage::Trial));
    }

    #[test]
    fn bands_split_scores() {
        let b = Bands::default();
        assert_eq!(b.temperature(0), Temperature::Cold);
        assert_eq!(b.temperature(20), Temperature::Warm);
        assert_eq!(b.temperature(95), Temperature::Hot);
    }
}
