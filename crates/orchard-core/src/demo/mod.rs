//! The demo company: a realistic, seeded synthetic business (SPEC C, `orchard demo`). Output is a
//! pure function of the settings, so the same seed gives the same company on SQLite and on
//! PostgreSQL. It is produced in three parts so that a million contacts never have to sit in
//! memory at once: the fixed company (teams, reps, lead magnets, forms, spend, accounts), then
//! per-range batches of account revenue/activities and of contacts with their events and deals.
//! Ids are assigned here (1-based), because the demo only ever fills an empty database: dense for
//! the company's entities and contacts; in a fixed block per owning account or contact for
//! subscriptions, orders, activities and deals, so that any chunking gives the same ids.

mod accounts;
mod company;
mod contacts;
mod data;
mod journey;
#[cfg(test)]
mod tests;

use std::ops::Range;

use chrono::{DateTime, NaiveDate, Utc};

use crate::account::{Account, Order, Subscription};
use crate::activity::Activity;
use crate::capture::{Form, LeadMagnet};
use crate::contact::Contact;
use crate::deal::Deal;
use crate::event::NewEvent;
use crate::rng::Rng;
use crate::spend::Spend;
use crate::team::{Team, User};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSettings {
    pub seed: u64,
    pub contacts: usize,
    /// The company's "today": history is generated over the 18 months before it.
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DemoCompany {
    pub teams: Vec<Team>,
    pub users: Vec<User>,
    pub lead_magnets: Vec<LeadMagnet>,
    pub forms: Vec<Form>,
    pub spend: Vec<Spend>,
    pub accounts: Vec<Account>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountBatch {
    pub subscriptions: Vec<Subscription>,
    pub orders: Vec<Order>,
    pub activities: Vec<Activity>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactBatch {
    pub contacts: Vec<Contact>,
    /// Events of these contacts and of anonymous visitors generated alongside them.
    pub events: Vec<NewEvent>,
    pub deals: Vec<Deal>,
}

/// Password every demo user gets; printed by `orchard serve --demo`.
pub const DEMO_PASSWORD: &str = "orchard-demo";

/// The fixed company: teams, users (reps etc.), lead magnets, forms, spend and accounts.
pub fn company(s: &DemoSettings) -> DemoCompany {
    company::build(s)
}

/// Revenue and touches of accounts `range` (indices into company.accounts). A range reaching
/// past the last account is cut short, so callers may step in fixed-size chunks.
pub fn account_batch(s: &DemoSettings, company: &DemoCompany, range: Range<usize>) -> AccountBatch {
    accounts::batch(s, company, range)
}

/// Contacts with indices in `range` (0-based; contact id = index + 1), their events and deals,
/// plus anonymous visitors' page views generated alongside them. A range reaching past
/// `s.contacts` is cut short.
pub fn contact_batch(s: &DemoSettings, company: &DemoCompany, range: Range<usize>) -> ContactBatch {
    contacts::batch(s, company, range)
}

/// How many accounts a demo of `contacts` contacts has: about one customer company per ten
/// contacts, and never so few that segment and tier reports look empty.
pub fn account_count(contacts: usize) -> usize {
    (contacts / 10).max(30)
}

/// Demo-only aid: the quality segment ("money_maker", "contributor" or "filler") the generator
/// aimed at when it made account `account_index`. The product classifies accounts from their
/// revenue, services and cost to serve; this lets tests check the data was built to give the
/// typical 20/40/40 split, without the product ever reading it.
pub fn intended_segment(seed: u64, account_index: usize) -> &'static str {
    Segment::of(seed, account_index).as_str()
}

/// Streams of [`Rng::for_item`]: one per kind of item, so that changing how one kind is drawn
/// never shifts another's numbers.
const STREAM_SEGMENT: u64 = 1;
const STREAM_ACCOUNT: u64 = 2;
const STREAM_REVENUE: u64 = 3;
const STREAM_ACTIVITY: u64 = 4;
const STREAM_CONTACT: u64 = 5;
const STREAM_VISITORS: u64 = 6;
const STREAM_SPEND: u64 = 7;
const STREAM_CUSTOMER_SLOT: u64 = 8;
const STREAM_NAMES: u64 = 9;
const STREAM_EVENTS: u64 = 10;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Eighteen months of history.
const WINDOW_DAYS: i64 = 548;
/// Leads are created from this many days into the window, so that the page views they made
/// before identifying themselves still fall inside it.
const LEAD_LEAD_IN_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    MoneyMaker,
    Contributor,
    Filler,
}

impl Segment {
    /// Drawn from its own stream so that every other part of the generator can ask for an
    /// account's segment without generating the account.
    fn of(seed: u64, account_index: usize) -> Self {
        let mut r = Rng::for_item(seed, STREAM_SEGMENT, account_index as u64);
        *r.weighted(&[
            (Self::MoneyMaker, 0.2),
            (Self::Contributor, 0.4),
            (Self::Filler, 0.4),
        ])
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::MoneyMaker => "money_maker",
            Self::Contributor => "contributor",
            Self::Filler => "filler",
        }
    }
}

