//! Contacts: the people a company markets and sells to. Attributes are grouped the way SPEC A2
//! segments them (demographic, psychographic, geographic); anything else a company tracks goes
//! into free custom attributes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::stage::LifecycleStage;
use crate::{AccountId, ContactId, Email, UserId};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Demographics {
    pub age: Option<i32>,
    pub gender: Option<String>,
    pub nationality: Option<String>,
    pub education: Option<String>,
    pub occupation: Option<String>,
    pub children: Option<i32>,
    pub job_title: Option<String>,
    pub seniority: Option<String>,
    pub company: Option<String>,
    pub company_size: Option<i64>,
    pub industry: Option<String>,
    pub company_revenue: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Psychographics {
    pub interests: Vec<String>,
    pub values: Vec<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Geography {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    /// IANA name, e.g. `Europe/Berlin`.
    pub time_zone: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// A contact's details as the outside world supplies them (form, import, API): everything but
/// the derived figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactDetails {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    #[serde(flatten)]
    pub demographics: Demographics,
    #[serde(flatten)]
    pub psychographics: Psychographics,
    #[serde(flatten)]
    pub geography: Geography,
    /// Anything else: string, number or boolean values keyed by a name.
    #[serde(default)]
    pub custom: BTreeMap<String, serde_json::Value>,
}

/// A stored contact with its derived state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub email: Email,
    pub details: ContactDetails,
    pub account_id: Option<AccountId>,
    pub owner_id: Option<UserId>,
    pub stage: LifecycleStage,
    pub score: i64,
    pub source: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: Option<DateTime<Utc>>,
}

impl Contact {
    /// "Ann Lee", or the email when no name is known.
    pub fn display_name(&self) -> String {
        let d = &self.details;
        match (d.first_name.as_deref(), d.last_name.as_deref()) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (Some(n), None) | (None, Some(n)) => n.to_owned(),
            (None, None) => self.email.to_string(),
        }
    }
}

/// A new or updated contact arriving from outside.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub email: Email,
    pub details: ContactDetails,
    pub account_id: Option<AccountId>,
    pub owner_id: Option<UserId>,
    pub stage: LifecycleStage,
    pub source: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl NewContact {
    pub fn new(email: Email, created_at: DateTime<Utc>) -> Self {
        Self {
            email,
            details: ContactDetails::default(),
            account_id: None,
            owner_id: None,
            stage: LifecycleStage::Subscriber,
            source: None,
            created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_serialise_flat_so_api_clients_see_one_object() {
        let mut d = ContactDetails::default();
        d.demographics.industry = Some("Logistics".into());
        d.geography.country = Some("DE".into());
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["industry"], "Logistics");
        assert_eq!(v["country"], "DE");
        let back: ContactDetails = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
    }
}

impl ContactDetails {
    /// Folds newer details into these: a value given replaces the stored one, a value missing
    /// keeps it (a form that asks only for the email must not erase a known job title), and
    /// lists gain the new entries. This is how a second submission "updates, never duplicates".
    pub fn merge(&mut self, newer: &ContactDetails) {
        fn keep<T: Clone>(old: &mut Option<T>, new: &Option<T>) {
            if new.is_some() {
                old.clone_from(new);
            }
        }
        fn union(old: &mut Vec<String>, new: &[String]) {
            for v in new {
                if !old.contains(v) {
                    old.push(v.clone());
                }
            }
        }
        keep(&mut self.first_name, &newer.first_name);
        keep(&mut self.last_name, &newer.last_name);
        keep(&mut self.phone, &newer.phone);
        let (d, n) = (&mut self.demographics, &newer.demographics);
        keep(&mut d.age, &n.age);
        keep(&mut d.gender, &n.gender);
        keep(&mut d.nationality, &n.nationality);
        keep(&mut d.education, &n.education);
        keep(&mut d.occupation, &n.occupation);
        keep(&mut d.children, &n.children);
        keep(&mut d.job_title, &n.job_title);
        keep(&mut d.seniority, &n.seniority);
        keep(&mut d.company, &n.company);
        keep(&mut d.company_size, &n.company_size);
        keep(&mut d.industry, &n.industry);
        keep(&mut d.company_revenue, &n.company_revenue);
        let (p, n) = (&mut self.psychographics, &newer.psychographics);
        union(&mut p.interests, &n.interests);
        union(&mut p.values, &n.values);
        union(&mut p.tags, &n.tags);
        let (g, n) = (&mut self.geography, &newer.geography);
        keep(&mut g.country, &n.country);
        keep(&mut g.region, &n.region);
        keep(&mut g.city, &n.city);
        keep(&mut g.time_zone, &n.time_zone);
        keep(&mut g.latitude, &n.latitude);
        keep(&mut g.longitude, &n.longitude);
        for (k, v) in &newer.custom {
            self.custom.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    #[test]
    fn merge_keeps_known_values_and_adds_new_ones() {
        let mut old = ContactDetails::default();
        old.demographics.job_title = Some("CTO".into());
        old.psychographics.tags = vec!["vip".into()];
        let new = ContactDetails {
            first_name: Some("Ann".into()),
            psychographics: Psychographics {
                tags: vec!["vip".into(), "webinar".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        old.merge(&new);
        assert_eq!(old.demographics.job_title.as_deref(), Some("CTO"));
        assert_eq!(old.first_name.as_deref(), Some("Ann"));
        assert_eq!(old.psychographics.tags, vec!["vip", "webinar"]);
    }
}
