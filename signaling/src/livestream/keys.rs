//! Stream keys: random secrets handed to the broadcaster once (at create, and again at each
//! rotation); only their SHA-256 is stored. A key is `lsk_` and 40 characters of
//! `[A-Za-z0-9]` (about 238 bits), so a plain hash is enough: there is nothing to guess.

use rand::Rng;
use rand::distr::Alphanumeric;

pub use super::store::hash_key;

const PREFIX: &str = "lsk_";
const RANDOM_LEN: usize = 40;

/// A new random stream key.
pub fn new_key() -> String {
    let mut k = String::with_capacity(PREFIX.len() + RANDOM_LEN);
    k.push_str(PREFIX);
    k.extend(
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(RANDOM_LEN)
            .map(char::from),
    );
    k
}

/// Whether `key` hashes to `stored_hash`, compared in constant time.
pub fn key_matches(key: &str, stored_hash: &str) -> bool {
    let h = hash_key(key);
    h.len() == stored_hash.len()
        && h.bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_prefixed_and_match_only_their_hash() {
        let a = new_key();
        let b = new_key();
        assert_ne!(a, b);
        assert!(a.starts_with("lsk_") && a.len() == 44, "{a}");
        assert!(key_matches(&a, &hash_key(&a)));
        assert!(!key_matches(&b, &hash_key(&a)));
        assert!(!key_matches(&a, ""));
    }
}
