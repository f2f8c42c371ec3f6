//! Form submissions (SPEC A1): what a visitor sent through a capture form, checked field by
//! field before anything is stored. A rejected submission creates nothing; a filled honeypot is
//! recognised as a bot and quietly discarded; consent is recorded with its time and source.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Email;
use crate::capture::Form;
use crate::contact::ContactDetails;

/// The hidden field bots fill in and people never see.
pub const HONEYPOT_FIELD: &str = "website";

/// Fields a form may ask for besides `email`, and where each goes on the contact.
pub const KNOWN_FIELDS: [&str; 12] = [
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "industry",
    "company_size",
    "country",
    "city",
    "region",
    "interests",
    "message",
];

/// Attribution parameters a submission (or the visitor's first page view) may carry.
pub const TRACKING_FIELDS: [&str; 9] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer",
    "landing_page",
    "partner_id",
    "visitor_id",
];

/// Whether `v` is a visitor id as Orchard's first-party cookie carries it: 8 to 64 ASCII
/// letters, digits and hyphens (Orchard makes UUIDs). The public endpoints read a visitor id
/// from a browser (the cookie, a form's hidden field, a beacon) only when it is one; anything
/// else is ignored, and never written back into a cookie.
pub fn is_visitor_id(v: &str) -> bool {
    (8..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Where a lead came from: UTM parameters, referrer, landing page, partner and lead magnet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    pub referrer: Option<String>,
    pub landing_page: Option<String>,
    pub partner_id: Option<String>,
    pub lead_magnet: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

impl Touch {
    /// Of two contacts' first touches, the earlier (one with no time counts as later): what a
    /// merged contact keeps as its first touch.
    pub fn earlier(a: Option<Touch>, b: Option<Touch>) -> Option<Touch> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.at.is_some() && (a.at.is_none() || b.at < a.at) {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        }
    }

    /// Of two last touches, the later.
    pub fn later(a: Option<Touch>, b: Option<Touch>) -> Option<Touch> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.at > a.at { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// The channel a report groups by: the UTM source, else the referrer's host, else "direct".
    pub fn channel(&self) -> String {
        if let Some(s) = &self.source {
            return s.clone();
        }
        if let Some(r) = &self.referrer {
            let host = r
                .split("://")
                .nth(1)
                .unwrap_or(r)
                .split(['/', '?', '#'])
                .next()
                .unwrap_or_default();
            if !host.is_empty() {
                return host.trim_start_matches("www.").to_owned();
            }
        }
        "direct".to_owned()
    }

    pub fn is_empty(&self) -> bool {
        self.source.is_none()
            && self.medium.is_none()
            && self.campaign.is_none()
            && self.referrer.is_none()
            && self.landing_page.is_none()
            && self.partner_id.is_none()
    }
}

/// Consent as the visitor gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub text: String,
    pub at: DateTime<Utc>,
    /// The form that captured it.
    pub source: String,
}

/// A checked submission, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub email: Email,
    pub details: ContactDetails,
    pub touch: Touch,
    pub consent: Option<Consent>,
    pub visitor_id: Option<String>,
    /// Free text the visitor wrote ("message"), kept on the event, not the contact.
    pub message: Option<String>,
}

/// Why a submission was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A bot filled the honeypot: answer as if it worked, store nothing.
    Spam,
    /// Field name → what is wrong with it, for the person to correct.
    Invalid(BTreeMap<String, String>),
}

/// The values of the `consent` field that mean yes: a checkbox's `on`, and what scripts send.
pub const CONSENT_GIVEN: [&str; 4] = ["on", "true", "yes", "1"];

/// Longest value of a field, in bytes, but for `message`.
pub const MAX_VALUE: usize = 500;
/// Longest `message`, in bytes.
pub const MAX_MESSAGE: usize = 5_000;

