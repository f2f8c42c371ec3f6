//! Deals, subscriptions, orders and activities as table rows: one column list and one row
//! function each, shared by the bulk loader and the import.

use orchard_core::account::{Order, Subscription};
use orchard_core::activity::Activity;
use orchard_core::deal::Deal;
use orchard_core::{AccountId, ContactId, UserId};

use crate::{Arg, day, ms};

pub(crate) const DEAL_COLUMNS: [&str; 14] = [
    "id",
    "external_id",
    "name",
    "contact_id",
    "account_id",
    "owner_id",
    "pipeline_stage",
    "status",
    "amount_cents",
    "expected_close",
    "created_at",
    "closed_at",
    "lost_reason",
    "competitor",
];

pub(crate) fn deal_row(d: &Deal) -> Vec<Arg> {
    vec![
        d.id.get().into(),
        d.external_id.as_str().into(),
        d.name.as_str().into(),
        d.contact_id.map(ContactId::get).into(),
        d.account_id.map(AccountId::get).into(),
        d.owner_id.map(UserId::get).into(),
        d.pipeline_stage.as_str().into(),
        d.status.as_str().into(),
        d.amount_cents.into(),
        d.expected_close.map(day).unwrap_or(Arg::Text(None)),
        ms(d.created_at).into(),
        d.closed_at.map(ms).into(),
        d.lost_reason.as_deref().into(),
        d.competitor.as_deref().into(),
    ]
}

pub(crate) const SUBSCRIPTION_COLUMNS: [&str; 9] = [
    "id",
    "external_id",
    "account_id",
    "product",
    "plan",
    "amount_cents",
    "period",
    "start_day",
    "end_day",
];

pub(crate) fn subscription_row(s: &Subscription) -> Vec<Arg> {
    vec![
        s.id.get().into(),
        s.external_id.as_str().into(),
        s.account_id.get().into(),
        s.product.as_str().into(),
        s.plan.as_str().into(),
        s.amount_cents.into(),
        s.period.as_str().into(),
        day(s.start),
        s.end.map(day).unwrap_or(Arg::Text(None)),
    ]
}

pub(crate) const ORDER_COLUMNS: [&str; 6] = [
    "id",
    "external_id",
    "account_id",
    "product",
    "amount_cents",
    "ordered_on",
];

pub(crate) fn order_row(o: &Order) -> Vec<Arg> {
    vec![
        o.id.get().into(),
        o.external_id.as_str().into(),
        o.account_id.get().into(),
        o.product.as_str().into(),
        o.amount_cents.into(),
        day(o.ordered_on),
    ]
}

pub(crate) const ACTIVITY_COLUMNS: [&str; 9] = [
    "id",
    "external_id",
    "kind",
    "account_id",
    "contact_id",
    "user_id",
    "at",
    "minutes",
    "subject",
];

pub(crate) fn activity_row(a: &Activity) -> Vec<Arg> {
    vec![
        a.id.get().into(),
        a.external_id.as_str().into(),
        a.kind.as_str().into(),
        a.account_id.map(AccountId::get).into(),
        a.contact_id.map(ContactId::get).into(),
        a.user_id.map(UserId::get).into(),
        ms(a.at).into(),
        a.minutes.into(),
        a.subject.as_str().into(),
    ]
}
