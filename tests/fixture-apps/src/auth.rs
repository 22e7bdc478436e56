//! HTTP Basic auth for `fixture-chain`'s RPC, checked like bitcoind's
//! `rpcauth`: the daemon never sees the password in its configuration, only
//! a bcrypt hash of it (the node's generated `bcrypt` secret, mounted as a
//! file). The hash file is read on every check, so a rotated secret takes
//! effect without a restart; the last password that verified against the
//! current hash is remembered, so a wallet polling every two seconds costs
//! one bcrypt verification, not one per call.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding; `None` unless well formed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let last = ci + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = ALPHABET.iter().position(|&a| a == c)?;
            n = (n << 6) | u32::try_from(v).ok()?;
        }
        n <<= 6 * pad;
        // The 24 bits of a group are the low three bytes.
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

/// The `Authorization` header value for `user:password`.
pub fn basic_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// User and password from an `Authorization: Basic …` header value.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(rest.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The outcome of checking one request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Missing or wrong credentials: answer 401.
    Denied,
    /// The hash file is missing or not a bcrypt hash: answer 500, the node
    /// is misconfigured, not the client.
    Misconfigured(String),
}

/// Checks Basic credentials against the bcrypt hash in a file.
#[derive(Debug)]
pub struct Authenticator {
    user: String,
    hash_file: PathBuf,
    /// (hash, password) last seen to verify.
    verified: Mutex<Option<(String, String)>>,
    verifications: AtomicU64,
}

impl Authenticator {
    pub fn new(user: impl Into<String>, hash_file: impl Into<PathBuf>) -> Self {
        Self {
            user: user.into(),
            hash_file: hash_file.into(),
            verified: Mutex::new(None),
            verifications: AtomicU64::new(0),
        }
    }

    /// How many times bcrypt ran; lets tests see the cache work.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Checks the value of a request's `Authorization` header.
    pub fn check(&self, authorization: Option<&str>) -> Verdict {
        let hash = match std::fs::read_to_string(&self.hash_file) {
            Ok(h) => h.trim().to_owned(),
            Err(e) => {
                return Verdict::Misconfigured(format!(
                    "cannot read the rpcauth file {}: {e}",
                    self.hash_file.display()
                ));
            }
        };
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Verdict::Denied;
        };
        if !constant_time_eq(user.as_bytes(), self.user.as_bytes()) {
            return Verdict::Denied;
        }
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((h, p)) = verified.as_ref() {
            if *h == hash && constant_time_eq(p.as_bytes(), password.as_bytes()) {
                return Verdict::Allowed;
            }
        }
        self.verifications.fetch_add(1, Ordering::Relaxed);
        match bcrypt::verify(&password, &hash) {
            Ok(true) => {
                *verified = Some((hash, password));
                Verdict::Allowed
            }
            Ok(false) => Verdict::Denied,
            Err(e) => Verdict::Misconfigured(format!(
                "the rpcauth file {} holds no bcrypt hash: {e}",
                self.hash_file.display()
            )),
        }
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_known_values() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("rpc:secret", "cnBjOnNlY3JldA=="),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*", "Zm 9"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_basic_headers() {
        assert_eq!(
            parse_basic("Basic cnBjOnNlY3JldA=="),
            Some(("rpc".into(), "secret".into()))
        );
        assert_eq!(
            parse_basic(&basic_header("rpc", "a:b")),
            Some(("rpc".into(), "a:b".into()))
        );
        assert_eq!(
            parse_basic("basic cnBjOnNlY3JldA=="),
            Some(("rpc".into(), "secret".into()))
        );
        assert_eq!(parse_basic("Bearer cnBjOnNlY3JldA=="), None);
        assert_eq!(parse_basic("Basic !!!!"), None);
        assert_eq!(
            parse_basic(&format!("Basic {}", base64_encode(b"nocolon"))),
            None
        );
        assert_eq!(parse_basic("Basic"), None);
    }

    fn auth_with(hash: &str) -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rpc-password-hash");
        std::fs::write(&file, hash).unwrap();
        let a = Authenticator::new("rpc", file);
        (dir, a)
    }

    #[test]
    fn checks_passwords_against_the_hash_file() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let (_dir, a) = auth_with(&format!("{hash}\n"));
        assert_eq!(
            a.check(Some(&basic_header("rpc", "right"))),
            Verdict::Allowed
        );
        assert_eq!(
            a.check(Some(&basic_header("rpc", "wrong"))),
            Verdict::Denied
        );
        assert_eq!(
            a.check(Some(&basic_header("admin", "right"))),
            Verdict::Denied
        );
        assert_eq!(a.check(None), Verdict::Denied);
        assert_eq!(a.check(Some("Basic ????")), Verdict::Denied);
    }

    #[test]
    fn a_verified_password_is_not_verified_again() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let (dir, a) = auth_with(&hash);
        let ok = basic_header("rpc", "right");
        for _ in 0..5 {
            assert_eq!(a.check(Some(&ok)), Verdict::Allowed);
        }
        assert_eq!(a.verifications(), 1);
        // A wrong password always costs a verification…
        assert_eq!(
            a.check(Some(&basic_header("rpc", "wrong"))),
            Verdict::Denied
        );
        assert_eq!(a.verifications(), 2);
        // …and a rotated hash invalidates the remembered password.
        let rotated = bcrypt::hash("new", 4).unwrap();
        std::fs::write(dir.path().join("rpc-password-hash"), rotated).unwrap();
        assert_eq!(a.check(Some(&ok)), Verdict::Denied);
        assert_eq!(a.check(Some(&basic_header("rpc", "new"))), Verdict::Allowed);
    }

    #[test]
    fn a_missing_or_garbled_hash_file_is_a_misconfiguration() {
        let a = Authenticator::new("rpc", "/nonexistent/rpc-password-hash");
        assert!(matches!(
            a.check(Some(&basic_header("rpc", "x"))),
            Verdict::Misconfigured(m) if m.contains("cannot read")
        ));
        let (_dir, a) = auth_with("not a hash");
        assert!(matches!(
            a.check(Some(&basic_header("rpc", "x"))),
            Verdict::Misconfigured(m) if m.contains("no bcrypt hash")
        ));
    }
}
