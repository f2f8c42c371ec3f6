//! A contact and a short history for the targets to evaluate what parses against: every
//! field a rule can name has a value, and the events carry the properties filters look into.

use chrono::{DateTime, Utc};
use orchard_core::contact::{Contact, ContactDetails};
use orchard_core::event::{Event, EventType};
use orchard_core::stage::LifecycleStage;
use orchard_core::{ContactId, Email, EventSeq};

pub fn at(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + day * 86_400, 0).expect("a time")
}

pub fn contact() -> Contact {
    let mut details = ContactDetails::default();
    details.first_name = Some("Ann".into());
    details.geography.country = Some("DE".into());
    details.geography.latitude = Some(52.52);
    details.geography.longitude = Some(13.40);
    details.demographics.industry = Some("Logistics".into());
    details.demographics.company_size = Some(120);
    details.psychographics.tags = vec!["VIP".into()];
    details
        .custom
        .insert("plan".into(), serde_json::json!("pro"));
    Contact {
        id: ContactId::new(1),
        email: Email::parse("ann@acme.com").expect("an email"),
        details,
        account_id: None,
        owner_id: None,
        stage: LifecycleStage::Mql,
        score: 45,
        source: Some("google".into()),
        created_at: at(0),
        updated_at: at(0),
        last_activity_at: None,
    }
}

pub fn events() -> Vec<Event> {
    let event = |seq: i64, ty: &str, day: i64, props: serde_json::Value| Event {
        seq: EventSeq::new(seq),
        client_id: format!("e{seq}"),
        event_type: EventType::parse(ty).expect("a type"),
        contact_id: Some(ContactId::new(1)),
        visitor_id: None,
        at: at(day),
        properties: props.as_object().cloned().unwrap_or_default(),
    };
    vec![
        event(
            1,
            "email_sent",
            1,
            serde_json::json!({"email": "welcome-1"}),
        ),
        event(2, "email_opened", 2, serde_json::json!({})),
        event(3, "page_viewed", 3, serde_json::json!({"url": "/pricing"})),
        event(
            4,
            "form_submitted",
            5,
            serde_json::json!({"form": "demo", "funnel_stage": "bottom"}),
        ),
        event(5, "purchase", 9, serde_json::json!({"amount": 120.5})),
    ]
}
