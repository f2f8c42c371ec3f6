//! Form capture: one transaction turns a checked submission into a contact (created or
//! updated), its attribution and consent, its visitor identity and a `form_submitted` event.

use async_trait::async_trait;
use chrono::Utc;
use orchard_core::ContactId;
use orchard_core::contact::NewContact;
use orchard_core::submission::Touch;
use orchard_store::{Attribution, Capture, CaptureStore, StoreResult};

use crate::contacts::upsert_in;
use crate::events::{append_in, event_row};
use crate::{Sql, SqlStore, backend_err, get, json_err, ms};

#[async_trait]
impl CaptureStore for SqlStore {
    #[tracing::instrument(skip_all, fields(form = %c.form.slug))]
    async fn capture(&self, c: &Capture) -> StoreResult<(ContactId, bool)> {
        let s = &c.submission;
        let at = c.event.at;
        let touch = Touch {
            lead_magnet: c.magnet.as_ref().map(|m| m.slug.clone()),
            at: Some(at),
            ..s.touch.clone()
        };
        let mut new = NewContact::new(s.email.clone(), at);
        new.details = s.details.clone();
        new.source = Some(touch.channel());
        let touch_json = serde_json::to_string(&touch).map_err(json_err)?;
        let consent_json = s
            .consent
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(json_err)?;
        let mut tx = self.begin().await?;
        let (id, created) = upsert_in(&mut tx, &new).await?;
        let mut up = Sql::new("UPDATE contacts SET first_touch = COALESCE(first_touch, ");
        up.arg(touch_json.as_str())
            .push("), last_touch = ")
            .arg(touch_json)
            .push(", consent = COALESCE(")
            .arg(consent_json)
            .push(", consent)");
        up.push(" WHERE id = ").arg(id.get());
        up.query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        if let Some(v) = &s.visitor_id {
            let mut ident = Sql::new(
                "INSERT INTO visitor_identities (visitor_id, contact_id, identified_at) VALUES ",
            );
            ident
                .list([v.as_str().into(), crate::Arg::from(id.get()), ms(at).into()])
                .push(" ON CONFLICT (visitor_id) DO NOTHING");
            ident
                .query(self.dialect)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
        }
        let mut event = c.event.clone();
        event.contact_id = Some(id);
        // The stage rules read the magnet's funnel stage from the event (a top-of-funnel magnet
        // makes a subscriber an IQL), so it is always on it.
        if let Some(m) = &c.magnet {
            event
                .properties
                .entry("lead_magnet")
                .or_insert_with(|| m.slug.as_str().into());
            event
                .properties
                .entry("funnel_stage")
                .or_insert_with(|| m.stage.as_str().into());
        }
        let rows = vec![event_row(&event, ms(Utc::now()))?];
        append_in(&mut tx, self.dialect(), std::slice::from_ref(&event), rows).await?;
        tx.commit().await?;
        Ok((id, created))
    }

    async fn attribution(&self, id: ContactId) -> StoreResult<Attribution> {
        let mut sql = Sql::new("SELECT first_touch, last_touch, consent FROM contacts WHERE id = ");
        sql.arg(id.get());
        let row = self.one(sql).await?;
        let parse = |col: &str| -> StoreResult<Option<String>> { get(&row, col) };
        Ok(Attribution {
            first_touch: parse("first_touch")?
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(json_err)?,
            last_touch: parse("last_touch")?
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(json_err)?,
            consent: parse("consent")?
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(json_err)?,
        })
    }

    async fn contact_for_visitor(&self, visitor_id: &str) -> StoreResult<Option<ContactId>> {
        let mut sql = Sql::new("SELECT contact_id FROM visitor_identities WHERE visitor_id = ");
        sql.arg(visitor_id);
        let row = sql
            .query(self.dialect)
            .fetch_optional(self.pool())
            .await
            .map_err(backend_err)?;
        row.map(|r| get::<i64>(&r, "contact_id").map(ContactId::new))
            .transpose()
    }
}
