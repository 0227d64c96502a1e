//! Key material: `ath_{public_id}.{secret}`. The public id finds the key; only a salted SHA-256 of
//! the secret is stored (`hex(sha256("{salt}:{secret}"))`, the layout existing databases use). One
//! iteration is enough because the secret is 256 random bits, not a password. Hashes are compared
//! in constant time.

use sha2::{Digest, Sha256};

/// The prefix every key carries.
pub const PREFIX: &str = "ath_";

/// A freshly minted key. `full` is shown to the admin once and never stored.
pub struct Minted {
    pub public_id: String,
    pub full: String,
    pub salt: String,
    pub hash_hex: String,
}

fn random_hex(uuids: usize) -> String {
    (0..uuids)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect()
}

/// Mints a key: a 16-hex-digit public id and a 64-hex-digit secret from the OS random source.
pub fn mint() -> Minted {
    let public_id = random_hex(1)[..16].to_string();
    let secret = random_hex(2);
    let salt = random_hex(2);
    let hash_hex = hex(&hash(&salt, &secret));
    Minted {
        full: format!("{PREFIX}{public_id}.{secret}"),
        public_id,
        salt,
        hash_hex,
    }
}

/// Splits a presented key into its public id and secret.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    let (public_id, secret) = presented.strip_prefix(PREFIX)?.split_once('.')?;
    (!public_id.is_empty() && !secret.is_empty()).then_some((public_id, secret))
}

pub fn hash(salt: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b":");
    h.update(secret.as_bytes());
    h.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Decodes a stored 64-digit hash; `None` when it is not one.
pub fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let s = s.trim().as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let digit = |c: u8| char::from(c).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_key_verifies_against_its_stored_hash_only() {
        let m = mint();
        let (public_id, secret) = split(&m.full).unwrap();
        assert_eq!(public_id, m.public_id);
        assert_eq!(public_id.len(), 16);
        assert_eq!(secret.len(), 64);
        let stored = parse_hash(&m.hash_hex).unwrap();
        assert!(constant_time_eq(&hash(&m.salt, secret), &stored));
        assert!(!constant_time_eq(&hash(&m.salt, "other"), &stored));
        assert_ne!(mint().full, m.full);
    }

    #[test]
    fn the_hash_layout_is_hex_sha256_of_salt_colon_secret() {
        // printf s:x | sha256sum
        assert_eq!(
            hex(&hash("s", "x")),
            "b9cc050815a801453cedfac2053ecbcf8b89b2bde28ec9768ad6a5d6c1844834"
        );
    }

    #[test]
    fn malformed_keys_and_hashes_are_refused() {
        assert_eq!(split("ath_abc.def"), Some(("abc", "def")));
        assert_eq!(split("ath_abc.def.ghi"), Some(("abc", "def.ghi")));
        for bad in ["", "abc.def", "ath_", "ath_abc", "ath_.def", "ath_abc."] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
        assert!(parse_hash("zz").is_none());
        assert!(parse_hash(&"g".repeat(64)).is_none());
        assert_eq!(parse_hash(&"0f".repeat(32)), Some([0x0f; 32]));
    }
}
