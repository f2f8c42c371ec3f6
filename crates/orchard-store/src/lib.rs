//! The storage contract. Small role traits (contacts, events, auth, catalogue, bulk loading)
//! that the web layer, the jobs and the CLI program against, one error type, and the
//! conformance story (`conformance`) that every backend must pass. Nothing here knows SQL: the
//! backends do, and only the binary chooses one.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orchard_core::auth::Role;
use orchard_core::capture::{Form, LeadMagnet};
use orchard_core::contact::{Contact, NewContact};
use orchard_core::demo::{AccountBatch, ContactBatch, DemoCompany};
use orchard_core::event::{Event, NewEvent};
use orchard_core::stage::LifecycleStage;
use orchard_core::submission::{Consent, Submission, Touch};
use orchard_core::team::{Team, User};
use orchard_core::{AccountId, ContactId, Email, EventSeq, FormId, LeadMagnetId, TokenId, UserId};

pub mod conformance;
pub mod import;
pub mod ingest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Too many writers were ahead for this one to get its turn in time; nothing was changed and
    /// the same call can be made again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// The database could not be reached or failed; the cause is for the log, not the user.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page of results with the total that matched, for paginated lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// Filters for the contacts list (API and UI share it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactQuery {
    /// Case-insensitive substring of email, name or company.
    pub search: Option<String>,
    pub email: Option<Email>,
    pub stage: Option<LifecycleStage>,
    /// Score at least this (inclusive); temperature filters map onto a score band.
    pub min_score: Option<i64>,
    /// Score below this (exclusive).
    pub max_score: Option<i64>,
    pub owner_id: Option<UserId>,
    pub account_id: Option<AccountId>,
    pub country: Option<String>,
    pub source: Option<String>,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

impl ContactQuery {
    pub const MAX_PER_PAGE: i64 = 500;

    /// Rows before the page. Saturates: a page far past the end (up to `i64::MAX`, as a
    /// hostile caller sends) is as empty as any page past the end.
    pub fn offset(&self) -> i64 {
        (self.page.max(1) - 1).saturating_mul(self.limit())
    }

    pub fn limit(&self) -> i64 {
        self.per_page.clamp(1, Self::MAX_PER_PAGE)
    }
}

/// What `append_events` did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Sequence numbers of the events stored now, in batch order.
    pub stored: Vec<EventSeq>,
    /// Client ids already in the log: acknowledged again, stored nothing.
    pub duplicates: Vec<String>,
}

