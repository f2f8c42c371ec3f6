//! Configuration in layers: built-in defaults, then `orchard.toml` (or `--config FILE`), then
//! `ORCHARD_…` environment variables (nested keys with `__`, e.g. `ORCHARD_SCORING__HOT_FROM`),
//! then command-line flags. Secrets are redacted in `Debug`; unknown variables are warned about.

use std::fmt;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://orchard-data/orchard.db";

/// A value that must never reach a log.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    pub warm_from: i64,
    pub hot_from: i64,
    /// Seconds a backtest may run before it is stopped (`BACKTEST_SECONDS` bounds it).
    pub backtest_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database_url: String,
    pub bind: String,
    /// The first administrator, created when the database has no users.
    pub admin_email: String,
    /// Its password; when unset a random one is generated and printed once.
    pub admin_password: Option<Secret>,
    /// Set when Orchard is served over HTTPS so cookies are marked Secure.
    pub secure_cookies: bool,
    pub session_hours: i64,
    /// Submissions one client address may make to one form per minute.
    pub form_submissions_per_minute: u32,
    /// Page views one client address may record per minute (the pixel, the beacon and the
    /// hosted forms' own views).
    pub page_views_per_minute: u32,
    /// Contacts the segment builder's live count evaluates at most; with more, it estimates
    /// from a sample of that many (`ESTIMATE_FROM` bounds it).
    pub segment_preview_sample: i64,
    pub scoring: Scoring,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            bind: "127.0.0.1:8080".into(),
            admin_email: "admin@orchard.local".into(),
            admin_password: None,
            secure_cookies: false,
            session_hours: 12,
            form_submissions_per_minute: 10,
            page_views_per_minute: 600,
            segment_preview_sample: orchard_web::api::segments::LIVE_ESTIMATE_FROM,
            scoring: Scoring {
                warm_from: 20,
                hot_from: 50,
                backtest_seconds: orchard_web::api::scoring::BACKTEST_LIMIT.as_secs(),
            },
        }
    }
}

const KNOWN_ENV: [&str; 13] = [
    "FORM_SUBMISSIONS_PER_MINUTE",
    "PAGE_VIEWS_PER_MINUTE",
    "SEGMENT_PREVIEW_SAMPLE",
    "DATABASE_URL",
    "BIND",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "SECURE_COOKIES",
    "SESSION_HOURS",
    "SCORING__WARM_FROM",
    "SCORING__HOT_FROM",
    "SCORING__BACKTEST_SECONDS",
    "LOG",
];

/// Variables Orchard reads for other purposes than configuration.
const OTHER_ENV: [&str; 2] = ["TEST_POSTGRES_URL", "CONFIG"];

impl Config {
    /// Loads the layers. `file` is `--config`; without it `orchard.toml` is read if present.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => fig = fig.merge(Toml::file_exact(f)),
            None => fig = fig.merge(Toml::file("orchard.toml")),
        }
        // Only configuration keys: ORCHARD_LOG, ORCHARD_CONFIG and the test variables are read
        // elsewhere and would otherwise be refused as unknown fields. (figment filters after
        // splitting, so a nested key arrives as `scoring.hot_from`.)
        let fig = fig.merge(Env::prefixed("ORCHARD_").split("__").filter(|k| {
            let k = k.as_str().replace('.', "__");
            KNOWN_ENV.iter().any(|e| k.eq_ignore_ascii_case(e)) && !k.eq_ignore_ascii_case("LOG")
        }));
        for (k, _) in std::env::vars() {
            if let Some(rest) = k.strip_prefix("ORCHARD_")
                && !KNOWN_ENV.contains(&rest)
                && !OTHER_ENV.contains(&rest)
            {
                tracing::warn!(variable = %k, "unknown ORCHARD_ variable ignored; see 'orchard config default'");
            }
        }
        let config: Config = fig.extract().map_err(Box::new)?;
        if config.scoring.warm_from > config.scoring.hot_from {
            return Err(Box::new(figment::Error::from(
                "scoring.warm_from must not be above scoring.hot_from".to_owned(),
            )));
        }
        let sample = orchard_web::api::segments::ESTIMATE_FROM;
        if !sample.contains(&config.segment_preview_sample) {
            return Err(Box::new(figment::Error::from(format!(
                "segment_preview_sample must be between {} and {}",
                sample.start(),
                sample.end()
            ))));
        }
        let seconds = orchard_web::api::scoring::BACKTEST_SECONDS;
        if !seconds.contains(&config.scoring.backtest_seconds) {
            return Err(Box::new(figment::Error::from(format!(
                "scoring.backtest_seconds must be between {} and {}",
                seconds.start(),
                seconds.end()
            ))));
        }
        // A year at most: past a few hundred thousand years the expiry overflowed the date
        // and every login panicked.
        if !(1..=24 * 366).contains(&config.session_hours) {
            return Err(Box::new(figment::Error::from(
                "session_hours must be between 1 and 8784 (a year)".to_owned(),
            )));
        }
        Ok(config)
    }
}

