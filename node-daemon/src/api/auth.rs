//! Who may call the node: one password per node, exchanged at login for a
//! session token, with failed logins slowed down per client.
//!
//! - **Password**: a bcrypt hash in `config_dir/password.bcrypt` (0600),
//!   set by the operator on the node (`archipelagod init`). Logins read the
//!   file each time, so a new password takes effect at once; setting one
//!   empties the sessions file, which logs every client out, a running
//!   daemon included.
//! - **Sessions** (`sessions`): a token is 32 random bytes in
//!   hex, given to the client once; only its SHA-256 is kept, with its
//!   expiry (7 days by default), in `config_dir/sessions.json`, so a restart
//!   logs nobody out and a copy of the file logs nobody in.
//! - **Slowdown** (`throttle`): 1, 2, 4 … 60 s of wait after
//!   failed logins per client; and at most [`MAX_CONCURRENT_VERIFICATIONS`]
//!   bcrypt checks at once node-wide, run off the async threads.
//!
//! Nothing here logs or prints a password or a token; the `Debug` impls show
//! counts only.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use archipelago_api::methods::Session;
use archipelago_api::{ApiError, ErrorCode};

use super::sessions::{self, SessionStore, token_hash};
use super::throttle::LoginThrottle;
use crate::fsutil::{self, FsError};
use crate::layout::Layout;

/// bcrypt cost of new password hashes in production.
pub const DEFAULT_BCRYPT_COST: u32 = 12;
/// The lowest cost bcrypt accepts; for tests.
pub const MIN_BCRYPT_COST: u32 = 4;
/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// bcrypt reads at most this many bytes of a password; a longer one would be
/// silently cut, so it is refused instead.
pub const MAX_PASSWORD_BYTES: usize = 72;
/// How long a session lasts unless configured otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// bcrypt checks running at once, node-wide: logins from many addresses
/// queue here instead of taking every core.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 2;
/// File of the password hash, in `config_dir`.
pub const PASSWORD_FILE: &str = "password.bcrypt";
/// File of the sessions, in `config_dir`.
pub const SESSIONS_FILE: &str = "sessions.json";

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;
/// A bcrypt hash is 60 bytes; anything much longer is not one.
const MAX_HASH_FILE_LEN: u64 = 1024;
/// Readable without ambiguity: no `0`/`o`, `1`/`l`/`i`. 32 symbols, so one
/// random byte masked to 5 bits picks one without bias.
const PASSWORD_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789_";

/// Why the password could not be set or the auth files not read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error(
        "the password is too long: bcrypt uses only its first {MAX_PASSWORD_BYTES} bytes, so use at most that many"
    )]
    TooLong,
    #[error("cannot hash the password: {0}")]
    Hash(#[source] bcrypt::BcryptError),
    #[error("no randomness from the operating system: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Where time comes from, so tests can move it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Wall-clock time: session expiry, which must survive restarts.
    fn now(&self) -> SystemTime;
    /// Monotonic time: login slowdown, immune to clock changes.
    fn monotonic(&self) -> Instant;
}