/// A user as the auth layer sees it: with the password hash, never serialised.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Creates the contact, or updates the one with the same normalised email (filling in what
    /// is given, keeping what is not). Returns its id and whether it was created.
    async fn upsert_contact(&self, contact: &NewContact) -> StoreResult<(ContactId, bool)>;
    /// By id; the id of a contact merged into another finds that other.
    async fn contact(&self, id: ContactId) -> StoreResult<Contact>;
    /// The ids of contacts with these emails, creating (as subscribers first seen at the given
    /// time) those that do not exist yet. One round trip per few thousand emails, not per email:
    /// this is on the ingestion path.
    async fn ensure_contacts(
        &self,
        emails: &[(Email, DateTime<Utc>)],
    ) -> StoreResult<std::collections::HashMap<Email, ContactId>>;
    /// The contact each of these ids is now (itself, or the one it was merged into); ids of no
    /// contact are missing from the answer.
    async fn live_contacts(
        &self,
        ids: &[ContactId],
    ) -> StoreResult<std::collections::HashMap<ContactId, ContactId>>;
    /// By email; the email of a contact merged into another finds that other.
    async fn contact_by_email(&self, email: &Email) -> StoreResult<Contact>;
    /// Folds `other` into `keep` (one person under two emails) in one transaction: keep's
    /// values win and other's fill the gaps (`orchard_core::contact::merge_contacts`), the
    /// earliest first touch and latest last touch are kept, other's deals, activities and
    /// visitor ids move to keep, a `contact_merged` event is logged, and other's id and email
    /// resolve to keep from then on. Both timelines stay: the log is never rewritten.
    /// `NotFound` if either is missing, `Conflict` if either was merged away already,
    /// `Invalid` if they are the same contact.
    async fn merge_contacts(
        &self,
        keep: ContactId,
        other: ContactId,
        at: DateTime<Utc>,
    ) -> StoreResult<Contact>;
    /// The names of the custom attributes contacts have had (`custom.NAME`), in order.
    async fn custom_attribute_names(&self) -> StoreResult<Vec<String>>;
    /// The emails of contacts merged into this one.
    async fn merged_emails(&self, id: ContactId) -> StoreResult<Vec<Email>>;
    /// Moves a contact to a stage by hand, in any direction: logged as a `stage_changed` event
    /// with `manual: true` and the cause, after which the stage rules act only on what happens
    /// later. Setting the stage the contact has changes and logs nothing. Returns the contact
    /// as it is now.
    async fn set_stage(
        &self,
        id: ContactId,
        to: LifecycleStage,
        cause: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Contact>;
    /// `owner_scope`: when set, only contacts owned by that user (a rep's own book).
    async fn list_contacts(
        &self,
        query: &ContactQuery,
        owner_scope: Option<UserId>,
    ) -> StoreResult<Page<Contact>>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends a batch in one transaction, skipping client ids already stored, and applies its
    /// effect on derived contact state in that same transaction. Returns after commit.
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<AppendOutcome>;
    /// A contact's timeline, newest first.
    async fn contact_events(&self, id: ContactId, limit: i64) -> StoreResult<Vec<Event>>;
    /// The types the log holds at least one event of, by name.
    async fn event_types(&self) -> StoreResult<Vec<RecordedType>>;
}

/// An event type the log holds, and when Orchard first stored an event of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedType {
    pub event_type: String,
    pub first_recorded_at: DateTime<Utc>,
    /// The property names its events have carried that the rule language can write
    /// (`orchard_core::rules::is_property_name`), in order: at most `PROPERTIES_LISTED`.
    pub properties: Vec<String>,
    /// Whether `properties` are all the names recorded for the type (an integration that puts
    /// ids in its keys makes a list no one reads, and a type with more names than are listed
    /// is not checked for misspelt ones).
    pub all_properties: bool,
}

/// The property names listed per type at most (`RecordedType::properties`).
pub const PROPERTIES_LISTED: usize = 200;

#[async_trait]
pub trait AuthStore: Send + Sync {
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<UserId>;
    async fn user_credentials(&self, email: &Email) -> StoreResult<Credentials>;
    async fn user(&self, id: UserId) -> StoreResult<User>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    async fn user_count(&self) -> StoreResult<i64>;
    async fn set_password(&self, id: UserId, password_hash: &str) -> StoreResult<()>;
    /// Stores only the SHA-256 hash of a token.
    async fn create_token(&self, name: &str, role: Role, token_hash: &str) -> StoreResult<TokenId>;
    /// The live (not revoked) token with this hash.
    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<ApiToken>;
    async fn revoke_token(&self, id: TokenId) -> StoreResult<()>;
    async fn create_session(&self, id_hash: &str, session: &Session) -> StoreResult<()>;
    /// The session if it exists and has not expired at `now`.
    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Session>;
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Deletes sessions expired at `now`; returns how many.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn teams(&self) -> StoreResult<Vec<Team>>;
    async fn lead_magnets(&self) -> StoreResult<Vec<LeadMagnet>>;
    /// The id in `magnet` is ignored; the new one is returned. A taken slug is a `Conflict`.
    async fn create_lead_magnet(&self, magnet: &LeadMagnet) -> StoreResult<LeadMagnetId>;
    async fn update_lead_magnet(&self, magnet: &LeadMagnet) -> StoreResult<()>;
    /// Forms that offered it keep working, without a lead magnet.
    async fn delete_lead_magnet(&self, id: LeadMagnetId) -> StoreResult<()>;
    async fn forms(&self) -> StoreResult<Vec<Form>>;
    async fn form_by_slug(&self, slug: &str) -> StoreResult<Form>;
    async fn create_form(&self, form: &Form) -> StoreResult<FormId>;
    async fn update_form(&self, form: &Form) -> StoreResult<()>;
    async fn delete_form(&self, id: FormId) -> StoreResult<()>;
}

