//! Email addresses, parsed once at the edge. Contacts are de-duplicated by the normalised form:
//! surrounding white space trimmed and the whole address lower-cased (mailbox providers treat the
//! local part case-insensitively in practice, and a marketer never wants `Ann@x.com` and
//! `ann@x.com` as two leads).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A syntactically valid, normalised email address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is empty")]
    Empty,
    #[error("email is longer than 254 characters")]
    TooLong,
    #[error("email must contain exactly one '@' with text on both sides")]
    MissingAt,
    #[error("email: the part before the '@' is longer than 64 bytes (lower-cased)")]
    LocalTooLong,
    #[error("email domain '{0}' is not a valid domain (expected something like example.com)")]
    BadDomain(String),
    #[error("email local part contains a character that is not allowed: {0:?}")]
    BadLocalChar(char),
}

impl Email {
    /// Parses and normalises an address. Accepts the addresses people actually type (dot-atom
    /// local parts with `+` tags, internationalised characters) and rejects what cannot be
    /// delivered: no `@`, spaces, empty labels, a domain without a dot.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        if input.is_ascii() {
            parse_ascii(input)
        } else {
            parse_any(input)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

/// `Email::parse` for any text. The text is lower-cased first and checked as it will be
/// stored: lower-casing can lengthen a text (`İ` becomes `i̇`, a byte longer) or change its
/// characters, and an address that passed as typed but not as stored was refused when read
/// back (a form post answered 500, a whole batch of events refused).
fn parse_any(input: &str) -> Result<Email, EmailError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(EmailError::Empty);
    }
    if trimmed.len() > 254 {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailError::MissingAt)?;
    // Lower-cased into one new text, without a copy of each part first: every refresh
    // reads its contacts' addresses back through here.
    let mut out = String::with_capacity(trimmed.len());
    push_lowercase(&mut out, local);
    out.push('@');
    push_lowercase(&mut out, domain);
    if out.len() > 254 {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = out.rsplit_once('@').ok_or(EmailError::MissingAt)?;
    if local.is_empty() || domain.is_empty() {
        return Err(EmailError::MissingAt);
    }
    if local.len() > 64 {
        return Err(EmailError::LocalTooLong);
    }
    if let Some(c) = local.chars().find(|c| !local_char_ok(*c)) {
        return Err(EmailError::BadLocalChar(c));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(EmailError::BadLocalChar('.'));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && if l.is_ascii() {
                l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            } else {
                l.chars().all(|c| c.is_alphanumeric() || c == '-')
            }
    };
    if domain.split('.').count() < 2 || !domain.split('.').all(label_ok) {
        return Err(EmailError::BadDomain(domain.to_owned()));
    }
    Ok(Email(out))
}

