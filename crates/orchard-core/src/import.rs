//! CSV import (SPEC A1): each row checked on its own and turned into a domain record, or into a
//! rejection naming the row, the column and the reason. Columns are found by header name with
//! common aliases, so HubSpot's and Mautic's export headers map without editing the file.
//! Reading the file (encoding, quoting) is the caller's; this module sees one record at a time.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::Value;

use crate::account::{Account, BillingPeriod, Order, Subscription};
use crate::activity::{Activity, ActivityKind};
use crate::contact::NewContact;
use crate::deal::{Deal, DealStatus};
use crate::spend::Spend;
use crate::stage::LifecycleStage;
use crate::{AccountId, ActivityId, DealId, Email, OrderId, SpendId, SubscriptionId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Contacts,
    Accounts,
    Deals,
    /// Recurring (a row with a billing period becomes a subscription) and one-off (an order).
    Revenue,
    Activities,
    Spend,
}

impl ImportKind {
    /// The CSV kinds, in the order a migration loads them (later kinds refer to earlier ones).
    pub const ALL: [Self; 6] = [
        Self::Contacts,
        Self::Accounts,
        Self::Deals,
        Self::Revenue,
        Self::Activities,
        Self::Spend,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Accounts => "accounts",
            Self::Deals => "deals",
            Self::Revenue => "revenue",
            Self::Activities => "activities",
            Self::Spend => "spend",
        }
    }

    /// Canonical column names and the header spellings that map to them (compared after
    /// lower-casing and turning `_` and `-` into spaces).
    fn columns(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Self::Contacts => &[
                (
                    "email",
                    &["email", "email address", "e mail", "emailaddress"],
                ),
                ("first_name", &["first name", "firstname", "given name"]),
                (
                    "last_name",
                    &["last name", "lastname", "surname", "family name"],
                ),
                (
                    "phone",
                    &["phone", "phone number", "mobile", "mobile phone number"],
                ),
                (
                    "company",
                    &[
                        "company",
                        "company name",
                        "companyname",
                        "associated company",
                    ],
                ),
                ("job_title", &["job title", "jobtitle", "position", "title"]),
                ("industry", &["industry"]),
                (
                    "company_size",
                    &["company size", "number of employees", "numberofemployees"],
                ),
                ("country", &["country", "country/region", "country code"]),
                ("city", &["city"]),
                ("region", &["region", "state", "state/region"]),
                (
                    "source",
                    &[
                        "source",
                        "original source",
                        "lead source",
                        "hs analytics source",
                    ],
                ),
                ("stage", &["stage", "lifecycle stage", "lifecyclestage"]),
                ("tags", &["tags"]),
                ("age", &["age"]),
                ("gender", &["gender"]),
                ("nationality", &["nationality"]),
                ("education", &["education", "education level"]),
                ("occupation", &["occupation"]),
                ("children", &["children", "number of children"]),
                (
                    "seniority",
                    &["seniority", "seniority level", "job seniority"],
                ),
                (
                    "company_revenue",
                    &["company revenue", "annual revenue", "annualrevenue"],
                ),
                ("interests", &["interests"]),
                ("values", &["values"]),
                ("time_zone", &["time zone", "timezone", "ip timezone"]),
                ("latitude", &["latitude", "lat"]),
                ("longitude", &["longitude", "lon", "lng"]),
                (
                    "created_at",
                    &["created at", "create date", "date added", "dateadded"],
                ),
            ],
            Self::Accounts => &[
                (
                    "external_id",
                    &["external id", "id", "record id", "company id", "account id"],
                ),
                ("name", &["name", "company name", "account name"]),
                ("domain", &["domain", "company domain name", "website"]),
                ("industry", &["industry"]),
                (
                    "employees",
                    &["employees", "number of employees", "company size"],
                ),
                ("region", &["region", "state/region"]),
                ("country", &["country", "country/region"]),
                ("service_hours", &["service hours"]),
                ("cost_to_serve", &["cost to serve"]),
                ("created_at", &["created at", "create date"]),
            ],
            Self::Deals => &[
                (
                    "external_id",
                    &["external id", "id", "record id", "deal id"],
                ),
                (
                    "name",
                    &["name", "deal name", "dealname", "opportunity name"],
                ),
                (
                    "email",
                    &["email", "contact email", "associated contact", "contact"],
                ),
                (
                    "account",
                    &["account", "company", "associated company", "account id"],
                ),
                (
                    "owner",
                    &["owner", "deal owner", "owner email", "hubspot owner"],
                ),
                (
                    "stage",
                    &["stage", "deal stage", "dealstage", "pipeline stage"],
                ),
                ("status", &["status", "deal status"]),
                ("amount", &["amount", "value", "deal amount"]),
                (
                    "expected_close",
                    &["expected close", "close date", "closedate"],
                ),
                ("created_at", &["created at", "create date", "createdate"]),
                ("closed_at", &["closed at", "closed date", "date closed"]),
                (
                    "lost_reason",
                    &["lost reason", "closed lost reason", "closed_lost_reason"],
                ),
                ("competitor", &["competitor"]),
            ],
            Self::Revenue => &[
                (
                    "external_id",
                    &[
                        "external id",
                        "id",
                        "subscription id",
                        "order id",
                        "invoice id",
                    ],
                ),
                ("account", &["account", "company", "account id", "customer"]),
                ("product", &["product", "service", "product name"]),
                ("plan", &["plan", "plan name", "tier"]),
                ("amount", &["amount", "price", "value"]),
                (
                    "period",
                    &["period", "billing period", "interval", "billing interval"],
                ),
                (
                    "date",
                    &[
                        "date",
                        "start",
                        "start date",
                        "ordered on",
                        "order date",
                        "invoice date",
                    ],
                ),
                ("end", &["end", "end date", "cancelled on", "ended on"]),
            ],
            Self::Activities => &[
                (
                    "external_id",
                    &["external id", "id", "activity id", "engagement id"],
                ),
                (
                    "kind",
                    &["kind", "type", "activity type", "engagement type"],
                ),
                ("account", &["account", "company", "account id"]),
                ("email", &["email", "contact email", "contact"]),
                ("user", &["user", "owner", "rep", "activity owner"]),
                ("at", &["at", "date", "timestamp", "activity date"]),
                ("minutes", &["minutes", "duration", "duration minutes"]),
                ("subject", &["subject", "title", "notes", "body"]),
            ],
            Self::Spend => &[
                ("external_id", &["external id", "id"]),
                ("day", &["day", "date"]),
                ("source", &["source", "channel"]),
                ("campaign", &["campaign", "campaign name"]),
                ("amount", &["amount", "cost", "spend"]),
            ],
        }
    }

    /// The column names this kind understands, required ones first, for the import page.
    pub fn column_names(self) -> Vec<(&'static str, bool)> {
        let required = self.required();
        let mut cols: Vec<(&'static str, bool)> = required.iter().map(|c| (*c, true)).collect();
        cols.extend(
            self.columns()
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| !required.contains(c))
                .map(|c| (c, false)),
        );
        cols
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Self::Contacts => &["email"],
            Self::Accounts => &["name"],
            Self::Deals => &["name", "amount"],
            Self::Revenue => &["account", "product", "amount", "date"],
            Self::Activities => &["kind", "at"],
            Self::Spend => &["day", "source", "amount"],
        }
    }
}

