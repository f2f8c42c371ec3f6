//! Scoring through the API: a contact's score explained (`GET /api/v1/contacts/{id}/score`),
//! and the live rule set (`GET`/`PUT /api/v1/scoring/rule-set`). The explanation is built here
//! once and shared by the contact page and `orchard score explain`.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Json;
use chrono::{DateTime, Utc};
use orchard_core::ContactId;
use orchard_core::contact::Contact;
use orchard_core::scoring::RuleSetDef;
use orchard_core::stage::Bands;
use orchard_store::{RuleSetVersion, Store, StoreError, StoreResult, StoredScoreChange};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::bad_query;
use crate::AppState;
use crate::api::events::{TypeWarning, recorded, rule_set_warnings_of};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};

/// A contact's score and the rules behind it. Keys are stable (`orchard score explain
/// --format json` prints the same object).
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    pub contact_id: i64,
    pub email: String,
    pub score: i64,
    /// hot, warm or cold.
    pub temperature: &'static str,
    /// The live rule set, if any.
    pub rule_set: Option<RuleSetRef>,
    /// The score as it stood at the requested date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_at: Option<ScoreAt>,
    /// Every change, oldest first.
    pub changes: Vec<ChangeOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSetRef {
    pub name: String,
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreAt {
    /// RFC 3339.
    pub at: String,
    pub score: i64,
    /// The rule set the score is by: the one live at that date, or the live one for a date
    /// before any was published (it scored the history before it).
    pub rule_set: Option<RuleSetRef>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeOut {
    /// The rule's id.
    pub rule: String,
    pub description: String,
    pub points: i64,
    /// RFC 3339.
    pub at: String,
    /// The causing event's sequence number; absent when the passing of time caused it.
    pub event: Option<i64>,
    /// The event type, or "began to hold" / "stopped holding" for state rules.
    pub cause: String,
    pub rule_version: i64,
    /// The score after this change.
    pub running: i64,
}

/// Builds a contact's explanation from the stored score changes.
pub async fn explanation(
    store: &dyn Store,
    contact: &Contact,
    bands: Bands,
    at: Option<DateTime<Utc>>,
) -> StoreResult<Explanation> {
    let live = store.live_rule_set().await?;
    let sets = store.rule_sets().await?;
    let describe = |version: i64, rule: &str| {
        sets.iter()
            .find(|s| s.version == version)
            .and_then(|s| s.definition.rules.iter().find(|r| r.id == rule))
            .map(|r| r.description.clone())
            .unwrap_or_default()
    };
    let changes = store.score_changes(contact.id).await?;
    let score_at = match at {
        None => None,
        Some(t) => Some(score_then(store, contact, &sets, live.as_ref(), &changes, t).await?),
    };
    let mut running = 0;
    Ok(Explanation {
        contact_id: contact.id.get(),
        email: contact.email.to_string(),
        score: contact.score,
        temperature: bands.temperature(contact.score).as_str(),
        rule_set: live.map(|l| RuleSetRef {
            name: l.definition.name,
            version: l.version,
        }),
        score_at,
        changes: changes
            .into_iter()
            .map(|c| {
                running += c.change.points;
                ChangeOut {
                    description: describe(c.version, &c.change.rule_id),
                    rule: c.change.rule_id.to_string(),
                    points: c.change.points,
                    at: c.change.at.to_rfc3339(),
                    event: c.change.event.map(|e| e.get()),
                    cause: c.change.cause.into_owned(),
                    rule_version: c.version,
                    running,
                }
            })
            .collect(),
    })
}

/// The score at `t` by the rule set live then. The live set's stored changes answer for its own
/// time and for dates before any set was published; a date when another set was live is
/// answered by replaying the contact's log under that set up to then, so publishing a new set
/// does not rewrite what the score was.
async fn score_then(
    store: &dyn Store,
    contact: &Contact,
    sets: &[RuleSetVersion],
    live: Option<&RuleSetVersion>,
    changes: &[StoredScoreChange],
    t: DateTime<Utc>,
) -> StoreResult<ScoreAt> {
    let then = sets
        .iter()
        .filter(|s| s.live_since.is_some_and(|since| since <= t))
        .max_by_key(|s| (s.live_since, s.version));
    let reference = |s: &RuleSetVersion| RuleSetRef {
        name: s.definition.name.clone(),
        version: s.version,
    };
    let score = match then {
        Some(v) if live.is_none_or(|l| l.version != v.version) => {
            let set = orchard_core::scoring::RuleSet::compile(&v.definition, v.version)
                .map_err(|e| StoreError::Invalid(format!("rule set v{}: {e}", v.version)))?;
            return Ok(ScoreAt {
                at: t.to_rfc3339(),
                score: store.score_as_of(contact.id, &set, t).await?.score,
                rule_set: Some(reference(v)),
            });
        }
        _ => orchard_core::scoring::score_at(changes.iter().map(|c| &c.change), t),
    };
    Ok(ScoreAt {
        at: t.to_rfc3339(),
        score,
        rule_set: live.map(reference),
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScoreParams {
    /// Also give the score as it stood at this date (2026-03-31 or RFC 3339).
    pub at: Option<String>,
}

/// A contact's score explained: every rule that fired, when, its points and cause.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/score",
    tag = "scoring",
    params(("id" = i64, Path, description = "Contact id", example = 1), ScoreParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The explanation", body = Explanation),
        (status = 400, description = "A bad id or date", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
    )
)]
pub async fn contact_score(
    State(state): State<AppState>,
    _caller: ApiCaller,
    id: Result<Path<i64>, PathRejection>,
    params: Result<Query<ScoreParams>, QueryRejection>,
) -> Result<Json<Explanation>, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::bad_request("id: must be a whole number"))?;
    let Query(params) = params.map_err(bad_query)?;
    let at = params
        .at
        .as_deref()
        .map(|a| {
            orchard_core::import::parse_time(a).ok_or_else(|| {
                ApiError::bad_request(format!("at: '{a}' is not a date (2026-03-31 or RFC 3339)"))
            })
        })
        .transpose()?;
    let contact = match state.store.contact(ContactId::new(id)).await {
        Err(StoreError::NotFound) => return Err(ApiError::not_found("contact")),
        other => other?,
    };
    Ok(Json(
        explanation(state.store.as_ref(), &contact, state.config.bands, at).await?,
    ))
}

/// A refused rule set as the API's error: `details` names the rule and, for a mistake in its
/// text, the field and the parser's column, expectation and finding, as segment filters do.
fn rule_set_error(e: orchard_core::scoring::RuleError) -> ApiError {
    let mut details = match &e.text {
        Some((field, p)) => super::text_mistake(field, p),
        None => serde_json::Map::new(),
    };
    details.insert("rule".into(), e.rule.as_str().into());
    ApiError::bad_request(e.to_string()).with_details(details.into())
}

/// Saves `def` as the live rule set and rescores every contact with it in the background.
pub async fn publish(
    store: &std::sync::Arc<dyn Store>,
    def: &RuleSetDef,
    now: DateTime<Utc>,
) -> Result<i64, ApiError> {
    // Checked here as well as by the store, for the mistake's place in `details`.
    orchard_core::scoring::RuleSet::compile_new(def).map_err(rule_set_error)?;
    let version = match store.save_rule_set(def, true, now).await {
        Err(StoreError::Invalid(m)) => return Err(ApiError::bad_request(m)),
        other => other?,
    };
    let store = std::sync::Arc::clone(store);
    tokio::spawn(async move {
        match orchard_store::refresh_all(
            store.as_ref(),
            Utc::now(),
            orchard_store::LIVE_BATCH,
            orchard_store::Refresh::Everything,
            &|_| {},
        )
        .await
        {
            Ok(n) => tracing::info!(version, contacts = n, "rescored with the new rule set"),
            Err(e) => {
                tracing::error!(version, error = %e, "rescoring with the new rule set failed")
            }
        }
    });
    Ok(version)
}

/// The live rule set, with its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSetOut {
    pub version: i64,
    /// RFC 3339.
    pub live_since: Option<String>,
    #[schema(value_type = Object)]
    pub definition: RuleSetDef,
    /// Event types the rules name that no event has had (see `SegmentOut`'s).
    pub warnings: Vec<TypeWarning>,
}

/// The event types `def`'s rules name that no event has had; none for a set that does not
/// compile (the caller has refused it, or it is an old live one whose mistakes are reported
/// elsewhere).
pub async fn rule_set_warnings(
    store: &dyn Store,
    def: &RuleSetDef,
) -> StoreResult<Vec<TypeWarning>> {
    let Ok(set) = orchard_core::scoring::RuleSet::compile(def, 0) else {
        return Ok(Vec::new());
    };
    Ok(rule_set_warnings_of(&set, &recorded(store).await?))
}

/// The live scoring rule set (404 when none is live).
#[utoipa::path(get, path = "/api/v1/scoring/rule-set", tag = "scoring", security(("bearer" = [])),
    responses((status = 200, body = RuleSetOut), (status = 404, body = ErrorBody)))]