/// The operating system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told; for tests.
#[derive(Debug)]
pub struct ManualClock {
    wall: SystemTime,
    start: Instant,
    offset: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// Starts at the real time now.
    pub fn new() -> Self {
        Self {
            wall: SystemTime::now(),
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.wall + self.offset()
    }
    fn monotonic(&self) -> Instant {
        self.start + self.offset()
    }
}

/// How an [`Auth`] works; [`Default`] is production.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Cost of hashes made by [`Auth::set_password`] (checking uses the
    /// cost stored in the hash).
    pub bcrypt_cost: u32,
    pub session_ttl: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            bcrypt_cost: DEFAULT_BCRYPT_COST,
            session_ttl: DEFAULT_SESSION_TTL,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The password file of a node.
pub fn password_file(layout: &Layout) -> PathBuf {
    layout.config_dir.join(PASSWORD_FILE)
}

/// The sessions file of a node.
pub fn sessions_file(layout: &Layout) -> PathBuf {
    layout.config_dir.join(SESSIONS_FILE)
}

/// Whether the node has a password.
pub fn password_is_set(layout: &Layout) -> Result<bool, AuthError> {
    Ok(read_hash(&password_file(layout))?.is_some())
}

/// Sets the node's password (production cost) and logs every client out.
pub fn set_password(layout: &Layout, password: &str) -> Result<(), AuthError> {
    set_password_with_cost(layout, password, DEFAULT_BCRYPT_COST)
}

/// [`set_password`] with a chosen bcrypt cost.
pub fn set_password_with_cost(layout: &Layout, password: &str, cost: u32) -> Result<(), AuthError> {
    let sessions = sessions_file(layout);
    write_password(&layout.config_dir, password, cost, || {
        sessions::clear_file(&sessions)
    })
}

/// Hashes and writes the password, calling `clear_sessions` before and
/// after: a crash in between leaves the old password with no sessions, and
/// a login that slipped in with the old password does not outlive the
/// change.
fn write_password(
    config_dir: &Path,
    password: &str,
    cost: u32,
    clear_sessions: impl Fn() -> Result<(), FsError>,
) -> Result<(), AuthError> {
    check_password_rules(password)?;
    let hash = bcrypt::hash(password, cost).map_err(AuthError::Hash)?;
    fsutil::ensure_dir(config_dir, DIR_MODE)?;
    clear_sessions()?;
    fsutil::atomic_write(
        &config_dir.join(PASSWORD_FILE),
        format!("{hash}\n").as_bytes(),
        FILE_MODE,
    )?;
    clear_sessions()?;
    Ok(())
}

/// Refuses passwords that are too short or longer than bcrypt reads.
pub fn check_password_rules(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::TooLong);
    }
    Ok(())
}

/// A new random password: 24 symbols (120 bits) from a readable alphabet,
/// in groups of four (`k7mq-…`), 29 characters in all.
pub fn generate_password() -> Result<String, AuthError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(AuthError::Random)?;
    let mut out = String::with_capacity(29);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(PASSWORD_ALPHABET[usize::from(b & 31)]));
    }
    Ok(out)
}

/// Logins, sessions and the login slowdown of one node.
pub struct Auth {
    config_dir: PathBuf,
    password_file: PathBuf,
    settings: AuthSettings,
    sessions: SessionStore,
    throttle: LoginThrottle,
    verify_slots: tokio::sync::Semaphore,
}