/// What an imported row refers to by a key from the source system; the store resolves each to
/// an existing record (importing contacts and accounts first) and rejects the row when it cannot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    pub contact: Option<Email>,
    /// An account's external id, domain or name, as the accounts import keyed it.
    pub account: Option<String>,
    /// A user's email.
    pub owner: Option<Email>,
}

/// A row turned into what the store takes. The ids of records with `Links` are filled in by the
/// store.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Contact(Box<NewContact>),
    Account(Account),
    Spend(Spend),
    Deal(Box<Deal>, Links),
    Subscription(Subscription, Links),
    Order(Order, Links),
    Activity(Activity, Links),
}

/// Why one row was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based, counting the header as row 1, as a spreadsheet shows it.
    pub row: usize,
    pub column: Option<String>,
    pub reason: String,
}

/// The header, understood: which canonical column each position holds.
#[derive(Debug, Clone)]
pub struct Mapping {
    kind: ImportKind,
    columns: Vec<Option<&'static str>>,
    /// Headers that matched nothing: kept as custom attributes on contacts, ignored otherwise.
    pub unknown: Vec<String>,
    names: Vec<String>,
}

fn normalise(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .to_lowercase()
        .replace(['_', '-'], " ")
}

impl Mapping {
    /// Reads the header row; fails when a required column is missing or one appears twice.
    pub fn new(kind: ImportKind, header: &[&str]) -> Result<Self, String> {
        let mut columns = Vec::with_capacity(header.len());
        let mut unknown = Vec::new();
        for h in header {
            let n = normalise(h);
            let found = kind
                .columns()
                .iter()
                .find(|(canon, aliases)| normalise(canon) == n || aliases.contains(&n.as_str()))
                .map(|(c, _)| *c);
            if let Some(c) = found
                && columns.contains(&Some(c))
            {
                return Err(format!("the header names the column '{c}' twice"));
            }
            if found.is_none() {
                unknown.push(h.trim().to_owned());
            }
            columns.push(found);
        }
        for r in kind.required() {
            if !columns.contains(&Some(*r)) {
                return Err(format!(
                    "the header has no '{r}' column (found: {}); see the README for accepted names",
                    header.join(", ")
                ));
            }
        }
        Ok(Self {
            kind,
            columns,
            unknown,
            names: header.iter().map(|h| h.trim().to_owned()).collect(),
        })
    }

    pub fn kind(&self) -> ImportKind {
        self.kind
    }

    /// Each header as written, with the column it was understood as (`None`: a custom attribute
    /// for contacts, ignored otherwise), for an import preview.
    pub fn understood(&self) -> Vec<(String, Option<&'static str>)> {
        self.names
            .iter()
            .cloned()
            .zip(self.columns.clone())
            .collect()
    }

    /// A row of a [`Table`] turned into a record, or the reason it cannot be.
    pub fn parse_row(&self, row: &TableRow, now: DateTime<Utc>) -> Result<Record, RowError> {
        match &row.fields {
            Ok(_) => self.parse(row.row, &row.values(), now),
            Err(reason) => Err(RowError {
                row: row.row,
                column: None,
                reason: reason.clone(),
            }),
        }
    }

