//! `orchard serve`: open the database, make sure someone can log in, then answer HTTP until
//! told to stop (Ctrl-C or SIGTERM), finishing the requests in flight.

use std::sync::Arc;

use anyhow::Context;
use orchard_core::Email;
use orchard_core::UserId;
use orchard_core::auth::Role;
use orchard_core::demo::DEMO_PASSWORD;
use orchard_core::stage::Bands;
use orchard_core::team::{RepProfile, User};
use orchard_store::Store;
use orchard_web::{AppState, WebConfig};

use crate::config::Config;

pub async fn run(config: Config, demo: bool) -> anyhow::Result<()> {
    let store = crate::store::open(&config.database_url).await?;
    if demo {
        if store.is_empty().await? {
            crate::demo::load(store.as_ref(), 7, crate::demo::DEFAULT_CONTACTS, true).await?;
        } else {
            eprintln!("the database already holds data; the demo company was not added again");
        }
        if store
            .user_credentials(&Email::parse("admin@orchard.demo")?)
            .await
            .is_ok()
        {
            eprintln!(
                "log in as admin@orchard.demo with password {DEMO_PASSWORD} (every demo user has this password)"
            );
        }
    }
    ensure_admin(store.as_ref(), &config).await?;
    // One key for every process sharing this database: the first to start stores it.
    let key = store
        .setting_or_init("tracking_key", &orchard_web::auth::random_secret())
        .await?;
    let web = WebConfig {
        tracking_key: orchard_web::TrackingKey(key.into_bytes()),
        secure_cookies: config.secure_cookies,
        session_hours: config.session_hours,
        bands: Bands {
            warm_from: config.scoring.warm_from,
            hot_from: config.scoring.hot_from,
        },
        form_submissions_per_minute: config.form_submissions_per_minute,
        page_views_per_minute: config.page_views_per_minute,
        segment_preview_sample: config.segment_preview_sample,
        backtest_limit: std::time::Duration::from_secs(config.scoring.backtest_seconds),
    };
    let app = orchard_web::router(AppState::new(Arc::clone(&store), web));
    let listener = tokio::net::TcpListener::bind(&config.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another process using it? choose one with --bind)",
                config.bind
            )
        })?;
    let addr = listener.local_addr()?;
    eprintln!(
        "Orchard is running at http://{addr}/ ({} database)",
        store.backend()
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = orchard_jobs::Scheduler::default()
        .with(orchard_jobs::SessionSweeper {
            store: Arc::clone(&store),
        })
        .with(orchard_jobs::DueRefresher {
            store: Arc::clone(&store),
        })
        .spawn(stop_rx);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .context("server failed")?;
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    eprintln!("Orchard stopped");
    Ok(())
}

/// A fresh database gets one administrator so that somebody can log in.
async fn ensure_admin(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let email = Email::parse(&config.admin_email)
        .map_err(|e| anyhow::anyhow!("admin_email '{}' is not valid: {e}", config.admin_email))?;
    let (password, generated) = match &config.admin_password {
        Some(p) if p.0.len() >= 8 => (p.0.clone(), false),
        Some(_) => anyhow::bail!("admin_password must be at least 8 characters"),
        None => (orchard_web::auth::random_secret()[..20].to_owned(), true),
    };
    let hash = {
        let p = password.clone();
        tokio::task::spawn_blocking(move || orchard_web::auth::hash_password(&p)).await?
    };
    let admin = User {
        id: UserId::new(0),
        email: email.clone(),
        name: "Administrator".into(),
        role: Role::Admin,
        team_id: None,
        profile: RepProfile::default(),
    };
    store.create_user(&admin, Some(&hash)).await?;
    if generated {
        eprintln!(
            "created the first administrator: log in as {email} with password {password} (shown once; set ORCHARD_ADMIN_PASSWORD to choose it)"
        );
    } else {
        eprintln!("created the first administrator {email} with the configured password");
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
