//! Signed tracking links for Orchard's own emails: the open pixel and the click redirect. A
//! token names the contact, the message and (for clicks) the destination, and carries an
//! HMAC-SHA256 over them, so nobody can forge opens for another contact or turn the redirect
//! into an open redirect. The key is the installation's tracking secret.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ContactId;

/// What a tracking token vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    #[serde(rename = "c")]
    pub contact: ContactId,
    /// The sent message (one email to one contact).
    #[serde(rename = "m")]
    pub message: String,
    /// The destination, for click tokens; absent for the open pixel.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `hex(payload).hex(first 16 bytes of the MAC)`: URL-safe without escaping.
pub fn sign(key: &[u8], t: &Tracked) -> String {
    let payload = serde_json::to_vec(t).expect("a tracked item always serialises");
    let mac = hmac_sha256(key, &payload);
    format!("{}.{}", hex::encode(&payload), hex::encode(&mac[..16]))
}

/// The tracked item, if the token is well formed and was signed with `key`.
pub fn verify(key: &[u8], token: &str) -> Option<Tracked> {
    if token.len() > 8_192 {
        return None;
    }
    let (payload_hex, mac_hex) = token.split_once('.')?;
    let payload = hex::decode(payload_hex).ok()?;
    let mac = hex::decode(mac_hex).ok()?;
    let expected = hmac_sha256(key, &payload);
    if mac.len() != 16
        || mac
            .iter()
            .zip(&expected[..16])
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            != 0
    {
        return None;
    }
    let t: Tracked = serde_json::from_slice(&payload).ok()?;
    // A click destination must be a web address: never javascript:, data: or a relative path.
    if let Some(u) = &t.url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return None;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn click() -> Tracked {
        Tracked {
            contact: ContactId::new(42),
            message: "msg-1".into(),
            url: Some("https://example.com/pricing?x=1".into()),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_any_change_breaks_it() {
        let token = sign(b"secret", &click());
        assert_eq!(verify(b"secret", &token), Some(click()));
        assert_eq!(verify(b"other", &token), None);
        let mut forged = click();
        forged.contact = ContactId::new(43);
        let (_, mac) = token.split_once('.').unwrap();
        let payload = hex::encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(verify(b"secret", &format!("{payload}.{mac}")), None);
    }

    #[test]
    fn signed_tokens_never_redirect_outside_the_web() {
        let mut t = click();
        t.url = Some("javascript:alert(1)".into());
        assert_eq!(verify(b"k", &sign(b"k", &t)), None);
    }

    proptest! {
        #[test]
        fn garbage_never_verifies(s in "\\PC{0,200}") {
            prop_assert_eq!(verify(b"k", &s), None);
        }
    }
}