pub async fn live_rule_set(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> Result<Json<RuleSetOut>, ApiError> {
    let live = state
        .store
        .live_rule_set()
        .await?
        .ok_or_else(|| ApiError::not_found("live rule set"))?;
    Ok(Json(RuleSetOut {
        version: live.version,
        live_since: live.live_since.map(|t| t.to_rfc3339()),
        warnings: rule_set_warnings(state.store.as_ref(), &live.definition).await?,
        definition: live.definition,
    }))
}

/// Publish a new version of the rule set and make it live. Every contact is rescored with it
/// in the background; the answer comes at once with the new version.
#[utoipa::path(put, path = "/api/v1/scoring/rule-set", tag = "scoring",
    request_body(content = Object, description = "`{\"name\", \"rules\": [{\"id\", \"kind\": \"behaviour\"|\"state\"|\"disqualify\", \"on\"?, \"condition\"?, \"points\", \"cap\"?, \"description\"?}]}`"),
    security(("bearer" = [])),
    responses((status = 202, body = RuleSetOut), (status = 400, body = ErrorBody),
               (status = 403, body = ErrorBody)))]
pub async fn publish_rule_set(
    State(state): State<AppState>,
    caller: ApiCaller,
    bytes: Bytes,
) -> Result<(StatusCode, Json<RuleSetOut>), ApiError> {
    if !caller.role.may_manage_capture() {
        return Err(ApiError::forbidden(
            "only admins and marketers publish scoring rules",
        ));
    }
    let def: RuleSetDef = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    let now = Utc::now();
    // Read before the write: a failure after it would answer 500 for a version published.
    let warnings = rule_set_warnings(state.store.as_ref(), &def).await?;
    let version = publish(&state.store, &def, now).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RuleSetOut {
            version,
            live_since: Some(now.to_rfc3339()),
            warnings,
            definition: def,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestIn {
    /// The draft, in the shape `PUT /api/v1/scoring/rule-set` takes.
    #[schema(value_type = Object)]
    pub rule_set: RuleSetDef,
    /// Score as of this date and count deals won after it (default: 90 days ago).
    pub as_of: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestOut {
    /// RFC 3339.
    pub as_of: String,
    /// The live set compared against (none: every score 0).
    pub live_version: Option<i64>,
    /// Contacts, converters, band and stage changes, contacts per stage under each set, and
    /// per set the ROC AUC and conversion per band.
    #[schema(value_type = Object)]
    pub report: orchard_core::backtest::Report,
    /// Event types the draft names that no event has had (up to now, not only up to
    /// `as_of`): a rule on one scores nobody.
    pub warnings: Vec<TypeWarning>,
}

/// How long a backtest may run by default (`WebConfig::backtest_limit`), and the seconds the
/// configuration may set.
pub const BACKTEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);
pub const BACKTEST_SECONDS: std::ops::RangeInclusive<u64> = 1..=3600;

/// Scores every contact under the draft and the live set as of `as_of` and compares them,
/// within `limit`: a draft can cost far more than the live set (hundreds of rules of dozens of
/// windowed counts each), and a backtest runs on the server's cores while people wait.
pub async fn run_backtest(
    store: &dyn Store,
    draft: &RuleSetDef,
    as_of: Option<&str>,
    bands: Bands,
    limit: std::time::Duration,
) -> Result<BacktestOut, ApiError> {
    use orchard_core::scoring::RuleSet;
    let draft = RuleSet::compile_new(draft).map_err(rule_set_error)?;
    let cutoff = match as_of.map(str::trim).filter(|s| !s.is_empty()) {
        None => Utc::now() - chrono::Duration::days(90),
        Some(a) => orchard_core::import::parse_time(a).ok_or_else(|| {
            ApiError::bad_request(format!(
                "as_of: '{a}' is not a date (2026-03-31 or RFC 3339)"
            ))
        })?,
    };
    if cutoff > Utc::now() {
        return Err(ApiError::bad_request(
            "as_of: must be in the past, so that conversions after it can be counted",
        ));
    }
    let live = store.live_rule_set().await?;
    let live_set = match &live {
        Some(l) => RuleSet::compile(&l.definition, l.version)
            .map_err(|e| ApiError::bad_request(format!("the live rule set: {e}")))?,
        None => RuleSet {
            name: "none".into(),
            version: 0,
            rules: Vec::new(),
            thresholds: Default::default(),
            decay: None,
        },
    };
    // Dropped when the limit is reached, which stops the replay (`backtest_scores`).
    let scored = tokio::time::timeout(limit, store.backtest_scores(&live_set, &draft, cutoff))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_costly",
                format!(
                    "the backtest was stopped after {} s: this draft costs too much to replay \
                     over every contact (fewer rules, or fewer counts over time windows, help)",
                    limit.as_secs_f64()
                ),
            )
        })??;
    Ok(BacktestOut {
        as_of: cutoff.to_rfc3339(),
        live_version: live.map(|l| l.version),
        report: orchard_core::backtest::report(&scored, &bands),
        warnings: rule_set_warnings_of(&draft, &recorded(store).await?),
    })
}

