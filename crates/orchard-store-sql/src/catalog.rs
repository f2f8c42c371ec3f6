//! Teams, lead magnets and forms: the small, slowly changing catalogue.

use async_trait::async_trait;
use orchard_core::capture::{Form, FunnelStage, LeadMagnet};
use orchard_core::team::Team;
use orchard_core::{FormId, LeadMagnetId, TeamId};
use orchard_store::{CatalogStore, StoreError, StoreResult};

use crate::{Sql, SqlStore, backend_err, get, json_err};

#[async_trait]
impl CatalogStore for SqlStore {
    async fn teams(&self) -> StoreResult<Vec<Team>> {
        let rows = Sql::new("SELECT id, name, function FROM teams ORDER BY id")
            .query()
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                Ok(Team {
                    id: TeamId::new(get(r, "id")?),
                    name: get(r, "name")?,
                    function: get(r, "function")?,
                })
            })
            .collect()
    }

    async fn lead_magnets(&self) -> StoreResult<Vec<LeadMagnet>> {
        let rows = Sql::new("SELECT id, slug, name, kind, stage FROM lead_magnets ORDER BY id")
            .query()
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                let stage: String = get(r, "stage")?;
                Ok(LeadMagnet {
                    id: LeadMagnetId::new(get(r, "id")?),
                    slug: get(r, "slug")?,
                    name: get(r, "name")?,
                    kind: get(r, "kind")?,
                    stage: FunnelStage::parse(&stage).ok_or_else(|| {
                        StoreError::Backend("stored funnel stage is not valid".into())
                    })?,
                })
            })
            .collect()
    }

    async fn forms(&self) -> StoreResult<Vec<Form>> {
        let rows = Sql::new(
            "SELECT id, slug, name, lead_magnet_id, fields, consent_text, redirect_url, thank_you \
             FROM forms ORDER BY id",
        )
        .query()
        .fetch_all(self.pool())
        .await
        .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                let fields: String = get(r, "fields")?;
                Ok(Form {
                    id: FormId::new(get(r, "id")?),
                    slug: get(r, "slug")?,
                    name: get(r, "name")?,
                    lead_magnet_id: get::<Option<i64>>(r, "lead_magnet_id")?.map(LeadMagnetId::new),
                    fields: serde_json::from_str(&fields).map_err(json_err)?,
                    consent_text: get(r, "consent_text")?,
                    redirect_url: get(r, "redirect_url")?,
                    thank_you: get(r, "thank_you")?,
                })
            })
            .collect()
    }
}