/// The generator's time frame in epoch milliseconds. Every generated instant goes through
/// [`Clock::at`], which keeps it inside the window and whole to the millisecond, as stored.
#[derive(Debug, Clone, Copy)]
struct Clock {
    now: i64,
    start: i64,
}

impl Clock {
    fn new(s: &DemoSettings) -> Self {
        let now = s.now.timestamp_millis();
        Self {
            now,
            start: now - WINDOW_DAYS * DAY,
        }
    }

    fn at(self, ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms.clamp(self.start, self.now))
            .expect("demo window lies within chrono's range")
    }

    fn date(self, ms: i64) -> NaiveDate {
        self.at(ms).date_naive()
    }

    fn today(self) -> NaiveDate {
        self.date(self.now)
    }

    /// The first instant at which leads are created.
    fn leads_from(self) -> i64 {
        self.start + LEAD_LEAD_IN_DAYS * DAY
    }

    /// The last instant at which leads are created: a little before now, so that every lead
    /// has at least its sign-up in the past.
    fn leads_until(self) -> i64 {
        self.now - HOUR
    }

    /// A lead-creation instant: traffic grows over the window (density rising linearly), as
    /// a company investing in marketing would see. `u` is uniform in [0, 1).
    fn lead_time(self, u: f64) -> i64 {
        let span = (self.leads_until() - self.leads_from()) as f64;
        self.leads_from() + (span * lead_time_quantile(u)) as i64
    }

    /// Share of all leads created before `ms`: the inverse of [`Clock::lead_time`], used to
    /// size monthly spend to the leads it bought.
    fn lead_share_before(self, ms: i64) -> f64 {
        let span = (self.leads_until() - self.leads_from()) as f64;
        let x = ((ms - self.leads_from()) as f64 / span).clamp(0.0, 1.0);
        x.powf(LEAD_GROWTH)
    }
}

/// Exponent of the lead-creation distribution's CDF, x^k: above one means growth.
const LEAD_GROWTH: f64 = 4.0 / 3.0;

fn lead_time_quantile(u: f64) -> f64 {
    u.powf(1.0 / LEAD_GROWTH)
}

fn day_floor(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY)
}

/// Midnight UTC of a day, in epoch milliseconds.
fn date_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis()
}

/// An instant during the working day of someone `utc_offset` hours from UTC, on the day of `ms`.
fn working_time(r: &mut Rng, ms: i64, utc_offset: i64) -> i64 {
    let local_hour = 8 + r.range(0, 10);
    day_floor(ms) + (local_hour - utc_offset) * HOUR + r.range(0, HOUR)
}

/// A uniformly chosen entry of a word list.
fn word(r: &mut Rng, items: &[&'static str]) -> &'static str {
    items[r.range(0, items.len() as i64) as usize]
}

/// Picks an index by weight, with the weight read from each item: the tables keep weights next
/// to the data they weigh.
fn pick_index_by<T>(r: &mut Rng, items: &[T], weight: impl Fn(&T) -> f64) -> usize {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = r.f64() * total;
    for (i, item) in items.iter().enumerate() {
        let w = weight(item);
        if x < w {
            return i;
        }
        x -= w;
    }
    items.len() - 1
}

/// `prefix` followed by the numbers joined with dashes ("demo-c12-3"). Event ids are made twenty
/// million times for a benchmark demo; pushing digits is several times faster than `format!`.
fn numbered(prefix: &str, numbers: &[usize]) -> String {
    let mut s = String::with_capacity(prefix.len() + numbers.len() * 8);
    s.push_str(prefix);
    for (i, n) in numbers.iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = *n;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for d in &digits[at..] {
            s.push(char::from(*d));
        }
    }
    s
}

/// Appends `s` lower-cased and folded to ASCII letters and digits (Jörg → joerg, O'Neill →
/// oneill): email local parts and domains of the demo are plain ASCII, as most real ones are.
fn push_ascii(out: &mut String, s: &str) {
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'ä' | 'æ' => out.push_str("ae"),
            'ö' | 'ø' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'å' => out.push_str("aa"),
            'à' | 'á' | 'â' | 'ã' => out.push('a'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ò' | 'ó' | 'ô' | 'õ' => out.push('o'),
            'ù' | 'ú' | 'û' => out.push('u'),
            'ç' => out.push('c'),
            'ñ' => out.push('n'),
            _ => {}
        }
    }
}