/// Counts only: no token, hash or password.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("password_file", &self.password_file)
            .field("bcrypt_cost", &self.settings.bcrypt_cost)
            .field("session_ttl", &self.settings.session_ttl)
            .field("sessions", &self.session_count())
            .field("throttled_clients", &self.throttle.len())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// The node's auth with production settings.
    pub fn open(layout: &Layout) -> Result<Self, AuthError> {
        Self::with_settings(layout, AuthSettings::default())
    }

    /// The node's auth with chosen settings (tests: a low bcrypt cost, a
    /// manual clock).
    pub fn with_settings(layout: &Layout, settings: AuthSettings) -> Result<Self, AuthError> {
        let now = unix_secs(settings.clock.now());
        Ok(Self {
            config_dir: layout.config_dir.clone(),
            password_file: password_file(layout),
            sessions: SessionStore::open(sessions_file(layout), now)?,
            settings,
            throttle: LoginThrottle::default(),
            verify_slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_VERIFICATIONS),
        })
    }

    /// Sets a new password with this auth's bcrypt cost; every session ends.
    pub fn set_password(&self, password: &str) -> Result<(), AuthError> {
        write_password(
            &self.config_dir,
            password,
            self.settings.bcrypt_cost,
            || self.sessions.clear(),
        )
    }

    /// Exchanges the password for a new session. `peer` is the client's
    /// address, for the slowdown.
    pub async fn login(&self, password: &str, peer: IpAddr) -> Result<Session, ApiError> {
        let attempt = self.throttle.begin(peer, self.settings.clock.monotonic())?;
        let Some(hash) = read_hash(&self.password_file).map_err(|e| {
            tracing::error!(error = %e, "cannot read the password file");
            ErrorCode::Io.with("the node cannot read its password file; its log says more")
        })?
        else {
            return Err(ErrorCode::LoginFailed
                .with("this node has no password yet: run `archipelagod init` on the node"));
        };
        let verified = {
            let _slot = self
                .verify_slots
                .acquire()
                .await
                .map_err(|_| ErrorCode::Internal.with("the node is shutting down"))?;
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
                .await
                .map_err(|_| ErrorCode::Internal.with("checking the password failed"))?
        };
        match verified {
            Ok(true) => {
                attempt.succeeded();
                let session = self.new_session()?;
                tracing::info!(%peer, "login");
                Ok(session)
            }
            Ok(false) => {
                let failures = attempt.failed(self.settings.clock.monotonic());
                tracing::info!(%peer, failures, "failed login");
                Err(ErrorCode::LoginFailed.with("wrong password"))
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    path = %self.password_file.display(),
                    "the password hash is damaged"
                );
                Err(ErrorCode::Internal.with(
                    "the node's password file is damaged: set a new password on the node with \
                     `archipelagod init --reset`",
                ))
            }
        }
    }

    /// Whether `token` (from `Authorization: Bearer`, `None` when the
    /// request had none) belongs to a live session.
    pub fn check(&self, token: Option<&str>) -> Result<(), ApiError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(unauthenticated("the request carries no session token"));
        };
        let now = unix_secs(self.settings.clock.now());
        match self.sessions.expiry(&token_hash(token), now) {
            Some(at) if at > now => Ok(()),
            Some(_) => Err(unauthenticated("the session expired")),
            None => Err(unauthenticated(
                "the session token is unknown or was logged out",
            )),
        }
    }

    /// Ends the session of `token`; unknown tokens are ignored.
    pub fn logout(&self, token: &str) -> Result<(), ApiError> {
        let now = unix_secs(self.settings.clock.now());
        self.sessions
            .remove(&token_hash(token), now)
            .map_err(save_error)
    }

    /// Live sessions (for tests and status output).
    pub fn session_count(&self) -> usize {
        self.sessions.live(unix_secs(self.settings.clock.now()))
    }

    fn new_session(&self) -> Result<Session, ApiError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            tracing::error!(error = %e, "no randomness for a session token");
            ErrorCode::Internal.with("the node could not make a session token")
        })?;
        let token = hex::encode(bytes);
        let now = unix_secs(self.settings.clock.now());
        let expires_at = now.saturating_add(self.settings.session_ttl.as_secs());
        self.sessions
            .add(token_hash(&token), expires_at, now)
            .map_err(save_error)?;
        Ok(Session { token, expires_at })
    }
}

