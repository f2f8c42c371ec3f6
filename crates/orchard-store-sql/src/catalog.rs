//! Teams, lead magnets and forms: the small, slowly changing catalogue.

use async_trait::async_trait;
use orchard_core::capture::{Form, FunnelStage, LeadMagnet};
use orchard_core::team::Team;
use orchard_core::{FormId, LeadMagnetId, TeamId};
use orchard_store::{CatalogStore, StoreError, StoreResult};
use sqlx::any::AnyRow;

use crate::{Sql, SqlStore, backend_err, get, json_err};

const SELECT_FORM: &str = "SELECT id, slug, name, lead_magnet_id, fields, consent_text, \
     redirect_url, thank_you FROM forms";

fn form_from_row(r: &AnyRow) -> StoreResult<Form> {
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
}

fn magnet_from_row(r: &AnyRow) -> StoreResult<LeadMagnet> {
    let stage: String = get(r, "stage")?;
    Ok(LeadMagnet {
        id: LeadMagnetId::new(get(r, "id")?),
        slug: get(r, "slug")?,
        name: get(r, "name")?,
        kind: get(r, "kind")?,
        stage: FunnelStage::parse(&stage)
            .ok_or_else(|| StoreError::Backend("stored funnel stage is not valid".into()))?,
    })
}

/// Form columns after the id, in the order [`form_row`] gives their values.
pub(crate) const FORM_COLUMNS: [&str; 7] = [
    "slug",
    "name",
    "lead_magnet_id",
    "fields",
    "consent_text",
    "redirect_url",
    "thank_you",
];

pub(crate) fn form_row(f: &Form) -> StoreResult<Vec<crate::Arg>> {
    Ok(vec![
        f.slug.as_str().into(),
        f.name.as_str().into(),
        f.lead_magnet_id.map(LeadMagnetId::get).into(),
        serde_json::to_string(&f.fields).map_err(json_err)?.into(),
        f.consent_text.as_str().into(),
        f.redirect_url.as_deref().into(),
        f.thank_you.as_str().into(),
    ])
}

impl SqlStore {
    async fn all<T>(&self, sql: &str, map: fn(&AnyRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        Sql::new(sql)
            .query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(map)
            .collect()
    }
}

#[async_trait]
impl CatalogStore for SqlStore {
    async fn teams(&self) -> StoreResult<Vec<Team>> {
        self.all("SELECT id, name, function FROM teams ORDER BY id", |r| {
            Ok(Team {
                id: TeamId::new(get(r, "id")?),
                name: get(r, "name")?,
                function: get(r, "function")?,
            })
        })
        .await
    }

    async fn lead_magnets(&self) -> StoreResult<Vec<LeadMagnet>> {
        self.all(
            "SELECT id, slug, name, kind, stage FROM lead_magnets ORDER BY id",
            magnet_from_row,
        )
        .await
    }

    async fn create_lead_magnet(&self, m: &LeadMagnet) -> StoreResult<LeadMagnetId> {
        let mut sql = Sql::new("INSERT INTO lead_magnets (slug, name, kind, stage) VALUES ");
        sql.list([
            m.slug.as_str(),
            m.name.as_str(),
            m.kind.as_str(),
            m.stage.as_str(),
        ])
        .push(" RETURNING id");
        Ok(LeadMagnetId::new(self.insert_returning_id(sql).await?))
    }

    async fn update_lead_magnet(&self, m: &LeadMagnet) -> StoreResult<()> {
        let mut sql = Sql::new("UPDATE lead_magnets SET slug = ");
        sql.arg(m.slug.as_str())
            .push(", name = ")
            .arg(m.name.as_str())
            .push(", kind = ")
            .arg(m.kind.as_str())
            .push(", stage = ")
            .arg(m.stage.as_str())
            .push(" WHERE id = ")
            .arg(m.id.get());
        self.exec_expecting_row(sql).await
    }

    async fn delete_lead_magnet(&self, id: LeadMagnetId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut detach = Sql::new("UPDATE forms SET lead_magnet_id = NULL WHERE lead_magnet_id = ");
        detach.arg(id.get());
        detach
            .query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        let mut del = Sql::new("DELETE FROM lead_magnets WHERE id = ");
        del.arg(id.get());
        let done = del
            .query(self.dialect)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    async fn forms(&self) -> StoreResult<Vec<Form>> {
        self.all(&format!("{SELECT_FORM} ORDER BY id"), form_from_row)
            .await
    }

    async fn form_by_slug(&self, slug: &str) -> StoreResult<Form> {
        let mut sql = Sql::new(SELECT_FORM);
        sql.push(" WHERE slug = ").arg(slug);
        form_from_row(&self.one(sql).await?)
    }

    async fn create_form(&self, f: &Form) -> StoreResult<FormId> {
        let mut sql = Sql::new(&format!(
            "INSERT INTO forms ({}) VALUES ",
            FORM_COLUMNS.join(", ")
        ));
        sql.list(form_row(f)?);
        sql.push(" RETURNING id");
        Ok(FormId::new(self.insert_returning_id(sql).await?))
    }

    async fn update_form(&self, f: &Form) -> StoreResult<()> {
        let mut sql = Sql::new(&format!(
            "UPDATE forms SET ({}) = ",
            FORM_COLUMNS.join(", ")
        ));
        sql.list(form_row(f)?);
        sql.push(" WHERE id = ").arg(f.id.get());
        self.exec_expecting_row(sql).await
    }

    async fn delete_form(&self, id: FormId) -> StoreResult<()> {
        let mut sql = Sql::new("DELETE FROM forms WHERE id = ");
        sql.arg(id.get());
        self.exec_expecting_row(sql).await
    }
}