/// A form submission that passed its checks, with what the form and its lead magnet imply.
#[derive(Debug, Clone)]
pub struct Capture {
    pub form: Form,
    pub magnet: Option<LeadMagnet>,
    pub submission: Submission,
    /// The `form_submitted` event to append (its id makes a replay harmless).
    pub event: NewEvent,
}

/// Where a contact came from and what it agreed to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    pub first_touch: Option<Touch>,
    pub last_touch: Option<Touch>,
    pub consent: Option<Consent>,
}

#[async_trait]
pub trait CaptureStore: Send + Sync {
    /// Stores a submission in one transaction: the contact created or updated (never
    /// duplicated), first touch kept and last touch replaced, consent recorded, the visitor id
    /// tied to the contact so its earlier page views join the timeline, a top-of-funnel lead
    /// magnet making a subscriber an IQL, and the `form_submitted` event appended.
    async fn capture(&self, capture: &Capture) -> StoreResult<(ContactId, bool)>;
    async fn attribution(&self, id: ContactId) -> StoreResult<Attribution>;
    /// The contact a visitor id was tied to by a submission, if any.
    async fn contact_for_visitor(&self, visitor_id: &str) -> StoreResult<Option<ContactId>>;
}

/// What an import batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    /// Rows identical to what was stored: a re-run of the same file lands here.
    pub unchanged: u64,
}

/// What an import batch did, and the rows it refused because what they refer to (a contact's
/// email, an account's key, an owner's email) names nothing stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub counts: ImportCounts,
    pub rejected: Vec<orchard_core::import::RowError>,
}

#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Stores a batch of imported records (each with its spreadsheet row number) in one
    /// transaction, matching contacts by email and everything else by its external id, so
    /// importing the same file twice changes nothing. A row whose links resolve to nothing is
    /// rejected and stores nothing; the others are stored. With `dry_run` the transaction is
    /// rolled back: the report says what the import would do.
    async fn import(
        &self,
        records: &[(usize, orchard_core::import::Record)],
        dry_run: bool,
    ) -> StoreResult<ImportReport>;
}

/// A saved version of a scoring rule set.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSetVersion {
    pub version: i64,
    pub definition: orchard_core::scoring::RuleSetDef,
    pub created_at: DateTime<Utc>,
    /// When it was made live; the live set is the one made live last.
    pub live_since: Option<DateTime<Utc>>,
}

/// A score change as stored, with the rule set version that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredScoreChange {
    pub version: i64,
    pub change: orchard_core::scoring::ScoreChange,
}

/// Contacts per transaction when everyone is refreshed beside live traffic (a new segment, a
/// published rule set): each transaction holds up writers, SQLite's above all, for a moment.
pub const LIVE_BATCH: i64 = 2_000;

/// Contacts per transaction for `orchard rebuild`, where nothing is expected to wait on it:
/// each transaction starts its pipeline with a chunk loaded and nothing to decide, and ends
/// with one decided and nothing to load, so fewer of them ran about a tenth faster (100 000
/// demo contacts on SQLite, bench/RESULTS.md), holding writers up for under half a second.
pub const REBUILD_BATCH: i64 = 10_000;

/// What a refresh recomputes (`ScoringStore::refresh`, `refresh_all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Scores with the live rule set, lifecycle stages and every segment's membership.
    Everything,
    /// One segment's membership, which is all a new segment changes.
    Segment(orchard_core::SegmentId),
}

