//! Accounts (companies) and their revenue: recurring subscriptions and one-off orders, plus the
//! cost to serve them (SPEC B1).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, OrderId, SubscriptionId, UserId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    /// Stable key from the source system (CRM id, domain), used to make imports idempotent.
    pub external_id: String,
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub employees: Option<i64>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub owner_id: Option<UserId>,
    /// Hours of support and account management per year; priced by the cost model.
    pub service_hours: f64,
    /// Yearly cost to serve in the account's currency units, when known directly.
    pub cost_to_serve: Option<f64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingPeriod {
    Month,
    Quarter,
    Year,
}

impl BillingPeriod {
    pub fn months(self) -> i64 {
        match self {
            Self::Month => 1,
            Self::Quarter => 3,
            Self::Year => 12,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "month" | "monthly" | "m" => Some(Self::Month),
            "quarter" | "quarterly" | "q" => Some(Self::Quarter),
            "year" | "yearly" | "annual" | "annually" | "y" => Some(Self::Year),
            _ => None,
        }
    }
}

/// Recurring revenue: one plan held by an account between two dates. Amounts are in minor
/// units (cents) so that sums are exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub external_id: String,
    pub account_id: AccountId,
    pub product: String,
    pub plan: String,
    pub amount_cents: i64,
    pub period: BillingPeriod,
    pub start: NaiveDate,
    /// Last day the subscription is active; open-ended when `None`.
    pub end: Option<NaiveDate>,
}

impl Subscription {
    /// The monthly recurring amount, normalised from the billing period (SPEC: "normalised
    /// monthly recurring amounts").
    pub fn mrr_cents(&self) -> i64 {
        self.amount_cents / self.period.months()
    }

    pub fn active_on(&self, day: NaiveDate) -> bool {
        self.start <= day && self.end.is_none_or(|e| day <= e)
    }
}

/// One-off revenue: an order or a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub external_id: String,
    pub account_id: AccountId,
    pub product: String,
    pub amount_cents: i64,
    pub ordered_on: NaiveDate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(amount: i64, period: BillingPeriod, end: Option<NaiveDate>) -> Subscription {
        Subscription {
            id: SubscriptionId::new(1),
            external_id: "s1".into(),
            account_id: AccountId::new(1),
            product: "Support".into(),
            plan: "Pro".into(),
            amount_cents: amount,
            period,
            start: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            end,
        }
    }

    #[test]
    fn yearly_plans_count_a_twelfth_per_month() {
        assert_eq!(sub(120_000, BillingPeriod::Year, None).mrr_cents(), 10_000);
        assert_eq!(
            sub(30_000, BillingPeriod::Quarter, None).mrr_cents(),
            10_000
        );
    }

    #[test]
    fn active_includes_both_ends() {
        let end = NaiveDate::from_ymd_opt(2026, 3, 31);
        let s = sub(1, BillingPeriod::Month, end);
        assert!(s.active_on(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()));
        assert!(s.active_on(end.unwrap()));
        assert!(!s.active_on(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()));
    }
}