    /// Turns one data row into a record. `row` is the spreadsheet row number.
    pub fn parse(
        &self,
        row: usize,
        values: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Record, RowError> {
        let err = |column: &str, reason: String| RowError {
            row,
            column: Some(column.to_owned()),
            reason,
        };
        if values.len() != self.columns.len() {
            return Err(RowError {
                row,
                column: None,
                reason: format!(
                    "has {} fields, the header has {}",
                    values.len(),
                    self.columns.len()
                ),
            });
        }
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        let mut custom = BTreeMap::new();
        for (i, v) in values.iter().enumerate() {
            let v = v.trim();
            if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(err(&self.names[i], "contains control characters".into()));
            }
            if v.len() > 2_000 {
                return Err(err(&self.names[i], "is longer than 2000 characters".into()));
            }
            match self.columns[i] {
                Some(c) if !v.is_empty() => {
                    fields.insert(c, v);
                }
                None if !v.is_empty() && !self.names[i].is_empty() => {
                    custom.insert(self.names[i].clone(), Value::String(v.to_owned()));
                }
                _ => {}
            }
        }
        // A required column left empty in this row: a revenue row without a date was stored on
        // 1970-01-01, an account without a name under an empty one.
        if let Some(c) = self
            .kind
            .required()
            .iter()
            .find(|c| !fields.contains_key(**c))
        {
            return Err(err(c, "is required, and this row leaves it empty".into()));
        }
        let get = |c: &str| fields.get(c).map(|v| (*v).to_owned());
        let int = |c: &str| -> Result<Option<i64>, RowError> {
            fields
                .get(c)
                .map(|v| {
                    v.replace([',', ' '], "")
                        .parse::<i64>()
                        .map_err(|_| err(c, format!("'{v}' is not a whole number")))
                })
                .transpose()
        };
        let real = |c: &str| -> Result<Option<f64>, RowError> {
            fields
                .get(c)
                .map(|v| match v.replace(',', "").parse::<f64>() {
                    Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                    _ => Err(err(c, format!("'{v}' is not a non-negative number"))),
                })
                .transpose()
        };
        let when = |c: &str| -> Result<Option<DateTime<Utc>>, RowError> {
            fields
                .get(c)
                .map(|v| {
                    parse_time(v).ok_or_else(|| {
                        err(
                            c,
                            format!("'{v}' is not a date (use 2026-03-31 or RFC 3339)"),
                        )
                    })
                })
                .transpose()
        };
        let country = |c: &str| -> Result<Option<String>, RowError> {
            fields
                .get(c)
                .map(|v| {
                    if v.len() == 2 && v.chars().all(|ch| ch.is_ascii_alphabetic()) {
                        Ok(v.to_ascii_uppercase())
                    } else {
                        Err(err(c, format!("'{v}' is not a two-letter country code")))
                    }
                })
                .transpose()
        };
        let link_email = |c: &str| -> Result<Option<Email>, RowError> {
            fields
                .get(c)
                .map(|v| Email::parse(v).map_err(|e| err(c, e.to_string())))
                .transpose()
        };
        let money = |c: &str| -> Result<i64, RowError> {
            let raw = fields.get(c).copied().unwrap_or_default();
            parse_money(raw)
                .ok_or_else(|| err(c, format!("'{raw}' is not an amount (use 1234.50)")))
        };
        let day = |c: &str| -> Result<Option<NaiveDate>, RowError> {
            fields
                .get(c)
                .map(|v| {
                    parse_time(v)
                        .map(|t| t.date_naive())
                        .ok_or_else(|| err(c, format!("'{v}' is not a date (use 2026-03-31)")))
                })
                .transpose()
        };
        match self.kind {
            ImportKind::Contacts => {
                let raw = fields.get("email").copied().unwrap_or_default();
                let email = Email::parse(raw).map_err(|e| err("email", e.to_string()))?;
                let created = when("created_at")?.unwrap_or(now).min(now);
                let mut c = NewContact::new(email, created);
                c.details.first_name = get("first_name");
                c.details.last_name = get("last_name");
                c.details.phone = get("phone");
                c.details.demographics.company = get("company");
                c.details.demographics.job_title = get("job_title");
                c.details.demographics.industry = get("industry");
                c.details.demographics.company_size = int("company_size")?;
                c.details.geography.country = country("country")?;
                c.details.geography.city = get("city");
                c.details.geography.region = get("region");
                let list = |c: &str| -> Vec<String> {
                    fields.get(c).map_or_else(Vec::new, |t| {
                        t.split([',', ';'])
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                };
                let within = |c: &str, lo: i64, hi: i64| -> Result<Option<i32>, RowError> {
                    int(c)?
                        .map(|n| {
                            (lo..=hi)
                                .contains(&n)
                                .then_some(n as i32)
                                .ok_or_else(|| err(c, format!("{n} is not between {lo} and {hi}")))
                        })
                        .transpose()
                };
                let degrees = |c: &str, limit: f64| -> Result<Option<f64>, RowError> {
                    fields
                        .get(c)
                        .map(|v| match v.trim().parse::<f64>() {
                            Ok(x) if x.is_finite() && x.abs() <= limit => Ok(x),
                            _ => Err(err(
                                c,
                                format!(
                                    "'{v}' is not a number of degrees from -{limit} to {limit}"
                                ),
                            )),
                        })
                        .transpose()
                };
                c.details.psychographics.tags = list("tags");
                c.details.psychographics.interests = list("interests");
                c.details.psychographics.values = list("values");
                let d = &mut c.details.demographics;
                d.age = within("age", 0, 130)?;
                d.children = within("children", 0, 30)?;
                d.gender = get("gender");
                d.nationality = get("nationality");
                d.education = get("education");
                d.occupation = get("occupation");
                d.seniority = get("seniority");
                d.company_revenue = fields
                    .get("company_revenue")
                    .map(|v| {
                        whole_amount(v).ok_or_else(|| {
                            err(
                                "company_revenue",
                                format!(
                                    "'{v}' is not an amount (use 2500000 or 2,500,000.00; \
                                     no 2.5M or decimal commas)"
                                ),
                            )
                        })
                    })
                    .transpose()?;
                let g = &mut c.details.geography;
                g.time_zone = get("time_zone");
                g.latitude = degrees("latitude", 90.0)?;
                g.longitude = degrees("longitude", 180.0)?;
                if g.latitude.is_some() != g.longitude.is_some() {
                    let missing = if g.latitude.is_none() {
                        "latitude"
                    } else {
                        "longitude"
                    };
                    return Err(err(
                        missing,
                        "a position needs both latitude and longitude".into(),
                    ));
                }
                c.details.custom = custom;
                c.source = get("source").map(|s| s.to_lowercase());
                if let Some(s) = fields.get("stage") {
                    c.stage = parse_stage(s)
                        .ok_or_else(|| err("stage", format!("'{s}' is not a lifecycle stage")))?;
                }
                Ok(Record::Contact(Box::new(c)))
            }
            ImportKind::Accounts => {
                let name = get("name").unwrap_or_default();
                let domain = get("domain").map(|d| {
                    d.trim_start_matches("https://")
                        .trim_start_matches("http://")
                        .trim_start_matches("www.")
                        .trim_end_matches('/')
                        .to_lowercase()
                });
                let external_id = get("external_id")
                    .or_else(|| domain.clone())
                    .unwrap_or_else(|| name.to_lowercase());
                Ok(Record::Account(Account {
                    id: AccountId::new(0),
                    external_id,
                    name,
                    domain,
                    industry: get("industry"),
                    employees: int("employees")?,
                    region: get("region"),
                    country: country("country")?,
                    owner_id: None,
                    service_hours: real("service_hours")?.unwrap_or(0.0),
                    cost_to_serve: real("cost_to_serve")?,
                    created_at: when("created_at")?.unwrap_or(now).min(now),
                }))
            }
            ImportKind::Deals => {
                let stage = get("stage").unwrap_or_else(|| "imported".into());
                let status = match fields.get("status") {
                    Some(v) => DealStatus::parse(v)
                        .ok_or_else(|| err("status", format!("'{v}' is not open, won or lost")))?,
                    // HubSpot's default pipeline says it in the stage: closedwon, closedlost.
                    None => DealStatus::parse(&stage).unwrap_or(DealStatus::Open),
                };
                let created_at = when("created_at")?.unwrap_or(now).min(now);
                let closed_at = when("closed_at")?;
                let expected_close = day("expected_close")?;
                let closed_at = match (status, closed_at) {
                    (DealStatus::Open, Some(_)) => {
                        return Err(err("closed_at", "an open deal has no close time".into()));
                    }
                    (DealStatus::Open, None) => None,
                    (_, Some(t)) => Some(t),
                    // A closed deal without a close time closed on its close date.
                    (_, None) => Some(
                        expected_close
                            .map(|d| d.and_time(NaiveTime::MIN).and_utc())
                            .unwrap_or(created_at),
                    ),
                };
                if closed_at.is_some_and(|c| c < created_at) {
                    return Err(err("closed_at", "is before the deal was created".into()));
                }
                let name = get("name").unwrap_or_default();
                let links = Links {
                    contact: link_email("email")?,
                    account: get("account"),
                    owner: link_email("owner")?,
                };
                let external_id = get("external_id").unwrap_or_else(|| {
                    format!(
                        "{}|{}|{}",
                        name.to_lowercase(),
                        links.contact.as_ref().map_or("", |e| e.as_str()),
                        created_at.date_naive()
                    )
                });
                Ok(Record::Deal(
                    Box::new(Deal {
                        id: DealId::new(0),
                        external_id,
                        name,
                        contact_id: None,
                        account_id: None,
                        owner_id: None,
                        pipeline_stage: stage,
                        status,
                        amount_cents: money("amount")?,
                        expected_close,
                        created_at,
                        closed_at,
                        lost_reason: get("lost_reason"),
                        competitor: get("competitor"),
                    }),
                    links,
                ))
            }
            ImportKind::Revenue => {
                let account = get("account").unwrap_or_default();
                let product = get("product").unwrap_or_default();
                let amount_cents = money("amount")?;
                let date = day("date")?.unwrap_or_default();
                let end = day("end")?;
                let links = Links {
                    account: Some(account.clone()),
                    ..Links::default()
                };
                let period = fields
                    .get("period")
                    .map(|v| {
                        BillingPeriod::parse(v).ok_or_else(|| {
                            err("period", format!("'{v}' is not month, quarter or year"))
                        })
                    })
                    .transpose()?;
                match period {
                    Some(period) => {
                        if end.is_some_and(|e| e < date) {
                            return Err(err("end", "is before the start".into()));
                        }
                        let plan = get("plan").unwrap_or_else(|| product.clone());
                        let external_id = get("external_id")
                            .unwrap_or_else(|| format!("{account}|{product}|{plan}|{date}"));
                        Ok(Record::Subscription(
                            Subscription {
                                id: SubscriptionId::new(0),
                                external_id,
                                account_id: AccountId::new(0),
                                product,
                                plan,
                                amount_cents,
                                period,
                                start: date,
                                end,
                            },
                            links,
                        ))
                    }
                    None if end.is_some() || fields.contains_key("plan") => Err(err(
                        "period",
                        "a subscription (a row with a plan or an end) needs a billing period"
                            .into(),
                    )),
                    None => {
                        let external_id = get("external_id").unwrap_or_else(|| {
                            format!("{account}|{product}|{date}|{amount_cents}")
                        });
                        Ok(Record::Order(
                            Order {
                                id: OrderId::new(0),
                                external_id,
                                account_id: AccountId::new(0),
                                product,
                                amount_cents,
                                ordered_on: date,
                            },
                            links,
                        ))
                    }
                }
            }
            ImportKind::Activities => {
                let raw = fields.get("kind").copied().unwrap_or_default();
                let kind = ActivityKind::parse(raw).ok_or_else(|| {
                    err(
                        "kind",
                        format!("'{raw}' is not an activity kind (call, meeting, email, note)"),
                    )
                })?;
                let at = when("at")?.unwrap_or(now);
                if at > now {
                    return Err(err("at", "is in the future".into()));
                }
                let links = Links {
                    contact: link_email("email")?,
                    account: get("account"),
                    owner: link_email("user")?,
                };
                if links.contact.is_none() && links.account.is_none() {
                    return Err(err(
                        "account",
                        "an activity needs an account or a contact email".into(),
                    ));
                }
                let minutes = int("minutes")?.unwrap_or(0);
                if !(0..=24 * 60).contains(&minutes) {
                    return Err(err("minutes", "must be between 0 and 1440".into()));
                }
                let subject = get("subject").unwrap_or_else(|| kind.as_str().to_owned());
                let external_id = get("external_id").unwrap_or_else(|| {
                    format!(
                        "{}|{}|{}|{}",
                        kind.as_str(),
                        links.account.as_deref().unwrap_or_default(),
                        links.contact.as_ref().map_or("", |e| e.as_str()),
                        at.timestamp_millis()
                    )
                });
                Ok(Record::Activity(
                    Activity {
                        id: ActivityId::new(0),
                        external_id,
                        kind,
                        account_id: None,
                        contact_id: None,
                        user_id: None,
                        at,
                        minutes,
                        subject,
                    },
                    links,
                ))
            }
            ImportKind::Spend => {
                let raw_day = fields.get("day").copied().unwrap_or_default();
                let day = parse_time(raw_day).map(|t| t.date_naive()).ok_or_else(|| {
                    err("day", format!("'{raw_day}' is not a date (use 2026-03-31)"))
                })?;
                let source = get("source").unwrap_or_default().to_lowercase();
                let campaign = get("campaign");
                let raw_amount = fields.get("amount").copied().unwrap_or_default();
                let amount_cents = parse_money(raw_amount).ok_or_else(|| {
                    err(
                        "amount",
                        format!("'{raw_amount}' is not an amount (use 1234.50)"),
                    )
                })?;
                let external_id = get("external_id").unwrap_or_else(|| {
                    format!("{day}|{source}|{}", campaign.as_deref().unwrap_or_default())
                });
                Ok(Record::Spend(Spend {
                    id: SpendId::new(0),
                    external_id,
                    day,
                    source,
                    campaign,
                    amount_cents,
                }))
            }
        }
    }
}

/// An uploaded file's text: UTF-8, with or without a byte-order mark. Anything else is refused
/// with the line of the first bad byte, because guessing an encoding silently corrupts names.
pub fn decode(bytes: &[u8]) -> Result<&str, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        format!(
            "the file is not UTF-8 (first bad byte on line {line}); save it as UTF-8 (\"CSV UTF-8\" in Excel) and import again"
        )
    })
}

