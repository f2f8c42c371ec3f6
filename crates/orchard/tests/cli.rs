//! The command line as a user runs it: the real binary, real databases.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orchard_store::BulkStore;

const BIN: &str = env!("CARGO_BIN_EXE_orchard");

fn scratch_sqlite(name: &str) -> String {
    let dir = orchard_store_sqlite::scratch_dir(&format!("orchard-cli-{name}"));
    format!("sqlite://{}/orchard.db", dir.display())
}

fn orchard(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("ORCHARD_LOG", "error")
        .output()
        .expect("run orchard")
}

#[tokio::test]
async fn demo_creates_the_same_company_on_sqlite_and_postgres() {
    let Ok(pg_base) = std::env::var("ORCHARD_TEST_POSTGRES_URL") else {
        eprintln!("ORCHARD_TEST_POSTGRES_URL is not set: cross-backend demo check not run");
        return;
    };
    let sqlite = scratch_sqlite("demo");
    let pg = orchard_store_postgres::create_scratch_database(&pg_base, "orchard_cli")
        .await
        .unwrap();
    for db in [&sqlite, &pg] {
        let out = orchard(&["demo", "--db", db, "--contacts", "2000", "--seed", "7"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("demo company loaded: 2000 contacts")
        );
    }
    let a = orchard_store_sqlite::connect(&sqlite)
        .await
        .unwrap()
        .table_counts()
        .await
        .unwrap();
    let b = orchard_store_postgres::connect(&pg)
        .await
        .unwrap()
        .table_counts()
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a["contacts"], 2000);
    assert!(a["events"] > 30_000, "about 20 events per contact: {a:?}");
    assert!(a["deals"] > 0 && a["subscriptions"] > 0 && a["activities"] > 0 && a["spend"] > 0);

    // A second run refuses to add the company again, and says why.
    let again = orchard(&["demo", "--db", &sqlite, "--contacts", "10"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("only fills an empty one"));
}

#[tokio::test]
async fn token_create_prints_only_the_token_and_serve_accepts_it() {
    let db = scratch_sqlite("serve");
    let out = orchard(&[
        "token",
        "create",
        "--db",
        &db,
        "--name",
        "ci",
        "--role",
        "read_only",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1);
    assert!(
        token.starts_with("orch_") && token.len() == 69,
        "{stdout:?}"
    );

    let bad = orchard(&[
        "token", "create", "--db", &db, "--name", "x", "--role", "owner",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not one of admin"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(BIN)
        .args(["serve", "--db", &db, "--bind", &format!("127.0.0.1:{port}")])
        .env("ORCHARD_LOG", "error")
        .env("ORCHARD_ADMIN_PASSWORD", "a-long-enough-password")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http
        .get(format!("{base}/api/v1/contacts"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 200);
    assert_eq!(body["total"], 0);
}

#[test]
fn unsupported_database_urls_are_explained() {
    let out = orchard(&["migrate", "--db", "mysql://localhost/x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use sqlite://PATH or postgres://"));
}

#[test]
fn config_default_prints_the_commented_example() {
    let out = orchard(&["config", "default"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("database_url = \"sqlite://orchard-data/orchard.db\""));
    assert!(text.contains("[scoring]"));
}

#[test]
fn import_reports_rejects_by_row_and_a_rerun_imports_nothing_new() {
    let db = scratch_sqlite("import");
    let dir = std::env::temp_dir().join(format!("orchard-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("contacts.csv");
    // A HubSpot-style export with a byte-order mark and Windows line ends; rows 3, 5 and 6 are bad.
    let csv = "\u{feff}First Name,Last Name,Email,Country/Region,Number of Employees\r\n\
               Ann,Lee,ann@example.com,DE,120\r\n\
               Bo,Berg,not-an-email,SE,10\r\n\
               \"Cy, Jr.\",Chen,CY@Example.com,US,\r\n\
               Di,Diaz,di@example.com,Spain,5\r\n\
               Ed,Eng,ed@example.com,GB\r\n";
    std::fs::write(&file, csv).unwrap();
    let path = file.to_str().unwrap();
    let out = orchard(&["import", "contacts", path, "--db", &db]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().last(), Some("imported 2 rejected 3"));
    let rejects = std::fs::read_to_string(format!("{path}.rejects.csv")).unwrap();
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines[0], "row,column,reason");
    assert!(lines[1].starts_with("3,email,"), "{rejects}");
    assert!(
        lines[2].starts_with("5,Country/Region,") || lines[2].starts_with("5,country,"),
        "{rejects}"
    );
    assert!(lines[3].starts_with("6,,"), "{rejects}");

    let again = orchard(&["import", "contacts", path, "--db", &db]);
    assert_eq!(
        String::from_utf8(again.stdout).unwrap().lines().last(),
        Some("imported 0 rejected 3")
    );

    // Not UTF-8: refused as a whole, with what to do about it.
    let latin1 = dir.join("latin1.csv");
    std::fs::write(&latin1, b"email,first_name\nj\xf6rg@example.com,J\xf6rg\n").unwrap();
    let bad = orchard(&["import", "contacts", latin1.to_str().unwrap(), "--db", &db]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("save it as UTF-8"));
    let missing = orchard(&["import", "contacts", "/nonexistent/file.csv", "--db", &db]);
    assert!(!missing.status.success());
}

#[test]
fn events_import_from_json_lines_and_csv_through_the_api_parser() {
    let db = scratch_sqlite("events");
    let dir = std::env::temp_dir().join(format!("orchard-events-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("events.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            r#"{"id": "j1", "type": "email_subscribed", "email": "eve@example.com", "at": "2026-11-01T09:00:00Z"}"#, "\n",
            r#"{"id": "j2", "type": "page_viewed", "email": "eve@example.com", "properties": {"url": "/pricing"}}"#, "\n",
            "\n",
            r#"{"id": "j3", "type": "page_viewed", "email": "eve@example.com"}"#, "\n",
            r#"{"id": "j4", "type": "email_opened", "contact_id": 999}"#, "\n",
            "not json\n",
        ),
    )
    .unwrap();
    let path = jsonl.to_str().unwrap();
    let out = orchard(&["import", "events", path, "--db", &db]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().last(),
        Some("imported 2 rejected 3")
    );
    let rejects = std::fs::read_to_string(format!("{path}.rejects.csv")).unwrap();
    assert!(
        rejects.contains("4,,properties.url")
            && rejects.contains("5,contact_id,no contact 999")
            && rejects.contains("6,,not a JSON object"),
        "{rejects}"
    );
    let again = orchard(&["import", "events", path, "--db", &db]);
    assert_eq!(
        String::from_utf8(again.stdout).unwrap().lines().last(),
        Some("imported 0 rejected 3")
    );

    let csv = dir.join("events.csv");
    std::fs::write(&csv, "id,type,email,at,amount\nc1,purchase,eve@example.com,2026-11-05T10:00:00Z,49.90\nc2,purchase,eve@example.com,2026-11-06T10:00:00Z,lots\n").unwrap();
    let out = orchard(&["import", "events", csv.to_str().unwrap(), "--db", &db]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().last(),
        Some("imported 1 rejected 1")
    );
}

#[test]
fn deals_revenue_and_activities_import_against_the_contacts_and_accounts_they_name() {
    let db = scratch_sqlite("import-linked");
    let dir = std::env::temp_dir().join(format!("orchard-import-linked-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |kind: &str, name: &str, csv: &str| {
        let file = dir.join(name);
        std::fs::write(&file, csv).unwrap();
        let out = orchard(&["import", kind, file.to_str().unwrap(), "--db", &db]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let last = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_owned();
        let rejects =
            std::fs::read_to_string(format!("{}.rejects.csv", file.display())).unwrap_or_default();
        (last, rejects)
    };
    run("contacts", "contacts.csv", "email\nann@acme.com\n");
    run(
        "accounts",
        "accounts.csv",
        "Record ID,Company name,Company Domain Name\nhs-1,Acme,acme.com\n",
    );
    // HubSpot's deal export headers; row 3 names a contact nobody imported.
    let (deals, rejects) = run(
        "deals",
        "deals.csv",
        "Record ID,Deal Name,Deal Stage,Amount,Close Date,Create Date,Associated Contact,Associated Company\n\
         901,Acme pilot,closedwon,12000,2026-05-01,2026-03-02,ann@acme.com,hs-1\n\
         902,Ghost deal,appointmentscheduled,500,,2026-03-02,ghost@acme.com,\n",
    );
    assert_eq!(deals, "imported 1 rejected 1");
    assert!(
        rejects.contains("3,email,no contact ghost@acme.com"),
        "{rejects}"
    );
    let (revenue, rejects) = run(
        "revenue",
        "revenue.csv",
        "account,product,plan,amount,period,date\n\
         acme.com,Hosting,Pro,300,monthly,2026-01-01\n\
         Acme,Audit,,1500,,2026-02-01\n\
         acme.com,Hosting,Pro,300,fortnightly,2026-01-01\n",
    );
    assert_eq!(revenue, "imported 2 rejected 1");
    assert!(rejects.contains("4,period,"), "{rejects}");
    let (activities, _) = run(
        "activities",
        "activities.csv",
        "type,date,account,email,minutes,subject\ncall,2026-03-01 10:00,hs-1,ann@acme.com,25,QBR prep\n",
    );
    assert_eq!(activities, "imported 1 rejected 0");
    let (again, _) = run(
        "activities",
        "activities.csv",
        "type,date,account,email,minutes,subject\ncall,2026-03-01 10:00,hs-1,ann@acme.com,25,QBR prep\n",
    );
    assert_eq!(again, "imported 0 rejected 0");
}

#[test]
fn score_preset_explain_and_rebuild_from_the_command_line() {
    let db = scratch_sqlite("score");
    let dir = std::env::temp_dir().join(format!("orchard-score-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("journey.jsonl");
    let day = |d: i64| (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339();
    let journey = [
        "email_subscribed",
        "email_opened",
        "email_clicked",
        "page_viewed",
        "email_replied",
        "appointment_booked",
        "trial_started",
        "appointment_cancelled",
        "email_unsubscribed",
    ];
    let lines: Vec<String> = journey
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": format!("j{i}"), "type": t, "email": "ann@example.com",
                "at": day(20 - i as i64), "properties": {"url": "/pricing"}})
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = orchard(&["import", "events", file.to_str().unwrap(), "--db", &db]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = orchard(&["score", "preset", "nope", "--db", &db]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("presets: seed"));
    let out = orchard(&["score", "preset", "seed", "--db", &db]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("rule set seed v1 is live; rescored 1 contacts")
    );

    let out = orchard(&[
        "score",
        "explain",
        "Ann@Example.com",
        "--format",
        "json",
        "--db",
        &db,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["score"], 65);
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
            "trial",
            "cancelled",
            "unsubscribed"
        ]
    );
    let table = orchard(&[
        "score",
        "explain",
        "ann@example.com",
        "--at",
        &day(15)[..10],
        "--db",
        &db,
    ]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with("ann@example.com: score 65 (hot), rule set seed v1"),
        "{table}"
    );
    assert!(
        table.contains("score at ") && table.contains("unsubscribed") && table.contains("-25"),
        "{table}"
    );
    let missing = orchard(&["score", "explain", "nobody@example.com", "--db", &db]);
    assert!(!missing.status.success());

    let out = orchard(&["rebuild", "--db", &db]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("rescored 1 contacts with rule set seed v1")
    );
    let explain = || {
        let out = orchard(&[
            "score",
            "explain",
            "ann@example.com",
            "--format",
            "json",
            "--db",
            &db,
        ]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(explain(), e, "a rebuild changes nothing");

    // Derived rows changed behind Orchard's back: a plain rebuild trusts the stored digest,
    // a full one rewrites the explanation from the log.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = orchard_store_sqlite::connect(&db).await.unwrap();
        sqlx::query("DELETE FROM score_changes")
            .execute(store.pool())
            .await
            .unwrap();
    });
    orchard(&["rebuild", "--db", &db]);
    assert_eq!(explain()["changes"], serde_json::json!([]));
    let out = orchard(&["rebuild", "--full", "--db", &db]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("rewriting the score changes of 1 contacts whole"),
    );
    assert_eq!(explain(), e, "the full rebuild restores the explanation");
}

#[test]
fn the_benchmarks_run_and_report_their_baselines() {
    // The benchmarks' databases go to the temp dir and must not be left there.
    let tmp = std::env::temp_dir().join(format!("orchard-bench-tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let bench = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("ORCHARD_LOG", "error")
            .env("TMPDIR", &tmp)
            .output()
            .expect("run orchard")
    };
    let out = bench(&[
        "bench",
        "ingest",
        "--contacts",
        "30",
        "--runs",
        "1",
        "--scoring",
        "--order",
        "time",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r[0]["backend"], "sqlite");
    assert!(r[0]["baseline_events_per_s"].as_f64().unwrap() > 0.0 && r[0]["scoring"] == true);
    assert_eq!(r[0]["order"], "time");
    let out = bench(&[
        "bench",
        "rebuild",
        "--contacts",
        "40",
        "--runs",
        "2",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (r[0]["contacts"].as_i64(), r[0]["segments"].as_i64()),
        (Some(40), Some(20))
    );
    assert!(r[0]["sql_seconds"].as_f64().unwrap() > 0.0);
    // The first rebuild, which writes everything, is reported apart from the later one.
    let (first, later) = (
        r[0]["orchard_first_seconds"].as_f64().unwrap(),
        r[0]["orchard_seconds"].as_f64().unwrap(),
    );
    assert!(
        first > 0.0 && later > 0.0 && first != later,
        "{first} {later}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the benchmarks left {left:?} behind");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn segments_are_listed_created_and_exported_from_the_command_line() {
    let db = scratch_sqlite("segment");
    let dir = std::env::temp_dir().join(format!("orchard-segment-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("contacts.csv");
    std::fs::write(
        &file,
        "email,country\nann@example.com,DE\nbo@example.com,FR\n",
    )
    .unwrap();
    assert!(
        orchard(&["import", "contacts", file.to_str().unwrap(), "--db", &db])
            .status
            .success()
    );

    let bad = orchard(&["segment", "create", "German", "country = ", "--db", &db]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("at column 10"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let out = orchard(&[
        "segment",
        "create",
        "German",
        r#"country = "DE""#,
        "--format",
        "json",
        "--db",
        &db,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["name"].as_str(), s["member_count"].as_i64()),
        (Some("German"), Some(1))
    );
    let list = String::from_utf8(orchard(&["segment", "list", "--db", &db]).stdout).unwrap();
    assert!(list.lines().nth(1).unwrap().contains("German"), "{list}");
    // A type no event has had is saved, with the warning under its row and the type meant.
    let typo = orchard(&[
        "segment",
        "create",
        "Openers",
        "count(email_opend) >= 1",
        "--db",
        &db,
    ]);
    assert!(typo.status.success());
    let table = String::from_utf8(typo.stdout).unwrap();
    assert_eq!(
        table.lines().nth(2).map(str::trim),
        Some("warning: No email_opend event has been recorded yet; did you mean email_opened?"),
        "{table}"
    );
    // Counting a filter saves nothing: the builder's count, for scripts and people.
    let count = orchard(&["segment", "count", r#"country = "fr""#, "--db", &db]);
    let table = String::from_utf8(count.stdout).unwrap();
    assert_eq!(
        table.lines().next(),
        Some("1 contact matches now"),
        "{table}"
    );
    assert!(
        table.lines().nth(1).unwrap().contains("bo@example.com"),
        "{table}"
    );
    let count = orchard(&[
        "segment",
        "count",
        "score >= 0",
        "--estimate-from",
        "100",
        "--format",
        "json",
        "--db",
        &db,
    ]);
    let p: serde_json::Value = serde_json::from_slice(&count.stdout).unwrap();
    assert_eq!(
        (p["count"].as_i64(), &p["estimate"]),
        (Some(2), &serde_json::Value::Null),
        "fewer contacts than the sample: every one, exactly"
    );
    let bad = orchard(&[
        "segment",
        "count",
        "score >= 0",
        "--estimate-from",
        "5",
        "--db",
        &db,
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("estimate_from: between 100 and 1000000"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let bad = orchard(&["segment", "count", "score >=", "--db", &db]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at column 9"));
    let csv = orchard(&["segment", "export", &s["id"].to_string(), "--db", &db]);
    assert_eq!(
        String::from_utf8(csv.stdout)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        [
            "email,first_name,last_name,company,country,stage,score",
            "ann@example.com,,,,DE,subscriber,0"
        ]
    );
    assert!(
        !orchard(&["segment", "export", "999", "--db", &db])
            .status
            .success()
    );
}
