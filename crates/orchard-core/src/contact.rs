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
/// the derived figures. Written as one flat object, and read back through `FlatDetails`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "FlatDetails")]
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

/// `ContactDetails` as one flat object, the form it is written in. Details are read through
/// this twin rather than `#[serde(flatten)]`, which buffers every field of the object and then
/// hands each group its own: that took a tenth of a rebuild's deciding thread (every refresh
/// reads its contacts' details). A field left out reads as empty.
#[derive(Deserialize, Default)]
#[serde(default)]
struct FlatDetails {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    age: Option<i32>,
    gender: Option<String>,
    nationality: Option<String>,
    education: Option<String>,
    occupation: Option<String>,
    children: Option<i32>,
    job_title: Option<String>,
    seniority: Option<String>,
    company: Option<String>,
    company_size: Option<i64>,
    industry: Option<String>,
    company_revenue: Option<i64>,
    interests: Vec<String>,
    values: Vec<String>,
    tags: Vec<String>,
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
    time_zone: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    custom: BTreeMap<String, serde_json::Value>,
}

impl From<FlatDetails> for ContactDetails {
    fn from(f: FlatDetails) -> Self {
        ContactDetails {
            first_name: f.first_name,
            last_name: f.last_name,
            phone: f.phone,
            demographics: Demographics {
                age: f.age,
                gender: f.gender,
                nationality: f.nationality,
                education: f.education,
                occupation: f.occupation,
                children: f.children,
                job_title: f.job_title,
                seniority: f.seniority,
                company: f.company,
                company_size: f.company_size,
                industry: f.industry,
                company_revenue: f.company_revenue,
            },
            psychographics: Psychographics {
                interests: f.interests,
                values: f.values,
                tags: f.tags,
            },
            geography: Geography {
                country: f.country,
                region: f.region,
                city: f.city,
                time_zone: f.time_zone,
                latitude: f.latitude,
                longitude: f.longitude,
            },
            custom: f.custom,
        }
    }
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

/// Why two contacts cannot be merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("a contact cannot be merged into itself")]
    SameContact,
}

