//! HTTP tests: the app on port 0 over a fresh database per test, driven by a real HTTP client.
//! SQLite by default; `ORCHARD_TEST_BACKEND=postgres` with `ORCHARD_TEST_POSTGRES_URL` runs the
//! same tests on PostgreSQL (CI does both).

use std::sync::Arc;

use orchard_core::auth::Role;
use orchard_core::contact::NewContact;
use orchard_core::team::{RepProfile, User};
use orchard_core::{Email, UserId};
use orchard_store::Store;
use orchard_web::{AppState, WebConfig, auth};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

struct TestApp {
    base: String,
    store: Arc<dyn Store>,
    http: reqwest::Client,
}

async fn fresh_store() -> Arc<dyn Store> {
    if std::env::var("ORCHARD_TEST_BACKEND").as_deref() == Ok("postgres") {
        let base = std::env::var("ORCHARD_TEST_POSTGRES_URL")
            .expect("ORCHARD_TEST_BACKEND=postgres needs ORCHARD_TEST_POSTGRES_URL");
        let url = orchard_store_postgres::create_scratch_database(&base, "orchard_http")
            .await
            .expect("scratch database");
        Arc::new(
            orchard_store_postgres::connect(&url)
                .await
                .expect("connect"),
        )
    } else {
        let dir = orchard_store_sqlite::scratch_dir("orchard-http");
        let url = format!("sqlite://{}/orchard.db", dir.display());
        Arc::new(orchard_store_sqlite::connect(&url).await.expect("open"))
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// `spawn_app`, with the state changed by `adjust` first (a rate limit lowered, say).
async fn spawn_app_with(adjust: impl FnOnce(&mut AppState)) -> TestApp {
    let store = fresh_store().await;
    let mut state = AppState::new(Arc::clone(&store), WebConfig::default());
    adjust(&mut state);
    let app = orchard_web::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    TestApp {
        base: format!("http://{addr}"),
        store,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn token(&self, role: Role) -> String {
        let (token, hash) = auth::new_api_token();
        self.store.create_token("test", role, &hash).await.unwrap();
        token
    }

    async fn api(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn contact(&self, email: &str, first: &str, owner: Option<UserId>) -> i64 {
        let mut c = NewContact::new(Email::parse(email).unwrap(), chrono::Utc::now());
        c.details.first_name = Some(first.into());
        c.owner_id = owner;
        self.store.upsert_contact(&c).await.unwrap().0.get()
    }

    /// The demo company with `contacts` contacts, loaded as `orchard demo` loads it; its
    /// contacts and their events.
    async fn load_demo(&self, seed: u64, contacts: usize) -> orchard_core::demo::ContactBatch {
        use orchard_core::demo::{self, DemoSettings};
        let settings = DemoSettings {
            seed,
            contacts,
            now: chrono::Utc::now(),
        };
        let company = demo::company(&settings);
        self.store.load_company(&company).await.unwrap();
        let batch = demo::contact_batch(&settings, &company, 0..contacts);
        self.store.load_contact_batch(&batch).await.unwrap();
        self.store.finish_load().await.unwrap();
        batch
    }

    async fn user(&self, email: &str, role: Role, password: &str) -> UserId {
        let u = User {
            id: UserId::new(0),
            email: Email::parse(email).unwrap(),
            name: format!("{role} user"),
            role,
            team_id: None,
            profile: RepProfile::default(),
        };
        self.store
            .create_user(&u, Some(&auth::hash_password(password)))
            .await
            .unwrap()
    }

    /// Logs in through the form like a browser and returns the session cookie.
    async fn login(&self, email: &str, password: &str) -> Result<String, String> {
        let page = self.http.get(self.url("/login")).send().await.unwrap();
        let csrf_cookie =
            set_cookie(&page, auth::LOGIN_CSRF_COOKIE).expect("login sets a csrf cookie");
        let html = page.text().await.unwrap();
        let csrf = hidden_csrf(&html);
        let r = self
            .http
            .post(self.url("/login"))
            .header(COOKIE, format!("{}={csrf_cookie}", auth::LOGIN_CSRF_COOKIE))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::SEE_OTHER {
            set_cookie(&r, auth::SESSION_COOKIE)
                .ok_or_else(|| format!("no session cookie in {:?}", r.headers()))
        } else {
            Err(r.text().await.unwrap())
        }
    }

    async fn page(&self, path: &str, session: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(self.url(path))
            .header(COOKIE, format!("{}={session}", auth::SESSION_COOKIE))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

fn hidden_csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("form has a csrf field")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn healthz_reports_the_backend() {
    let app = spawn_app().await;
    let r: Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "ok");
    assert_eq!(r["backend"], app.store.backend());
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = spawn_app().await;
    let token = app.token(Role::ReadOnly).await;
    app.api("/api/v1/contacts/41", &token).await;
    app.api("/api/v1/contacts/42", &token).await;
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"orchard_http_requests_total{method="GET",route="/api/v1/contacts/{id}",status="404"} 2"#),
        "{text}"
    );
    assert!(
        !text.contains("/api/v1/contacts/41"),
        "raw paths never become labels"
    );
}

#[tokio::test]
async fn openapi_document_describes_the_contacts_api() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    assert!(doc["paths"]["/api/v1/contacts"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/contacts/{id}"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/events"]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Names the API reads are listed as it writes them.
    let stages: Vec<&str> = orchard_core::stage::LifecycleStage::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["StageIn"]["properties"]["stage"]["enum"],
        json!(stages)
    );
    assert_eq!(
        schemas["ContactOut"]["properties"]["stage"]["enum"],
        json!(stages)
    );
    assert_eq!(
        schemas["ContactOut"]["properties"]["temperature"]["enum"],
        json!(["hot", "warm", "cold"])
    );
    assert_eq!(
        schemas["LeadMagnetIn"]["properties"]["stage"]["enum"],
        json!(["top", "middle", "bottom"])
    );
    let params = doc["paths"]["/api/v1/contacts"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let stage = params.iter().find(|p| p["name"] == "stage").unwrap();
    assert_eq!(stage["schema"]["enum"], json!(stages));
    assert_eq!(stage["required"], json!(false));
    assert_eq!(
        schemas["FormIn"]["properties"]["fields"]["items"]["enum"],
        json!(orchard_core::submission::KNOWN_FIELDS)
    );
}

/// The public endpoints are in the OpenAPI document too, and only they ask for no token; the
/// names they read come from the lists the server reads them by. A beacon over its limit is
/// refused in the API's error body, as documented.
#[tokio::test]
async fn the_public_endpoints_are_documented_and_ask_for_no_token() {
    let app = spawn_app_with(|s| {
        s.beacon_limiter = Arc::new(orchard_web::public::ratelimit::RateLimiter::new(
            1,
            std::time::Duration::from_secs(60),
        ));
    })
    .await;
    let admin = app.token(Role::Admin).await;
    let (_, doc) = app.api("/api/openapi.json", &admin).await;
    let public = [
        ("/f/{slug}", "get"),
        ("/f/{slug}", "post"),
        ("/t/pv.gif", "get"),
        ("/t/pv", "post"),
        ("/t/o/{token}", "get"),
        ("/t/c/{token}", "get"),
    ];
    let mut found = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let is_public = op["tags"] == json!(["public"]);
            assert_eq!(
                is_public,
                public.contains(&(path.as_str(), method.as_str())),
                "{method} {path}: tagged public or not"
            );
            assert_eq!(
                op["security"].is_null(),
                is_public,
                "{method} {path}: a token is asked of every operation but the public ones"
            );
            if is_public {
                found.push((path.clone(), method.clone()));
            }
        }
    }
    assert_eq!(found.len(), public.len(), "documented: {found:?}");

    let schemas = &doc["components"]["schemas"];
    let mut documented: Vec<&str> = schemas["SubmissionFields"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut read: Vec<&str> = ["email", "consent"]
        .into_iter()
        .chain(orchard_core::submission::KNOWN_FIELDS)
        .chain(orchard_core::submission::TRACKING_FIELDS)
        .collect();
    documented.sort_unstable();
    read.sort_unstable();
    assert_eq!(documented, read);
    assert_eq!(
        schemas["SubmissionFields"]["properties"]["consent"]["enum"],
        json!(orchard_core::submission::CONSENT_GIVEN)
    );
    assert_eq!(
        schemas["PageViewFields"]["required"],
        json!(["url"]),
        "{}",
        schemas["PageViewFields"]
    );

    let beacon = || {
        app.http
            .post(app.url("/t/pv"))
            .json(&json!({"url": "/pricing"}))
            .send()
    };
    assert_eq!(beacon().await.unwrap().status(), StatusCode::NO_CONTENT);
    let over = beacon().await.unwrap();
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // The pixel still answers with its image.
    let pixel = app
        .http
        .get(app.url("/t/pv.gif?url=/pricing"))
        .send()
        .await
        .unwrap();
    assert_eq!(pixel.status(), StatusCode::OK);
    assert_eq!(pixel.headers()["content-type"], "image/gif");
}

/// A backtest past its time limit is stopped and answered 422 `too_costly`: a draft of 20
/// rules of 40 windowed counts each, over 600 demo contacts, within 200 ms (it takes seconds).
#[tokio::test]
async fn a_backtest_past_its_time_limit_is_stopped() {
    let app = spawn_app_with(|s| {
        s.config = Arc::new(WebConfig {
            backtest_limit: std::time::Duration::from_millis(200),
            ..WebConfig::default()
        });
    })
    .await;
    app.load_demo(5, 600).await;
    let admin = app.token(Role::Admin).await;
    let rules: Vec<Value> = (1..=20)
        .map(|i| {
            let condition = (0..40)
                .map(|j| format!("count(email_opened, {i}d) > {j}"))
                .collect::<Vec<_>>()
                .join(" or ");
            json!({"id": format!("r{i}"), "kind": "state", "condition": condition, "points": 1})
        })
        .collect();
    let started = std::time::Instant::now();
    let (s, out) = app
        .post_json(
            "/api/v1/scoring/backtest",
            &admin,
            json!({"rule_set": {"name": "heavy", "rules": rules}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(out["error"]["code"], "too_costly", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stopped after 0.2 s"),
        "{out}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// Every operation on `/{id}` documents the 400 its id gets when it is no whole number, and
/// the ones without a body answer it (an id past 64 bits, as a fuzzer sends).
#[tokio::test]
async fn every_id_in_a_path_is_checked_and_its_400_documented() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin).await;
    let (_, doc) = app.api("/api/openapi.json", &admin).await;
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.contains("{id}") {
            continue;
        }
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["responses"]["400"].is_object(),
                "{method} {path} does not document its 400"
            );
            if method != "get" && method != "delete" {
                continue;
            }
            let url = app.url(&path.replace("{id}", "123456789012345678901234567890"));
            let request = match method.as_str() {
                "get" => app.http.get(url),
                _ => app.http.delete(url),
            };
            let r = request.bearer_auth(&admin).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body["error"]["code"], "bad_request",
                "{method} {path}: {body}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "only {checked} operations on an id were tried"
    );
}

#[tokio::test]
async fn api_refuses_missing_and_revoked_tokens() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/api/v1/contacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = app.api("/api/v1/contacts", "orch_not-a-real-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let token = app.token(Role::ReadOnly).await;
    let tok = app
        .store
        .token_by_hash(&auth::sha256_hex(&token))
        .await
        .unwrap();
    assert_eq!(app.api("/api/v1/contacts", &token).await.0, StatusCode::OK);
    app.store.revoke_token(tok.id).await.unwrap();
    assert_eq!(
        app.api("/api/v1/contacts", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn contacts_api_lists_pages_and_finds_by_email() {
    let app = spawn_app().await;
    let token = app.token(Role::Marketer).await;
    let owner = app.user("rep@orchard.test", Role::Rep, "secret-pass").await;
    for i in 0..7 {
        app.contact(
            &format!("p{i}@example.com"),
            &format!("P{i}"),
            (i == 3).then_some(owner),
        )
        .await;
    }
    let (status, page) = app.api("/api/v1/contacts?per_page=5", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 7);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let (_, second) = app.api("/api/v1/contacts?per_page=5&page=2", &token).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    // A page far past the end, up to the largest number a page can be, is as empty as the
    // next one (its offset overflowed and panicked the handler).
    for path in [
        "/api/v1/contacts?per_page=500&page=9223372036854775807",
        "/api/v1/contacts?page=368934881474191034",
    ] {
        let (status, far) = app.api(path, &token).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(far["total"], 7);
        assert_eq!(far["items"], json!([]), "{path}");
    }
    let session = app.login("rep@orchard.test", "secret-pass").await.unwrap();
    let (status, _) = app
        .page("/contacts?page=9223372036854775807", &session)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (_, found) = app
        .api("/api/v1/contacts?email=P3@Example.COM", &token)
        .await;
    assert_eq!(found["total"], 1);
    let c = &found["items"][0];
    assert_eq!(c["email"], "p3@example.com");
    assert_eq!(c["score"], 0);
    assert_eq!(c["stage"], "subscriber");
    assert_eq!(c["temperature"], "cold");
    assert_eq!(c["owner"]["email"], "rep@orchard.test");

    let id = c["id"].as_i64().unwrap();
    let (status, one) = app.api(&format!("/api/v1/contacts/{id}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["email"], "p3@example.com");
    assert_eq!(one["attributes"]["first_name"], "P3");
}

#[tokio::test]
async fn contacts_api_names_what_is_wrong_with_a_query() {
    let app = spawn_app().await;
    let token = app.token(Role::ReadOnly).await;
    for (path, field) in [
        ("/api/v1/contacts?per_page=0", "per_page"),
        ("/api/v1/contacts?page=-1", "page"),
        ("/api/v1/contacts?stage=lead", "stage"),
        ("/api/v1/contacts?temperature=boiling", "temperature"),
        ("/api/v1/contacts?email=not-an-email", "email"),
        ("/api/v1/contacts?colour=red", "colour"),
        ("/api/v1/contacts?page=two", "page"),
    ] {
        let (status, body) = app.api(path, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{path}: {body}"
        );
    }
    let (status, body) = app.api("/api/v1/contacts/abc", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, body) = app.api("/api/v1/contacts/999999", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn login_sets_a_session_and_logout_ends_it() {
    let app = spawn_app().await;
    app.user("boss@orchard.test", Role::Admin, "right-password")
        .await;
    app.contact("lead@example.com", "Lena", None).await;
    assert!(
        app.login("boss@orchard.test", "wrong-password")
            .await
            .unwrap_err()
            .contains("Wrong email or password")
    );
    assert!(
        app.login("nobody@orchard.test", "right-password")
            .await
            .unwrap_err()
            .contains("Wrong email or password")
    );
    let session = app
        .login("BOSS@orchard.test", "right-password")
        .await
        .unwrap();
    let (status, html) = app.page("/contacts", &session).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("lead@example.com"));
    let csrf = hidden_csrf(&html);

    // Logging out needs the session's CSRF token.
    let forged = app
        .http
        .post(app.url("/logout"))
        .header(COOKIE, format!("{}={session}", auth::SESSION_COOKIE))
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let out = app
        .http
        .post(app.url("/logout"))
        .header(COOKIE, format!("{}={session}", auth::SESSION_COOKIE))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.headers()[LOCATION], "/login");
    let (status, _) = app.page("/contacts", &session).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the old session no longer works"
    );
}

#[tokio::test]
async fn login_form_without_its_csrf_cookie_is_refused() {
    let app = spawn_app().await;
    app.user("boss@orchard.test", Role::Admin, "right-password")
        .await;
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("email", "boss@orchard.test"),
            ("password", "right-password"),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(&r, auth::SESSION_COOKIE).is_none());
    assert!(r.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn pages_need_a_login() {
    let app = spawn_app().await;
    for path in ["/", "/contacts", "/contacts/1"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[LOCATION], "/login");
    }
}

#[tokio::test]
async fn a_rep_sees_only_their_own_book() {
    let app = spawn_app().await;
    let rep = app
        .user("rep@orchard.test", Role::Rep, "rep-password")
        .await;
    let mine = app.contact("mine@example.com", "Mine", Some(rep)).await;
    let theirs = app.contact("theirs@example.com", "Theirs", None).await;
    let session = app.login("rep@orchard.test", "rep-password").await.unwrap();
    let (_, html) = app.page("/contacts", &session).await;
    assert!(html.contains("mine@example.com") && !html.contains("theirs@example.com"));
    assert_eq!(
        app.page(&format!("/contacts/{mine}"), &session).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.page(&format!("/contacts/{theirs}"), &session).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn contact_pages_escape_what_visitors_typed() {
    let app = spawn_app().await;
    app.user("boss@orchard.test", Role::Admin, "right-password")
        .await;
    let id = app
        .contact("x@example.com", "<script>alert(1)</script>", None)
        .await;
    let session = app
        .login("boss@orchard.test", "right-password")
        .await
        .unwrap();
    let (_, list) = app.page("/contacts", &session).await;
    let (_, page) = app.page(&format!("/contacts/{id}"), &session).await;
    for html in [list, page] {
        assert!(!html.contains("<script>alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;"));
    }
}

impl TestApp {
    async fn post_events(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/api/v1/events"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn opened(i: usize, email: &str) -> Value {
    serde_json::json!({"id": format!("ev-{i}"), "type": "email_opened", "email": email, "at": "2026-11-01T10:00:00Z"})
}

#[tokio::test]
async fn a_replayed_batch_stores_each_event_once() {
    let app = spawn_app().await;
    let token = app.token(Role::Marketer).await;
    let batch = serde_json::json!({"events": (0..20).map(|i| opened(i, "ann@example.com")).collect::<Vec<_>>()});
    let (status, first) = app.post_events(&token, batch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["stored"].as_u64(), first["duplicates"].as_u64()),
        (Some(20), Some(0))
    );
    let (_, again) = app.post_events(&token, batch).await;
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(20))
    );
    assert_eq!(app.store.table_counts().await.unwrap()["events"], 20);
}

#[tokio::test]
async fn four_bad_events_of_a_hundred_are_named_and_the_rest_stored() {
    let app = spawn_app().await;
    let token = app.token(Role::Marketer).await;
    let mut events: Vec<Value> = (0..100)
        .map(|i| opened(i, &format!("p{}@example.com", i % 10)))
        .collect();
    events[7] = serde_json::json!({"id": "bad-7", "type": "email_opened", "email": "not-an-email"});
    events[42] =
        serde_json::json!({"id": "bad-42", "type": "page_viewed", "email": "a@example.com"});
    // A forged transition: only Orchard records what its rules and people decided.
    events[60] = serde_json::json!({"id": "bad-60", "type": "stage_changed", "email": "p0@example.com",
        "properties": {"from": "subscriber", "to": "customer", "manual": true}});
    events[99] = serde_json::json!({"id": "bad-99", "type": "email_opened", "contact_id": 123456});
    let (status, body) = app
        .post_events(&token, serde_json::json!({ "events": events }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stored"], 96);
    let rejected = body["rejected"].as_array().unwrap();
    let named: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        [(7, "bad-7"), (42, "bad-42"), (60, "bad-60"), (99, "bad-99")]
    );
    assert!(rejected[0]["error"].as_str().unwrap().starts_with("email"));
    assert!(rejected[1]["error"].as_str().unwrap().contains("url"));
    assert!(
        rejected[2]["error"]
            .as_str()
            .unwrap()
            .contains("recorded by Orchard itself")
    );
    assert!(
        rejected[3]["error"]
            .as_str()
            .unwrap()
            .contains("no contact 123456")
    );
}

#[tokio::test]
async fn an_event_for_an_unknown_email_creates_the_contact() {
    let app = spawn_app().await;
    let token = app.token(Role::Marketer).await;
    let (_, body) = app
        .post_events(
            &token,
            serde_json::json!({"events": [
                {"id": "v1", "type": "page_viewed", "email": "New.Lead@Example.com", "at": "2026-11-02T09:00:00Z", "properties": {"url": "/pricing"}},
                {"id": "v2", "type": "email_subscribed", "email": "new.lead@example.com", "at": "2026-11-01T09:00:00Z"}
            ]}),
        )
        .await;
    assert_eq!(body["stored"], 2);
    let (_, found) = app
        .api("/api/v1/contacts?email=new.lead@example.com", &token)
        .await;
    assert_eq!(found["total"], 1);
    let c = &found["items"][0];
    assert_eq!(
        c["created_at"], "2026-11-01T09:00:00+00:00",
        "first seen at the earliest event"
    );
    assert_eq!(c["last_activity_at"], "2026-11-02T09:00:00+00:00");
    let id = orchard_core::ContactId::new(c["id"].as_i64().unwrap());
    let timeline = app.store.contact_events(id, 10).await.unwrap();
    let sent: Vec<_> = timeline
        .iter()
        .filter(|e| e.event_type.as_str() != "stage_changed")
        .collect();
    assert_eq!(
        sent.len(),
        2,
        "the two events (stage rules may add their own)"
    );

    // Dated ahead by a sender's clock: stored as sent, but nobody is created in the future.
    let ahead = (chrono::Utc::now() + chrono::Duration::hours(12)).to_rfc3339();
    let (_, body) = app
        .post_events(
            &token,
            serde_json::json!({"events": [{"id": "f1", "type": "email_opened", "email": "early@example.com", "at": ahead}]}),
        )
        .await;
    assert_eq!(body["stored"], 1, "{body}");
    let early = app
        .store
        .contact_by_email(&orchard_core::Email::parse("early@example.com").unwrap())
        .await
        .unwrap();
    assert!(
        early.created_at <= chrono::Utc::now(),
        "{:?}",
        early.created_at
    );
}

#[tokio::test]
async fn event_batches_that_are_not_batches_change_nothing() {
    let app = spawn_app().await;
    let token = app.token(Role::Marketer).await;
    let raw = |body: &'static str| {
        app.http
            .post(app.url("/api/v1/events"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, want) in [
        ("{not json", "not an event batch"),
        ("{\"events\": []}", "1 to 10000"),
        ("{\"events\": [], \"extra\": 1}", "unknown field"),
        ("[1, 2]", "not an event batch"),
    ] {
        let r = raw(body).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "bad_request");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(want),
            "{body}: {v}"
        );
    }
    let too_many = serde_json::json!({"events": (0..10_001).map(|i| opened(i, "a@example.com")).collect::<Vec<_>>()});
    let (status, _) = app.post_events(&token, too_many).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reader = app.token(Role::ReadOnly).await;
    let (status, body) = app
        .post_events(
            &reader,
            serde_json::json!({"events": [opened(1, "a@example.com")]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(app.store.table_counts().await.unwrap()["events"], 0);
    assert_eq!(app.store.table_counts().await.unwrap()["contacts"], 0);
}

#[tokio::test]
async fn requests_no_handler_reads_get_the_api_error_body() {
    let app = spawn_app().await;
    let token = app.token(Role::Marketer).await;
    // Over the 4 MiB limit: a segment whose description is 5 MiB.
    let huge = format!(
        "{{\"name\": \"Big\", \"filter\": \"score >= 1\", \"description\": \"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let r = app
        .http
        .post(app.url("/api/v1/segments"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("4 MiB"));
    let r = app
        .http
        .delete(app.url("/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
    let (s, v) = app.api("/api/v1/nothing-here", &token).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    let (_, segments) = app.api("/api/v1/segments", &token).await;
    assert_eq!(segments.as_array().map(Vec::len), Some(0), "{segments}");
}

impl TestApp {
    async fn post_json(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A lead magnet and a form offering it, made through the API.
    async fn checklist_form(&self, extra: Value) -> String {
        let token = self.token(Role::Marketer).await;
        let (s, _) = self
            .post_json(
                "/api/v1/lead-magnets",
                &token,
                serde_json::json!({"slug": "crm-checklist", "name": "CRM checklist", "kind": "checklist", "stage": "top"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let mut form = serde_json::json!({"slug": "get-checklist", "name": "Get the CRM checklist",
            "lead_magnet": "crm-checklist", "fields": ["first_name", "company"],
            "consent_text": "Email me the checklist and related tips."});
        for (k, v) in extra.as_object().unwrap() {
            form[k] = v.clone();
        }
        let (s, body) = self.post_json("/api/v1/forms", &token, form).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body["slug"].as_str().unwrap().to_owned()
    }

    async fn submit_json(&self, slug: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(&format!("/f/{slug}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn contact_count(&self) -> i64 {
        self.store.table_counts().await.unwrap()["contacts"]
    }
}

#[tokio::test]
async fn forms_api_creates_lists_and_refuses_bad_definitions() {
    let app = spawn_app().await;
    let slug = app.checklist_form(serde_json::json!({})).await;
    let token = app.token(Role::ReadOnly).await;
    let (_, forms) = app.api("/api/v1/forms", &token).await;
    assert_eq!(forms[0]["slug"], slug);
    assert_eq!(forms[0]["lead_magnet"], "crm-checklist");
    assert_eq!(forms[0]["url"], "/f/get-checklist");
    let marketer = app.token(Role::Marketer).await;
    for (body, want) in [
        (serde_json::json!({"slug": "Bad Slug", "name": "x"}), "slug"),
        (
            serde_json::json!({"slug": "ok", "name": "x", "fields": ["password"]}),
            "fields",
        ),
        (
            serde_json::json!({"slug": "ok", "name": "x", "lead_magnet": "nope"}),
            "lead_magnet",
        ),
        (
            serde_json::json!({"slug": "ok", "name": "x", "redirect_url": "javascript:alert(1)"}),
            "redirect_url",
        ),
        (
            serde_json::json!({"slug": "ok", "name": "x", "colour": "red"}),
            "unknown field",
        ),
    ] {
        let (s, b) = app.post_json("/api/v1/forms", &marketer, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(
            b["error"]["message"].as_str().unwrap().contains(want),
            "{b}"
        );
    }
    let (s, _) = app
        .post_json(
            "/api/v1/forms",
            &marketer,
            serde_json::json!({"slug": "get-checklist", "name": "again"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .post_json(
            "/api/v1/forms",
            &token,
            serde_json::json!({"slug": "mine", "name": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.store.forms().await.unwrap().len(), 1);
}

#[tokio::test]
async fn resubmitting_with_another_case_leaves_one_contact() {
    let app = spawn_app().await;
    let slug = app.checklist_form(serde_json::json!({})).await;
    let (s, b) = app
        .submit_json(&slug, serde_json::json!({"email": "Ann@Example.com", "first_name": "Ann", "consent": true, "utm_source": "linkedin"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "ok");
    let (s, _) = app
        .submit_json(&slug, serde_json::json!({"email": "ANN@example.com", "company": "Acme", "consent": "on", "utm_source": "google"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.contact_count().await, 1);
    let c = app
        .store
        .contact_by_email(&Email::parse("ann@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(c.details.first_name.as_deref(), Some("Ann"));
    assert_eq!(c.details.demographics.company.as_deref(), Some("Acme"));
    assert_eq!(c.stage.as_str(), "IQL");
    let a = app.store.attribution(c.id).await.unwrap();
    assert_eq!(a.first_touch.unwrap().source.as_deref(), Some("linkedin"));
    assert_eq!(a.last_touch.unwrap().source.as_deref(), Some("google"));
}

#[tokio::test]
async fn spam_and_invalid_submissions_create_nothing() {
    let app = spawn_app().await;
    let slug = app.checklist_form(serde_json::json!({})).await;
    let (s, b) = app
        .submit_json(&slug, serde_json::json!({"email": "bot@example.com", "consent": "on", "website": "http://spam.example"}))
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("ok")),
        "bots see a success"
    );
    let (s, b) = app
        .submit_json(
            &slug,
            serde_json::json!({"email": "not-an-email", "first_name": "X"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["code"], "invalid");
    assert!(b["error"]["details"]["fields"]["email"].is_string());
    assert!(b["error"]["details"]["fields"]["consent"].is_string());
    // The plain HTML form gets its page back with the field error.
    let r = app
        .http
        .post(app.url(&format!("/f/{slug}")))
        .form(&[("email", "nope"), ("first_name", "<b>X</b>")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Please correct"));
    assert!(
        html.contains("&lt;b&gt;X") && !html.contains("<b>X"),
        "typed values are escaped"
    );
    assert_eq!(app.contact_count().await, 0);
    assert_eq!(app.store.table_counts().await.unwrap()["events"], 0);
    let r = app
        .http
        .post(app.url("/f/no-such-form"))
        .form(&[("email", "a@b.co")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A form's `visitor_id` field comes from the browser: one that no cookie could carry (a
/// header break, cookie attributes, other text) is left out. Before, the form shown again with
/// its errors wrote it back into `Set-Cookie` (a 500 for a line break; for attributes, a cookie
/// of the sender's making), and an accepted submission tied it to the contact.
#[tokio::test]
async fn a_forged_visitor_id_is_never_written_back_nor_tied_to_a_contact() {
    let app = spawn_app().await;
    let slug = app.checklist_form(serde_json::json!({})).await;
    // A plain HTML post of `fields`, from a browser holding `cookie` as its visitor id.
    let post = |cookie: Option<&'static str>, fields: Vec<(&'static str, &'static str)>| {
        let mut request = app.http.post(app.url(&format!("/f/{slug}"))).form(&fields);
        if let Some(id) = cookie {
            request = request.header(COOKIE, format!("orchard_vid={id}"));
        }
        request.send()
    };
    let taken = |r: &reqwest::Response| r.status().is_success() || r.status().is_redirection();
    for forged in [
        "x; Domain=evil.example; Max-Age=9",
        "line\r\nbreak-1234",
        "\u{e9}t\u{e9}-12345",
    ] {
        let r = post(None, vec![("email", "nope"), ("visitor_id", forged)])
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{forged:?}");
        let vid = set_cookie(&r, "orchard_vid").expect("a visitor cookie");
        assert!(
            orchard_core::submission::is_visitor_id(&vid),
            "{forged:?} gave the cookie {vid:?}"
        );
    }
    let forged = "x; Domain=evil.example";
    let r = post(
        None,
        vec![
            ("email", "ann@example.com"),
            ("consent", "on"),
            ("visitor_id", forged),
        ],
    )
    .await
    .unwrap();
    assert!(taken(&r), "{}", r.status());
    assert_eq!(app.contact_count().await, 1);
    assert_eq!(app.store.contact_for_visitor(forged).await.unwrap(), None);
    // A broken posted id neither refuses the person's submission nor hides the visitor's
    // cookie: the cookie's id is tied to the contact.
    let cookie_id = "0b7c8f2e-4f1a-4c55-9d3e-1f0a2b3c4d5e";
    let r = post(
        Some(cookie_id),
        vec![
            ("email", "bo@example.com"),
            ("consent", "on"),
            ("visitor_id", "line\nbreak-1234"),
        ],
    )
    .await
    .unwrap();
    assert!(taken(&r), "{}", r.status());
    let bo = app.store.contact_for_visitor(cookie_id).await.unwrap();
    assert!(
        bo.is_some(),
        "the cookie's visitor is tied to the new contact"
    );
    // Shown again with its errors, the form keeps the cookie's id, not a posted one (a page
    // elsewhere could post one to fix a visitor's cookie).
    let r = post(
        Some(cookie_id),
        vec![("email", "nope"), ("visitor_id", "posted-by-someone-else")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(set_cookie(&r, "orchard_vid").as_deref(), Some(cookie_id));
}

#[tokio::test]
async fn a_plain_html_post_is_answered_with_the_redirect() {
    let app = spawn_app().await;
    let slug = app
        .checklist_form(serde_json::json!({"redirect_url": "https://example.com/thanks"}))
        .await;
    let page = app
        .http
        .get(app.url(&format!("/f/{slug}?utm_source=newsletter&utm_campaign=nov")))
        .send()
        .await
        .unwrap();
    let vid = set_cookie(&page, "orchard_vid").expect("a visitor id cookie");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"name="utm_source" value="newsletter""#));
    assert!(
        html.contains(r#"name="website""#),
        "the honeypot is on the page"
    );
    let r = app
        .http
        .post(app.url(&format!("/f/{slug}")))
        .header(COOKIE, format!("orchard_vid={vid}"))
        .form(&[
            ("email", "bo@example.com"),
            ("consent", "on"),
            ("utm_source", "newsletter"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "https://example.com/thanks");
    let c = app
        .store
        .contact_by_email(&Email::parse("bo@example.com").unwrap())
        .await
        .unwrap();
    let events: Vec<_> = app
        .store
        .contact_events(c.id, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type.as_str() != "stage_changed")
        .collect();
    assert_eq!(events[0].event_type.as_str(), "form_submitted");
    assert_eq!(events[0].visitor_id.as_deref(), Some(vid.as_str()));
    assert_eq!(events[0].properties["utm_source"], "newsletter");
}

#[tokio::test]
async fn one_address_is_limited_per_form() {
    let app = spawn_app().await;
    let slug = app
        .checklist_form(serde_json::json!({"consent_text": ""}))
        .await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let (s, _) = app
            .submit_json(
                &slug,
                serde_json::json!({"email": format!("p{i}@example.com")}),
            )
            .await;
        statuses.push(s.as_u16());
    }
    assert_eq!(statuses[..10], [200; 10]);
    assert_eq!(statuses[10..], [429, 429]);
    assert_eq!(app.contact_count().await, 10);
}

#[tokio::test]
async fn page_views_before_a_submission_join_the_new_contacts_timeline() {
    let app = spawn_app().await;
    let slug = app.checklist_form(serde_json::json!({})).await;
    let pixel = app
        .http
        .get(app.url("/t/pv.gif?url=/pricing&utm_source=linkedin"))
        .send()
        .await
        .unwrap();
    assert_eq!(pixel.headers()["content-type"], "image/gif");
    let vid = set_cookie(&pixel, "orchard_vid").expect("the beacon gives the visitor an id");
    let cookie = format!("orchard_vid={vid}");
    let r = app
        .http
        .post(app.url("/t/pv"))
        .header(COOKIE, &cookie)
        .json(&serde_json::json!({"url": "/features"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let bad = app
        .http
        .post(app.url("/t/pv"))
        .header(COOKIE, &cookie)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let r = app
        .http
        .post(app.url(&format!("/f/{slug}")))
        .header(COOKIE, &cookie)
        .form(&[("email", "cy@example.com"), ("consent", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Thank you"));
    let c = app
        .store
        .contact_by_email(&Email::parse("cy@example.com").unwrap())
        .await
        .unwrap();
    let urls: Vec<String> = app
        .store
        .contact_events(c.id, 10)
        .await
        .unwrap()
        .iter()
        .filter_map(|e| {
            e.properties
                .get("url")
                .and_then(|u| u.as_str())
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(urls, ["/features", "/pricing"]);
    // After identification, views are recorded on the contact itself.
    app.http
        .get(app.url("/t/pv.gif?url=/pricing"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let latest = &app.store.contact_events(c.id, 1).await.unwrap()[0];
    assert_eq!(latest.contact_id, Some(c.id));
}

#[tokio::test]
async fn signed_opens_and_clicks_count_once_and_forgeries_count_never() {
    use orchard_core::tracking::{Tracked, sign};
    let store = fresh_store().await;
    let key = b"test-tracking-key".to_vec();
    let config = WebConfig {
        tracking_key: orchard_web::TrackingKey(key.clone()),
        ..WebConfig::default()
    };
    let app = orchard_web::router(AppState::new(Arc::clone(&store), config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (id, _) = store
        .upsert_contact(&NewContact::new(
            Email::parse("dee@example.com").unwrap(),
            chrono::Utc::now(),
        ))
        .await
        .unwrap();

    let open = sign(
        &key,
        &Tracked {
            contact: id,
            message: "m1".into(),
            url: None,
        },
    );
    for _ in 0..3 {
        let r = http
            .get(format!("{base}/t/o/{open}.gif"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "image/gif");
    }
    let click = sign(
        &key,
        &Tracked {
            contact: id,
            message: "m1".into(),
            url: Some("https://example.com/pricing".into()),
        },
    );
    let r = http
        .get(format!("{base}/t/c/{click}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[LOCATION], "https://example.com/pricing");
    http.get(format!("{base}/t/c/{click}"))
        .send()
        .await
        .unwrap();

    // Forged: signed with another key, or pointing elsewhere with a reused signature.
    let forged = sign(
        b"guessed",
        &Tracked {
            contact: id,
            message: "m2".into(),
            url: None,
        },
    );
    let r = http
        .get(format!("{base}/t/o/{forged}.gif"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "image/gif",
        "the image shows anyway"
    );
    let (_, mac) = click.split_once('.').unwrap();
    let evil = serde_json::to_vec(&Tracked {
        contact: id,
        message: "m1".into(),
        url: Some("https://evil.example".into()),
    })
    .unwrap();
    let evil: String = evil.iter().map(|b| format!("{b:02x}")).collect();
    let r = http
        .get(format!("{base}/t/c/{evil}.{mac}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "never an open redirect");

    let kinds: Vec<String> = store
        .contact_events(id, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_type.as_str().to_owned())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "email_opened").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "email_clicked").count(), 1);
    assert_eq!(kinds.len(), 2);
}

impl TestApp {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Posts a urlencoded form with the session, like a browser.
    async fn post_form(
        &self,
        path: &str,
        session: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header(COOKIE, format!("{}={session}", auth::SESSION_COOKIE))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Posts multipart form data (text fields and at most one file), like a browser.
    async fn post_multipart(
        &self,
        path: &str,
        session: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &[u8])>,
    ) -> (StatusCode, String) {
        let boundary = "----orchard-test-boundary";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, bytes)) = file {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let r = self
            .http
            .post(self.url(path))
            .header(COOKIE, format!("{}={session}", auth::SESSION_COOKIE))
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

#[tokio::test]
async fn lead_magnets_and_forms_are_changed_and_deleted_through_the_api() {
    use reqwest::Method;
    let app = spawn_app().await;
    app.checklist_form(serde_json::json!({})).await;
    let marketer = app.token(Role::Marketer).await;
    let reader = app.token(Role::ReadOnly).await;
    let (_, forms) = app.api("/api/v1/forms", &reader).await;
    let form_id = forms[0]["id"].as_i64().unwrap();
    let (_, magnets) = app.api("/api/v1/lead-magnets", &reader).await;
    let magnet_id = magnets[0]["id"].as_i64().unwrap();

    let changed = serde_json::json!({"slug": "crm-guide", "name": "The CRM guide",
        "lead_magnet": "crm-checklist", "fields": ["company"], "thank_you": "Thanks!"});
    let (s, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/forms/{form_id}"),
            &marketer,
            Some(changed.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (body["slug"].as_str(), body["url"].as_str()),
        (Some("crm-guide"), Some("/f/crm-guide"))
    );
    let stored = app.store.form_by_slug("crm-guide").await.unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.fields.clone()),
        ("The CRM guide", vec!["company".to_owned()])
    );

    // Bad input, a missing form, a read-only token: each refused, nothing changed.
    for (path, token, body, want) in [
        (
            format!("/api/v1/forms/{form_id}"),
            &marketer,
            serde_json::json!({"slug": "Bad Slug", "name": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/forms/999999".to_owned(),
            &marketer,
            changed.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/forms/nope".to_owned(),
            &marketer,
            changed.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/forms/{form_id}"),
            &reader,
            changed.clone(),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/api/v1/lead-magnets/{magnet_id}"),
            &marketer,
            serde_json::json!({"slug": "x", "name": "x", "kind": "x", "stage": "sideways"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, b) = app.call(Method::PUT, &path, token, Some(body)).await;
        assert_eq!(s, want, "{path}: {b}");
        assert!(b["error"]["message"].is_string(), "{b}");
    }
    assert_eq!(app.store.form_by_slug("crm-guide").await.unwrap(), stored);

    let (s, m) = app
        .call(Method::PUT, &format!("/api/v1/lead-magnets/{magnet_id}"), &marketer,
              Some(serde_json::json!({"slug": "crm-checklist", "name": "CRM checklist 2026", "kind": "checklist", "stage": "middle"})))
        .await;
    assert_eq!((s, m["stage"].as_str()), (StatusCode::OK, Some("middle")));

    // Deleting the magnet leaves the form working without one; deleting the form closes it.
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/lead-magnets/{magnet_id}"),
            &marketer,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, forms) = app.api("/api/v1/forms", &reader).await;
    assert_eq!(forms[0]["lead_magnet"], Value::Null);
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/forms/{form_id}"),
            &reader,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/forms/{form_id}"),
            &marketer,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/forms/{form_id}"),
            &marketer,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .submit_json("crm-guide", serde_json::json!({"email": "a@example.com"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let doc = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/forms/{id}"]["put"].is_object());
    assert!(doc["paths"]["/api/v1/lead-magnets/{id}"]["delete"].is_object());
    assert!(doc["paths"]["/api/v1/contacts/{id}/merge"]["post"].is_object());
}

#[tokio::test]
async fn merging_contacts_through_the_api_keeps_both_timelines() {
    use reqwest::Method;
    let app = spawn_app().await;
    let keep = app.contact("ann@work.com", "Ann", None).await;
    let other = app.contact("ann@home.com", "Annie", None).await;
    let writer = app.token(Role::Admin).await;
    let (s, _) = app
        .post_events(
            &writer,
            serde_json::json!({"events": [opened(1, "ann@work.com"), opened(2, "ann@home.com")]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let merge = |body: Value| {
        let app = &app;
        let writer = writer.clone();
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/contacts/{keep}/merge"),
                &writer,
                Some(body),
            )
            .await
        }
    };
    for (body, want) in [
        (
            serde_json::json!({"merge_id": keep}),
            StatusCode::BAD_REQUEST,
        ),
        (
            serde_json::json!({"merge_id": other, "merge_email": "ann@home.com"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            serde_json::json!({"merge_email": "not an email"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            serde_json::json!({"merge_email": "nobody@home.com"}),
            StatusCode::NOT_FOUND,
        ),
        (
            serde_json::json!({"merge_id": other, "colour": 1}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, b) = merge(body.clone()).await;
        assert_eq!(s, want, "{body}: {b}");
    }
    let rep = app.token(Role::Rep).await;
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/contacts/{keep}/merge"),
            &rep,
            Some(serde_json::json!({"merge_id": other})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        app.store
            .merged_emails(orchard_core::ContactId::new(keep))
            .await
            .unwrap(),
        vec![]
    );

    let (s, merged) = merge(serde_json::json!({"merge_email": "Ann@Home.com"})).await;
    assert_eq!(s, StatusCode::OK, "{merged}");
    assert_eq!(
        (merged["id"].as_i64(), merged["name"].as_str()),
        (Some(keep), Some("Ann"))
    );
    let (_, found) = app
        .api("/api/v1/contacts?email=ann@home.com", &writer)
        .await;
    assert_eq!(found["items"][0]["id"].as_i64(), Some(keep));
    let (_, by_old_id) = app.api(&format!("/api/v1/contacts/{other}"), &writer).await;
    assert_eq!(by_old_id["id"].as_i64(), Some(keep));
    let (_, all) = app.api("/api/v1/contacts", &writer).await;
    assert_eq!(all["total"], 1);
    let timeline = app
        .store
        .contact_events(orchard_core::ContactId::new(keep), 10)
        .await
        .unwrap();
    assert_eq!(timeline.len(), 3, "both opens and the merge: {timeline:?}");
    let (s, _) = merge(serde_json::json!({"merge_id": other})).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "the other id now is this contact"
    );
}

#[tokio::test]
async fn a_duplicate_is_merged_from_the_contact_page() {
    let app = spawn_app().await;
    app.user("boss@orchard.test", Role::Admin, "right-password")
        .await;
    let rep_id = app
        .user("rep@orchard.test", Role::Rep, "rep-password")
        .await;
    let keep = app.contact("ann@work.com", "Ann", Some(rep_id)).await;
    let other = app.contact("ann@home.com", "Annie", None).await;
    let session = app
        .login("boss@orchard.test", "right-password")
        .await
        .unwrap();
    let (_, html) = app.page(&format!("/contacts/{keep}"), &session).await;
    assert!(html.contains("Merge a duplicate"));
    let csrf = hidden_csrf(&html);

    let r = app
        .post_form(
            &format!("/contacts/{keep}/merge"),
            &session,
            &[("csrf", "wrong"), ("merge_email", "ann@home.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .post_form(
            &format!("/contacts/{keep}/merge"),
            &session,
            &[("csrf", &csrf), ("merge_email", "nobody@x.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("not found"));

    let r = app
        .post_form(
            &format!("/contacts/{keep}/merge"),
            &session,
            &[("csrf", &csrf), ("merge_email", "ann@home.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("/contacts/{keep}?merged=")), "{to}");
    let (_, html) = app.page(&to, &session).await;
    assert!(html.contains("also ann@home.com") && html.contains("Merged ann@home.com"));
    // The merged contact's old page leads to the survivor.
    let r = app
        .http
        .get(app.url(&format!("/contacts/{other}")))
        .header(COOKIE, format!("{}={session}", auth::SESSION_COOKIE))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()[LOCATION].to_str().unwrap(),
        format!("/contacts/{keep}")
    );
    // A merge into the merged contact, from a page opened before, says why it did nothing.
    app.contact("ann@third.com", "A.", None).await;
    let r = app
        .post_form(
            &format!("/contacts/{other}/merge"),
            &session,
            &[("csrf", &csrf), ("merge_email", "ann@third.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("merged into"), "{html}");

    // A rep may see the contact but not merge into it.
    let rep = app.login("rep@orchard.test", "rep-password").await.unwrap();
    let (_, html) = app.page(&format!("/contacts/{keep}"), &rep).await;
    assert!(!html.contains("Merge a duplicate"));
    let r = app
        .post_form(
            &format!("/contacts/{keep}/merge"),
            &rep,
            &[("csrf", &hidden_csrf(&html)), ("merge_email", "x@x.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn lead_magnets_and_forms_are_edited_and_deleted_from_their_pages() {
    let app = spawn_app().await;
    app.checklist_form(serde_json::json!({})).await;
    app.user("mkt@orchard.test", Role::Marketer, "right-password")
        .await;
    app.user("rep@orchard.test", Role::Rep, "rep-password")
        .await;
    let session = app
        .login("mkt@orchard.test", "right-password")
        .await
        .unwrap();
    let magnet = app.store.lead_magnets().await.unwrap().remove(0);
    let form = app.store.forms().await.unwrap().remove(0);
    let (_, html) = app.page("/lead-magnets", &session).await;
    let csrf = hidden_csrf(&html);
    assert!(html.contains(&format!("action=\"/lead-magnets/{}\"", magnet.id)));

    let r = app
        .post_form(
            &format!("/lead-magnets/{}", magnet.id),
            &session,
            &[
                ("csrf", &csrf),
                ("name", "Renamed checklist"),
                ("slug", "crm-checklist"),
                ("kind", "checklist"),
                ("stage", "bottom"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let stored = app.store.lead_magnets().await.unwrap().remove(0);
    assert_eq!(
        (stored.name.as_str(), stored.stage.as_str()),
        ("Renamed checklist", "bottom")
    );
    let r = app
        .post_form(
            &format!("/lead-magnets/{}", magnet.id),
            &session,
            &[
                ("csrf", &csrf),
                ("name", ""),
                ("slug", "crm-checklist"),
                ("kind", "checklist"),
                ("stage", "top"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("name: 1-200"));
    assert_eq!(app.store.lead_magnets().await.unwrap().remove(0), stored);

    let r = app
        .post_form(
            &format!("/forms/{}", form.id),
            &session,
            &[
                ("csrf", &csrf),
                ("name", "New name"),
                ("slug", "get-checklist"),
                ("lead_magnet", "crm-checklist"),
                ("fields", "company"),
                ("fields", "country"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.store
            .form_by_slug("get-checklist")
            .await
            .unwrap()
            .fields,
        ["company", "country"]
    );

    let rep = app.login("rep@orchard.test", "rep-password").await.unwrap();
    let (_, rep_html) = app.page("/forms", &rep).await;
    assert!(!rep_html.contains("Delete form"));
    let r = app
        .post_form(
            &format!("/forms/{}/delete", form.id),
            &rep,
            &[("csrf", &hidden_csrf(&rep_html))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .post_form(
            &format!("/forms/{}/delete", form.id),
            &session,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(app.store.forms().await.unwrap().is_empty());
    let r = app
        .post_form(
            &format!("/lead-magnets/{}/delete", magnet.id),
            &session,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(app.store.lead_magnets().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_import_page_previews_imports_and_reports_rejects() {
    let app = spawn_app().await;
    app.user("boss@orchard.test", Role::Admin, "right-password")
        .await;
    app.user("rep@orchard.test", Role::Rep, "rep-password")
        .await;
    let session = app
        .login("boss@orchard.test", "right-password")
        .await
        .unwrap();
    let (s, html) = app.page("/import", &session).await;
    assert_eq!(s, StatusCode::OK);
    let csrf = hidden_csrf(&html);
    let file = "\u{feff}Email,First Name,Favourite colour\r\nann@x.com,Ann,green\r\nnot-an-email,Bo,\r\nbo@x.com,Bo,blue\r\n";

    let (s, html) = app
        .post_multipart(
            "/import",
            &session,
            &[("csrf", &csrf), ("kind", "contacts"), ("action", "preview")],
            Some(("people.csv", file.as_bytes())),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("→ first_name") && html.contains("custom attribute"),
        "{html}"
    );
    assert!(html.contains("<strong data-testid=\"imported\">2</strong>"));
    assert!(
        html.contains("<td>3</td><td>email</td>"),
        "the bad row is named"
    );
    assert_eq!(
        app.store.table_counts().await.unwrap()["contacts"],
        0,
        "a preview stores nothing"
    );

    let (s, html) = app
        .post_multipart(
            "/import",
            &session,
            &[
                ("csrf", &csrf),
                ("kind", "contacts"),
                ("action", "import"),
                ("content", file),
            ],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("imported 2 rejected 1"), "{html}");
    assert!(html.contains("download=\"contacts-rejects.csv\""));
    assert_eq!(app.store.table_counts().await.unwrap()["contacts"], 2);
    let (_, again) = app
        .post_multipart(
            "/import",
            &session,
            &[("csrf", &csrf), ("kind", "contacts"), ("action", "import")],
            Some(("people.csv", file.as_bytes())),
        )
        .await;
    assert!(again.contains("imported 0 rejected 1"));

    // A file that cannot be read, a missing column, a wrong token, a rep: clear errors, nothing stored.
    let (s, html) = app
        .post_multipart(
            "/import",
            &session,
            &[("csrf", &csrf), ("kind", "contacts"), ("action", "import")],
            Some(("latin1.csv", b"email\nj\xF6rg@x.com\n")),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("not UTF-8"));
    let (s, html) = app
        .post_multipart(
            "/import",
            &session,
            &[("csrf", &csrf), ("kind", "deals"), ("action", "import")],
            Some(("d.csv", b"name\nx\n")),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("no &#x27;amount&#x27; column") || html.contains("no 'amount' column"),
        "{html}"
    );
    let (s, _) = app
        .post_multipart(
            "/import",
            &session,
            &[
                ("csrf", "forged"),
                ("kind", "contacts"),
                ("action", "import"),
            ],
            Some(("x.csv", b"email\nz@x.com\n")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let rep = app.login("rep@orchard.test", "rep-password").await.unwrap();
    let (_, rep_html) = app.page("/import", &rep).await;
    assert!(
        !rep_html.contains("href=\"/import\""),
        "no menu entry for a rep"
    );
    let (s, _) = app
        .post_multipart(
            "/import",
            &rep,
            &[
                ("csrf", &hidden_csrf(&app.page("/contacts", &rep).await.1)),
                ("kind", "contacts"),
                ("action", "import"),
            ],
            Some(("x.csv", b"email\nz@x.com\n")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.store.table_counts().await.unwrap()["contacts"], 2);
}

#[tokio::test]
async fn scores_are_explained_and_current_when_the_append_returns() {
    use reqwest::Method;
    let app = spawn_app().await;
    let admin = app.token(Role::Admin).await;
    let reader = app.token(Role::ReadOnly).await;
    let (s, _) = app.api("/api/v1/scoring/rule-set", &reader).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing is live yet");

    let seed = serde_json::to_value(orchard_core::scoring::seed()).unwrap();
    let mut bad = seed.clone();
    bad["rules"][3]["on"] = Value::String("page_viewed where url ~".into());
    let (s, b) = app
        .call(Method::PUT, "/api/v1/scoring/rule-set", &admin, Some(bad))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rule pricing-visit: on: at column"),
        "{b}"
    );
    let d = &b["error"]["details"];
    assert_eq!(
        (&d["rule"], &d["field"], &d["column"]),
        (
            &Value::from("pricing-visit"),
            &Value::from("on"),
            &Value::from(23)
        ),
        "{b}"
    );
    assert!(d["expected"].is_string() && d["found"].is_string(), "{b}");
    let mut no_decay = seed.clone();
    no_decay["decay"] = serde_json::json!({"percent": 0, "every_days": 30});
    let (s, b) = app
        .call(
            Method::PUT,
            "/api/v1/scoring/rule-set",
            &admin,
            Some(no_decay),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("decay"),
        "{b}"
    );
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/v1/scoring/rule-set",
            &reader,
            Some(seed.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        app.store.rule_sets().await.unwrap().is_empty(),
        "refusals save nothing"
    );
    let (s, published) = app
        .call(Method::PUT, "/api/v1/scoring/rule-set", &admin, Some(seed))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{published}");
    let (_, live) = app.api("/api/v1/scoring/rule-set", &reader).await;
    assert_eq!(live["version"], published["version"]);

    let day = |d: i64| (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339();
    let journey = [
        "email_subscribed",
        "email_opened",
        "email_clicked",
        "page_viewed",
        "email_replied",
        "appointment_booked",
        "trial_started",
    ];
    let events: Vec<Value> = journey
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({
        "id": format!("j{i}"), "type": t, "email": "ann@example.com", "at": day(10 - i as i64),
        "properties": {"url": "/pricing", "form": "f"}})
        })
        .collect();
    let (s, body) = app
        .post_events(&admin, serde_json::json!({"events": events}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, found) = app
        .api("/api/v1/contacts?email=ann@example.com", &reader)
        .await;
    assert_eq!(
        found["items"][0]["score"], 95,
        "visible as soon as the batch is acknowledged"
    );
    assert_eq!(found["items"][0]["temperature"], "hot");
    let id = found["items"][0]["id"].as_i64().unwrap();

    let (s, e) = app
        .api(
            &format!("/api/v1/contacts/{id}/score?at={}", &day(8)[..10]),
            &reader,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let rules: Vec<&str> = e["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "subscribed",
            "opened",
            "clicked",
            "pricing-visit",
            "replied",
            "booked",
            "trial"
        ]
    );
    assert_eq!(e["changes"][6]["running"], 95);
    assert_eq!(
        e["changes"][0]["description"],
        "Subscribes to the email list"
    );
    assert_eq!(e["rule_set"]["name"], "seed");
    assert!(e["score_at"]["score"].as_i64().unwrap() < 95);
    assert_eq!(e["score_at"]["rule_set"]["name"], "seed");

    let (s, _) = app
        .api(
            &format!("/api/v1/contacts/{id}/score?at=yesterday"),
            &reader,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.api("/api/v1/contacts/999999/score", &reader).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    app.user("boss@orchard.test", Role::Admin, "right-password")
        .await;
    let session = app
        .login("boss@orchard.test", "right-password")
        .await
        .unwrap();
    let (_, html) = app.page(&format!("/contacts/{id}"), &session).await;
    assert!(html.contains("Why 95 points"), "{html}");
    assert!(html.contains("Starts a free trial") && html.contains("<polyline"));

    // A new set rescores everyone, but what the score was while the seed was live stays.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let while_seed = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/v1/scoring/rule-set",
            &admin,
            Some(serde_json::json!({"name": "quiet", "rules": []})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app
        .store
        .contact(orchard_core::ContactId::new(id))
        .await
        .unwrap()
        .score
        != 0
    {
        assert!(std::time::Instant::now() < deadline, "never rescored");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, then) = app
        .api(
            &format!("/api/v1/contacts/{id}/score?at={while_seed}"),
            &reader,
        )
        .await;
    assert_eq!(
        (
            &then["score"],
            &then["score_at"]["score"],
            &then["score_at"]["rule_set"]["name"]
        ),
        (&Value::from(0), &Value::from(95), &Value::from("seed")),
        "{then}"
    );
    let (_, before) = app
        .api(
            &format!("/api/v1/contacts/{id}/score?at={}", &day(8)[..10]),
            &reader,
        )
        .await;
    assert_eq!(
        (
            &before["score_at"]["score"],
            &before["score_at"]["rule_set"]["name"]
        ),
        (&Value::from(0), &Value::from("quiet")),
        "before any set was live, the live one answers: {before}"
    );
}

#[tokio::test]
async fn an_export_of_more_members_than_a_page_holds_every_one_once() {
    let app = spawn_app().await;
    let reader = app.token(Role::ReadOnly).await;
    let marketer = app.token(Role::Marketer).await;
    // More contacts than one page of the export (5 000), loaded as the demo loader does.
    let batch = app.load_demo(4, 5_003).await;
    let (s, created) = app
        .post_json(
            "/api/v1/segments",
            &marketer,
            serde_json::json!({"name": "Everyone", "filter": r#"email ~ "@""#}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["member_count"], 5_003);
    let r = app
        .http
        .get(app.url(&format!("/api/v1/segments/{}/members.csv", created["id"])))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "email,first_name,last_name,company,country,stage,score"
    );
    let mut emails: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        emails.len(),
        5_003,
        "every member, across the page boundary"
    );
    emails.sort_unstable();
    emails.dedup();
    assert_eq!(emails.len(), 5_003, "each once");
    let mut expected: Vec<String> = batch.contacts.iter().map(|c| c.email.to_string()).collect();
    expected.sort();
    assert_eq!(
        emails,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_preview_over_many_contacts_is_estimated_from_a_sample_on_request() {
    let app = spawn_app().await;
    let marketer = app.token(Role::Marketer).await;
    let events: Vec<Value> = (0..150)
        .map(|i| {
            serde_json::json!({"id": format!("s{i}"), "type": "email_subscribed",
                "email": format!("c{i}@example.com")})
        })
        .collect();
    let (s, _) = app
        .post_events(&marketer, serde_json::json!({"events": events}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let preview = |body: Value| {
        let (app, marketer) = (&app, &marketer);
        async move {
            app.post_json("/api/v1/segments/preview", marketer, body)
                .await
        }
    };
    // Every contact, exactly, unless asked otherwise.
    let filter = r#"email ~ "1""#;
    let (s, exact) = preview(serde_json::json!({"filter": filter})).await;
    assert_eq!(s, StatusCode::OK, "{exact}");
    assert_eq!(exact["estimate"], Value::Null);
    let (s, p) = preview(serde_json::json!({"filter": filter, "estimate_from": 1000})).await;
    assert_eq!((s, &p["count"]), (StatusCode::OK, &exact["count"]));
    assert_eq!(p["estimate"], Value::Null, "fewer contacts than the sample");
    // Of 150, about 100: every second id.
    let (s, p) = preview(serde_json::json!({"filter": filter, "estimate_from": 100})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let e = &p["estimate"];
    assert_eq!(
        (e["evaluated"].as_i64(), e["live"].as_i64()),
        (Some(75), Some(150)),
        "{p}"
    );
    let (count, low, high) = (
        p["count"].as_i64().unwrap(),
        e["low"].as_i64().unwrap(),
        e["high"].as_i64().unwrap(),
    );
    assert!(low <= count && count <= high, "{p}");
    let truth = exact["count"].as_i64().unwrap();
    assert!(
        low <= truth && truth <= high,
        "the interval holds the count here: {p}"
    );
    // Everyone matches: at most all of them.
    let (_, all) =
        preview(serde_json::json!({"filter": r#"email ~ "@""#, "estimate_from": 100})).await;
    assert_eq!(
        (all["count"].as_i64(), all["estimate"]["high"].as_i64()),
        (Some(150), Some(150))
    );
    // A sample size out of range, or not a number, is refused with the reason.
    for (bad, reason) in [
        (
            serde_json::json!(99),
            "estimate_from: between 100 and 1000000",
        ),
        (
            serde_json::json!(1_000_001),
            "estimate_from: between 100 and 1000000",
        ),
        (serde_json::json!("many"), "expected i64"),
    ] {
        let (s, b) = preview(serde_json::json!({"filter": filter, "estimate_from": bad})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(reason),
            "{b}"
        );
    }
}

#[tokio::test]
async fn segments_follow_the_contract_and_stay_current() {
    use reqwest::Method;
    let app = spawn_app().await;
    let marketer = app.token(Role::Marketer).await;
    let reader = app.token(Role::ReadOnly).await;
    let ann = app.contact("ann@example.com", "Ann", None).await;
    app.contact("bo@example.com", "Bo", None).await;
    let filter = r#"count(page_viewed where url ~ "/pricing", 14d) >= 2"#;

    // Bad input is refused with where the mistake is, and creates nothing.
    let (s, b) = app
        .post_json(
            "/api/v1/segments",
            &marketer,
            serde_json::json!({"name": "Pricing", "filter": "count(page_viewed, 14x) >= 2"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["details"]["column"], 22, "{b}");
    let (s, _) = app
        .post_json(
            "/api/v1/segments",
            &marketer,
            serde_json::json!({"name": "", "filter": filter}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app
        .post_json(
            "/api/v1/segments",
            &reader,
            serde_json::json!({"name": "x", "filter": filter}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(app.store.segments().await.unwrap().is_empty());

    let (s, created) = app
        .post_json(
            "/api/v1/segments",
            &marketer,
            serde_json::json!({"name": "Pricing lookers", "filter": filter}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["member_count"], 0);
    let (s, taken) = app
        .post_json(
            "/api/v1/segments",
            &marketer,
            serde_json::json!({"name": "Pricing lookers", "filter": "score >= 1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{taken}");
    assert!(
        taken["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'Pricing lookers' exists already"),
        "{taken}"
    );
    assert_eq!(app.store.segments().await.unwrap().len(), 1);

    let view = |i: usize| {
        serde_json::json!({"id": format!("pv{i}"), "type": "page_viewed",
        "email": "ann@example.com", "properties": {"url": "/pricing"}})
    };
    app.post_events(&marketer, serde_json::json!({"events": [view(1)]}))
        .await;
    let (_, one) = app.api(&format!("/api/v1/segments/{id}"), &reader).await;
    assert_eq!(one["member_count"], 0);
    app.post_events(&marketer, serde_json::json!({"events": [view(2)]}))
        .await;
    let (_, two) = app.api(&format!("/api/v1/segments/{id}"), &reader).await;
    assert_eq!(
        two["member_count"], 1,
        "current as soon as the event is acknowledged"
    );

    let (s, p) = app
        .post_json(
            "/api/v1/segments/preview",
            &reader,
            serde_json::json!({"filter": "first_name = \"bo\""}),
        )
        .await;
    assert_eq!((s, p["count"].as_i64()), (StatusCode::OK, Some(1)));
    assert_eq!(p["sample"][0]["email"], "bo@example.com");

    let r = app
        .http
        .get(app.url(&format!("/api/v1/segments/{id}/members.csv")))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()[reqwest::header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let csv = r.text().await.unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "email,first_name,last_name,company,country,stage,score",
            "ann@example.com,Ann,,,,MQL,0"
        ]
    );

    app.user("mkt@orchard.test", Role::Marketer, "right-password")
        .await;
    let session = app
        .login("mkt@orchard.test", "right-password")
        .await
        .unwrap();
    let (_, html) = app.page(&format!("/contacts/{ann}"), &session).await;
    assert!(
        html.contains(">Pricing lookers</a>"),
        "the contact page names its segments"
    );
    let (_, html) = app.page("/segments", &session).await;
    let csrf = hidden_csrf(&html);
    let r = app
        .post_form(
            "/segments/preview",
            &session,
            &[("csrf", &csrf), ("filter", "score >= ")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("at column 9"));
    let r = app
        .post_form(
            "/segments",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "Everyone"),
                ("filter", "email ~ \"@\""),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, list) = app.api("/api/v1/segments", &reader).await;
    let everyone = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Everyone")
        .unwrap();
    assert_eq!(everyone["member_count"], 2);

    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/segments/{id}"),
            &marketer,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.api(&format!("/api/v1/segments/{id}"), &reader).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_draft_rule_set_is_backtested_against_the_live_one() {
    use orchard_core::import::{ImportKind, Mapping};
    let app = spawn_app().await;
    let admin = app.token(Role::Admin).await;
    let reader = app.token(Role::ReadOnly).await;
    let day = |d: i64| (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339();
    let people = ["won1@x.com", "won2@x.com", "lost1@x.com", "lost2@x.com"];
    let mut contacts = Mapping::new(ImportKind::Contacts, &["email", "created at"]).unwrap();
    let rows: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                i + 2,
                contacts
                    .parse(i + 2, &[p, &day(200)[..10]], chrono::Utc::now())
                    .unwrap(),
            )
        })
        .collect();
    app.store.import(&rows, false).await.unwrap();
    // The converters looked at pricing before the cutoff; everyone opened an email.
    let mut events = Vec::new();
    for (i, p) in people.iter().enumerate() {
        events.push(serde_json::json!({"id": format!("o{i}"), "type": "email_opened", "email": p, "at": day(100)}));
        if p.starts_with("won") {
            events.push(serde_json::json!({"id": format!("p{i}"), "type": "page_viewed", "email": p, "at": day(90), "properties": {"url": "/pricing"}}));
        }
    }
    app.post_events(&admin, serde_json::json!({"events": events}))
        .await;
    contacts = Mapping::new(
        ImportKind::Deals,
        &[
            "deal id",
            "deal name",
            "amount",
            "status",
            "email",
            "closed at",
            "create date",
        ],
    )
    .unwrap();
    let deals: Vec<_> = ["won1@x.com", "won2@x.com"]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                i + 2,
                contacts
                    .parse(
                        i + 2,
                        &[
                            &format!("d{i}"),
                            "Deal",
                            "1000",
                            "won",
                            p,
                            &day(10)[..10],
                            &day(40)[..10],
                        ],
                        chrono::Utc::now(),
                    )
                    .unwrap(),
            )
        })
        .collect();
    assert!(
        app.store
            .import(&deals, false)
            .await
            .unwrap()
            .rejected
            .is_empty()
    );

    let seed = serde_json::to_value(orchard_core::scoring::seed()).unwrap();
    let mut draft = seed.clone();
    draft["rules"][3]["points"] = serde_json::json!(50);
    let (s, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/scoring/rule-set",
            &admin,
            Some(seed),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    let (s, out) = app
        .post_json(
            "/api/v1/scoring/backtest",
            &admin,
            serde_json::json!({"rule_set": draft, "as_of": &day(30)[..10]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let r = &out["report"];
    assert_eq!(
        (r["contacts"].as_i64(), r["converted"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(
        r["band_changes"], 2,
        "the pricing visitors move from cold to hot: {out}"
    );
    assert_eq!(r["draft"]["auc"], 1.0);
    assert_eq!(r["draft"]["bands"][0]["band"], "hot");
    assert_eq!(r["draft"]["bands"][0]["conversion_rate"], 1.0);
    assert_eq!(out["live_version"], 1);
    assert_eq!(
        r["stage_changes"], 0,
        "the pricing page made them MQLs under both: {out}"
    );

    // A draft that qualifies at 5 points: everyone who opened is an MQL by then; the
    // converters' deals, opened before the date, keep them opportunities under both.
    let mut eager = serde_json::to_value(orchard_core::scoring::seed()).unwrap();
    eager["thresholds"] = serde_json::json!({"mql": 5, "sql": 70});
    let (s, out) = app
        .post_json(
            "/api/v1/scoring/backtest",
            &admin,
            serde_json::json!({"rule_set": eager, "as_of": &day(30)[..10]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let r = &out["report"];
    assert_eq!(r["stage_changes"], 2, "{out}");
    assert_eq!(
        r["stages"],
        serde_json::json!([
            {"stage": "subscriber", "live": 2, "draft": 0},
            {"stage": "MQL", "live": 0, "draft": 2},
            {"stage": "opportunity", "live": 2, "draft": 2},
        ]),
        "{out}"
    );

    let mut broken = serde_json::to_value(orchard_core::scoring::seed()).unwrap();
    broken["rules"][0]["kind"] = serde_json::json!("bonus");
    let (s, b) = app
        .post_json(
            "/api/v1/scoring/backtest",
            &admin,
            serde_json::json!({"rule_set": broken}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("rule subscribed: kind")
    );
    let (s, _) = app
        .post_json(
            "/api/v1/scoring/backtest",
            &admin,
            serde_json::json!({"rule_set": draft, "as_of": "2999-01-01"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app
        .post_json(
            "/api/v1/scoring/backtest",
            &reader,
            serde_json::json!({"rule_set": draft}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    app.user("mkt@orchard.test", Role::Marketer, "right-password")
        .await;
    let session = app
        .login("mkt@orchard.test", "right-password")
        .await
        .unwrap();
    let (_, html) = app.page("/scoring", &session).await;
    assert!(html.contains("Live: seed, version 1"));
    let csrf = hidden_csrf(&html);
    let r = app
        .post_form(
            "/scoring",
            &session,
            &[
                ("csrf", &csrf),
                ("draft", &draft.to_string()),
                ("as_of", &day(30)[..10]),
                ("action", "backtest"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Backtest as of") && html.contains("data-testid=\"band-changes\">2<"),
        "{html}"
    );
    let r = app
        .post_form(
            "/scoring",
            &session,
            &[
                ("csrf", &csrf),
                ("draft", "{not json"),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post_form(
            "/scoring",
            &session,
            &[
                ("csrf", &csrf),
                ("draft", &draft.to_string()),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.store.live_rule_set().await.unwrap().unwrap().version, 2);
}

#[tokio::test]
async fn stages_are_set_by_hand_with_a_reason_through_api_and_page() {
    let app = spawn_app().await;
    let writer = app.token(Role::Marketer).await;
    let reader = app.token(Role::ReadOnly).await;
    let ann = app.contact("ann@example.com", "Ann", None).await;
    let path = format!("/api/v1/contacts/{ann}/stage");
    let (s, b) = app
        .post_json(&path, &writer, serde_json::json!({"stage": "lead"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("stage:")
    );
    let (s, _) = app
        .post_json(&path, &reader, serde_json::json!({"stage": "SQL"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post_json(
            "/api/v1/contacts/999999/stage",
            &writer,
            serde_json::json!({"stage": "SQL"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, c) = app
        .post_json(
            &path,
            &writer,
            serde_json::json!({"stage": "sql", "reason": "asked for a call"}),
        )
        .await;
    assert_eq!((s, c["stage"].as_str()), (StatusCode::OK, Some("SQL")));
    let timeline = app
        .store
        .contact_events(orchard_core::ContactId::new(ann), 10)
        .await
        .unwrap();
    assert_eq!(
        timeline[0].properties["cause"],
        "set by API token test: asked for a call"
    );

    let rep = app
        .user("rep@orchard.test", Role::Rep, "rep-password")
        .await;
    let mine = app.contact("mine@example.com", "Mine", Some(rep)).await;
    let session = app.login("rep@orchard.test", "rep-password").await.unwrap();
    let (_, html) = app.page(&format!("/contacts/{mine}"), &session).await;
    let csrf = hidden_csrf(&html);
    let r = app
        .post_form(
            &format!("/contacts/{mine}/stage"),
            &session,
            &[
                ("csrf", &csrf),
                ("stage", "disqualified"),
                ("reason", "student"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.page(&format!("/contacts/{mine}"), &session).await;
    assert!(
        html.contains("set by rep user: student"),
        "the reason is on the timeline"
    );
    let r = app
        .post_form(
            &format!("/contacts/{ann}/stage"),
            &session,
            &[("csrf", &csrf), ("stage", "MQL")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not in the rep's book");
}

#[tokio::test]
async fn event_types_are_listed_and_misspelt_ones_warned_about() {
    use reqwest::Method;
    let app = spawn_app().await;
    let admin = app.token(Role::Admin).await;
    let reader = app.token(Role::ReadOnly).await;
    let (s, _) = app.api("/api/v1/event-types", "not-a-token").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Before any event: the SPEC's types and Orchard's own, none recorded.
    let (s, types) = app.api("/api/v1/event-types", &reader).await;
    assert_eq!(s, StatusCode::OK, "{types}");
    let find = |types: &Value, name: &str| {
        types
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == name)
            .cloned()
    };
    let opened = find(&types, "email_opened").unwrap();
    assert_eq!(
        (&opened["kind"], &opened["first_recorded_at"]),
        (&Value::from("spec"), &Value::Null)
    );
    assert_eq!(find(&types, "segment_entered").unwrap()["kind"], "orchard");
    assert!(find(&types, "webinar_attended").is_none());

    app.post_events(
        &admin,
        serde_json::json!({"events": [
            {"id": "o1", "type": "email_opened", "email": "ann@example.com"},
            {"id": "w1", "type": "webinar_attended", "email": "ann@example.com",
             "properties": {"room": "A", "speaker": "Bo", "not a name": 1}},
        ]}),
    )
    .await;
    let (_, types) = app.api("/api/v1/event-types", &reader).await;
    assert!(find(&types, "email_opened").unwrap()["first_recorded_at"].is_string());
    let webinar = find(&types, "webinar_attended").unwrap();
    assert_eq!(webinar["kind"], "custom", "{webinar}");
    // With the property names its events carried that a filter can write.
    assert_eq!(
        webinar["properties"],
        serde_json::json!(["room", "speaker"])
    );

    // A misspelt property of a recorded type likewise, with the one meant.
    let (s, preview) = app
        .post_json(
            "/api/v1/segments/preview",
            &admin,
            serde_json::json!({"filter": r#"count(webinar_attended where rooom = "A") >= 1"#}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    assert_eq!(
        preview["warnings"],
        serde_json::json!([{"type": "webinar_attended", "property": "rooom", "attribute": null,
            "suggestion": "room",
            "message": "No webinar_attended event has had a property rooom; did you mean room?"}])
    );
    // And a custom attribute no contact has had, with the one contacts have.
    let mut c = NewContact::new(
        Email::parse("plan@example.com").unwrap(),
        chrono::Utc::now(),
    );
    c.details
        .custom
        .insert("plan".into(), serde_json::json!("pro"));
    app.store.upsert_contact(&c).await.unwrap();
    let (_, preview) = app
        .post_json(
            "/api/v1/segments/preview",
            &admin,
            serde_json::json!({"filter": r#"custom.plna = "pro" or custom.plan = "pro""#}),
        )
        .await;
    assert_eq!(
        (&preview["count"], &preview["warnings"]),
        (
            &serde_json::json!(1),
            &serde_json::json!([{"type": null, "property": null, "attribute": "plna",
                "suggestion": "plan",
                "message": "No contact has had a custom attribute plna; did you mean custom.plan?"}])
        )
    );

    // A misspelt type: the filter is valid and counts nobody, so it is saved with a warning
    // that names the type meant; the preview and the list say the same.
    let filter = "count(webinar_atended) >= 1 or count(emial_opened) >= 1";
    let (s, preview) = app
        .post_json(
            "/api/v1/segments/preview",
            &admin,
            serde_json::json!({"filter": filter}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    assert_eq!(preview["count"], 0);
    assert_eq!(
        preview["warnings"],
        serde_json::json!([
            {"type": "webinar_atended", "property": null, "attribute": null, "suggestion": "webinar_attended",
             "message": "No webinar_atended event has been recorded yet; did you mean webinar_attended?"},
            {"type": "emial_opened", "property": null, "attribute": null, "suggestion": "email_opened",
             "message": "No emial_opened event has been recorded yet; did you mean email_opened?"},
        ])
    );
    let (s, created) = app
        .post_json(
            "/api/v1/segments",
            &admin,
            serde_json::json!({"name": "Misspelt", "filter": filter}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["warnings"], preview["warnings"]);
    let (_, listed) = app.api("/api/v1/segments", &reader).await;
    assert_eq!(listed[0]["warnings"], preview["warnings"]);
    // Spelt right, nothing to warn of.
    let (_, right) = app
        .post_json(
            "/api/v1/segments/preview",
            &admin,
            serde_json::json!({"filter": "count(webinar_attended) >= 1"}),
        )
        .await;
    assert_eq!(
        (right["count"].clone(), right["warnings"].clone()),
        (1.into(), serde_json::json!([]))
    );

    // A rule set naming a type never seen is published with the warning; a custom type with
    // nothing near it gets no guess.
    let mut set = serde_json::to_value(orchard_core::scoring::seed()).unwrap();
    set["rules"].as_array_mut().unwrap().push(serde_json::json!(
        {"id": "demo", "kind": "behaviour", "on": "demo_requested", "points": 20}
    ));
    let (s, published) = app
        .call(Method::PUT, "/api/v1/scoring/rule-set", &admin, Some(set))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{published}");
    assert_eq!(
        published["warnings"],
        serde_json::json!([{"type": "demo_requested", "property": null, "attribute": null, "suggestion": null,
            "message": "No demo_requested event has been recorded yet; the condition counts nothing until one is"}])
    );
    let (_, live) = app.api("/api/v1/scoring/rule-set", &reader).await;
    assert_eq!(live["warnings"], published["warnings"]);

    // The document describes the endpoint.
    let (_, doc) = app.api("/api/openapi.json", &reader).await;
    assert!(doc["paths"]["/api/v1/event-types"]["get"].is_object());
}

#[tokio::test]
async fn the_contact_page_gives_the_score_on_a_past_day_and_refuses_other_input() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin).await;
    app.store
        .save_rule_set(&orchard_core::scoring::seed(), true, chrono::Utc::now())
        .await
        .unwrap();
    app.post_events(
        &admin,
        serde_json::json!({"events": [
            {"id": "s1", "type": "email_subscribed", "email": "day@example.com", "at": "2026-01-10T09:00:00Z"},
            {"id": "o1", "type": "email_opened", "email": "day@example.com", "at": "2026-01-20T23:30:00Z"},
        ]}),
    )
    .await;
    let id = app
        .store
        .contact_by_email(&orchard_core::Email::parse("day@example.com").unwrap())
        .await
        .unwrap()
        .id;
    app.user("day-admin@orchard.test", Role::Admin, "admin-password")
        .await;
    let session = app
        .login("day-admin@orchard.test", "admin-password")
        .await
        .unwrap();
    let on = |day: &str| format!("/contacts/{id}?score_at={day}");
    // By the end of a day: the open late on the 20th counts for the 20th.
    for (day, points) in [("2026-01-09", 0), ("2026-01-10", 5), ("2026-01-20", 10)] {
        let (s, html) = app.page(&on(day), &session).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            html.contains(&format!(
                "At the end of {day}: <strong>{points}</strong> points"
            )),
            "{day}: {html}"
        );
    }
    // Not a day, or one to come: said, and the page still shows the contact.
    let (s, html) = app.page(&on("31.01.2026"), &session).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("Score on: &#x27;31.01.2026&#x27; is not a day (2026-03-31).")
            && html.contains("day@example.com"),
        "{html}"
    );
    let (s, html) = app.page(&on("2999-01-01"), &session).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("2999-01-01 has not come yet"), "{html}");
    // What was typed is shown back escaped.
    let (_, html) = app.page(&on("%3Cscript%3E"), &session).await;
    assert!(
        !html.contains("<script>") && html.contains("&lt;script&gt;"),
        "{html}"
    );
}
