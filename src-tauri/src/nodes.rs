//! The nodes as the app works with them: the list ([`Registry`]), their
//! session tokens ([`TokenStore`]) and one [`Client`] per node, pinned to
//! the fingerprint in the list. Every call to a node goes through here, so
//! that the same rules hold for all of them:
//!
//! - a node is added only if it presents the certificate the user
//!   confirmed; later, another certificate is a `fingerprint_mismatch`
//!   error (from the client, before anything is sent), never a re-pin;
//! - a call needs a stored session (`not_logged_in` otherwise, without
//!   touching the network); a session the node no longer accepts is
//!   forgotten, so the node shows as logged out;
//! - a successful call (or any answer of the node) counts as "seen", which
//!   the errors of unreachable nodes mention ("last seen 3 min ago");
//! - the overview asks every node at once, each with a short timeout, so
//!   one dead node among fifty does not slow the grid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use archipelago_api::ErrorCode;
use archipelago_api::methods::{Empty, Method, NodeInfo, Session};
use archipelago_api::rpc::{StreamEvent, format_fingerprint, parse_fingerprint};
use archipelago_client::{Address, Client, ClientError};
use tokio::task::JoinSet;

use crate::apps::AppCache;
use crate::error::{DesktopError, Kind};
use crate::registry::{NodeRecord, Registry};
use crate::settings::Settings;
use crate::tokens::TokenStore;
use crate::types::{NodeEntry, NodeOverview, ProbeResult};

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Everything the commands work on; shared by them as Tauri state.
#[derive(Debug)]
pub struct Nodes {
    pub(crate) settings: Settings,
    registry: Mutex<Registry>,
    tokens: Arc<TokenStore>,
    /// Node id → its client (connection pool, pinned fingerprint).
    clients: Mutex<HashMap<String, Client>>,
    /// Catalog icons and followed logs.
    pub(crate) apps: AppCache,
}

impl Nodes {
    pub fn new(settings: Settings) -> Self {
        let registry = Registry::new(&settings.config_dir);
        let tokens = TokenStore::new(&settings.config_dir, settings.use_keyring);
        Self {
            settings,
            registry: Mutex::new(registry),
            tokens: Arc::new(tokens),
            clients: Mutex::new(HashMap::new()),
            apps: AppCache::default(),
        }
    }

