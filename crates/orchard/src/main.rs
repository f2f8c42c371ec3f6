//! `orchard`: the command line. Every command opens the database named by `--db`, else
//! `ORCHARD_DATABASE_URL`, else the embedded default, and the schema is migrated on open.

// The command line's job is to print to stdout; libraries never do (workspace lint).
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: allocation and freeing were about a fifth of the
/// ingest and rebuild profiles, and with it both ran 5–15% faster (bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod bench_rebuild;
mod config;
mod demo;
mod import;
mod score;
mod segment;
mod serve;
mod store;

use config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "orchard",
    version,
    about = "Orchard: the self-hosted revenue engine"
)]
struct Cli {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true, value_name = "URL")]
    db: Option<String>,
    /// Configuration file (default: ./orchard.toml when present).
    #[arg(long, global = true, value_name = "FILE", env = "ORCHARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web interface and API.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
        /// Fill an empty database with the demo company first and print how to log in.
        #[arg(long)]
        demo: bool,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Fill an empty database with a realistic synthetic company.
    Demo {
        /// Contacts to make (1 to 10 000 000; a million take about 9 minutes and 2 GB).
        #[arg(long, default_value_t = demo::DEFAULT_CONTACTS, value_parser = demo_contacts)]
        contacts: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Import a CSV file (JSON Lines too for events). Prints `imported N rejected M` last and
    /// writes rejected rows (row, column, reason) to FILE.rejects.csv.
    Import {
        /// contacts, accounts, deals, revenue, activities, spend or events.
        kind: String,
        file: PathBuf,
    },
    /// Lead scoring: make a preset live, explain a contact's score.
    Score {
        #[command(subcommand)]
        command: ScoreCommand,
    },
    /// Segments: list them, create one, export its members.
    Segment {
        #[command(subcommand)]
        command: SegmentCommand,
    },
    /// Recompute scores, lifecycle stages and segment memberships from the event log.
    Rebuild {
        /// First write every contact's history (the contact-ordered copy of the log that
        /// derivations read) afresh from the log itself.
        #[arg(long)]
        repack: bool,
        /// Rewrite every contact's score changes whole, trusting nothing stored: a repair after
        /// derived rows were changed by something other than Orchard (slower: it writes them
        /// all).
        #[arg(long)]
        full: bool,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Benchmarks with their peer baselines (see bench/README.md).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum ScoreCommand {
    /// Make a named rule set live (`seed`: the SPEC's reference rules) and rescore everyone.
    Preset { name: String },
    /// The rules that fired for a contact, when, and their points.
    Explain {
        email: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also give the score as it stood at this date (2026-03-31 or RFC 3339).
        #[arg(long, value_name = "DATE")]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SegmentCommand {
    /// Every segment with its member count.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Save a segment (filter in the rule language) and decide every contact's membership.
    Create {
        name: String,
        filter: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Print a segment's members as CSV.
    Export { id: i64 },
    /// How many contacts a filter holds now, with the first ten, saving nothing.
    Count {
        filter: String,
        /// With more live contacts than this (100 to 1000000), estimate from a sample of
        /// about this many (every n-th contact id), with a 95% interval.
        #[arg(long, value_name = "CONTACTS")]
        estimate_from: Option<i64>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token and print it (only the token, once; it is stored hashed).
    Create {
        #[arg(long)]
        name: String,
        /// admin, marketer, sales_manager, rep, account_manager or read_only.
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented orchard.toml with the defaults.
    Default,
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ORCHARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=error,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `demo --contacts`: 1 to 10 000 000. A trillion filled memory until the process was killed.
fn demo_contacts(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=10_000_000).contains(n))
        .ok_or_else(|| format!("'{s}' is not a number of contacts from 1 to 10000000"))
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config {
        command: ConfigCommand::Default,
    } = cli.command
    {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    let mut config = Config::load(cli.config.as_deref())
        .map_err(|e| anyhow::anyhow!("configuration is invalid: {e}"))?;
    if let Some(db) = cli.db {
        config.database_url = db;
    }
    match cli.command {
        Command::Serve { bind, demo } => {
            if let Some(b) = bind {
                config.bind = b;
            }
            serve::run(config, demo).await
        }
        Command::Migrate => {
            let store = store::open(&config.database_url).await?;
            println!(
                "database at {} is up to date ({})",
                store::redact(&config.database_url),
                store.backend()
            );
            Ok(())
        }
        Command::Demo { contacts, seed } => {
            let store = store::open(&config.database_url).await?;
            demo::load(store.as_ref(), seed, contacts, true).await?;
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { name, role },
        } => {
            let role = orchard_core::auth::Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "role '{role}' is not one of admin, marketer, sales_manager, rep, account_manager, read_only"
                )
            })?;
            let name = name.trim();
            anyhow::ensure!(
                !name.is_empty() && name.len() <= 100,
                "--name must be 1-100 characters"
            );
            let store = store::open(&config.database_url).await?;
            let (token, hash) = orchard_web::auth::new_api_token();
            store.create_token(name, role, &hash).await?;
            println!("{token}");
            Ok(())
        }
        Command::Import { kind, file } => {
            let store = store::open(&config.database_url).await?;
            let done = import::run(store.as_ref(), &kind, &file, true).await?;
            let out = &done.outcome;
            if out.unchanged > 0 {
                eprintln!("{} rows were already up to date", out.unchanged);
            }
            if let Some(f) = &done.rejects_file {
                eprintln!("rejected rows, with row number and reason: {}", f.display());
            }
            println!("imported {} rejected {}", out.imported, out.rejected.len());
            Ok(())
        }
        Command::Score {
            command: ScoreCommand::Preset { name },
        } => {
            let store = store::open(&config.database_url).await?;
            let (version, rebuilt) = score::preset(store.as_ref(), &name, true).await?;
            println!(
                "rule set {name} v{version} is live; rescored {} contacts in {:.1} s",
                rebuilt.contacts, rebuilt.seconds
            );
            Ok(())
        }
        Command::Score {
            command: ScoreCommand::Explain { email, format, at },
        } => {
            let at = at
                .map(|a| {
                    orchard_core::import::parse_time(&a).ok_or_else(|| {
                        anyhow::anyhow!("--at '{a}' is not a date (use 2026-03-31 or RFC 3339)")
                    })
                })
                .transpose()?;
            let store = store::open(&config.database_url).await?;
            let bands = orchard_core::stage::Bands {
                warm_from: config.scoring.warm_from,
                hot_from: config.scoring.hot_from,
            };
            let e = score::explain(store.as_ref(), &email, bands, at).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&e)?),
                Format::Table => print!("{}", score::table(&e)),
            }
            Ok(())
        }
        Command::Segment { command } => {
            let store = store::open(&config.database_url).await?;
            match command {
                SegmentCommand::List { format } => {
                    let all = segment::list(store.as_ref()).await?;
                    match format {
                        Format::Json => println!("{}", serde_json::to_string_pretty(&all)?),
                        Format::Table => print!("{}", segment::table(&all)),
                    }
                }
                SegmentCommand::Create {
                    name,
                    filter,
                    format,
                } => {
                    let s = segment::create(store.as_ref(), &name, &filter).await?;
                    match format {
                        Format::Json => println!("{}", serde_json::to_string_pretty(&s)?),
                        Format::Table => print!("{}", segment::table(std::slice::from_ref(&s))),
                    }
                }
                SegmentCommand::Export { id } => {
                    segment::export(store, id, &mut std::io::stdout().lock()).await?;
                }
                SegmentCommand::Count {
                    filter,
                    estimate_from,
                    format,
                } => {
                    let p = segment::count(store.as_ref(), &filter, estimate_from).await?;
                    match format {
                        Format::Json => println!("{}", serde_json::to_string_pretty(&p)?),
                        Format::Table => print!("{}", segment::count_table(&p)),
                    }
                }
            }
            Ok(())
        }
        Command::Rebuild { repack, full } => {
            let store = store::open(&config.database_url).await?;
            if full {
                let n = store.forget_score_digests().await?;
                println!("rewriting the score changes of {n} contacts whole");
            }
            if repack {
                let start = std::time::Instant::now();
                let r = store.repack_histories().await?;
                println!(
                    "repacked the histories of {} contacts in {:.1} s; {} of them were not what the log gives; {} event types and {} of their property names were missing from the lists of them",
                    r.contacts,
                    start.elapsed().as_secs_f64(),
                    r.stale,
                    r.missing_types,
                    r.missing_properties
                );
            }
            let live = store.live_rule_set().await?;
            let r = score::rebuild(store.as_ref(), true).await?;
            match live {
                Some(l) => println!(
                    "rescored {} contacts with rule set {} v{} in {:.1} s",
                    r.contacts, l.definition.name, l.version, r.seconds
                ),
                None => println!(
                    "no rule set is live, so scores were left as they are (make one live with `orchard score preset seed`)"
                ),
            }
            Ok(())
        }
        Command::Bench { command } => bench::run(command, &config).await,
        Command::Config { .. } => unreachable!("handled before loading configuration"),
    }
}
