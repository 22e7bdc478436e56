//! Where session tokens are kept: in the OS keyring (the Secret Service on
//! Linux, through the `keyring` crate) when there is one, else in
//! `tokens.json` (0600, in the 0700 configuration folder). Passwords are
//! never stored anywhere: a login exchanges one for a token and forgets it.
//!
//! The keyring is tried first; the first time it fails (no Secret Service
//! on the session bus, a locked collection, no session bus at all) the app
//! says so in its log and keeps tokens in the file from then on.
//! `ARCHIPELAGO_DESKTOP_NO_KEYRING=1` skips the keyring altogether (tests,
//! machines whose keyring prompts).
//!
//! Every method may block (D-Bus): call them from a blocking task.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use archipelago_api::methods::Session;

use crate::error::DesktopError;
use crate::files;

/// The token file's name in the configuration folder.
pub const FILE_NAME: &str = "tokens.json";
/// The keyring "service" the tokens are filed under (the user is the node
/// id).
pub const KEYRING_SERVICE: &str = "org.archipelago.desktop";

/// A place for secrets, one per node id.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The secret, `None` when there is none.
    fn get(&self, node_id: &str) -> Result<Option<String>, String>;
    fn set(&self, node_id: &str, secret: &str) -> Result<(), String>;
    /// Removes the secret; no secret is not an error.
    fn delete(&self, node_id: &str) -> Result<(), String>;
}

/// The OS keyring.
#[derive(Debug, Default)]
pub struct Keyring;

impl Keyring {
    fn entry(node_id: &str) -> Result<keyring::Entry, String> {
        keyring::Entry::new(KEYRING_SERVICE, node_id).map_err(|e| e.to_string())
    }
}

impl SecretStore for Keyring {
    fn get(&self, node_id: &str) -> Result<Option<String>, String> {
        match Self::entry(node_id)?.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn set(&self, node_id: &str, secret: &str) -> Result<(), String> {
        Self::entry(node_id)?
            .set_password(secret)
            .map_err(|e| e.to_string())
    }

    fn delete(&self, node_id: &str) -> Result<(), String> {
        match Self::entry(node_id)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `tokens.json`: node id → session, 0600.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    /// Serialises read-modify-write cycles.
    lock: Mutex<()>,
}

impl TokenFile {
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<BTreeMap<String, Session>, String> {
        let Some(bytes) = files::read_if_exists(&self.path).map_err(|e| e.to_string())? else {
            return Ok(BTreeMap::new());
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not valid ({e}); remove it and log in again",
                self.path.display()
            )
        })
    }

    fn update(&self, change: impl FnOnce(&mut BTreeMap<String, Session>)) -> Result<(), String> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all = self.read()?;
        let before = all.clone();
        change(&mut all);
        if all == before {
            return Ok(());
        }
        let text = serde_json::to_vec_pretty(&all).map_err(|e| e.to_string())?;
        files::write_private(&self.path, &text)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    pub fn get(&self, node_id: &str) -> Result<Option<Session>, String> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(self.read()?.remove(node_id))
    }

    pub fn set(&self, node_id: &str, session: &Session) -> Result<(), String> {
        self.update(|all| {
            all.insert(node_id.to_owned(), session.clone());
        })
    }

    pub fn delete(&self, node_id: &str) -> Result<(), String> {
        self.update(|all| {
            all.remove(node_id);
        })
    }
}

/// The session tokens of all nodes, with a memory cache in front.
#[derive(Debug)]
pub struct TokenStore {
    keyring: Option<Box<dyn SecretStore>>,
    /// Set when the keyring failed once: the file is used from then on.
    keyring_failed: AtomicBool,
    file: TokenFile,
    /// Node id → its session as last read or written.
    cache: Mutex<HashMap<String, Option<Session>>>,
}