/// Backtest a draft rule set against the live one over the historical log, before publishing
/// it: band and stage changes, ROC AUC of each set for separating contacts who later won a deal, and the
/// conversion rate per band. Saves nothing.
#[utoipa::path(post, path = "/api/v1/scoring/backtest", tag = "scoring", request_body = BacktestIn,
    security(("bearer" = [])),
    responses((status = 200, body = BacktestOut), (status = 400, body = ErrorBody),
               (status = 403, body = ErrorBody),
               (status = 422, description = "Stopped after the configured time \
                   (`scoring.backtest_seconds`, 120 s by default): the draft costs too much to \
                   replay over every contact (`too_costly`)", body = ErrorBody)))]
pub async fn backtest(
    State(state): State<AppState>,
    caller: ApiCaller,
    bytes: Bytes,
) -> Result<Json<BacktestOut>, ApiError> {
    if !caller.role.may_change_in_bulk() {
        return Err(ApiError::forbidden(
            "only admins, marketers and sales managers run backtests",
        ));
    }
    let input: BacktestIn = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    Ok(Json(
        run_backtest(
            state.store.as_ref(),
            &input.rule_set,
            input.as_of.as_deref(),
            state.config.bands,
            state.config.backtest_limit,
        )
        .await?,
    ))
}
