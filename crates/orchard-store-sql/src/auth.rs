//! Users, API tokens and browser sessions. Secrets are never stored: tokens and session ids
//! only as SHA-256 hashes, passwords only as Argon2 hashes made by the web layer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orchard_core::auth::Role;
use orchard_core::team::{RepProfile, User};
use orchard_core::{Email, TeamId, TokenId, UserId};
use orchard_store::{ApiToken, AuthStore, Credentials, Session, StoreError, StoreResult};
use sqlx::any::AnyRow;

use crate::{Arg, Sql, SqlStore, backend_err, from_ms, get, json_err, ms};

pub(crate) const USER_COLUMNS: [&str; 8] = [
    "id",
    "email",
    "name",
    "role",
    "team_id",
    "profile",
    "password_hash",
    "created_at",
];

pub(crate) fn user_row(
    u: &User,
    password_hash: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Arg>> {
    Ok(vec![
        u.id.get().into(),
        u.email.as_str().into(),
        u.name.as_str().into(),
        u.role.as_str().into(),
        u.team_id.map(TeamId::get).into(),
        serde_json::to_string(&u.profile).map_err(json_err)?.into(),
        password_hash.into(),
        ms(now).into(),
    ])
}

const SELECT_USER: &str =
    "SELECT id, email, name, role, team_id, profile, password_hash FROM users";

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} is not valid").into())
}

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    let email: String = get(row, "email")?;
    let role: String = get(row, "role")?;
    let profile: String = get(row, "profile")?;
    Ok(User {
        id: UserId::new(get(row, "id")?),
        email: Email::parse(&email).map_err(|_| corrupt("email"))?,
        name: get(row, "name")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
        team_id: get::<Option<i64>>(row, "team_id")?.map(TeamId::new),
        profile: serde_json::from_str::<RepProfile>(&profile).map_err(json_err)?,
    })
}

#[async_trait]
impl AuthStore for SqlStore {
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<UserId> {
        // The id is assigned by the database; the one in `user` is ignored.
        let mut sql = Sql::new(
            "INSERT INTO users (email, name, role, team_id, profile, password_hash, created_at) \
             VALUES ",
        );
        sql.list(
            user_row(user, password_hash, Utc::now())?
                .into_iter()
                .skip(1),
        );
        sql.push(" RETURNING id");
        Ok(UserId::new(self.insert_returning_id(sql).await?))
    }

    async fn user_credentials(&self, email: &Email) -> StoreResult<Credentials> {
        let mut sql = Sql::new(SELECT_USER);
        sql.push(" WHERE email = ").arg(email.as_str());
        let row = self.one(sql).await?;
        Ok(Credentials {
            user: user_from_row(&row)?,
            password_hash: get(&row, "password_hash")?,
        })
    }

    async fn user(&self, id: UserId) -> StoreResult<User> {
        let mut sql = Sql::new(SELECT_USER);
        sql.push(" WHERE id = ").arg(id.get());
        user_from_row(&self.one(sql).await?)
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        Sql::new(&format!("{SELECT_USER} ORDER BY id"))
            .query(self.dialect)
            .fetch_all(self.pool())
            .await
            .map_err(backend_err)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn user_count(&self) -> StoreResult<i64> {
        get(
            &self
                .one(Sql::new("SELECT count(*) AS n FROM users"))
                .await?,
            "n",
        )
    }

    async fn set_password(&self, id: UserId, password_hash: &str) -> StoreResult<()> {
        let mut sql = Sql::new("UPDATE users SET password_hash = ");
        sql.arg(password_hash).push(" WHERE id = ").arg(id.get());
        self.exec_expecting_row(sql).await
    }

    async fn create_token(&self, name: &str, role: Role, token_hash: &str) -> StoreResult<TokenId> {
        let mut sql =
            Sql::new("INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (");
        sql.arg(name)
            .push(", ")
            .arg(role.as_str())
            .push(", ")
            .arg(token_hash)
            .push(", ")
            .arg(ms(Utc::now()))
            .push(") RETURNING id");
        Ok(TokenId::new(self.insert_returning_id(sql).await?))
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<ApiToken> {
        let mut sql = Sql::new(
            "SELECT id, name, role, created_at FROM api_tokens WHERE revoked_at IS NULL AND token_hash = ",
        );
        sql.arg(token_hash);
        let row = self.one(sql).await?;
        let role: String = get(&row, "role")?;
        Ok(ApiToken {
            id: TokenId::new(get(&row, "id")?),
            name: get(&row, "name")?,
            role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
            created_at: from_ms(get(&row, "created_at")?),
            revoked: false,
        })
    }

    async fn revoke_token(&self, id: TokenId) -> StoreResult<()> {
        let mut sql = Sql::new("UPDATE api_tokens SET revoked_at = ");
        sql.arg(ms(Utc::now()))
            .push(" WHERE revoked_at IS NULL AND id = ")
            .arg(id.get());
        self.exec_expecting_row(sql).await
    }

    async fn create_session(&self, id_hash: &str, s: &Session) -> StoreResult<()> {
        let mut sql = Sql::new(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (",
        );
        sql.arg(id_hash)
            .push(", ")
            .arg(s.user_id.get())
            .push(", ")
            .arg(s.csrf_token.as_str())
            .push(", ")
            .arg(ms(Utc::now()))
            .push(", ")
            .arg(ms(s.expires_at))
            .push(")");
        self.write(sql).await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Session> {
        let mut sql =
            Sql::new("SELECT user_id, csrf_token, expires_at FROM sessions WHERE id_hash = ");
        sql.arg(id_hash).push(" AND expires_at > ").arg(ms(now));
        let row = self.one(sql).await?;
        Ok(Session {
            user_id: UserId::new(get(&row, "user_id")?),
            csrf_token: get(&row, "csrf_token")?,
            expires_at: from_ms(get(&row, "expires_at")?),
        })
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        let mut sql = Sql::new("DELETE FROM sessions WHERE id_hash = ");
        sql.arg(id_hash);
        self.write(sql).await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut sql = Sql::new("DELETE FROM sessions WHERE expires_at <= ");
        sql.arg(ms(now));
        self.write(sql).await
    }
}
