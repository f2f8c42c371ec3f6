//! Background work. A [`Worker`] does one unit of periodic work in `run_once` (so tests can
//! drain it synchronously); the [`Scheduler`] runs each worker on its interval until shutdown.
//! Later issues add sequence steps, email delivery, SLA checks and time-based recomputation
//! here; the first worker sweeps expired login sessions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orchard_store::{Store, StoreResult};
use tokio::sync::watch;

#[async_trait]
pub trait Worker: Send + Sync {
    fn name(&self) -> &'static str;
    fn interval(&self) -> Duration;
    /// Does whatever is due at `now`; returns how many items it handled.
    async fn run_once(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// Deletes login sessions that have expired, so the sessions table does not grow forever.
#[derive(Clone)]
pub struct SessionSweeper {
    pub store: Arc<dyn Store>,
}

impl std::fmt::Debug for SessionSweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSweeper")
    }
}

#[async_trait]
impl Worker for SessionSweeper {
    fn name(&self) -> &'static str {
        "session_sweeper"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(15 * 60)
    }

    async fn run_once(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.store.purge_sessions(now).await
    }
}

/// Applies scores that change with the passing of time ("no open in 30 days" on day 31): takes
/// the contacts whose due time has come from the due-time index and rescores them. Several
/// processes may run it at once; rescoring is idempotent, so the worst case is double work.
#[derive(Clone)]
pub struct DueRefresher {
    pub store: Arc<dyn Store>,
}

impl std::fmt::Debug for DueRefresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DueRefresher")
    }
}

#[async_trait]
impl Worker for DueRefresher {
    fn name(&self) -> &'static str {
        "due_refresher"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    async fn run_once(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut done = 0;
        // Bounded, so that a tick always ends; what is left waits for the next one.
        for _ in 0..100 {
            let due = self.store.due_for_refresh(now, 1_000).await?;
            if !due.is_empty() {
                self.store.refresh(&due, now).await?;
            }
            done += due.len() as u64;
            if due.len() < 1_000 {
                break;
            }
        }
        Ok(done)
    }
}

/// Runs workers on their intervals until the shutdown signal flips to `true`.
#[derive(Default)]
pub struct Scheduler {
    workers: Vec<Arc<dyn Worker>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.workers.iter().map(|w| w.name()))
            .finish()
    }
}

impl Scheduler {
    pub fn with(mut self, worker: impl Worker + 'static) -> Self {
        self.workers.push(Arc::new(worker));
        self
    }

    /// One task per worker. A failing run is logged and retried at the next tick; it never
    /// stops the server.
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        self.workers
            .into_iter()
            .map(|w| {
                let mut stop = shutdown.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(w.interval());
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {
                                match w.run_once(Utc::now()).await {
                                    Ok(0) => {}
                                    Ok(n) => tracing::info!(worker = w.name(), handled = n, "worker ran"),
                                    Err(e) => tracing::error!(worker = w.name(), error = %e, "worker failed; retrying at the next tick"),
                                }
                            }
                            _ = stop.changed() => break,
                        }
                    }
                })
            })
            .collect()
    }
}
