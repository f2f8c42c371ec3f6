//! Users, teams and the rep profile that routing (SPEC A5) chooses by: expertise, seniority,
//! region, capacity and working hours.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::{Email, TeamId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seniority {
    Junior,
    Mid,
    Senior,
}

impl Seniority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Junior => "junior",
            Self::Mid => "mid",
            Self::Senior => "senior",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "junior" => Some(Self::Junior),
            "mid" | "medior" => Some(Self::Mid),
            "senior" => Some(Self::Senior),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    /// What the team does: "sales", "marketing", "account_management", "customer_success".
    pub function: String,
}

/// Working hours in the rep's own time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Default for WorkingHours {
    fn default() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
            end: NaiveTime::from_hms_opt(17, 0, 0).expect("valid time"),
        }
    }
}

impl WorkingHours {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            // A night shift that wraps midnight.
            t >= self.start || t < self.end
        }
    }
}

/// What routing knows about a person who takes leads or owns accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepProfile {
    pub expertise: Vec<String>,
    pub seniority: Seniority,
    pub region: Option<String>,
    pub time_zone: String,
    /// Most open leads this rep should hold at once.
    pub capacity: i64,
    pub working_hours: WorkingHours,
    pub out_of_office: bool,
}

impl Default for RepProfile {
    fn default() -> Self {
        Self {
            expertise: Vec::new(),
            seniority: Seniority::Mid,
            region: None,
            time_zone: "UTC".into(),
            capacity: 50,
            working_hours: WorkingHours::default(),
            out_of_office: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub team_id: Option<TeamId>,
    pub profile: RepProfile,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_hours_handle_shifts_across_midnight() {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        let day = WorkingHours::default();
        assert!(day.contains(t(9)) && !day.contains(t(17)));
        let night = WorkingHours {
            start: t(22),
            end: t(6),
        };
        assert!(night.contains(t(23)) && night.contains(t(2)) && !night.contains(t(12)));
    }
}