/// Checks raw form fields against the form's definition.
pub fn check(
    form: &Form,
    fields: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<Submission, Rejection> {
    if fields
        .get(HONEYPOT_FIELD)
        .is_some_and(|v| !v.trim().is_empty())
    {
        return Err(Rejection::Spam);
    }
    let mut errors = BTreeMap::new();
    let value = |name: &str| {
        fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    for (name, v) in fields {
        let allowed = name == "email"
            || name == "consent"
            || name == HONEYPOT_FIELD
            || form.fields.iter().any(|f| f == name)
            || TRACKING_FIELDS.contains(&name.as_str());
        if !allowed {
            errors.insert(name.clone(), "this form has no such field".to_owned());
        } else if name == "visitor_id" {
            // A hidden field the person cannot correct: read below only when it is a visitor
            // id, and otherwise left out.
        } else if v
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            errors.insert(name.clone(), "contains control characters".to_owned());
        } else if v.len()
            > if name == "message" {
                MAX_MESSAGE
            } else {
                MAX_VALUE
            }
        {
            errors.insert(name.clone(), "is too long".to_owned());
        }
    }
    let email = match value("email") {
        None => {
            errors.insert("email".into(), "is required".into());
            None
        }
        Some(e) => match Email::parse(&e) {
            Ok(e) => Some(e),
            Err(err) => {
                errors.insert("email".into(), err.to_string());
                None
            }
        },
    };
    let consent = if form.consent_text.trim().is_empty() {
        None
    } else {
        match value("consent").as_deref() {
            Some(v) if CONSENT_GIVEN.contains(&v) => Some(Consent {
                text: form.consent_text.clone(),
                at: now,
                source: format!("form:{}", form.slug),
            }),
            _ => {
                errors.insert("consent".into(), "please agree to continue".into());
                None
            }
        }
    };
    let mut details = ContactDetails {
        first_name: value("first_name"),
        last_name: value("last_name"),
        phone: value("phone"),
        ..Default::default()
    };
    details.demographics.company = value("company");
    details.demographics.job_title = value("job_title");
    details.demographics.industry = value("industry");
    if let Some(size) = value("company_size") {
        match size.replace([',', '.', ' '], "").parse::<i64>() {
            Ok(n) if n > 0 => details.demographics.company_size = Some(n),
            _ => {
                errors.insert("company_size".into(), "must be a whole number".into());
            }
        }
    }
    if let Some(c) = value("country") {
        if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()) {
            details.geography.country = Some(c.to_ascii_uppercase());
        } else {
            errors.insert(
                "country".into(),
                "use the two-letter country code, e.g. DE".into(),
            );
        }
    }
    details.geography.city = value("city");
    details.geography.region = value("region");
    if let Some(i) = value("interests") {
        details.psychographics.interests = i
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if !errors.is_empty() {
        return Err(Rejection::Invalid(errors));
    }
    let touch = Touch {
        source: value("utm_source"),
        medium: value("utm_medium"),
        campaign: value("utm_campaign"),
        term: value("utm_term"),
        content: value("utm_content"),
        referrer: value("referrer"),
        landing_page: value("landing_page"),
        partner_id: value("partner_id"),
        lead_magnet: None,
        at: Some(now),
    };
    Ok(Submission {
        email: email.expect("no errors means the email parsed"),
        details,
        touch,
        consent,
        // A hidden field the person cannot correct: a broken one is left out, not refused.
        visitor_id: value("visitor_id").filter(|v| is_visitor_id(v)),
        message: value("message"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FormId;
    use proptest::prelude::*;

    #[test]
    fn a_merge_keeps_the_earliest_first_touch_and_the_latest_last_touch() {
        let touch = |source: &str, secs: Option<i64>| Touch {
            source: Some(source.into()),
            at: secs.map(|s| DateTime::from_timestamp(s, 0).unwrap()),
            ..Touch::default()
        };
        let (old, new, undated) = (touch("a", Some(1)), touch("b", Some(2)), touch("c", None));
        let src = |t: Option<Touch>| t.and_then(|t| t.source);
        assert_eq!(
            src(Touch::earlier(Some(new.clone()), Some(old.clone()))).as_deref(),
            Some("a")
        );
        assert_eq!(
            src(Touch::earlier(Some(undated.clone()), Some(new.clone()))).as_deref(),
            Some("b")
        );
        assert_eq!(
            src(Touch::later(Some(old.clone()), Some(new.clone()))).as_deref(),
            Some("b")
        );
        assert_eq!(src(Touch::later(None, Some(undated))).as_deref(), Some("c"));
        assert_eq!(Touch::earlier(None, None), None);
    }

    fn form() -> Form {
        Form {
            id: FormId::new(1),
            slug: "pricing-checklist".into(),
            name: "Pricing checklist".into(),
            lead_magnet_id: None,
            fields: vec!["first_name".into(), "company".into(), "country".into()],
            consent_text: "Send me the checklist and related emails.".into(),
            redirect_url: None,
            thank_you: "Thanks!".into(),
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn a_complete_submission_is_accepted_with_consent_and_attribution() {
        let s = check(
            &form(),
            &fields(&[
                ("email", " Ann@Example.com "),
                ("first_name", "Ann"),
                ("country", "de"),
                ("consent", "on"),
                ("utm_source", "linkedin"),
                ("utm_campaign", "q4"),
                ("visitor_id", "v-1234567"),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(s.email.as_str(), "ann@example.com");
        assert_eq!(s.details.geography.country.as_deref(), Some("DE"));
        assert_eq!(s.touch.channel(), "linkedin");
        assert_eq!(s.consent.unwrap().source, "form:pricing-checklist");
        assert_eq!(s.visitor_id.as_deref(), Some("v-1234567"));
    }

    #[test]
    fn a_visitor_id_that_no_cookie_could_carry_is_left_out() {
        for bad in [
            "short",
            "with space-123",
            "semi;colon-123",
            "x; Domain=evil.example",
            "ünïcödé-12345",
            &"a".repeat(65),
        ] {
            assert!(!is_visitor_id(bad), "{bad}");
            let s = check(
                &form(),
                &fields(&[("email", "a@x.com"), ("consent", "on"), ("visitor_id", bad)]),
                now(),
            )
            .expect("the person's submission stands");
            assert_eq!(s.visitor_id, None, "{bad}");
        }
        for good in [
            "0b7c8f2e-4f1a-4c55-9d3e-1f0a2b3c4d5e",
            "abcdefgh",
            &"a".repeat(64),
        ] {
            assert!(is_visitor_id(good), "{good}");
        }
    }

    #[test]
    fn a_filled_honeypot_is_spam() {
        let r = check(
            &form(),
            &fields(&[("email", "a@x.com"), ("website", "http://spam")]),
            now(),
        );
        assert_eq!(r, Err(Rejection::Spam));
    }

    #[test]
    fn each_wrong_field_is_named() {
        let Err(Rejection::Invalid(errors)) = check(
            &form(),
            &fields(&[
                ("email", "not-an-email"),
                ("country", "Germany"),
                ("job_title", "CEO"),
            ]),
            now(),
        ) else {
            panic!("should be rejected");
        };
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["consent", "country", "email", "job_title"]
        );
    }

    #[test]
    fn referrer_host_is_the_channel_when_there_is_no_utm_source() {
        let t = Touch {
            referrer: Some("https://www.google.com/search?q=x".into()),
            ..Default::default()
        };
        assert_eq!(t.channel(), "google.com");
        assert_eq!(Touch::default().channel(), "direct");
    }

    proptest! {
        #[test]
        fn hostile_input_never_panics(k in "\\PC{0,20}", v in "\\PC{0,600}") {
            let _ = check(&form(), &fields(&[(k.as_str(), v.as_str()), ("email", "a@x.com")]), now());
        }
    }
}
