//! Users' secrets: password hashing, API keys, and the permission vocabulary.
//!
//! A key looks like EnterMediaDB's (`<userid>md542<token>`) so that clients which
//! split it keep working, but the token is random and only its SHA-256 is stored:
//! a leaked database yields no usable key, and a key can be revoked.

pub mod permissions;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use sha2::{Digest, Sha256};

pub use permissions::Permission;

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Hashing with default parameters and a fresh salt cannot fail.
        .unwrap_or_default()
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A new key for `user_id` and the hash under which it is stored.
pub fn new_key(user_id: &str) -> (String, String) {
    let token: [u8; 20] = rand::thread_rng().gen();
    let key = format!("{user_id}md542{}", hex::encode(token));
    let hash = key_hash(&key);
    (key, hash)
}

/// The stored form of a key.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The user id a key names (the text before the first `md542`), as EnterMediaDB reads it.
pub fn key_user(key: &str) -> Option<&str> {
    key.split_once("md542").map(|(u, _)| u).filter(|u| !u.is_empty())
}

/// A random password for the bootstrap administrator.
pub fn random_password() -> String {
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

/// EnterMediaDB's key derivation (wire §4.1): `userid + "md542" + hex(md5(secret + password))`
/// with its odd hex (a byte <= 16 gets a leading `0`, so 0x10 is `010` and bytes >= 0x80
/// take three characters). Used only by the opt-in legacy mode for migrated installations.
pub fn legacy_emdb_key(user_id: &str, secret: &str, password: &str) -> String {
    use md5::{Digest as _, Md5};
    let digest = Md5::digest(format!("{secret}{password}").as_bytes());
    let mut hexed = String::new();
    for &b in digest.iter() {
        let signed = b as i8;
        if signed <= 16 {
            hexed.push('0');
        }
        hexed.push_str(&format!("{:x}", b));
    }
    format!("{user_id}md542{hexed}")
}

/// EnterMediaDB's built-in default encryption secret.
pub const EMDB_DEFAULT_SECRET: &str = "7939805759879766427939805759879766";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "S3cret"));
        assert!(!verify_password("garbage", "s3cret"));
    }

    #[test]
    fn keys_look_like_emdb_keys_and_are_random() {
        let (k1, h1) = new_key("admin");
        let (k2, _) = new_key("admin");
        assert!(k1.starts_with("adminmd542"));
        assert_ne!(k1, k2);
        assert_eq!(key_hash(&k1), h1);
        assert_eq!(key_user(&k1), Some("admin"));
        assert_eq!(key_user("md542abc"), None);
    }

    #[test]
    fn legacy_derivation_reproduces_the_documented_key() {
        assert_eq!(
            legacy_emdb_key("admin", EMDB_DEFAULT_SECRET, "admin"),
            "adminmd5421c0af185908a6c0c40d50fd5e3f16760d5580bc"
        );
    }
}