/// A CSV text read a row at a time: the header, then each non-blank row with its spreadsheet row
/// number (the header is row 1) and its byte offset, for progress. Quoted fields, embedded line
/// breaks and Windows line ends are the reader's business, not the caller's.
pub struct Table<'a> {
    header: Vec<String>,
    records: csv::StringRecordsIntoIter<&'a [u8]>,
    row: usize,
}

impl std::fmt::Debug for Table<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("header", &self.header)
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

/// One data row of a [`Table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub row: usize,
    pub byte: u64,
    /// The fields, or why the row cannot be read as CSV.
    pub fields: Result<Vec<String>, String>,
}

impl TableRow {
    pub fn values(&self) -> Vec<&str> {
        self.fields
            .as_ref()
            .map(|f| f.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// The line where a quoted value opens that never closes, as the CSV reader reads quotes
/// (one opens a value only at its start; `""` inside is a quote). The reader takes such a
/// value to the end of the file: every row after it would vanish into one field.
fn unclosed_quote(text: &str) -> Option<usize> {
    let (mut line, mut opened_at) = (1, None);
    let (mut at_start, mut quoted) = (true, false);
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\n' {
            line += 1;
        }
        if quoted {
            if b == b'"' {
                if bytes.peek() == Some(&b'"') {
                    bytes.next();
                } else {
                    quoted = false;
                }
            }
            continue;
        }
        match b {
            b'"' if at_start => {
                quoted = true;
                opened_at = Some(line);
            }
            b',' | b'\n' | b'\r' => {
                at_start = true;
                continue;
            }
            _ => {}
        }
        at_start = false;
    }
    quoted.then_some(opened_at).flatten()
}

impl<'a> Table<'a> {
    pub fn new(text: &'a str) -> Result<Self, String> {
        if let Some(line) = unclosed_quote(text) {
            return Err(format!(
                "line {line}: a quoted value starts there and never ends (its closing \" is \
                 missing), so every row after it would be read into it; nothing was imported"
            ));
        }
        let mut records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes())
            .into_records();
        let header = match records.next() {
            Some(Ok(h)) => h.iter().map(str::to_owned).collect(),
            Some(Err(e)) => return Err(format!("the header row cannot be read: {e}")),
            None => return Err("the file is empty: it needs a header row".into()),
        };
        Ok(Self {
            header,
            records,
            row: 1,
        })
    }

