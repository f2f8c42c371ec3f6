//! A small hand-written parser: a lexer, then recursive descent with one token of look-ahead.
//! Errors name the position (1-based character column) and what was expected there.
//!
//! ```text
//! expr      := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | "(" expr ")" | condition
//! condition := "count" "(" pattern ["," duration] ")" op integer
//!            | ("last" | "first") "(" pattern ")" ("older" "than" | "within") duration
//!            | "distance_km" "(" number "," number ")" op number
//!            | field op value | field "in" "[" value ("," value)* "]" | field "~" string
//!            | field "is" ["not"] "set"
//! pattern   := event_type ["where" prop_test ("and" prop_test)*]
//! prop_test := name ("~" string | op value)
//! value     := string | number | name          (a bare name is a lifecycle stage)
//! duration  := integer ("m" | "h" | "d" | "w")  e.g. 30d
//! ```

use chrono::Duration;

use super::ast::*;
use crate::event::EventType;
use crate::stage::LifecycleStage;

/// Why a text is not a rule: where, what was expected, what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// 1-based, in characters.
    pub column: usize,
    pub expected: String,
    pub found: String,
}

/// The longest rule text accepted; rules are typed by people, not generated.
pub const MAX_LEN: usize = 4_000;

/// The longest time window or age a rule names, in days: ten years.
pub const MAX_DAYS: u32 = 3650;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Num(f64),
    Dur(Duration, String),
    Sym(&'static str),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Name(n) => format!("'{n}'"),
            Tok::Str(s) => format!("the text \"{s}\""),
            Tok::Num(n) => format!("the number {n}"),
            Tok::Dur(_, raw) => format!("the duration {raw}"),
            Tok::Sym(s) => format!("'{s}'"),
            Tok::End => "the end of the rule".into(),
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
}

fn column(src: &str, byte: usize) -> usize {
    src[..byte.min(src.len())].chars().count() + 1
}