/// One person known under two emails: `other` folded into `keep`, which stays. Keep's values
/// win and other's fill what keep lacks (lists gain other's entries); the stage is the further
/// along the main path (a side stage of keep's stays); the person was first seen when the
/// earlier of the two was and last active when the later was. The score is the higher of the
/// two until scoring recomputes it from both timelines.
pub fn merge_contacts(keep: &Contact, other: &Contact) -> Result<Contact, MergeError> {
    if keep.id == other.id {
        return Err(MergeError::SameContact);
    }
    let mut details = other.details.clone();
    details.merge(&keep.details);
    for (list, extra) in [
        (
            &mut details.psychographics.interests,
            &keep.details.psychographics.interests,
        ),
        (
            &mut details.psychographics.values,
            &keep.details.psychographics.values,
        ),
        (
            &mut details.psychographics.tags,
            &keep.details.psychographics.tags,
        ),
    ] {
        // Keep's entries first, in keep's order, then what only other had.
        let mut ordered = extra.clone();
        ordered.extend(list.iter().filter(|v| !extra.contains(v)).cloned());
        *list = ordered;
    }
    let stage = match (keep.stage.rank(), other.stage.rank()) {
        (Some(k), Some(o)) if o > k => other.stage,
        _ => keep.stage,
    };
    Ok(Contact {
        id: keep.id,
        email: keep.email.clone(),
        details,
        account_id: keep.account_id.or(other.account_id),
        owner_id: keep.owner_id.or(other.owner_id),
        stage,
        score: keep.score.max(other.score),
        source: keep.source.clone().or_else(|| other.source.clone()),
        created_at: keep.created_at.min(other.created_at),
        updated_at: keep.updated_at.max(other.updated_at),
        last_activity_at: keep.last_activity_at.max(other.last_activity_at),
    })
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

    fn contact(id: i64, email: &str, stage: LifecycleStage, day: i64) -> Contact {
        let at = DateTime::from_timestamp(1_780_000_000 + day * 86_400, 0).unwrap();
        Contact {
            id: ContactId::new(id),
            email: Email::parse(email).unwrap(),
            details: ContactDetails::default(),
            account_id: None,
            owner_id: None,
            stage,
            score: 0,
            source: None,
            created_at: at,
            updated_at: at,
            last_activity_at: Some(at),
        }
    }

    #[test]
    fn merging_keeps_the_survivors_values_and_fills_its_gaps() {
        let mut keep = contact(1, "ann@work.com", LifecycleStage::Iql, 10);
        keep.details.first_name = Some("Ann".into());
        keep.details.psychographics.tags = vec!["b".into(), "a".into()];
        keep.score = 15;
        let mut other = contact(2, "ann@home.com", LifecycleStage::Sql, 2);
        other.details.first_name = Some("Annie".into());
        other.details.demographics.company = Some("Acme".into());
        other.details.psychographics.tags = vec!["a".into(), "c".into()];
        other.owner_id = Some(UserId::new(7));
        other.source = Some("google".into());
        other.score = 40;
        let m = merge_contacts(&keep, &other).unwrap();
        assert_eq!((m.id, m.email.as_str()), (keep.id, "ann@work.com"));
        assert_eq!(m.details.first_name.as_deref(), Some("Ann"));
        assert_eq!(m.details.demographics.company.as_deref(), Some("Acme"));
        assert_eq!(m.details.psychographics.tags, ["b", "a", "c"]);
        assert_eq!((m.stage, m.score), (LifecycleStage::Sql, 40));
        assert_eq!(
            (m.owner_id, m.source.as_deref()),
            (Some(UserId::new(7)), Some("google"))
        );
        assert_eq!(m.created_at, other.created_at);
        assert_eq!(m.last_activity_at, keep.last_activity_at);
        assert_eq!(merge_contacts(&keep, &keep), Err(MergeError::SameContact));
    }

    #[test]
    fn a_side_stage_of_the_survivor_stays() {
        let keep = contact(1, "a@x.com", LifecycleStage::Disqualified, 0);
        let other = contact(2, "b@x.com", LifecycleStage::Mql, 0);
        assert_eq!(
            merge_contacts(&keep, &other).unwrap().stage,
            LifecycleStage::Disqualified
        );
        let keep = contact(1, "a@x.com", LifecycleStage::Customer, 0);
        let other = contact(2, "b@x.com", LifecycleStage::Trial, 0);
        assert_eq!(
            merge_contacts(&keep, &other).unwrap().stage,
            LifecycleStage::Customer
        );
    }

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

    #[test]
    fn every_detail_reads_back_from_the_flat_object() {
        let mut d = ContactDetails {
            first_name: Some("Jörg".into()),
            last_name: Some("Becker".into()),
            phone: Some("+49 810 2734545".into()),
            ..ContactDetails::default()
        };
        d.demographics = Demographics {
            age: Some(42),
            gender: Some("male".into()),
            nationality: Some("DE".into()),
            education: Some("Bachelor".into()),
            occupation: Some("Procurement".into()),
            children: Some(2),
            job_title: Some("Buyer".into()),
            seniority: Some("mid".into()),
            company: Some("Hansapulse AG".into()),
            company_size: Some(12),
            industry: Some("Logistics".into()),
            company_revenue: Some(1_060_000),
        };
        d.psychographics = Psychographics {
            interests: vec!["ai".into()],
            values: vec!["sustainability".into()],
            tags: vec!["trade-show".into(), "vip".into()],
        };
        d.geography = Geography {
            country: Some("DE".into()),
            region: Some("DACH".into()),
            city: Some("Düsseldorf".into()),
            time_zone: Some("Europe/Berlin".into()),
            latitude: Some(51.2227),
            longitude: Some(6.8313),
        };
        d.custom.insert("budget_cycle".into(), "Q1".into());
        d.custom.insert("uses_microsoft_365".into(), true.into());
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<ContactDetails>(&text).unwrap(), d);
        // Left out reads as empty; a key no field names is ignored, as before.
        let sparse: ContactDetails =
            serde_json::from_str(r#"{"country":"AT","unknown":1}"#).unwrap();
        assert_eq!(sparse.geography.country.as_deref(), Some("AT"));
        assert_eq!(
            sparse,
            ContactDetails {
                geography: Geography {
                    country: Some("AT".into()),
                    ..Geography::default()
                },
                ..ContactDetails::default()
            }
        );
        // A wrong type is still an error, not an empty field.
        assert!(serde_json::from_str::<ContactDetails>(r#"{"age":"old"}"#).is_err());
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