    pub fn header(&self) -> Vec<&str> {
        self.header.iter().map(String::as_str).collect()
    }
}

impl Iterator for Table<'_> {
    type Item = TableRow;

    fn next(&mut self) -> Option<TableRow> {
        loop {
            let record = self.records.next()?;
            self.row += 1;
            let row = self.row;
            return Some(match record {
                Ok(r) if r.iter().all(|f| f.trim().is_empty()) => continue,
                Ok(r) => TableRow {
                    row,
                    byte: r.position().map_or(0, |p| p.byte()),
                    fields: Ok(r.iter().map(str::to_owned).collect()),
                },
                Err(e) => TableRow {
                    row,
                    byte: e.position().map_or(0, |p| p.byte()),
                    fields: Err(format!("cannot be read as CSV: {e}")),
                },
            });
        }
    }
}

fn parse_stage(s: &str) -> Option<LifecycleStage> {
    LifecycleStage::parse(s).or(
        match s.trim().to_lowercase().replace(['_', '-'], " ").as_str() {
            "lead" => Some(LifecycleStage::Subscriber),
            "marketingqualifiedlead" | "marketing qualified lead" => Some(LifecycleStage::Mql),
            "salesqualifiedlead" | "sales qualified lead" => Some(LifecycleStage::Sql),
            _ => None,
        },
    )
}