impl TokenStore {
    /// Tokens in the OS keyring when `use_keyring`, else (or when it
    /// fails) in `dir`/tokens.json.
    pub fn new(dir: &Path, use_keyring: bool) -> Self {
        let keyring: Option<Box<dyn SecretStore>> = if use_keyring {
            Some(Box::new(Keyring))
        } else {
            None
        };
        Self::with_keyring(dir, keyring)
    }

    /// With another keyring (tests).
    pub fn with_keyring(dir: &Path, keyring: Option<Box<dyn SecretStore>>) -> Self {
        Self {
            keyring,
            keyring_failed: AtomicBool::new(false),
            file: TokenFile::new(dir),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Where tokens go now: `keyring` or the file's path.
    pub fn backend(&self) -> String {
        match self.usable_keyring() {
            Some(_) => "the OS keyring".to_owned(),
            None => self.file.path().display().to_string(),
        }
    }

    fn usable_keyring(&self) -> Option<&dyn SecretStore> {
        if self.keyring_failed.load(Ordering::Relaxed) {
            return None;
        }
        self.keyring.as_deref()
    }

    fn keyring_failed(&self, what: &str, error: &str) {
        if !self.keyring_failed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the OS keyring cannot {what} ({error}); session tokens are kept in {} (0600) instead",
                self.file.path().display()
            );
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Session>>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A node's session, unless it expired (at `now`, unix seconds).
    pub fn get(&self, node_id: &str, now: u64) -> Result<Option<Session>, DesktopError> {
        let cached = self.cache().get(node_id).cloned();
        let session = if let Some(session) = cached {
            session
        } else {
            let session = self.load(node_id)?;
            self.cache().insert(node_id.to_owned(), session.clone());
            session
        };
        Ok(session.filter(|s| s.expires_at > now))
    }

    fn load(&self, node_id: &str) -> Result<Option<Session>, DesktopError> {
        if let Some(keyring) = self.usable_keyring() {
            match keyring.get(node_id) {
                Ok(Some(secret)) => {
                    if let Ok(session) = serde_json::from_str::<Session>(&secret) {
                        return Ok(Some(session));
                    }
                    // Not ours, or damaged: as if there were none.
                    tracing::warn!("the keyring entry of node {node_id} is not a session; ignored");
                }
                Ok(None) => {}
                Err(e) => self.keyring_failed("be read", &e),
            }
        }
        self.file.get(node_id).map_err(DesktopError::storage)
    }

    /// Stores a node's session.
    pub fn set(&self, node_id: &str, session: &Session) -> Result<(), DesktopError> {
        let secret = serde_json::to_string(session).map_err(DesktopError::storage)?;
        let mut in_keyring = false;
        if let Some(keyring) = self.usable_keyring() {
            match keyring.set(node_id, &secret) {
                Ok(()) => in_keyring = true,
                Err(e) => self.keyring_failed("store a token", &e),
            }
        }
        if in_keyring {
            // A token of an earlier session in the file would be stale.
            if let Err(e) = self.file.delete(node_id) {
                tracing::warn!("an old token of node {node_id} stays in the file: {e}");
            }
        } else {
            self.file
                .set(node_id, session)
                .map_err(DesktopError::storage)?;
        }
        self.cache()
            .insert(node_id.to_owned(), Some(session.clone()));
        Ok(())
    }

    /// Forgets a node's session, wherever it is.
    pub fn forget(&self, node_id: &str) -> Result<(), DesktopError> {
        self.cache().insert(node_id.to_owned(), None);
        if let Some(keyring) = self.usable_keyring()
            && let Err(e) = keyring.delete(node_id)
        {
            self.keyring_failed("delete a token", &e);
        }
        self.file.delete(node_id).map_err(DesktopError::storage)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use super::*;

    fn session(token: &str, expires_at: u64) -> Session {
        Session {
            token: token.into(),
            expires_at,
        }
    }

    /// A keyring kept in memory, which can be made to fail.
    #[derive(Debug, Default)]
    struct FakeKeyring {
        secrets: Mutex<HashMap<String, String>>,
        broken: AtomicBool,
    }

    impl SecretStore for Arc<FakeKeyring> {
        fn get(&self, id: &str) -> Result<Option<String>, String> {
            if self.broken.load(Ordering::Relaxed) {
                return Err("no Secret Service".into());
            }
            Ok(self.secrets.lock().unwrap().get(id).cloned())
        }
        fn set(&self, id: &str, secret: &str) -> Result<(), String> {
            if self.broken.load(Ordering::Relaxed) {
                return Err("no Secret Service".into());
            }
            self.secrets
                .lock()
                .unwrap()
                .insert(id.into(), secret.into());
            Ok(())
        }
        fn delete(&self, id: &str) -> Result<(), String> {
            self.secrets.lock().unwrap().remove(id);
            Ok(())
        }
    }

    #[test]
    fn without_a_keyring_tokens_are_a_0600_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        let store = TokenStore::new(&dir, false);
        assert_eq!(store.get("n1", 0).unwrap(), None);
        store.set("n1", &session("secret-token", 100)).unwrap();
        let path = dir.join(FILE_NAME);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // A new store (the app restarted) reads it back.
        let again = TokenStore::new(&dir, false);
        assert_eq!(
            again.get("n1", 50).unwrap(),
            Some(session("secret-token", 100))
        );
        assert_eq!(again.get("n1", 100).unwrap(), None, "expired");
        again.forget("n1").unwrap();
        assert_eq!(TokenStore::new(&dir, false).get("n1", 0).unwrap(), None);
        assert!(!fs::read_to_string(&path).unwrap().contains("secret-token"));
    }

    #[test]
    fn the_keyring_is_used_when_it_works() {
        let tmp = tempfile::tempdir().unwrap();
        let keyring = Arc::new(FakeKeyring::default());
        let store = TokenStore::with_keyring(tmp.path(), Some(Box::new(Arc::clone(&keyring))));
        store.set("n1", &session("t1", 100)).unwrap();
        assert!(keyring.secrets.lock().unwrap()["n1"].contains("t1"));
        assert!(!tmp.path().join(FILE_NAME).exists(), "nothing in the file");
        let again = TokenStore::with_keyring(tmp.path(), Some(Box::new(Arc::clone(&keyring))));
        assert_eq!(again.get("n1", 0).unwrap(), Some(session("t1", 100)));
        again.forget("n1").unwrap();
        assert!(keyring.secrets.lock().unwrap().is_empty());
    }

    #[test]
    fn a_failing_keyring_falls_back_to_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let keyring = Arc::new(FakeKeyring::default());
        keyring.broken.store(true, Ordering::Relaxed);
        let store = TokenStore::with_keyring(tmp.path(), Some(Box::new(Arc::clone(&keyring))));
        assert_eq!(store.get("n1", 0).unwrap(), None);
        store.set("n1", &session("t1", 100)).unwrap();
        assert!(store.backend().ends_with(FILE_NAME), "{}", store.backend());
        let text = fs::read_to_string(tmp.path().join(FILE_NAME)).unwrap();
        assert!(text.contains("t1"));
        // Even once the keyring answers again, this run keeps to the file.
        keyring.broken.store(false, Ordering::Relaxed);
        store.set("n2", &session("t2", 100)).unwrap();
        assert!(keyring.secrets.lock().unwrap().is_empty());
    }

    #[test]
    fn a_token_moved_to_the_keyring_leaves_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        TokenStore::new(tmp.path(), false)
            .set("n1", &session("old", 100))
            .unwrap();
        let keyring = Arc::new(FakeKeyring::default());
        let store = TokenStore::with_keyring(tmp.path(), Some(Box::new(Arc::clone(&keyring))));
        assert_eq!(store.get("n1", 0).unwrap(), Some(session("old", 100)));
        store.set("n1", &session("new", 200)).unwrap();
        let text = fs::read_to_string(tmp.path().join(FILE_NAME)).unwrap();
        assert!(!text.contains("old"), "{text}");
    }
}
