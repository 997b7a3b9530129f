//! Session tokens. A token is `<user id>.<64 hex digits>`: the digits are an HMAC-SHA256 of
//! the user id under a key drawn at random for each run, so a token cannot be guessed or
//! forged without the key, and one user's token says nothing about another's.
//!
//! Two ways to check one, as the poll API's `--poll-auth` picks:
//! - `db`: the server looks up the token's SHA-256 in `sessions` (the table never holds a
//!   token, and the lookup's timing depends only on the hash);
//! - `none`: the server verifies the HMAC itself with the key, in constant time
//!   ([`Mac::verify_slice`]), and reads the user id from the prefix: a signed token, as a
//!   deployment that skips the session lookup would use.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The environment variable that carries the key to `serve` (kept out of the command
/// line, which any local user can read).
pub const KEY_ENV: &str = "POLLPUSH_TOKEN_KEY";

/// The environment variable with the operator token: when set, a server answers
/// `POST /notifications`, `/stats` and `/metrics` only to requests that carry it in
/// [`OPERATOR_HEADER`], and pollpush's own clients (the workload, the run's readings) send
/// it. `serve` refuses to listen beyond loopback without it.
pub const OPERATOR_ENV: &str = "POLLPUSH_OPERATOR_TOKEN";

/// The request header that carries the operator token.
pub const OPERATOR_HEADER: &str = "x-pollpush-operator";

/// The operator token of this process's environment; None when unset or empty.
pub fn operator_token() -> Option<&'static str> {
    static TOKEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    TOKEN
        .get_or_init(|| std::env::var(OPERATOR_ENV).ok().filter(|t| !t.is_empty()))
        .as_deref()
}

/// Whether `given` is `expected`, compared as SHA-256 digests so that the time taken says
/// nothing about how much of a guess was right.
pub fn same_secret(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

/// Signs and verifies tokens with one key.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: <hidden> }")
    }
}

impl Signer {
    /// A signer with a fresh random key.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Signer { key }
    }

    /// A signer from a key in hex (64 digits), as `serve` reads it from [`KEY_ENV`].
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Signer {
            key: bytes.try_into().ok()?,
        })
    }

    /// The key in [`KEY_ENV`]: None when the variable is not set, an error naming it when
    /// it is set but is not 64 hex digits.
    pub fn from_env() -> Result<Option<Self>, crate::error::UserError> {
        match std::env::var(KEY_ENV) {
            Err(_) => Ok(None),
            Ok(hex) => Signer::from_hex(&hex).map(Some).ok_or_else(|| {
                crate::error::UserError::Input(format!(
                    "{KEY_ENV} must be 64 hex digits (a 32-byte key)"
                ))
            }),
        }
    }

    /// The key this process signs its users' tokens with: [`KEY_ENV`] when set to a valid
    /// key (so that `swarm` and a `serve --poll-auth none` started elsewhere share it), else
    /// drawn once at random. The servers `run` starts get it through their environment.
    pub fn process() -> &'static Signer {
        static SIGNER: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();
        SIGNER.get_or_init(|| {
            Signer::from_env()
                .ok()
                .flatten()
                .unwrap_or_else(Signer::random)
        })
    }

    pub fn key_hex(&self) -> String {
        hex::encode(self.key)
    }

    fn mac(&self, user: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(user.to_string().as_bytes());
        mac
    }

    /// The token of `user`.
    pub fn token(&self, user: i64) -> String {
        format!(
            "{user}.{}",
            hex::encode(self.mac(user).finalize().into_bytes())
        )
    }

    /// The user a token was signed for, if its signature is right (checked in constant
    /// time); None for anything else.
    pub fn verify(&self, token: &str) -> Option<i64> {
        let (user_part, sig) = token.split_once('.')?;
        let user: i64 = user_part.parse().ok()?;
        if user.to_string() != user_part {
            return None; // "+1" or "01": one spelling per user
        }
        let sig = hex::decode(sig).ok()?;
        self.mac(user).verify_slice(&sig).ok()?;
        Some(user)
    }
}

/// What `sessions` stores for a token: its SHA-256, in hex.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_for_its_user_only() {
        let s = Signer::random();
        let t = s.token(42);
        assert_eq!(s.verify(&t), Some(42));
        assert_eq!(t.len(), "42.".len() + 64);
        // Another user's prefix with this signature, a changed digit, another key, other
        // spellings of the same user: all refused.
        assert_eq!(s.verify(&t.replacen("42", "43", 1)), None);
        let mut bad = t.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.verify(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(Signer::random().verify(&t), None);
        assert_eq!(s.verify(&format!("+{t}")), None);
        assert_eq!(s.verify(&format!("0{t}")), None);
        for junk in ["", ".", "42", "42.", "x.y", "42.zz", "42.00"] {
            assert_eq!(s.verify(junk), None, "{junk:?}");
        }
        // The key travels in hex.
        let again = Signer::from_hex(&s.key_hex()).unwrap();
        assert_eq!(again.verify(&t), Some(42));
        assert!(Signer::from_hex("abc").is_none());
    }

    #[test]
    fn sessions_hold_a_hash_not_the_token() {
        let h = hash("1.abc");
        assert_eq!(h.len(), 64);
        assert_ne!(h, hash("1.abd"));
    }
}