/// Recomputes `what` for every live contact from the log, `batch` contacts per transaction
/// (`LIVE_BATCH` or `REBUILD_BATCH`), telling `progress` how many are done. Returns how many
/// were refreshed. `orchard rebuild`, a newly published rule set and the demo loader refresh
/// everything; a new segment decides its own membership.
pub async fn refresh_all(
    store: &dyn Store,
    now: DateTime<Utc>,
    batch: i64,
    what: Refresh,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> StoreResult<u64> {
    let mut after = None;
    let mut done = 0u64;
    loop {
        let ids = store.contact_ids_after(after, batch).await?;
        let Some(last) = ids.last().copied() else {
            return Ok(done);
        };
        match what {
            Refresh::Everything => store.refresh(&ids, now).await?,
            Refresh::Segment(id) => store.refresh_segment(id, &ids, now).await?,
        }
        done += ids.len() as u64;
        progress(done);
        after = Some(last);
    }
}

/// What `ScoringStore::repack_histories` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repacked {
    /// Contacts with a history (at least one event of their own).
    pub contacts: u64,
    /// Histories that were missing, left over, or did not hold exactly the log's events.
    pub stale: u64,
    /// Event types the log holds that its list of types lacked (events written by a process
    /// older than the list, or by hand), added now.
    pub missing_types: u64,
    /// Property names of those events' types missing from their list likewise.
    pub missing_properties: u64,
}