fn unauthenticated(why: &str) -> ApiError {
    ErrorCode::Unauthenticated.with(format!(
        "no valid session ({why}): log in with `archy login`"
    ))
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(save_error)`
fn save_error(e: FsError) -> ApiError {
    tracing::error!(error = %e, "cannot save the sessions");
    ErrorCode::Io.with("the node cannot save its sessions; its log says more")
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The stored hash, `None` when no password is set (no file, or empty).
fn read_hash(path: &Path) -> Result<Option<String>, FsError> {
    let Some(bytes) = sessions::read_limited(path, MAX_HASH_FILE_LEN)? else {
        return Ok(None);
    };
    let hash = String::from_utf8_lossy(&bytes).trim().to_owned();
    Ok((!hash.is_empty()).then_some(hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::os::unix::fs::PermissionsExt;

    const PASSWORD: &str = "correct horse battery";

    struct Fixture {
        _dir: tempfile::TempDir,
        layout: Layout,
        clock: Arc<ManualClock>,
        auth: Auth,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(dir.path());
        set_password_with_cost(&layout, PASSWORD, MIN_BCRYPT_COST).unwrap();
        let clock = Arc::new(ManualClock::new());
        let auth = open(&layout, &clock);
        Fixture {
            _dir: dir,
            layout,
            clock,
            auth,
        }
    }

    fn open(layout: &Layout, clock: &Arc<ManualClock>) -> Auth {
        Auth::with_settings(
            layout,
            AuthSettings {
                bcrypt_cost: MIN_BCRYPT_COST,
                session_ttl: Duration::from_secs(3600),
                clock: clock.clone(),
            },
        )
        .unwrap()
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_password_file_is_private_and_holds_a_bcrypt_hash() {
        let f = fixture();
        let file = password_file(&f.layout);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&f.layout.config_dir), 0o700);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("$2"), "{text}");
        assert!(!text.contains(PASSWORD));
        assert!(password_is_set(&f.layout).unwrap());
    }

    #[test]
    fn short_and_overlong_passwords_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(dir.path());
        let e = set_password_with_cost(&layout, "short", MIN_BCRYPT_COST).unwrap_err();
        assert!(e.to_string().contains("at least 8 characters"), "{e}");
        let e = set_password_with_cost(&layout, &"x".repeat(73), MIN_BCRYPT_COST).unwrap_err();
        assert!(e.to_string().contains("72 bytes"), "{e}");
        // Characters, not bytes, count for the minimum.
        assert!(check_password_rules("ééééééé").is_err());
        assert!(check_password_rules("éééééééé").is_ok());
        assert!(!password_is_set(&layout).unwrap());
    }

    #[test]
    fn generated_passwords_are_long_readable_and_different() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 29);
        assert!(a.chars().filter(|c| *c != '-').count() >= 20);
        assert!(
            a.chars()
                .all(|c| c == '-' || PASSWORD_ALPHABET.contains(&(c as u8)))
        );
        assert!(check_password_rules(&a).is_ok());
    }

    #[tokio::test]
    async fn a_login_gives_a_session_that_logout_ends() {
        let f = fixture();
        let s = f.auth.login(PASSWORD, ip(1)).await.unwrap();
        assert_eq!(s.token.len(), 64);
        f.auth.check(Some(&s.token)).unwrap();
        f.auth.logout(&s.token).unwrap();
        let e = f.auth.check(Some(&s.token)).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthenticated);
        assert!(e.message.contains("archy login"), "{}", e.message);
        assert_eq!(
            f.auth.check(None).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            f.auth.check(Some("")).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            f.auth.check(Some("nonsense")).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
    }

    #[tokio::test]
    async fn sessions_expire_after_their_ttl() {
        let f = fixture();
        let s = f.auth.login(PASSWORD, ip(1)).await.unwrap();
        let now = unix_secs(f.clock.now());
        assert_eq!(s.expires_at, now + 3600);
        f.clock.advance(Duration::from_secs(3599));
        f.auth.check(Some(&s.token)).unwrap();
        f.clock.advance(Duration::from_secs(1));
        let e = f.auth.check(Some(&s.token)).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthenticated);
        assert!(e.message.contains("expired"), "{}", e.message);
        // Expired sessions are dropped when the file is next written.
        let _ = f.auth.login(PASSWORD, ip(1)).await.unwrap();
        assert_eq!(f.auth.session_count(), 1);
    }

    #[tokio::test]
    async fn sessions_survive_a_restart_and_the_file_holds_no_token() {
        let f = fixture();
        let s = f.auth.login(PASSWORD, ip(1)).await.unwrap();
        let file = sessions_file(&f.layout);
        assert_eq!(mode(&file), 0o600);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&s.token));
        assert!(text.contains(&hex::encode(token_hash(&s.token))));
        let restarted = open(&f.layout, &f.clock);
        restarted.check(Some(&s.token)).unwrap();
    }

    #[tokio::test]
    async fn a_new_password_logs_everyone_out_also_in_a_running_daemon() {
        let f = fixture();
        let s = f.auth.login(PASSWORD, ip(1)).await.unwrap();
        // As `archipelagod init --reset` does, from another process.
        set_password_with_cost(&f.layout, "another password", MIN_BCRYPT_COST).unwrap();
        assert_eq!(
            f.auth.check(Some(&s.token)).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
        let e = f.auth.login(PASSWORD, ip(2)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::LoginFailed);
        let s = f.auth.login("another password", ip(3)).await.unwrap();
        f.auth.set_password("a third password").unwrap();
        assert_eq!(
            f.auth.check(Some(&s.token)).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
    }

    #[tokio::test]
    async fn a_damaged_sessions_file_logs_everyone_out_without_failing() {
        let f = fixture();
        let s = f.auth.login(PASSWORD, ip(1)).await.unwrap();
        std::fs::write(sessions_file(&f.layout), "{ not json").unwrap();
        assert!(f.auth.check(Some(&s.token)).is_err());
        let restarted = open(&f.layout, &f.clock);
        assert_eq!(restarted.session_count(), 0);
        restarted.login(PASSWORD, ip(1)).await.unwrap();
    }

    #[tokio::test]
    async fn no_password_yet_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(dir.path());
        let auth = open(&layout, &Arc::new(ManualClock::new()));
        let e = auth.login(PASSWORD, ip(1)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::LoginFailed);
        assert!(e.message.contains("archipelagod init"), "{}", e.message);
    }

    #[tokio::test]
    async fn failed_logins_double_the_wait_up_to_a_minute() {
        let f = fixture();
        let waits = |e: ApiError| {
            assert_eq!(e.code, ErrorCode::TooManyAttempts, "{e}");
            e.message
        };
        // First failure: the next attempt must wait 1 s.
        assert_eq!(
            f.auth.login("wrong!!!", ip(1)).await.unwrap_err().code,
            ErrorCode::LoginFailed
        );
        let m = waits(f.auth.login(PASSWORD, ip(1)).await.unwrap_err());
        assert!(m.contains("try again in 1 s"), "{m}");
        // Another client is not slowed down.
        f.auth.login(PASSWORD, ip(2)).await.unwrap();
        f.clock.advance(Duration::from_millis(999));
        assert!(
            f.auth
                .login("wrong!!!", ip(1))
                .await
                .is_err_and(|e| e.code == ErrorCode::TooManyAttempts)
        );
        f.clock.advance(Duration::from_millis(1));
        // Second failure: 2 s.
        assert_eq!(
            f.auth.login("wrong!!!", ip(1)).await.unwrap_err().code,
            ErrorCode::LoginFailed
        );
        let m = waits(f.auth.login(PASSWORD, ip(1)).await.unwrap_err());
        assert!(m.contains("try again in 2 s"), "{m}");
        f.clock.advance(Duration::from_secs(2));
        // Failures 3..=8: 4, 8, 16, 32, 60 (capped), 60.
        for expected in [4, 8, 16, 32, 60, 60] {
            assert_eq!(
                f.auth.login("wrong!!!", ip(1)).await.unwrap_err().code,
                ErrorCode::LoginFailed
            );
            let m = waits(f.auth.login(PASSWORD, ip(1)).await.unwrap_err());
            assert!(m.contains(&format!("try again in {expected} s")), "{m}");
            f.clock.advance(Duration::from_secs(expected - 1));
            waits(f.auth.login(PASSWORD, ip(1)).await.unwrap_err());
            f.clock.advance(Duration::from_secs(1));
        }
        // A success resets the count.
        f.auth.login(PASSWORD, ip(1)).await.unwrap();
        assert_eq!(
            f.auth.login("wrong!!!", ip(1)).await.unwrap_err().code,
            ErrorCode::LoginFailed
        );
        let m = waits(f.auth.login(PASSWORD, ip(1)).await.unwrap_err());
        assert!(m.contains("try again in 1 s"), "{m}");
    }

    #[tokio::test]
    async fn an_ipv6_client_is_throttled_by_its_slash_64() {
        let f = fixture();
        let a: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::99".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::10".parse().unwrap();
        assert!(f.auth.login("wrong!!!", a).await.is_err());
        let e = f.auth.login(PASSWORD, b).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::TooManyAttempts);
        f.auth.login(PASSWORD, other).await.unwrap();
    }

    #[tokio::test]
    async fn debug_output_shows_no_token_hash_or_password() {
        let f = fixture();
        let s = f.auth.login(PASSWORD, ip(1)).await.unwrap();
        let text = format!("{:?} {s:?}", f.auth);
        assert!(!text.contains(&s.token), "{text}");
        assert!(!text.contains(&hex::encode(token_hash(&s.token))), "{text}");
        assert!(!text.contains(PASSWORD));
        assert!(text.contains("sessions: 1"), "{text}");
    }
}
