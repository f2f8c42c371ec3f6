//! CSV import (SPEC A1): each row checked on its own and turned into a domain record, or into a
//! rejection naming the row, the column and the reason. Columns are found by header name with
//! common aliases, so HubSpot's and Mautic's export headers map without editing the file.
//! Reading the file (encoding, quoting) is the caller's; this module sees one record at a time.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::Value;

use crate::account::Account;
use crate::contact::NewContact;
use crate::spend::Spend;
use crate::stage::LifecycleStage;
use crate::{AccountId, Email, SpendId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Contacts,
    Accounts,
    Spend,
}

impl ImportKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contacts" => Some(Self::Contacts),
            "accounts" => Some(Self::Accounts),
            "spend" => Some(Self::Spend),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Accounts => "accounts",
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
            Self::Spend => &[
                ("external_id", &["external id", "id"]),
                ("day", &["day", "date"]),
                ("source", &["source", "channel"]),
                ("campaign", &["campaign", "campaign name"]),
                ("amount", &["amount", "cost", "spend"]),
            ],
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Self::Contacts => &["email"],
            Self::Accounts => &["name"],
            Self::Spend => &["day", "source", "amount"],
        }
    }
}

/// A row turned into what the store takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Contact(Box<NewContact>),
    Account(Account),
    Spend(Spend),
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
                if let Some(t) = fields.get("tags") {
                    c.details.psychographics.tags = t
                        .split([',', ';'])
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
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

/// "1234.5", "1,234.50", "€ 99" → cents; negative or unparseable amounts are refused.
pub fn parse_money(s: &str) -> Option<i64> {
    let cleaned: String = s
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    if cleaned.is_empty() || s.trim_start().starts_with('-') {
        return None;
    }
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if frac.len() > 2 || frac.contains('.') {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
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
    fn money_and_dates_parse_like_exports_write_them() {
        assert_eq!(parse_money("99"), Some(9_900));
        assert_eq!(parse_money("€ 12.3"), Some(1_230));
        assert_eq!(parse_money("-5"), None);
        assert_eq!(parse_money("1.234"), None);
        assert!(parse_time("2026-02-30").is_none());
        assert!(parse_time("2026-02-28 13:45").is_some());
    }

    proptest! {
        #[test]
        fn hostile_cells_never_panic(a in "\\PC{0,40}", b in "\\PC{0,40}", c in "\\PC{0,40}") {
            let m = Mapping::new(ImportKind::Accounts, &["name", "employees", "country"]).unwrap();
            let _ = m.parse(2, &[a.as_str(), b.as_str(), c.as_str()], now());
            let s = Mapping::new(ImportKind::Spend, &["day", "source", "amount"]).unwrap();
            let _ = s.parse(2, &[a.as_str(), b.as_str(), c.as_str()], now());
        }
    }
}
