//! One ingestion path for checked events, whoever sent them (the API, an import): emails are
//! resolved to contacts in bulk (unknown ones created, first seen at their earliest event),
//! contact ids checked to exist, then the batch appended in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use orchard_core::event_input::{ParsedEvent, Subject};
use orchard_core::{ContactId, Email};

use crate::{AppendOutcome, Store, StoreResult};

#[derive(Debug, Default)]
pub struct Ingested {
    pub outcome: AppendOutcome,
    /// Events (by the caller's index) that named a contact id that does not exist.
    pub unknown_contacts: Vec<(usize, String, ContactId)>,
}

pub async fn ingest(store: &dyn Store, parsed: Vec<(usize, ParsedEvent)>) -> StoreResult<Ingested> {
    let mut first_seen: HashMap<Email, DateTime<Utc>> = HashMap::new();
    let mut ids = Vec::new();
    // Events may be dated a little ahead (clock skew); a contact is never created in the future.
    let now = Utc::now();
    for (_, p) in &parsed {
        match &p.subject {
            Subject::Email(e) => {
                let at = p.event.at.min(now);
                let t = first_seen.entry(e.clone()).or_insert(at);
                *t = (*t).min(at);
            }
            Subject::Contact(c) => ids.push(*c),
            Subject::Visitor => {}
        }
    }
    let emails: Vec<(Email, DateTime<Utc>)> = first_seen.into_iter().collect();
    let by_email = store.ensure_contacts(&emails).await?;
    let live = store.live_contacts(&ids).await?;
    let mut out = Ingested::default();
    let mut events = Vec::with_capacity(parsed.len());
    for (index, mut p) in parsed {
        p.event.contact_id = match &p.subject {
            Subject::Email(e) => by_email.get(e).copied(),
            Subject::Contact(c) => match live.get(c) {
                Some(now_is) => Some(*now_is),
                None => {
                    out.unknown_contacts.push((index, p.event.client_id, *c));
                    continue;
                }
            },
            Subject::Visitor => None,
        };
        events.push(p.event);
    }
    out.outcome = store.append_events(&events).await?;
    Ok(out)
}
