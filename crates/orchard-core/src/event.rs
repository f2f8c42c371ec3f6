//! Events: the append-only log everything else is derived from (SPEC D). Each event carries a
//! client-supplied id so that a replayed batch stores nothing twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ContactId, EventSeq};

/// The event types the SPEC names. Others are accepted as `Custom` so that integrations can
/// record what matters to them; rules may match them by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    PageViewed,
    FormSubmitted,
    EmailSubscribed,
    EmailSent,
    EmailOpened,
    EmailClicked,
    EmailReplied,
    EmailBounced,
    EmailUnsubscribed,
    AppointmentBooked,
    AppointmentCancelled,
    TrialStarted,
    ChatStarted,
    Purchase,
    SurveyAnswered,
    Custom(String),
}

/// A `static`: a `const` of it was built and dropped wherever it was read (a rebuild names
/// the type of every score change it makes).
static KNOWN: [(EventType, &str); EventType::KNOWN] = [
    (EventType::PageViewed, "page_viewed"),
    (EventType::FormSubmitted, "form_submitted"),
    (EventType::EmailSubscribed, "email_subscribed"),
    (EventType::EmailSent, "email_sent"),
    (EventType::EmailOpened, "email_opened"),
    (EventType::EmailClicked, "email_clicked"),
    (EventType::EmailReplied, "email_replied"),
    (EventType::EmailBounced, "email_bounced"),
    (EventType::EmailUnsubscribed, "email_unsubscribed"),
    (EventType::AppointmentBooked, "appointment_booked"),
    (EventType::AppointmentCancelled, "appointment_cancelled"),
    (EventType::TrialStarted, "trial_started"),
    (EventType::ChatStarted, "chat_started"),
    (EventType::Purchase, "purchase"),
    (EventType::SurveyAnswered, "survey_answered"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event type {0:?} is not valid: use lower-case letters, digits and underscores (1-64), e.g. page_viewed"
)]
pub struct EventTypeError(String);