/// The commented example `orchard config default` prints.
pub const EXAMPLE: &str = r#"# orchard.toml: Orchard's configuration. Every key is optional; shown are the defaults.
# Each key can also be set by an environment variable: ORCHARD_ + the key in capitals, with
# "__" between a table and its key (e.g. ORCHARD_SCORING__HOT_FROM=60). Variables override
# this file; command-line flags (--db, --bind) override both.

# Where the data lives. sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB.
database_url = "sqlite://orchard-data/orchard.db"

# Address `orchard serve` listens on.
bind = "127.0.0.1:8080"

# The first administrator, created when the database has no users yet.
admin_email = "admin@orchard.local"
# Its password. Better set through ORCHARD_ADMIN_PASSWORD than written here; when unset, a
# random password is generated and printed once at first start.
# admin_password = "change me"

# Mark session cookies Secure; turn on when Orchard is served over HTTPS.
secure_cookies = false

# How long a login lasts, in hours (1 to 8784, a year).
session_hours = 12

# Public capture forms: submissions one client address may make to one form per minute.
form_submissions_per_minute = 10

# Page views (the pixel, the beacon, a hosted form's own view) one client address may record
# per minute. Behind a reverse proxy every visitor comes from the proxy's address and shares
# this budget: raise it to the site's traffic there.
page_views_per_minute = 600

# The segment builder's live count, while a filter is typed, evaluates at most this many
# contacts (100 to 1000000): with more, it is an estimate from every n-th contact, shown with
# its 95% interval, and "Count now" counts every contact. About a quarter of a second on two
# cores at the default, whatever the number of contacts.
segment_preview_sample = 20000

[scoring]
# Score bands: at or above hot_from a lead is hot, at or above warm_from warm, else cold.
warm_from = 20
hot_from = 50
# A backtest of a draft rule set (API and scoring page) is stopped after this many seconds
# (1 to 3600) and answered 422 too_costly. The seed rule set over a million contacts takes
# about 15 s on two cores.
backtest_seconds = 120
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_example_is_the_defaults() {
        let parsed: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(EXAMPLE))
            .extract()
            .unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config {
            admin_password: Some(Secret("hunter2".into())),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    // figment's test jail fixes the closure's error type; its size does not matter in a test.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "orchard.toml",
                "bind = \"0.0.0.0:9000\"\nsession_hours = 4\n",
            )?;
            jail.set_env("ORCHARD_SESSION_HOURS", "8");
            jail.set_env("ORCHARD_SCORING__HOT_FROM", "70");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.bind, "0.0.0.0:9000");
            assert_eq!(c.session_hours, 8);
            assert_eq!(c.scoring.hot_from, 70);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn values_out_of_range_are_refused_by_name() {
        figment::Jail::expect_with(|jail| {
            for (variable, value, message) in [
                (
                    "ORCHARD_SESSION_HOURS",
                    "3000000000",
                    "session_hours must be between 1 and 8784",
                ),
                (
                    "ORCHARD_SCORING__BACKTEST_SECONDS",
                    "0",
                    "scoring.backtest_seconds must be between 1 and 3600",
                ),
            ] {
                jail.set_env(variable, value);
                let e = Config::load(None).unwrap_err().to_string();
                assert!(e.contains(message), "{e}");
                jail.clear_env();
            }
            jail.set_env("ORCHARD_SCORING__BACKTEST_SECONDS", "600");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.scoring.backtest_seconds, 600);
            Ok(())
        });
    }
}
