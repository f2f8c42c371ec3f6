//! The import page: upload a CSV (or JSON Lines of events), see how its columns were understood
//! and what an import would do (a dry run: every row checked and stored inside a transaction
//! that is rolled back), then import it and get the rejected rows as a table and a CSV. The same
//! path as `orchard import` (`orchard_store::import::run`), so both accept and refuse the same
//! rows with the same words.

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use orchard_core::import::{ImportKind, Mapping, Table, decode};
use orchard_store::import::{ImportError, Outcome, kinds, looks_like_json_lines};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::WebUser;
use crate::ui::Viewer;

/// Uploads larger than this are refused with advice to use the command line.
pub const MAX_UPLOAD: usize = 32 * 1024 * 1024;
/// Rows of the file shown in a preview, and rejected rows listed on the page.
const PREVIEW_ROWS: usize = 10;
const LISTED_REJECTS: usize = 500;

fn reference() -> Vec<Value> {
    let mut kinds: Vec<Value> = ImportKind::ALL
        .into_iter()
        .map(|k| {
            json!({
                "kind": k.as_str(),
                "required": k.column_names().iter().filter(|(_, r)| *r).map(|(c, _)| *c).collect::<Vec<_>>(),
                "optional": k.column_names().iter().filter(|(_, r)| !*r).map(|(c, _)| *c).collect::<Vec<_>>(),
            })
        })
        .collect();
    kinds.push(json!({
        "kind": "events",
        "required": ["id", "type", "email or contact_id or visitor_id"],
        "optional": ["at", "any other column becomes a property"],
    }));
    kinds
}

fn page(state: &AppState, user: &WebUser, status: StatusCode, ctx: Value) -> Response {
    let mut base = json!({
        "viewer": Viewer::from(user),
        "nav": "import",
        "kinds": kinds().collect::<Vec<_>>(),
        "reference": reference(),
        "may_import": user.user.role.may_change_in_bulk(),
    });
    if let (Some(b), Value::Object(extra)) = (base.as_object_mut(), ctx) {
        b.extend(extra);
    }
    (status, state.templates.render("import.html", base)).into_response()
}

pub async fn show(State(state): State<AppState>, user: WebUser) -> Response {
    page(&state, &user, StatusCode::OK, json!({}))
}

/// What the browser posted: multipart with `csrf`, `kind`, `action` (preview or import) and
/// either `file` (an upload) or `content` (the text a preview carried forward).
#[derive(Debug, Default)]
struct Upload {
    csrf: String,
    kind: String,
    action: String,
    file_name: Option<String>,
    bytes: Vec<u8>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, String> {
    let mut up = Upload::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| format!("The upload could not be read: {e}"))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" | "content" => {
                if name == "file" {
                    up.file_name = field.file_name().map(str::to_owned);
                }
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| format!("The upload could not be read: {e}"))?;
                if !data.is_empty() {
                    up.bytes = data.to_vec();
                }
            }
            "csrf" | "kind" | "action" => {
                let v = field
                    .text()
                    .await
                    .map_err(|e| format!("The upload could not be read: {e}"))?;
                match name.as_str() {
                    "csrf" => up.csrf = v,
                    "kind" => up.kind = v,
                    _ => up.action = v,
                }
            }
            _ => {}
        }
    }
    Ok(up)
}

fn outcome_json(out: &Outcome) -> Value {
    json!({
        "imported": out.imported,
        "unchanged": out.unchanged,
        "rejected": out.rejected.len(),
        "rejects": out.rejected.iter().take(LISTED_REJECTS).map(|r| json!({
            "row": r.row, "column": r.column, "reason": r.reason,
        })).collect::<Vec<_>>(),
        "more_rejects": out.rejected.len().saturating_sub(LISTED_REJECTS),
        "rejects_csv": csv_rejects(out),
        "unknown_columns": out.unknown_columns,
    })
}

/// The rejected rows as the command line writes them: `row,column,reason`, every text safe to
/// open in a spreadsheet (a column's name comes from the file).
fn csv_rejects(out: &Outcome) -> String {
    let mut s = String::from("row,column,reason\r\n");
    for r in &out.rejected {
        s.push_str(&format!(
            "{},{},{}\r\n",
            r.row,
            orchard_core::import::csv_field(r.column.as_deref().unwrap_or_default()),
            orchard_core::import::csv_field(&r.reason)
        ));
    }
    s
}

