//! The typed tree a rule or segment filter parses into. Fields are resolved and values checked
//! against the field's type at parse time, so evaluation never meets a misspelt field or a
//! string compared with a number.

use chrono::Duration;

use crate::event::EventType;
use crate::stage::LifecycleStage;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cond(Condition),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Self::Eq => left == right,
            Self::Ne => left != right,
            Self::Lt => left < right,
            Self::Le => left <= right,
            Self::Gt => left > right,
            Self::Ge => left >= right,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// What a field holds, which decides the comparisons it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Number,
    Text,
    /// A list of texts (tags, interests): `=`/`in`/`~` test membership.
    List,
    Stage,
}

/// A contact (or its account's) attribute, or a derived figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Score,
    Stage,
    Email,
    /// The email's domain.
    Domain,
    FirstName,
    LastName,
    Source,
    JobTitle,
    Seniority,
    Company,
    CompanySize,
    Industry,
    CompanyRevenue,
    Age,
    Gender,
    Nationality,
    Education,
    Occupation,
    Children,
    Interests,
    Values,
    Tags,
    Country,
    Region,
    City,
    TimeZone,
    /// `custom.NAME`: a free attribute; compared as a number when both sides are numbers.
    Custom(String),
    AccountIndustry,
    AccountEmployees,
    AccountCountry,
    AccountRegion,
}

/// Every named field with its type, as the language spells it.
pub const FIELDS: &[(&str, FieldType)] = &[
    ("score", FieldType::Number),
    ("stage", FieldType::Stage),
    ("email", FieldType::Text),
    ("domain", FieldType::Text),
    ("first_name", FieldType::Text),
    ("last_name", FieldType::Text),
    ("source", FieldType::Text),
    ("job_title", FieldType::Text),
    ("seniority", FieldType::Text),
    ("company", FieldType::Text),
    ("company_size", FieldType::Number),
    ("industry", FieldType::Text),
    ("company_revenue", FieldType::Number),
    ("age", FieldType::Number),
    ("gender", FieldType::Text),
    ("nationality", FieldType::Text),
    ("education", FieldType::Text),
    ("occupation", FieldType::Text),
    ("children", FieldType::Number),
    ("interests", FieldType::List),
    ("values", FieldType::List),
    ("tags", FieldType::List),
    ("country", FieldType::Text),
    ("region", FieldType::Text),
    ("city", FieldType::Text),
    ("time_zone", FieldType::Text),
    ("account.industry", FieldType::Text),
    ("account.employees", FieldType::Number),
    ("account.country", FieldType::Text),
    ("account.region", FieldType::Text),
];

impl Field {
    /// The member of a contact's details document (`ContactDetails` as written) this field
    /// reads, if it reads one: a refresh parses only the members its rules and filters read.
    pub fn detail_key(&self) -> Option<&'static str> {
        Some(match self {
            Field::Score
            | Field::Stage
            | Field::Email
            | Field::Domain
            | Field::Source
            | Field::AccountIndustry
            | Field::AccountEmployees
            | Field::AccountCountry
            | Field::AccountRegion => return None,
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::JobTitle => "job_title",
            Field::Seniority => "seniority",
            Field::Company => "company",
            Field::CompanySize => "company_size",
            Field::Industry => "industry",
            Field::CompanyRevenue => "company_revenue",
            Field::Age => "age",
            Field::Gender => "gender",
            Field::Nationality => "nationality",
            Field::Education => "education",
            Field::Occupation => "occupation",
            Field::Children => "children",
            Field::Interests => "interests",
            Field::Values => "values",
            Field::Tags => "tags",
            Field::Country => "country",
            Field::Region => "region",
            Field::City => "city",
            Field::TimeZone => "time_zone",
            Field::Custom(_) => "custom",
        })
    }

    /// The field a name denotes, with its type.
    pub fn resolve(name: &str) -> Option<(Field, FieldType)> {
        if let Some(custom) = name.strip_prefix("custom.") {
            return (!custom.is_empty())
                .then(|| (Field::Custom(custom.to_owned()), FieldType::Text));
        }
        let ty = FIELDS.iter().find(|(n, _)| *n == name)?.1;
        let f = match name {
            "score" => Field::Score,
            "stage" => Field::Stage,
            "email" => Field::Email,
            "domain" => Field::Domain,
            "first_name" => Field::FirstName,
            "last_name" => Field::LastName,
            "source" => Field::Source,
            "job_title" => Field::JobTitle,
            "seniority" => Field::Seniority,
            "company" => Field::Company,
            "company_size" => Field::CompanySize,
            "industry" => Field::Industry,
            "company_revenue" => Field::CompanyRevenue,
            "age" => Field::Age,
            "gender" => Field::Gender,
            "nationality" => Field::Nationality,
            "education" => Field::Education,
            "occupation" => Field::Occupation,
            "children" => Field::Children,
            "interests" => Field::Interests,
            "values" => Field::Values,
            "tags" => Field::Tags,
            "country" => Field::Country,
            "region" => Field::Region,
            "city" => Field::City,
            "time_zone" => Field::TimeZone,
            "account.industry" => Field::AccountIndustry,
            "account.employees" => Field::AccountEmployees,
            "account.country" => Field::AccountCountry,
            "account.region" => Field::AccountRegion,
            _ => return None,
        };
        Some((f, ty))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    Stage(LifecycleStage),
}