/// Dates as people and exports write them: `2026-03-31`, `2026-03-31 14:05[:00]`, RFC 3339.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN).and_utc())
}

/// A cell's text as it is safe to open in a spreadsheet: one that starts with `=`, `+`, `-`
/// or `@`, which a spreadsheet runs as a formula, gets a leading `'`. For every CSV Orchard
/// writes (a segment's members, rejected rows), since their texts come from imports and forms.
pub fn formula_safe(v: &str) -> std::borrow::Cow<'_, str> {
    if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

/// A CSV field: `formula_safe`, and quoted when it holds a comma, a quote or a line break.
pub fn csv_field(v: &str) -> String {
    let v = formula_safe(v);
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.into_owned()
    }
}

/// The number of an amount without its currency: a sign (`$`, `€`, `£`) or a three-letter
/// code (`USD 99`) before it, or a code after it (`99 EUR`), as exports write amounts.
fn without_currency(s: &str) -> &str {
    let s = s.trim();
    let s = s.strip_prefix(['$', '€', '£']).map_or(s, str::trim_start);
    let code = |t: &str| t.len() == 3 && t.bytes().all(|b| b.is_ascii_alphabetic());
    if let Some((head, rest)) = s.split_once(' ')
        && code(head)
    {
        return rest.trim_start();
    }
    if let Some((rest, tail)) = s.rsplit_once(' ')
        && code(tail)
    {
        return rest.trim_end();
    }
    s
}

/// An amount as (whole units, cents): digits, optionally in comma-separated thousands, with
/// up to two decimals after a point, after or before its currency (`without_currency`).
/// Anything else is refused rather than read as another number: "1.5M" or "100k", "1e9",
/// "(100)" or "-5", a decimal comma ("2500000,00") or a point between thousands ("1.234").
fn units_and_cents(s: &str) -> Option<(i64, i64)> {
    let s = without_currency(s);
    let (whole, cents) = s.split_once('.').unwrap_or((s, ""));
    if cents.len() > 2 || !cents.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let groups: Vec<&str> = whole.split(',').collect();
    let grouped = groups.len() > 1;
    let well_formed = groups.iter().enumerate().all(|(i, g)| {
        !g.is_empty()
            && g.bytes().all(|b| b.is_ascii_digit())
            && (!grouped || if i == 0 { g.len() <= 3 } else { g.len() == 3 })
    });
    if !well_formed {
        return None;
    }
    let units = groups.concat().parse().ok()?;
    let cents = format!("{cents:0<2}").parse().ok()?;
    Some((units, cents))
}

/// An amount in whole units for a figure like a company's revenue (`units_and_cents`, the
/// cents dropped): a fit rule compares it with thresholds.
pub fn whole_amount(s: &str) -> Option<i64> {
    units_and_cents(s).map(|(units, _)| units)
}