/// How the header was understood and the first rows as the file gives them.
fn sample(kind: &str, text: &str) -> Value {
    if kind == "events" && looks_like_json_lines(text) {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(PREVIEW_ROWS)
            .collect();
        return json!({"lines": lines});
    }
    let Ok(table) = Table::new(text) else {
        return json!({});
    };
    let header: Vec<String> = table.header().iter().map(|h| (*h).to_owned()).collect();
    let understood: Vec<Value> = match ImportKind::parse(kind) {
        Some(k) => match Mapping::new(k, &table.header()) {
            Ok(m) => m
                .understood()
                .into_iter()
                .map(|(h, c)| json!({"header": h, "column": c}))
                .collect(),
            Err(_) => Vec::new(),
        },
        None => header
            .iter()
            .map(|h| json!({"header": h, "column": h}))
            .collect(),
    };
    let rows: Vec<Value> = table
        .take(PREVIEW_ROWS)
        .map(|r| json!({"row": r.row, "values": r.fields.unwrap_or_default()}))
        .collect();
    json!({"understood": understood, "rows": rows})
}

#[tracing::instrument(skip_all, fields(user = %user.user.email))]
pub async fn submit(
    State(state): State<AppState>,
    user: WebUser,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let refuse = |status: StatusCode, problem: String| {
        page(&state, &user, status, json!({"problem": problem}))
    };
    let upload = match multipart {
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("Not an upload: {e}")),
        Ok(m) => match read_upload(m).await {
            Ok(u) => u,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
        },
    };
    if !user.csrf_ok(&upload.csrf) {
        return refuse(
            StatusCode::FORBIDDEN,
            "The form expired; reload the page and try again.".into(),
        );
    }
    if !user.user.role.may_change_in_bulk() {
        return refuse(
            StatusCode::FORBIDDEN,
            "Only admins, marketers and sales managers import files.".into(),
        );
    }
    if !kinds().any(|k| k == upload.kind) {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose what the file holds.".into(),
        );
    }
    if upload.bytes.is_empty() {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a file to import.".into(),
        );
    }
    let text = match decode(&upload.bytes) {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let dry_run = upload.action != "import";
    let started = std::time::Instant::now();
    let outcome = orchard_store::import::run(
        state.store.as_ref(),
        &upload.kind,
        text,
        Utc::now(),
        dry_run,
        &|_| {},
    )
    .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(ImportError::Unreadable(why)) => {
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, why);
        }
        Err(ImportError::Store(e)) => {
            tracing::error!(error = %e, "import failed");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Orchard could not store the rows; nothing after the last full batch was saved. Try again: rows already stored are recognised.".into(),
            );
        }
    };
    tracing::info!(
        kind = %upload.kind,
        dry_run,
        imported = outcome.imported,
        rejected = outcome.rejected.len(),
        ms = started.elapsed().as_millis() as u64,
        "import"
    );
    page(
        &state,
        &user,
        StatusCode::OK,
        json!({
            "kind": upload.kind,
            "file_name": upload.file_name,
            "dry_run": dry_run,
            "outcome": outcome_json(&outcome),
            "sample": if dry_run { sample(&upload.kind, text) } else { json!(null) },
            "content": if dry_run { Some(text) } else { None },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchard_core::import::RowError;

    #[test]
    fn rejects_download_quotes_what_needs_quoting() {
        let out = Outcome {
            rejected: vec![
                RowError {
                    row: 3,
                    column: Some("email".into()),
                    reason: "'a,\"b' is not an email".into(),
                },
                RowError {
                    row: 4,
                    column: Some("=HYPERLINK(1)".into()),
                    reason: "unknown".into(),
                },
            ],
            ..Outcome::default()
        };
        assert_eq!(
            csv_rejects(&out),
            "row,column,reason\r\n3,email,\"'a,\"\"b' is not an email\"\r\n\
             4,'=HYPERLINK(1),unknown\r\n"
        );
    }

    #[test]
    fn the_reference_lists_every_kind_the_import_takes() {
        let listed: Vec<String> = reference()
            .iter()
            .map(|k| k["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, kinds().collect::<Vec<_>>());
    }
}