/// A condition on one event property: `url ~ "/pricing"`, `amount >= 100`.
#[derive(Debug, Clone, PartialEq)]
pub enum PropTest {
    /// Case-insensitive substring.
    Contains(Needle),
    Cmp(CmpOp, Value),
}

/// A text an event property is searched for whatever the case (`~`), with the place of its
/// least common byte, where each search starts (`eval::contains_ci_from`): found once here
/// rather than on each of the many events a pattern is tested against.
#[derive(Debug, Clone, PartialEq)]
pub struct Needle {
    text: String,
    anchor: usize,
}

impl Needle {
    pub fn new(text: String) -> Self {
        let anchor = super::eval::rarest(text.as_bytes());
        Self { text, anchor }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The place in `text` where a search starts.
    pub(crate) fn anchor(&self) -> usize {
        self.anchor
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PropFilter {
    pub property: String,
    pub test: PropTest,
}

/// Which events an aggregate counts: a type and conditions on its properties.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern {
    pub event_type: EventType,
    pub filters: Vec<PropFilter>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LastTest {
    /// The latest matching event is older than this, or there is none.
    OlderThan(Duration),
    /// There is a matching event at most this old.
    Within(Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Cmp {
        field: Field,
        op: CmpOp,
        value: Value,
    },
    In {
        field: Field,
        values: Vec<Value>,
    },
    /// Case-insensitive substring (texts) or membership by substring (lists).
    Contains {
        field: Field,
        needle: String,
    },
    IsSet {
        field: Field,
        set: bool,
    },
    /// `count(PATTERN, WINDOW) OP N`; without a window, over the whole history.
    Count {
        pattern: EventPattern,
        window: Option<Duration>,
        op: CmpOp,
        n: i64,
    },
    Last {
        pattern: EventPattern,
        test: LastTest,
    },
    /// The earliest matching event; with none the condition does not hold ("first email sent
    /// more than 30 days ago" is false for a contact never sent one).
    First {
        pattern: EventPattern,
        test: LastTest,
    },
    /// Great-circle distance from the contact's coordinates to a point.
    Distance {
        lat: f64,
        lon: f64,
        op: CmpOp,
        km: f64,
    },
}

impl Expr {
    /// Every event pattern the expression looks at, for a rule set's index of what to load.
    pub fn patterns(&self) -> Vec<&EventPattern> {
        let mut out = Vec::new();
        self.walk(&mut |c| match c {
            Condition::Count { pattern, .. }
            | Condition::Last { pattern, .. }
            | Condition::First { pattern, .. } => out.push(pattern),
            _ => {}
        });
        out
    }

    /// The names of the custom attributes the expression reads (`custom.NAME`), in order.
    pub fn custom_attributes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |c| match c {
            Condition::Cmp { field, .. }
            | Condition::In { field, .. }
            | Condition::Contains { field, .. }
            | Condition::IsSet { field, .. } => {
                if let Field::Custom(name) = field {
                    out.push(name.as_str());
                }
            }
            _ => {}
        });
        out
    }

    /// The members of a contact's details document the expression reads (see
    /// [`Field::detail_key`]); a distance reads the coordinates.
    pub fn detail_keys(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        self.walk(&mut |c| match c {
            Condition::Cmp { field, .. }
            | Condition::In { field, .. }
            | Condition::Contains { field, .. }
            | Condition::IsSet { field, .. } => out.extend(field.detail_key()),
            Condition::Distance { .. } => out.extend(["latitude", "longitude"]),
            Condition::Count { .. } | Condition::Last { .. } | Condition::First { .. } => {}
        });
        out
    }

    pub(crate) fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Condition)) {
        match self {
            Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| x.walk(f)),
            Expr::Not(x) => x.walk(f),
            Expr::Cond(c) => f(c),
        }
    }
}