/// `parse_any` for an ASCII text (nearly every address), byte by byte in one pass over each
/// part: every refresh reads its contacts' addresses back through here, and through the
/// general path an address cost some 2 000 instructions. Gives what `parse_any` gives, errors
/// included (a property test holds the two together).
fn parse_ascii(input: &str) -> Result<Email, EmailError> {
    // What `str::trim` takes off an ASCII text (`char::is_whitespace`, which includes the
    // vertical tab that `u8::is_ascii_whitespace` leaves).
    let space = |b: &u8| *b == b' ' || (b'\t'..=b'\r').contains(b);
    let bytes = input.as_bytes();
    let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |i| i + 1);
    let trimmed = &input[start..end];
    if trimmed.is_empty() {
        return Err(EmailError::Empty);
    }
    if trimmed.len() > 254 {
        return Err(EmailError::TooLong);
    }
    let at = trimmed
        .bytes()
        .rposition(|b| b == b'@')
        .ok_or(EmailError::MissingAt)?;
    let (local, domain) = (&trimmed.as_bytes()[..at], &trimmed.as_bytes()[at + 1..]);
    if local.is_empty() || domain.is_empty() {
        return Err(EmailError::MissingAt);
    }
    if local.len() > 64 {
        return Err(EmailError::LocalTooLong);
    }
    if let Some(b) = local.iter().find(|b| !local_char_ok(char::from(**b))) {
        return Err(EmailError::BadLocalChar(char::from(*b)));
    }
    if local[0] == b'.' || local[local.len() - 1] == b'.' || local.windows(2).any(|w| w == b"..") {
        return Err(EmailError::BadLocalChar('.'));
    }
    let mut out = trimmed.to_owned();
    out.make_ascii_lowercase();
    // Labels of 1 to 63 letters, digits and hyphens, neither first nor last a hyphen; two at
    // least.
    let domain = &out.as_bytes()[at + 1..];
    let mut labels = 0;
    let mut ok = true;
    for label in domain.split(|b| *b == b'.') {
        labels += 1;
        ok &= !label.is_empty()
            && label.len() <= 63
            && label[0] != b'-'
            && label[label.len() - 1] != b'-'
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-');
    }
    if labels < 2 || !ok {
        return Err(EmailError::BadDomain(out[at + 1..].to_owned()));
    }
    Ok(Email(out))
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Email {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

/// Whether `c` may stand in a local part: not a space, a control character or one of the
/// specials that would need quoting. Decided by a `match` for ASCII, where a scan of the
/// specials for each character cost a refresh a tenth of its contact parsing.
fn local_char_ok(c: char) -> bool {
    if c.is_ascii() {
        !matches!(
            c,
            '\0'..=' '
                | '\x7f'
                | '@'
                | '('
                | ')'
                | '<'
                | '>'
                | '['
                | ']'
                | ':'
                | ';'
                | ','
                | '\\'
                | '"'
        )
    } else {
        !(c.is_whitespace() || c.is_control())
    }
}

/// Appends `s` lower-cased: copied, then lower-cased in place when it is ASCII (nearly every
/// address), without the intermediate text `to_lowercase` makes. (Pushed a character at a
/// time, each address cost a refresh some 430 instructions per part.)
fn push_lowercase(out: &mut String, s: &str) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        out[start..].make_ascii_lowercase();
    } else {
        out.push_str(&s.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let e = Email::parse("  Ann.Lee+news@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "ann.lee+news@example.com");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn rejects_what_cannot_be_delivered() {
        for bad in [
            "",
            "   ",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "ann lee@example.com",
            "ann@exa mple.com",
            "ann@@example.com",
            "ann@-example.com",
            ".ann@example.com",
            "an..n@example.com",
            "ann@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn an_address_longer_once_lower_cased_is_measured_as_stored() {
        // 32 × İ is 64 bytes as typed and 96 lower-cased: past the local part's 64.
        let long = format!("{}@x.test", "İ".repeat(32));
        assert_eq!(Email::parse(&long), Err(EmailError::LocalTooLong));
        let short = format!("{}@x.test", "İ".repeat(21));
        let e = Email::parse(&short).unwrap();
        assert_eq!(Email::parse(e.as_str()), Ok(e));
    }

    #[test]
    fn accepts_international_domains() {
        assert!(Email::parse("jörg@müller.de").is_ok());
    }

    proptest! {
        /// The ASCII path reads every ASCII text as the general one does, errors included:
        /// texts near addresses (the characters that matter, dots, `@`s, hyphens, white space
        /// of every kind, long labels) and any ASCII at all.
        #[test]
        fn the_ascii_path_reads_as_the_general_one(
            near in "[ \t\x0b\r\n]{0,2}[aZ0.+\"( -]{0,70}(@[aB9.-]{0,70}){0,2}[ \t\x0c]{0,2}",
            any in "[\x00-\x7f]{0,40}",
        ) {
            for text in [near, any] {
                prop_assert_eq!(parse_ascii(&text), parse_any(&text), "{:?}", text);
            }
        }

        /// What is accepted reads back as itself, whatever its characters: lower-casing may
        /// lengthen a text (`İ`), so the limits hold for the stored form.
        #[test]
        fn normalisation_is_idempotent(
            local in "[a-zA-Z0-9._+-]{1,20}",
            domain in "[a-zA-Z]{1,10}\\.[a-zA-Z]{2,5}",
            wide in "[İa-zA-Z\\PC]{1,70}",
        ) {
            for text in [format!("{local}@{domain}"), format!("{wide}@x.test"), format!("a@{wide}.test")] {
                if let Ok(e) = Email::parse(&text) {
                    let again = Email::parse(e.as_str());
                    prop_assert_eq!(Ok(e), again, "{:?}", text);
                }
            }
        }

        /// A local part is refused for exactly the characters the rule names.
        #[test]
        fn local_characters_are_decided_as_named(c in proptest::char::any()) {
            let named = c.is_whitespace() || c.is_control() || "@()<>[]:;,\\\"".contains(c);
            prop_assert_eq!(local_char_ok(c), !named);
        }

        /// An accepted address is its two parts lower-cased, whatever their characters.
        #[test]
        fn the_normal_form_is_both_parts_lowercased(local in "\\PC{1,12}", domain in "\\PC{1,8}\\.[a-zA-ZÄÖÜß]{2,4}") {
            let text = format!(" {local}@{domain} ");
            if let Ok(e) = Email::parse(&text) {
                let (l, d) = text.trim().rsplit_once('@').unwrap();
                prop_assert_eq!(e.as_str(), format!("{}@{}", l.to_lowercase(), d.to_lowercase()));
            }
        }

        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = Email::parse(&s);
        }
    }
}