impl<'a> Lexer<'a> {
    fn run(src: &'a str) -> Result<Vec<(Tok, usize)>, ParseError> {
        let mut lx = Lexer {
            src,
            toks: Vec::new(),
        };
        let bytes = src.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            let start = i;
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if c == b'"' {
                let mut s = String::new();
                i += 1;
                let mut chars = src[i..].char_indices();
                loop {
                    match chars.next() {
                        None => return Err(lx.err(start, "a closing '\"'", "the end of the rule")),
                        Some((_, '"')) => {
                            i += 1;
                            break;
                        }
                        Some((_, '\\')) => match chars.next() {
                            Some((_, ch @ ('"' | '\\'))) => {
                                s.push(ch);
                                i += 2;
                            }
                            _ => {
                                return Err(lx.err(
                                    i,
                                    "'\\\"' or '\\\\' after '\\'",
                                    "another escape",
                                ));
                            }
                        },
                        Some((_, ch)) => {
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                lx.toks.push((Tok::Str(s), start));
                continue;
            }
            if c.is_ascii_digit() || (c == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
            {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                let num = &src[start..i];
                let unit_end = {
                    let mut j = i;
                    while j < bytes.len() && bytes[j].is_ascii_alphabetic() {
                        j += 1;
                    }
                    j
                };
                if unit_end > i {
                    let unit = &src[i..unit_end];
                    let raw = &src[start..unit_end];
                    let n: i64 = num
                        .parse()
                        .ok()
                        .filter(|n| (1..=i64::from(MAX_DAYS) * 24 * 60).contains(n))
                        .ok_or_else(|| lx.err(start, "a whole, positive duration like 30d", raw))?;
                    let d = match unit {
                        "m" => Duration::minutes(n),
                        "h" => Duration::hours(n),
                        "d" => Duration::days(n),
                        "w" => Duration::weeks(n),
                        _ => {
                            return Err(lx.err(i, "a duration unit m, h, d or w", unit));
                        }
                    };
                    if d > Duration::days(i64::from(MAX_DAYS)) {
                        return Err(lx.err(start, "a duration of at most 10 years", raw));
                    }
                    lx.toks.push((Tok::Dur(d, raw.to_owned()), start));
                    i = unit_end;
                } else {
                    let n: f64 = num
                        .parse()
                        .ok()
                        .filter(|n: &f64| n.is_finite())
                        .ok_or_else(|| lx.err(start, "a number", num))?;
                    lx.toks.push((Tok::Num(n), start));
                }
                continue;
            }
            if c.is_ascii_alphabetic() || c == b'_' {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                lx.toks.push((Tok::Name(src[start..i].to_owned()), start));
                continue;
            }
            let two = src.get(i..i + 2);
            let sym = match (two, c) {
                (Some("!="), _) => "!=",
                (Some("<="), _) => "<=",
                (Some(">="), _) => ">=",
                (_, b'=') => "=",
                (_, b'<') => "<",
                (_, b'>') => ">",
                (_, b'~') => "~",
                (_, b'(') => "(",
                (_, b')') => ")",
                (_, b'[') => "[",
                (_, b']') => "]",
                (_, b',') => ",",
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(lx.err(
                        i,
                        "a name, a number, a text in quotes or an operator",
                        &format!("'{ch}'"),
                    ));
                }
            };
            i += sym.len();
            lx.toks.push((Tok::Sym(sym), start));
        }
        lx.toks.push((Tok::End, src.len()));
        Ok(lx.toks)
    }

    fn err(&self, byte: usize, expected: &str, found: &str) -> ParseError {
        ParseError {
            column: column(self.src, byte),
            expected: expected.to_owned(),
            found: found.to_owned(),
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// Parses a rule or segment filter.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser::new(src)?;
    if p.peek() == &Tok::End {
        return Err(p.error("a condition"));
    }
    let e = p.expr()?;
    if p.peek() != &Tok::End {
        return Err(p.error("'and', 'or' or the end of the rule"));
    }
    Ok(e)
}

/// Parses an event pattern on its own (`page_viewed where url ~ "/pricing"`), as a behaviour
/// rule names the events it fires on.
pub fn parse_pattern(src: &str) -> Result<EventPattern, ParseError> {
    let mut p = Parser::new(src)?;
    let pattern = p.pattern()?;
    if p.peek() != &Tok::End {
        return Err(p.error("'and' or the end of the event pattern"));
    }
    Ok(pattern)
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Self, ParseError> {
        if src.len() > MAX_LEN {
            return Err(ParseError {
                column: MAX_LEN,
                expected: format!("at most {MAX_LEN} characters"),
                found: format!("{} characters", src.len()),
            });
        }
        Ok(Parser {
            src,
            toks: Lexer::run(src)?,
            pos: 0,
            depth: 0,
        })
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].0.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&self, expected: &str) -> ParseError {
        let (tok, at) = &self.toks[self.pos];
        ParseError {
            column: column(self.src, *at),
            expected: expected.to_owned(),
            found: tok.describe(),
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n.eq_ignore_ascii_case(w))
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.next();
        }
        yes
    }

    fn expect_word(&mut self, w: &str) -> Result<(), ParseError> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.error(&format!("'{w}'")))
        }
    }

    fn expect_sym(&mut self, s: &'static str) -> Result<(), ParseError> {
        if self.peek() == &Tok::Sym(s) {
            self.next();
            Ok(())
        } else {
            Err(self.error(&format!("'{s}'")))
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("at most {MAX_DEPTH} levels of nesting")));
        }
        let mut ors = vec![self.and()?];
        while self.eat_word("or") {
            ors.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if ors.len() == 1 {
            ors.remove(0)
        } else {
            Expr::Or(ors)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut ands = vec![self.unary()?];
        while self.eat_word("and") {
            ands.push(self.unary()?);
        }
        Ok(if ands.len() == 1 {
            ands.remove(0)
        } else {
            Expr::And(ands)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat_word("not") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(self.error(&format!("at most {MAX_DEPTH} levels of nesting")));
            }
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek() == &Tok::Sym("(") {
            self.next();
            let e = self.expr()?;
            self.expect_sym(")")?;
            return Ok(e);
        }
        self.condition().map(Expr::Cond)
    }

    fn op(&mut self) -> Result<CmpOp, ParseError> {
        let op = match self.peek() {
            Tok::Sym("=") => CmpOp::Eq,
            Tok::Sym("!=") => CmpOp::Ne,
            Tok::Sym("<") => CmpOp::Lt,
            Tok::Sym("<=") => CmpOp::Le,
            Tok::Sym(">") => CmpOp::Gt,
            Tok::Sym(">=") => CmpOp::Ge,
            _ => return Err(self.error("a comparison (=, !=, <, <=, >, >=)")),
        };
        self.next();
        Ok(op)
    }

    fn number(&mut self) -> Result<f64, ParseError> {
        match self.peek() {
            Tok::Num(n) => {
                let n = *n;
                self.next();
                Ok(n)
            }
            _ => Err(self.error("a number")),
        }
    }

    fn duration(&mut self) -> Result<Duration, ParseError> {
        match self.peek() {
            Tok::Dur(d, _) => {
                let d = *d;
                self.next();
                Ok(d)
            }
            _ => Err(self.error("a duration like 14d, 12h or 2w")),
        }
    }

    fn condition(&mut self) -> Result<Condition, ParseError> {
        let name = match self.peek() {
            Tok::Name(n) => n.clone(),
            _ => {
                return Err(self.error(
                    "a condition (a field, count(…), last(…), first(…) or distance_km(…))",
                ));
            }
        };
        match name.as_str() {
            "count" => {
                self.next();
                self.expect_sym("(")?;
                let pattern = self.pattern()?;
                let window = if self.peek() == &Tok::Sym(",") {
                    self.next();
                    Some(self.duration()?)
                } else {
                    None
                };
                self.expect_sym(")")?;
                let op = self.op()?;
                let n = self.number()?;
                if n.fract() != 0.0 || !(0.0..=1e9).contains(&n) {
                    self.pos -= 1;
                    return Err(self.error("a whole number of events"));
                }
                Ok(Condition::Count {
                    pattern,
                    window,
                    op,
                    n: n as i64,
                })
            }
            "last" | "first" => {
                self.next();
                self.expect_sym("(")?;
                let pattern = self.pattern()?;
                self.expect_sym(")")?;
                let test = if self.eat_word("older") {
                    self.expect_word("than")?;
                    LastTest::OlderThan(self.duration()?)
                } else if self.eat_word("within") {
                    LastTest::Within(self.duration()?)
                } else {
                    return Err(self.error("'older than' or 'within'"));
                };
                Ok(if name == "last" {
                    Condition::Last { pattern, test }
                } else {
                    Condition::First { pattern, test }
                })
            }
            "distance_km" => {
                self.next();
                self.expect_sym("(")?;
                let lat = self.number()?;
                if !(-90.0..=90.0).contains(&lat) {
                    self.pos -= 1;
                    return Err(self.error("a latitude between -90 and 90"));
                }
                self.expect_sym(",")?;
                let lon = self.number()?;
                if !(-180.0..=180.0).contains(&lon) {
                    self.pos -= 1;
                    return Err(self.error("a longitude between -180 and 180"));
                }
                self.expect_sym(")")?;
                let op = self.op()?;
                let km = self.number()?;
                Ok(Condition::Distance { lat, lon, op, km })
            }
            _ => self.field_condition(&name),
        }
    }

    fn field_condition(&mut self, name: &str) -> Result<Condition, ParseError> {
        let Some((field, ty)) = Field::resolve(name) else {
            let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
            return Err(self.error(&format!("a field ({}, or custom.NAME)", known.join(", "))));
        };
        self.next();
        if self.eat_word("is") {
            let set = !self.eat_word("not");
            self.expect_word("set")?;
            return Ok(Condition::IsSet { field, set });
        }
        if self.eat_word("in") {
            self.expect_sym("[")?;
            let mut values = vec![self.value(ty)?];
            while self.peek() == &Tok::Sym(",") {
                self.next();
                values.push(self.value(ty)?);
            }
            self.expect_sym("]")?;
            return Ok(Condition::In { field, values });
        }
        if self.peek() == &Tok::Sym("~") {
            if matches!(ty, FieldType::Number | FieldType::Stage) {
                return Err(self.error("a comparison: '~' matches text, not numbers or stages"));
            }
            self.next();
            return match self.next() {
                Tok::Str(needle) => Ok(Condition::Contains { field, needle }),
                _ => {
                    self.pos -= 1;
                    Err(self.error("a text in quotes"))
                }
            };
        }
        let op = self.op()?;
        if matches!(ty, FieldType::Text | FieldType::List | FieldType::Stage)
            && !matches!(op, CmpOp::Eq | CmpOp::Ne)
            && !matches!(field, Field::Custom(_))
        {
            if ty == FieldType::Stage {
                // Stages order along the main path: `stage >= MQL`.
            } else {
                self.pos -= 1;
                return Err(self.error(&format!("'=' or '!=' ({name} is text)")));
            }
        }
        let value = self.value(ty)?;
        Ok(Condition::Cmp { field, op, value })
    }

    fn value(&mut self, ty: FieldType) -> Result<Value, ParseError> {
        let v = match (self.peek().clone(), ty) {
            (Tok::Num(n), FieldType::Number) => Value::Number(n),
            (Tok::Num(n), FieldType::Text | FieldType::List) => Value::Number(n),
            (Tok::Str(s), FieldType::Text | FieldType::List) => Value::Text(s),
            (Tok::Str(s) | Tok::Name(s), FieldType::Stage) => match LifecycleStage::parse(&s) {
                Some(st) => Value::Stage(st),
                None => {
                    return Err(self.error(
                        "a stage (subscriber, IQL, MQL, SQL, opportunity, customer, trial, disqualified, churned)",
                    ));
                }
            },
            (_, FieldType::Number) => return Err(self.error("a number")),
            (_, FieldType::Stage) => return Err(self.error("a stage")),
            _ => return Err(self.error("a text in quotes or a number")),
        };
        self.next();
        Ok(v)
    }

    fn pattern(&mut self) -> Result<EventPattern, ParseError> {
        let event_type = match self.peek() {
            Tok::Name(n) => {
                EventType::parse(n).map_err(|_| self.error("an event type like page_viewed"))?
            }
            _ => return Err(self.error("an event type like page_viewed or email_opened")),
        };
        self.next();
        let mut filters = Vec::new();
        if self.eat_word("where") {
            loop {
                let property = match self.peek() {
                    Tok::Name(n) => n.clone(),
                    _ => return Err(self.error("a property name like url")),
                };
                self.next();
                let test = if self.peek() == &Tok::Sym("~") {
                    self.next();
                    match self.next() {
                        Tok::Str(s) => PropTest::Contains(Needle::new(s)),
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("a text in quotes"));
                        }
                    }
                } else {
                    let op = self.op()?;
                    let v = match self.next() {
                        Tok::Str(s) => Value::Text(s),
                        Tok::Num(n) => Value::Number(n),
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("a text in quotes or a number"));
                        }
                    };
                    PropTest::Cmp(op, v)
                };
                filters.push(PropFilter { property, test });
                // Inside count(…) and last(…) an `and` can only join another property test.
                if !self.eat_word("and") {
                    break;
                }
            }
        }
        Ok(EventPattern {
            event_type,
            filters,
        })
    }
}