/// Scores derived from the log (`orchard_core::scoring`), kept current by the append path.
#[async_trait]
pub trait ScoringStore: Send + Sync {
    /// Saves a rule set as a new version (checked first: `Invalid` names the rule at fault).
    /// `live` makes it the set that scores from now on; rescoring everyone is the caller's
    /// next step (`rescore` in chunks, as `orchard rebuild` does).
    async fn save_rule_set(
        &self,
        def: &orchard_core::scoring::RuleSetDef,
        live: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<i64>;
    async fn live_rule_set(&self) -> StoreResult<Option<RuleSetVersion>>;
    /// Newest first.
    async fn rule_sets(&self) -> StoreResult<Vec<RuleSetVersion>>;
    /// Recomputes these contacts' scores from their events with the live rule set as of
    /// `now`: score changes replaced, score and due time updated. Nothing when none is live.
    async fn refresh(&self, ids: &[ContactId], now: DateTime<Utc>) -> StoreResult<()>;
    /// Decides one segment's membership for these contacts as of `now`, as `refresh` would,
    /// leaving everything else as stored (a contact's due time is only brought forward, to
    /// when this segment may next change for it). Nothing when the segment is gone.
    async fn refresh_segment(
        &self,
        segment: orchard_core::SegmentId,
        ids: &[ContactId],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Writes every contact's history (the contact-ordered copy of the log that refreshes
    /// read) afresh from the event log, in one transaction, and adds any type the log holds
    /// to the list of its types (`EventStore::event_types`). Appends keep both current; this is
    /// for recovery and checks (`orchard rebuild --repack`), and says how many histories were
    /// not what the log gives and how many types were missing.
    async fn repack_histories(&self) -> StoreResult<Repacked>;
    /// Contacts whose score may have changed by `now` with no new event (a window moved):
    /// read from the due-time index, never by scanning every contact.
    async fn due_for_refresh(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<ContactId>>;
    /// Live contacts' ids above `after`, in order, for work over everyone in chunks.
    async fn contact_ids_after(
        &self,
        after: Option<ContactId>,
        limit: i64,
    ) -> StoreResult<Vec<ContactId>>;
    /// A contact's score changes, oldest first: the explanation and the history.
    async fn score_changes(&self, id: ContactId) -> StoreResult<Vec<StoredScoreChange>>;
    /// Forgets every contact's score digest, so that the next refresh of each writes its
    /// score changes whole instead of trusting that what is stored matches the digest: a
    /// repair after derived rows were changed by something other than Orchard. Returns how
    /// many contacts had one.
    async fn forget_score_digests(&self) -> StoreResult<u64>;
    /// A live contact scored by `set` from its events up to `at`, saving nothing: its score at
    /// a past date under a rule set that was live then but is not now.
    async fn score_as_of(
        &self,
        id: ContactId,
        set: &orchard_core::scoring::RuleSet,
        at: DateTime<Utc>,
    ) -> StoreResult<orchard_core::scoring::Scored>;
    /// Every contact that existed at `cutoff`, scored by both sets from its events up to then
    /// and its stage under each replayed from its events and deals up to then, with whether it
    /// won a deal after `cutoff`: the input of a backtest. Saves nothing.
    async fn backtest_scores(
        &self,
        live: &orchard_core::scoring::RuleSet,
        draft: &orchard_core::scoring::RuleSet,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<Vec<orchard_core::backtest::Scored>>;
}

/// A segment with its current size.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSummary {
    pub segment: orchard_core::segment::Segment,
    pub member_count: i64,
}

/// What a segment preview found (`SegmentStore::preview_segment`).
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// Contacts evaluated that the filter holds.
    pub matched: i64,
    /// Live contacts evaluated, and how many live contacts there are: the same number unless
    /// a sample was evaluated.
    pub evaluated: i64,
    pub live: i64,
    /// The first matches in id order, as many as asked for.
    pub members: Vec<Contact>,
}

impl Preview {
    /// The filter's size, estimated from the sample when there was one.
    pub fn size(&self) -> orchard_core::segment::SizeEstimate {
        orchard_core::segment::estimate_size(self.matched, self.evaluated, self.live)
    }
}

/// Segments (`orchard_core::segment`): saved filters whose members the append path keeps current.
#[async_trait]
pub trait SegmentStore: Send + Sync {
    /// Saves a checked segment and decides every contact's membership before returning, so its
    /// member count is right at once.
    async fn create_segment(
        &self,
        segment: &orchard_core::segment::Segment,
        now: DateTime<Utc>,
    ) -> StoreResult<orchard_core::SegmentId>;
    async fn segments(&self) -> StoreResult<Vec<SegmentSummary>>;
    async fn segment(&self, id: orchard_core::SegmentId) -> StoreResult<SegmentSummary>;
    async fn delete_segment(&self, id: orchard_core::SegmentId) -> StoreResult<()>;
    /// Members in contact-id order after `after`, a page at a time (exports walk them all).
    async fn segment_members(
        &self,
        id: orchard_core::SegmentId,
        after: Option<ContactId>,
        limit: i64,
    ) -> StoreResult<Vec<Contact>>;
    /// The segments a contact is in.
    async fn contact_segments(&self, id: ContactId) -> StoreResult<Vec<SegmentSummary>>;
    /// How many live contacts a filter would hold now, and the first `sample` of them in id
    /// order, without saving anything (the builder's live count). With `at_most`, when there
    /// are more live contacts than that, only about that many are evaluated: every n-th
    /// contact id from the first (`orchard_core::segment::sample_step`), for an estimate; the
    /// members are then the first among those evaluated.
    async fn preview_segment(
        &self,
        filter: &orchard_core::rules::Expr,
        now: DateTime<Utc>,
        sample: usize,
        at_most: Option<i64>,
    ) -> StoreResult<Preview>;
}

#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The stored value of `name`, storing `candidate` first if there is none. Every process
    /// that asks gets the same answer, whichever asked first.
    async fn setting_or_init(&self, name: &str, candidate: &str) -> StoreResult<String>;
}

/// Fast loading of generated or migrated data into an empty database.
#[async_trait]
pub trait BulkStore: Send + Sync {
    /// True when the database holds no contacts, accounts or events (users may exist).
    async fn is_empty(&self) -> StoreResult<bool>;
    async fn load_company(&self, company: &DemoCompany) -> StoreResult<()>;
    async fn load_account_batch(&self, batch: &AccountBatch) -> StoreResult<()>;
    async fn load_contact_batch(&self, batch: &ContactBatch) -> StoreResult<()>;
    /// Makes id sequences continue after explicitly numbered rows.
    async fn finish_load(&self) -> StoreResult<()>;
    /// Rows per table, for checks that two backends hold the same data.
    async fn table_counts(&self) -> StoreResult<BTreeMap<String, i64>>;
}

/// Everything a running Orchard needs from storage.
#[async_trait]
pub trait Store:
    ContactStore
    + EventStore
    + AuthStore
    + CatalogStore
    + CaptureStore
    + SettingsStore
    + ImportStore
    + ScoringStore
    + SegmentStore
    + BulkStore
{
    /// Which backend, for logs and `/healthz`: "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
}