    /// Where session tokens go (for the log at start).
    pub fn token_backend(&self) -> String {
        self.tokens.backend()
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The nodes in the list, in the order they were added.
    pub async fn list(&self) -> Result<Vec<NodeEntry>, DesktopError> {
        let records = self.registry().list()?;
        let tokens = Arc::clone(&self.tokens);
        blocking(move || {
            let now = now();
            records
                .into_iter()
                .map(|r| {
                    let logged_in = tokens.get(&r.id, now)?.is_some();
                    Ok(entry(r, logged_in))
                })
                .collect()
        })
        .await
    }

    /// Reads the certificate fingerprint a node presents, trusting nothing:
    /// for the user to compare with the one the node shows.
    pub async fn probe(&self, address: &str) -> Result<ProbeResult, DesktopError> {
        let address =
            Address::parse(address).map_err(|e| DesktopError::new(Kind::InvalidAddress, e.0))?;
        let fingerprint = self.presented(&address).await?;
        Ok(ProbeResult {
            address: address.to_string(),
            fingerprint: format_fingerprint(&fingerprint),
        })
    }

    async fn presented(&self, address: &Address) -> Result<[u8; 32], DesktopError> {
        let timeout = self.settings.probe_timeout;
        tokio::time::timeout(
            timeout,
            archipelago_client::fetch_fingerprint(&address.to_string()),
        )
        .await
        .map_err(|_| {
            DesktopError::new(
                Kind::Timeout,
                format!(
                    "the node at {address} did not present a certificate within {} s",
                    timeout.as_secs()
                ),
            )
        })?
        .map_err(DesktopError::from_unpaired)
    }

    /// Adds a node, pinning `fingerprint` — which the node must present
    /// right now, or nothing is added.
    pub async fn add(
        &self,
        address: &str,
        fingerprint: &str,
        name: Option<&str>,
    ) -> Result<NodeEntry, DesktopError> {
        let address =
            Address::parse(address).map_err(|e| DesktopError::new(Kind::InvalidAddress, e.0))?;
        let expected = parse_fingerprint(fingerprint).ok_or_else(|| {
            DesktopError::new(
                Kind::InvalidFingerprint,
                format!(
                    "`{}` is not a certificate fingerprint (64 hex digits, in pairs separated by colons)",
                    fingerprint.trim()
                ),
            )
        })?;
        let presented = self.presented(&address).await?;
        if presented != expected {
            return Err(DesktopError::new(
                Kind::FingerprintMismatch,
                format!(
                    "the node at {address} presents certificate {}, not the {} you confirmed: someone may be intercepting, or the address is another node's; not added",
                    format_fingerprint(&presented),
                    format_fingerprint(&expected)
                ),
            ));
        }
        let record = self.registry().add(&address, expected, name, now())?;
        tracing::info!(node = %record.id, address = %record.address, "node added");
        Ok(entry(record, false))
    }

    /// Removes a node from the list and forgets its session.
    pub async fn remove(&self, id: &str) -> Result<(), DesktopError> {
        let record = self.registry().get(id)?;
        self.forget_session(&record.id).await?;
        self.apps.forget_node(&record.id);
        self.clients_lock().remove(&record.id);
        self.registry().remove(&record.id, now())?;
        tracing::info!(node = %record.id, "node removed");
        Ok(())
    }

    /// Logs in with the node's password (used once, never stored) and
    /// stores the session token.
    pub async fn login(&self, id: &str, password: &str) -> Result<NodeEntry, DesktopError> {
        let record = self.registry().get(id)?;
        let client = self.client(&record)?;
        let result = client.login(password).await;
        let session = self.outcome(&record, result).await?;
        let tokens = Arc::clone(&self.tokens);
        let node_id = record.id.clone();
        blocking(move || tokens.set(&node_id, &session)).await?;
        tracing::info!(node = %record.id, "logged in");
        Ok(entry(self.registry().get(id)?, true))
    }

    /// Ends the session on the node (if it answers quickly) and forgets it
    /// here in any case.
    pub async fn logout(&self, id: &str) -> Result<NodeEntry, DesktopError> {
        let record = self.registry().get(id)?;
        if let Some(session) = self.session(&record.id).await? {
            let client = self.client(&record)?;
            client.set_token(Some(session.token));
            let ended = tokio::time::timeout(self.settings.overview_timeout, client.logout()).await;
            if !matches!(ended, Ok(Ok(()))) {
                tracing::info!(node = %record.id, "the node did not confirm the logout; the token is forgotten here anyway");
            }
            client.set_token(None);
        }
        self.forget_session(&record.id).await?;
        Ok(entry(self.registry().get(id)?, false))
    }

    /// Every node's state, asked of all nodes at once.
    pub async fn overview_all(self: &Arc<Self>) -> Result<Vec<NodeOverview>, DesktopError> {
        let records = self.registry().list()?;
        let mut tasks = JoinSet::new();
        let mut index = HashMap::new();
        for (i, record) in records.iter().cloned().enumerate() {
            let me = Arc::clone(self);
            let handle = tasks.spawn(async move { (i, me.overview_of(record).await) });
            index.insert(handle.id(), i);
        }
        let mut results: Vec<Option<NodeOverview>> = vec![None; records.len()];
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, overview)) => results[i] = Some(overview),
                Err(e) => tracing::error!("a node's overview task failed: {e}"),
            }
        }
        if let Err(e) = self.registry().flush_seen(now()) {
            tracing::warn!("{e}");
        }
        Ok(records
            .into_iter()
            .zip(results)
            .map(|(record, overview)| {
                overview.unwrap_or_else(|| NodeOverview {
                    node: entry(record, false),
                    reachable: false,
                    info: None,
                    error: Some(DesktopError::new(
                        Kind::Protocol,
                        "the app failed while asking this node; see its log",
                    )),
                })
            })
            .collect())
    }

    /// One node's state.
    pub async fn overview(&self, id: &str) -> Result<NodeOverview, DesktopError> {
        let record = self.registry().get(id)?;
        Ok(self.overview_of(record).await)
    }

    async fn overview_of(&self, record: NodeRecord) -> NodeOverview {
        let down = |record: NodeRecord, logged_in: bool, error: DesktopError| NodeOverview {
            node: entry(record, logged_in),
            reachable: false,
            info: None,
            error: Some(error),
        };
        let session = match self.session(&record.id).await {
            Ok(session) => session,
            Err(e) => return down(record, false, e),
        };
        let client = match self.client(&record) {
            Ok(client) => client,
            Err(e) => return down(record, session.is_some(), e),
        };
        let logged_in = session.is_some();
        client.set_token(session.map(|s| s.token));
        let timeout = self.settings.overview_timeout;
        let answer = tokio::time::timeout(timeout, client.call::<NodeInfo>(Empty {})).await;
        let Ok(answer) = answer else {
            let error = DesktopError::timeout(timeout, record.last_seen, now());
            return down(record, logged_in, error);
        };
        match answer {
            Ok(info) => {
                self.registry().touch(&record.id, now());
                NodeOverview {
                    node: entry(self.current(record), logged_in),
                    reachable: true,
                    info: Some(info),
                    error: None,
                }
            }
            Err(e) => {
                let answered = matches!(e, ClientError::Api(_));
                let mut error = self.failure(&record, e).await;
                if answered && !logged_in {
                    error = DesktopError::new(
                        Kind::NotLoggedIn,
                        format!("log in to {} to see its state", record.name),
                    );
                }
                let logged_in = logged_in && !error.is_api(ErrorCode::Unauthenticated);
                NodeOverview {
                    node: entry(self.current(record), logged_in),
                    reachable: answered,
                    info: None,
                    error: Some(error),
                }
            }
        }
    }

    /// Calls a method on a node with its session.
    pub async fn call<M: Method>(
        &self,
        id: &str,
        params: M::Params,
    ) -> Result<M::Output, DesktopError> {
        let (record, client) = self.session_client(id).await?;
        let result = client.call::<M>(params).await;
        self.outcome(&record, result).await
    }

    /// Calls a streaming method on a node with its session; events go to
    /// `on_event` as they come.
    pub async fn call_streaming<M: Method>(
        &self,
        id: &str,
        params: M::Params,
        on_event: impl FnMut(StreamEvent) + Send,
    ) -> Result<M::Output, DesktopError> {
        let (record, client) = self.session_client(id).await?;
        let result = client.call_streaming::<M>(params, on_event).await;
        self.outcome(&record, result).await
    }

    /// Runs `work` with the node's client carrying the stored session, for
    /// the client's own operations of many calls (copying a backup piece by
    /// piece); its outcome counts like a call's.
    pub async fn with_client<T, Fut>(
        &self,
        id: &str,
        work: impl FnOnce(Client) -> Fut,
    ) -> Result<T, DesktopError>
    where
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let (record, client) = self.session_client(id).await?;
        let result = work(client).await;
        self.outcome(&record, result).await
    }

    /// The node's record as it is now (last seen updated).
    fn current(&self, record: NodeRecord) -> NodeRecord {
        self.registry().get(&record.id).unwrap_or(record)
    }

    pub(crate) fn record(&self, id: &str) -> Result<NodeRecord, DesktopError> {
        self.registry().get(id)
    }

    fn clients_lock(&self) -> MutexGuard<'_, HashMap<String, Client>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node's client, made on first use.
    fn client(&self, record: &NodeRecord) -> Result<Client, DesktopError> {
        let mut clients = self.clients_lock();
        if let Some(client) = clients.get(&record.id)
            && client.fingerprint() == record.fingerprint
            && client.address() == record.address
        {
            return Ok(client.clone());
        }
        let client = Client::new(&record.address, record.fingerprint)
            .map_err(|e| DesktopError::from_client(e, record.last_seen, now()))?;
        clients.insert(record.id.clone(), client.clone());
        Ok(client)
    }

    /// The node and its client carrying the stored session.
    async fn session_client(&self, id: &str) -> Result<(NodeRecord, Client), DesktopError> {
        let record = self.registry().get(id)?;
        let Some(session) = self.session(&record.id).await? else {
            return Err(DesktopError::new(
                Kind::NotLoggedIn,
                format!("log in to {} first", record.name),
            ));
        };
        let client = self.client(&record)?;
        client.set_token(Some(session.token));
        Ok((record, client))
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, DesktopError> {
        let tokens = Arc::clone(&self.tokens);
        let id = id.to_owned();
        blocking(move || tokens.get(&id, now())).await
    }

    async fn forget_session(&self, id: &str) -> Result<(), DesktopError> {
        if let Some(client) = self.clients_lock().get(id) {
            client.set_token(None);
        }
        let tokens = Arc::clone(&self.tokens);
        let id = id.to_owned();
        blocking(move || tokens.forget(&id)).await
    }

    /// Notes a success, or turns a failure into the frontend's error.
    async fn outcome<T>(
        &self,
        record: &NodeRecord,
        result: Result<T, ClientError>,
    ) -> Result<T, DesktopError> {
        match result {
            Ok(value) => {
                self.registry().touch(&record.id, now());
                Ok(value)
            }
            Err(e) => Err(self.failure(record, e).await),
        }
    }

    /// A failed call: an answer still counts as seen; a session the node
    /// refuses is forgotten.
    async fn failure(&self, record: &NodeRecord, err: ClientError) -> DesktopError {
        let last_seen = self.current(record.clone()).last_seen;
        if matches!(err, ClientError::Api(_)) {
            self.registry().touch(&record.id, now());
        }
        let error = DesktopError::from_client(err, last_seen, now());
        if error.is_api(ErrorCode::Unauthenticated) {
            if let Err(e) = self.forget_session(&record.id).await {
                tracing::warn!("{e}");
            }
            return DesktopError::api(
                ErrorCode::Unauthenticated,
                format!(
                    "the session with {} ended ({}): log in again",
                    record.name, error.message
                ),
            );
        }
        error
    }
}

/// The frontend's view of a record.
fn entry(record: NodeRecord, logged_in: bool) -> NodeEntry {
    NodeEntry {
        fingerprint: format_fingerprint(&record.fingerprint),
        id: record.id,
        name: record.name,
        address: record.address,
        logged_in,
        last_seen: record.last_seen,
    }
}

/// Runs `f` (token store work, which may wait on D-Bus) off the async
/// threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DesktopError> + Send + 'static,
) -> Result<T, DesktopError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DesktopError::storage(format!("the token store failed: {e}")))?
}