/// An amount of money in cents (`units_and_cents`): "1234.5", "1,234.50", "€ 99", "99 USD".
pub fn parse_money(s: &str) -> Option<i64> {
    let (units, cents) = units_and_cents(s)?;
    units.checked_mul(100)?.checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn hubspot_headers_map_without_editing() {
        let m = Mapping::new(
            ImportKind::Contacts,
            &[
                "\u{feff}First Name",
                "Last Name",
                "Email",
                "Company Name",
                "Country/Region",
                "Lifecycle Stage",
                "Favourite colour",
            ],
        )
        .unwrap();
        let Record::Contact(c) = m
            .parse(
                2,
                &[
                    "Ann",
                    "Lee",
                    "Ann@X.com",
                    "Acme",
                    "de",
                    "marketingqualifiedlead",
                    "green",
                ],
                now(),
            )
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(c.email.as_str(), "ann@x.com");
        assert_eq!(c.details.geography.country.as_deref(), Some("DE"));
        assert_eq!(c.stage, LifecycleStage::Mql);
        assert_eq!(c.details.custom["Favourite colour"], "green");
        assert_eq!(m.unknown, ["Favourite colour"]);
    }

    #[test]
    fn mautic_headers_map_too() {
        let m = Mapping::new(
            ImportKind::Contacts,
            &["firstname", "lastname", "email", "companyname", "dateAdded"],
        )
        .unwrap();
        assert!(m.unknown.is_empty());
    }

    #[test]
    fn fit_psychographic_and_geographic_columns_fill_the_fields_rules_read() {
        let header = [
            "Email",
            "Age",
            "Seniority",
            "Annual Revenue",
            "Interests",
            "Time Zone",
            "Latitude",
            "Longitude",
        ];
        let m = Mapping::new(ImportKind::Contacts, &header).unwrap();
        assert!(m.unknown.is_empty(), "{:?}", m.unknown);
        let row = [
            "a@x.com",
            "41",
            "director",
            "2,500,000.00",
            "hiking; crm",
            "Europe/Berlin",
            "52.52",
            "-13.40",
        ];
        let Record::Contact(c) = m.parse(2, &row, now()).unwrap() else {
            panic!("a contact")
        };
        let d = &c.details;
        assert_eq!(d.demographics.age, Some(41));
        assert_eq!(d.demographics.seniority.as_deref(), Some("director"));
        assert_eq!(d.demographics.company_revenue, Some(2_500_000));
        assert_eq!(d.psychographics.interests, ["hiking", "crm"]);
        assert_eq!(d.geography.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(
            (d.geography.latitude, d.geography.longitude),
            (Some(52.52), Some(-13.4))
        );
        for (revenue, whole) in [
            ("$ 1,200", Some(1_200)),
            ("1200.5", Some(1_200)),
            ("€980", Some(980)),
            ("1.5M", None),
            ("100k", None),
            ("2500000,00", None),
            ("12,34", None),
            ("-5", None),
            ("", None),
        ] {
            assert_eq!(whole_amount(revenue), whole, "{revenue}");
        }
        for (i, bad, column) in [
            (1, "200", "age"),
            (3, "lots", "company_revenue"),
            (3, "1.5M", "company_revenue"),
            (6, "91", "latitude"),
            (6, "", "latitude"),
            (7, "west", "longitude"),
        ] {
            let mut r = row;
            r[i] = bad;
            let e = m.parse(2, &r, now()).unwrap_err();
            assert_eq!(e.column.as_deref(), Some(column), "{bad}: {e:?}");
        }
    }

    #[test]
    fn bad_rows_name_their_column() {
        let m = Mapping::new(ImportKind::Contacts, &["email", "country", "company_size"]).unwrap();
        let e = m.parse(7, &["nope", "", ""], now()).unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (7, Some("email")));
        let e = m.parse(8, &["a@x.com", "Germany", ""], now()).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("country"));
        let e = m.parse(9, &["a@x.com", "", "lots"], now()).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("company_size"));
        let e = m.parse(10, &["a@x.com"], now()).unwrap_err();
        assert!(e.column.is_none() && e.reason.contains("fields"));
    }

    #[test]
    fn a_missing_required_column_refuses_the_file() {
        assert!(
            Mapping::new(ImportKind::Spend, &["date", "channel"])
                .unwrap_err()
                .contains("amount")
        );
        assert!(
            Mapping::new(ImportKind::Contacts, &["email", "e-mail"])
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn spend_rows_get_a_stable_key_for_idempotent_reruns() {
        let m = Mapping::new(ImportKind::Spend, &["Date", "Channel", "Campaign", "Cost"]).unwrap();
        let Record::Spend(s) = m
            .parse(2, &["2026-03-01", "Google", "brand", "1,234.5"], now())
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (s.amount_cents, s.external_id.as_str()),
            (123_450, "2026-03-01|google|brand")
        );
    }

    #[test]
    fn a_quoted_value_that_never_ends_refuses_the_file_and_names_its_line() {
        let text = "email,first_name\na@x.test,Ann\nb@x.test,\"Bob\nc@x.test,Cy\n";
        let e = Table::new(text).unwrap_err();
        assert!(e.starts_with("line 3: a quoted value"), "{e}");
        // Closed quotes, escaped quotes, line breaks inside quotes and a quote inside an
        // unquoted value are all fine.
        let ok = "email,note\na@x.test,\"said \"\"hi\"\"\nthen left\"\nb@x.test,5'10\" tall\n";
        let rows: Vec<TableRow> = Table::new(ok).unwrap().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].values()[1], "said \"hi\"\nthen left");
        assert_eq!(rows[1].values()[1], "5'10\" tall");
    }

    #[test]
    fn a_row_that_leaves_a_required_column_empty_is_rejected_by_name() {
        let m = Mapping::new(
            ImportKind::Revenue,
            &["account", "product", "amount", "date"],
        )
        .unwrap();
        let row = |date: &str| TableRow {
            row: 2,
            byte: 0,
            fields: Ok(["Acme", "Pro", "99", date].map(str::to_owned).to_vec()),
        };
        let e = m.parse_row(&row(" "), now()).unwrap_err();
        assert_eq!(
            (e.column.as_deref(), e.reason.as_str()),
            (Some("date"), "is required, and this row leaves it empty")
        );
        assert!(m.parse_row(&row("2026-03-31"), now()).is_ok());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed_and_never_run_as_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,\"b"), "\"a,\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-5"), "'-5");
        assert_eq!(formula_safe("@sum"), "'@sum");
    }

    #[test]
    fn money_and_dates_parse_like_exports_write_them() {
        assert_eq!(parse_money("99"), Some(9_900));
        assert_eq!(parse_money("€ 12.3"), Some(1_230));
        assert_eq!(parse_money("1,234.50 EUR"), Some(123_450));
        assert_eq!(parse_money("USD 7"), Some(700));
        assert_eq!(parse_money("-5"), None);
        assert_eq!(parse_money("1.234"), None);
        // Each was read as another number: digits and points kept, the rest dropped.
        for other in [
            "USD -5", "$-100", "(100)", "1e9", "1.5M", "100k", ".", "", "12,34",
        ] {
            assert_eq!(parse_money(other), None, "{other:?}");
        }
        assert!(parse_time("2026-02-30").is_none());
        assert!(parse_time("2026-02-28 13:45").is_some());
    }

    #[test]
    fn hubspot_deal_exports_map_and_closed_stages_set_the_status() {
        let m = Mapping::new(
            ImportKind::Deals,
            &[
                "Record ID",
                "Deal Name",
                "Deal Stage",
                "Amount",
                "Close Date",
                "Create Date",
                "Deal owner",
                "Associated Contact",
            ],
        )
        .unwrap();
        let row = [
            "901",
            "Acme renewal",
            "closedwon",
            "12,000",
            "2026-05-01",
            "2026-03-02",
            "rep@orchard.test",
            "Ann@Acme.com",
        ];
        let Record::Deal(d, links) = m.parse(2, &row, now()).unwrap() else {
            panic!()
        };
        assert_eq!((d.status, d.amount_cents), (DealStatus::Won, 1_200_000));
        assert_eq!(
            d.closed_at.unwrap().to_rfc3339(),
            "2026-05-01T00:00:00+00:00"
        );
        assert_eq!(links.contact.unwrap().as_str(), "ann@acme.com");
        assert_eq!(links.owner.unwrap().as_str(), "rep@orchard.test");
        let mut early = row;
        early[4] = "2026-01-01";
        let e = m.parse(3, &early, now()).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("closed_at"));
    }

    #[test]
    fn revenue_rows_with_a_period_are_subscriptions_and_without_are_orders() {
        let m = Mapping::new(
            ImportKind::Revenue,
            &[
                "Customer",
                "Product",
                "Plan",
                "Price",
                "Interval",
                "Start date",
                "End date",
            ],
        )
        .unwrap();
        let sub = m
            .parse(
                2,
                &[
                    "acme.com",
                    "Hosting",
                    "Pro",
                    "300",
                    "quarterly",
                    "2026-01-01",
                    "",
                ],
                now(),
            )
            .unwrap();
        assert!(
            matches!(sub, Record::Subscription(ref s, _) if s.period == BillingPeriod::Quarter && s.plan == "Pro")
        );
        let order = m
            .parse(
                3,
                &["acme.com", "Audit", "", "1500", "", "2026-02-10", ""],
                now(),
            )
            .unwrap();
        let Record::Order(o, links) = order else {
            panic!()
        };
        assert_eq!(
            (o.amount_cents, links.account.as_deref()),
            (150_000, Some("acme.com"))
        );
        let e = m
            .parse(
                4,
                &["acme.com", "Hosting", "Pro", "300", "", "2026-01-01", ""],
                now(),
            )
            .unwrap_err();
        assert_eq!(e.column.as_deref(), Some("period"));
        let e = m
            .parse(
                5,
                &[
                    "acme.com",
                    "Hosting",
                    "Pro",
                    "300",
                    "monthly",
                    "2026-03-01",
                    "2026-02-01",
                ],
                now(),
            )
            .unwrap_err();
        assert_eq!(e.column.as_deref(), Some("end"));
    }

    #[test]
    fn activities_need_someone_to_be_about() {
        let m = Mapping::new(
            ImportKind::Activities,
            &[
                "Type",
                "Date",
                "Company",
                "Contact email",
                "Duration",
                "Title",
            ],
        )
        .unwrap();
        let Record::Activity(a, links) = m
            .parse(
                2,
                &[
                    "Phone",
                    "2026-03-01 10:00",
                    "acme.com",
                    "",
                    "25",
                    "QBR prep",
                ],
                now(),
            )
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (a.kind, a.minutes, links.account.as_deref()),
            (ActivityKind::Call, 25, Some("acme.com"))
        );
        let e = m
            .parse(3, &["call", "2026-03-01", "", "", "", ""], now())
            .unwrap_err();
        assert_eq!(e.column.as_deref(), Some("account"));
        let e = m
            .parse(4, &["lunch", "2026-03-01", "acme.com", "", "", ""], now())
            .unwrap_err();
        assert_eq!(e.column.as_deref(), Some("kind"));
    }

    #[test]
    fn tables_read_boms_crlf_quotes_and_skip_blank_rows() {
        let text =
            decode(b"\xEF\xBB\xBFemail,note\r\na@x.com,\"two\r\nlines\"\r\n,\r\nb@x.com,ok\r\n")
                .unwrap();
        let t = Table::new(text).unwrap();
        assert_eq!(t.header(), ["email", "note"]);
        let rows: Vec<TableRow> = t.collect();
        assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(rows[0].values(), ["a@x.com", "two\r\nlines"]);
        let e = decode(b"email\nj\xF6rg@x.com\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(Table::new("").is_err());
    }

    proptest! {
        #[test]
        fn any_text_reads_as_a_table_or_a_clear_error(text in "\\PC{0,200}") {
            if let Ok(t) = Table::new(&text) {
                let m = Mapping::new(ImportKind::Deals, &["name", "amount"]).unwrap();
                for row in t {
                    let _ = m.parse_row(&row, now());
                }
            }
        }

        #[test]
        fn hostile_cells_never_panic(a in "\\PC{0,40}", b in "\\PC{0,40}", c in "\\PC{0,40}") {
            let m = Mapping::new(ImportKind::Accounts, &["name", "employees", "country"]).unwrap();
            let _ = m.parse(2, &[a.as_str(), b.as_str(), c.as_str()], now());
            let s = Mapping::new(ImportKind::Spend, &["day", "source", "amount"]).unwrap();
            let _ = s.parse(2, &[a.as_str(), b.as_str(), c.as_str()], now());
            for (kind, header) in [
                (ImportKind::Deals, ["name", "amount", "closed at", "status"]),
                (ImportKind::Revenue, ["account", "amount", "date", "period"]),
                (ImportKind::Activities, ["kind", "at", "account", "minutes"]),
            ] {
                let m = Mapping::new(kind, &header);
                let m = m.or_else(|_| Mapping::new(kind, &["account", "product", "amount", "date"])).unwrap();
                let _ = m.parse(2, &[a.as_str(), b.as_str(), c.as_str(), a.as_str()], now());
            }
        }
    }
}
