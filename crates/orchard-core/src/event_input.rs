//! Events as clients send them (the API's JSON, an import's JSON Lines or CSV rows), checked one
//! at a time. One parser for every way in, so the API and `orchard import events` accept and
//! refuse exactly the same things.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::event::NewEvent;
use crate::{ContactId, Email};

/// Who an event is about, before the store resolves it to a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Created as a subscriber if no contact has this email yet.
    Email(Email),
    /// Must name an existing contact.
    Contact(ContactId),
    /// An anonymous visitor.
    Visitor,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub subject: Subject,
    pub event: NewEvent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    email: Option<String>,
    contact_id: Option<i64>,
    visitor_id: Option<String>,
    at: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
}

/// Checks one event given as JSON. `at` defaults to `now`; more than a day ahead is refused.
pub fn parse_event(raw: Value, now: DateTime<Utc>) -> Result<ParsedEvent, String> {
    let e: Input = serde_json::from_value(raw).map_err(|e| e.to_string())?;
    let (client_id, event_type, properties) =
        NewEvent::validate(&e.id, &e.event_type, e.properties).map_err(|err| err.to_string())?;
    let at = match e.at.as_deref() {
        None => now,
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|err| format!("at: '{s}' is not an RFC 3339 time ({err})"))?
            .with_timezone(&Utc),
    };
    if at > now + Duration::hours(24) {
        return Err("at: more than a day in the future".into());
    }
    if at < DateTime::UNIX_EPOCH {
        return Err("at: before 1970 is not a date an event can have".into());
    }
    let at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
    let visitor_id = match e.visitor_id {
        Some(v) if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) => {
            return Err("visitor_id: must be 1-128 printable characters".into());
        }
        other => other,
    };
    let subject = match (e.email, e.contact_id) {
        (Some(_), Some(_)) => return Err("give email or contact_id, not both".into()),
        (Some(m), None) => Subject::Email(Email::parse(&m).map_err(|err| format!("email: {err}"))?),
        (None, Some(c)) => Subject::Contact(ContactId::new(c)),
        (None, None) if visitor_id.is_some() => Subject::Visitor,
        (None, None) => return Err("email, contact_id or visitor_id is required".into()),
    };
    Ok(ParsedEvent {
        subject,
        event: NewEvent {
            client_id,
            event_type,
            contact_id: None,
            visitor_id,
            at,
            properties,
        },
    })
}

/// A CSV row as the JSON `parse_event` takes: the columns `id`, `type`, `email`, `contact_id`,
/// `visitor_id` and `at` as such, every other column a property (numbers kept as numbers).
pub fn csv_row_to_json(header: &[&str], values: &[&str]) -> Result<Value, String> {
    if header.len() != values.len() {
        return Err(format!(
            "has {} fields, the header has {}",
            values.len(),
            header.len()
        ));
    }
    let mut obj = Map::new();
    let mut props = Map::new();
    for (h, v) in header.iter().zip(values) {
        let (h, v) = (h.trim().trim_start_matches('\u{feff}'), v.trim());
        if v.is_empty() {
            continue;
        }
        match h {
            "id" | "type" | "email" | "visitor_id" | "at" => {
                obj.insert(h.to_owned(), Value::String(v.to_owned()));
            }
            "contact_id" => {
                let id = v
                    .parse::<i64>()
                    .map_err(|_| format!("contact_id: '{v}' is not a whole number"))?;
                obj.insert(h.to_owned(), Value::from(id));
            }
            _ => {
                let value = v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(v.to_owned()), Value::Number);
                props.insert(h.to_owned(), value);
            }
        }
    }
    obj.insert("properties".into(), Value::Object(props));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_csv_row_becomes_the_same_event_as_its_json() {
        let v = csv_row_to_json(
            &["id", "type", "email", "at", "url", "amount"],
            &[
                "e1",
                "purchase",
                "A@x.com",
                "2026-11-20T08:00:00Z",
                "/checkout",
                "49.5",
            ],
        )
        .unwrap();
        assert_eq!(v["properties"]["amount"], json!(49.5));
        let p = parse_event(v, now()).unwrap();
        assert_eq!(p.subject, Subject::Email(Email::parse("a@x.com").unwrap()));
        assert_eq!(p.event.properties["url"], "/checkout");
    }

    #[test]
    fn problems_are_named() {
        assert!(
            parse_event(json!({"id": "e", "type": "email_opened"}), now())
                .unwrap_err()
                .contains("required")
        );
        assert!(
            csv_row_to_json(&["id", "contact_id"], &["e", "x"])
                .unwrap_err()
                .starts_with("contact_id")
        );
        for (at, want) in [
            ("0001-01-01T00:00:00Z", "before 1970"),
            ("2026-11-25T10:00:00Z", "more than a day in the future"),
            ("2026-13-01T00:00:00Z", "not an RFC 3339 time"),
        ] {
            let e = parse_event(
                json!({"id": "e", "type": "email_opened", "email": "a@x.com", "at": at}),
                now(),
            )
            .unwrap_err();
            assert!(e.contains(want), "{at}: {e}");
        }
    }
}
