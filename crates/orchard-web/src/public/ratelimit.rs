//! A fixed-window rate limiter for public endpoints, per client address and key (a form). In
//! memory and per process: with several `orchard serve` processes each enforces its own share,
//! which still bounds what one address can do.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    hits: Mutex<HashMap<(IpAddr, String), (Instant, u32)>>,
}

/// Entries kept before old windows are swept, so hostile traffic cannot grow memory unbounded.
const MAX_ENTRIES: usize = 100_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request; false when the caller is over its limit for this window.
    pub fn allow(&self, ip: IpAddr, key: &str, now: Instant) -> bool {
        let Ok(mut hits) = self.hits.lock() else {
            return true;
        };
        if hits.len() >= MAX_ENTRIES {
            let window = self.window;
            hits.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = hits.entry((ip, key.to_owned())).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_limit_per_window_then_refuses_until_it_rolls_over() {
        let rl = RateLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let t0 = Instant::now();
        assert!((0..3).all(|_| rl.allow(ip, "form-a", t0)));
        assert!(!rl.allow(ip, "form-a", t0));
        assert!(rl.allow(ip, "form-b", t0), "limits are per form");
        assert!(
            rl.allow("203.0.113.10".parse().unwrap(), "form-a", t0),
            "and per address"
        );
        assert!(rl.allow(ip, "form-a", t0 + Duration::from_secs(61)));
    }
}