impl EventType {
    pub fn parse(s: &str) -> Result<Self, EventTypeError> {
        if let Some(t) = Self::known_named(s) {
            return Ok(t);
        }
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self::Custom(s.to_owned()))
        } else {
            Err(EventTypeError(s.to_owned()))
        }
    }

    /// The SPEC type of that name, `None` for any other name; nothing allocated. A `match`, which
    /// compiles to a test of the length and a few bytes, where searching `KNOWN` compared the
    /// name with each in turn: a refresh names the type of every event it reads (callgrind, a
    /// rebuild of 20 000 contacts: half a million events).
    pub fn known_named(s: &str) -> Option<Self> {
        Some(match s {
            "page_viewed" => Self::PageViewed,
            "form_submitted" => Self::FormSubmitted,
            "email_subscribed" => Self::EmailSubscribed,
            "email_sent" => Self::EmailSent,
            "email_opened" => Self::EmailOpened,
            "email_clicked" => Self::EmailClicked,
            "email_replied" => Self::EmailReplied,
            "email_bounced" => Self::EmailBounced,
            "email_unsubscribed" => Self::EmailUnsubscribed,
            "appointment_booked" => Self::AppointmentBooked,
            "appointment_cancelled" => Self::AppointmentCancelled,
            "trial_started" => Self::TrialStarted,
            "chat_started" => Self::ChatStarted,
            "purchase" => Self::Purchase,
            "survey_answered" => Self::SurveyAnswered,
            _ => return None,
        })
    }

    /// How many types the SPEC names; `known_index` is below this.
    pub const KNOWN: usize = 15;

    /// A SPEC type's place among them (`KNOWN`'s order); `None` for a custom type. A `match`
    /// on the variant, so a replay can pick an event's rules by type without comparing names.
    pub fn known_index(&self) -> Option<usize> {
        Some(match self {
            Self::PageViewed => 0,
            Self::FormSubmitted => 1,
            Self::EmailSubscribed => 2,
            Self::EmailSent => 3,
            Self::EmailOpened => 4,
            Self::EmailClicked => 5,
            Self::EmailReplied => 6,
            Self::EmailBounced => 7,
            Self::EmailUnsubscribed => 8,
            Self::AppointmentBooked => 9,
            Self::AppointmentCancelled => 10,
            Self::TrialStarted => 11,
            Self::ChatStarted => 12,
            Self::Purchase => 13,
            Self::SurveyAnswered => 14,
            Self::Custom(_) => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Custom(s) => s,
            known => known.known_name(),
        }
    }

    /// `as_str`, borrowed for the SPEC's types and copied only for a custom one.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Custom(s) => s.clone().into(),
            known => known.known_name().into(),
        }
    }

    /// A SPEC type's name, found by its place in `KNOWN`; empty for a custom type.
    fn known_name(&self) -> &'static str {
        self.known_index().map_or("", |i| KNOWN[i].1)
    }

    /// The property an event of this type must carry, if any.
    pub fn required_property(&self) -> Option<&'static str> {
        match self {
            Self::PageViewed => Some("url"),
            Self::FormSubmitted => Some("form"),
            Self::Purchase => Some("amount"),
            _ => None,
        }
    }

    pub fn known() -> impl Iterator<Item = &'static str> {
        KNOWN.iter().map(|(_, n)| *n)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why an event was refused; each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("id: must be 1-128 printable characters")]
    BadId,
    #[error("type: {0}")]
    BadType(#[from] EventTypeError),
    #[error("properties.{0}: required for this event type")]
    MissingProperty(&'static str),
    #[error("properties.amount: must be a number")]
    BadAmount,
    #[error("properties.url: must be a string")]
    BadUrl,
    #[error("properties: at most 64 properties and 16 KiB of JSON")]
    TooLarge,
    #[error("type: {0} events are recorded by Orchard itself and cannot be sent")]
    Recorded(&'static str),
}

/// Types of the events Orchard records as consequences of others (stage transitions, segment
/// entries and exits, merges). Stage rules, sequences and reports read them as facts; a client
/// sending one would forge a transition that never happened, so the edge refuses them.
pub const RECORDED_BY_ORCHARD: [&str; 4] = [
    crate::lifecycle::STAGE_CHANGED,
    crate::segment::ENTERED,
    crate::segment::LEFT,
    CONTACT_MERGED,
];

/// The event a merge records on the contact that stays.
pub const CONTACT_MERGED: &str = "contact_merged";

/// An event as accepted at the edge, before the store assigns it a sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The client's id: the idempotency key.
    pub client_id: String,
    pub event_type: EventType,
    pub contact_id: Option<ContactId>,
    /// An anonymous visitor, for page views before the person identified themselves.
    pub visitor_id: Option<String>,
    pub at: DateTime<Utc>,
    pub properties: Map<String, Value>,
}

impl NewEvent {
    /// Checks what a well-formed event of its type must have; the one place ingestion rules live.
    pub fn validate(
        client_id: &str,
        event_type: &str,
        properties: Map<String, Value>,
    ) -> Result<(String, EventType, Map<String, Value>), EventError> {
        if client_id.is_empty()
            || client_id.len() > 128
            || client_id.chars().any(|c| c.is_control())
        {
            return Err(EventError::BadId);
        }
        let event_type = EventType::parse(event_type)?;
        if let EventType::Custom(name) = &event_type
            && let Some(t) = RECORDED_BY_ORCHARD.into_iter().find(|t| t == name)
        {
            return Err(EventError::Recorded(t));
        }
        if properties.len() > 64 || Value::Object(properties.clone()).to_string().len() > 16 * 1024
        {
            return Err(EventError::TooLarge);
        }
        if let Some(p) = event_type.required_property() {
            let v = properties.get(p).ok_or(EventError::MissingProperty(p))?;
            match p {
                "amount" if !v.is_number() => return Err(EventError::BadAmount),
                "url" if !v.is_string() => return Err(EventError::BadUrl),
                _ => {}
            }
        }
        Ok((client_id.to_owned(), event_type, properties))
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: EventSeq,
    pub client_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub contact_id: Option<ContactId>,
    pub visitor_id: Option<String>,
    pub at: DateTime<Utc>,
    pub properties: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_types_have_their_place() {
        for (i, (t, name)) in KNOWN.iter().enumerate() {
            assert_eq!(t.known_index(), Some(i), "{name}");
            assert_eq!(EventType::known_named(name).as_ref(), Some(t), "{name}");
            assert_eq!((t.as_str(), t.name()), (*name, (*name).into()));
            assert!(matches!(t.name(), std::borrow::Cow::Borrowed(_)));
        }
        let custom = EventType::parse("webinar_attended").unwrap();
        assert_eq!(
            (custom.as_str(), &*custom.name()),
            ("webinar_attended", "webinar_attended")
        );
        assert_eq!(EventType::known_named("page_view"), None);
        assert_eq!(EventType::KNOWN, KNOWN.len());
        assert_eq!(
            EventType::parse("webinar_attended").unwrap().known_index(),
            None
        );
    }

    fn props(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn known_types_round_trip() {
        for name in EventType::known() {
            assert_eq!(EventType::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(
            EventType::parse("webinar_attended").unwrap(),
            EventType::Custom("webinar_attended".into())
        );
        assert!(EventType::parse("Page Viewed").is_err());
        assert!(EventType::parse("").is_err());
    }

    #[test]
    fn page_views_need_a_url_and_purchases_a_numeric_amount() {
        assert_eq!(
            NewEvent::validate("e1", "page_viewed", Map::new()),
            Err(EventError::MissingProperty("url"))
        );
        assert_eq!(
            NewEvent::validate("e1", "purchase", props(json!({"amount": "lots"}))),
            Err(EventError::BadAmount)
        );
        assert!(NewEvent::validate("e1", "purchase", props(json!({"amount": 12.5}))).is_ok());
    }

    #[test]
    fn what_orchard_records_itself_cannot_be_sent() {
        for t in RECORDED_BY_ORCHARD {
            assert_eq!(
                NewEvent::validate("e1", t, Map::new()),
                Err(EventError::Recorded(t)),
                "{t}"
            );
        }
        assert!(NewEvent::validate("e1", "stage_changed_by_crm", Map::new()).is_ok());
    }

    #[test]
    fn ids_must_be_printable() {
        assert_eq!(
            NewEvent::validate("", "email_opened", Map::new()),
            Err(EventError::BadId)
        );
        assert_eq!(
            NewEvent::validate("a\nb", "email_opened", Map::new()),
            Err(EventError::BadId)
        );
    }
}
