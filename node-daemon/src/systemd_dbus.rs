//! The real [`SystemdManager`]: the service user's systemd manager over
//! D-Bus (zbus), on the user's session bus (`/run/user/<uid>/bus`).
//!
//! It exists so that the daemon never runs `systemctl`: a process per call
//! costs milliseconds and parses text meant for people, while one bus
//! connection gives typed answers, job completion as a signal (`JobRemoved`)
//! and unit state changes as signals (`PropertiesChanged`), so that a dying
//! container can trigger a reconcile without polling.
//!
//! Limits:
//! - start/stop/restart wait for *their* job only: the units it pulled in
//!   (`Requires=`) have jobs of their own, whose failures surface as a
//!   `dependency` result of ours.
//! - A job that outlives its timeout is left to systemd (it is not
//!   cancelled): the caller gets [`SystemdError::Timeout`] and the next
//!   reconcile pass sees where the unit got to.
//! - Only `org.freedesktop.systemd1.NoSuchUnit` becomes
//!   [`SystemdError::NoSuchUnit`]; systemd's other refusals (masked unit,
//!   bad setting, …) are [`SystemdError::Bus`] with the D-Bus error name
//!   and systemd's message.

use crate::systemd::{MainExit, SystemdError, SystemdManager};
use archipelago_api::{ActiveState, UnitState};
use futures_lite::StreamExt as _;
use std::collections::HashMap;
use std::time::Duration;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};
use zbus::{Connection, DBusError as _, MatchRule, MessageStream};

/// How long a start or restart may take by default: long enough for an
/// image pull on a slow line followed by a health-gated start.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How long a stop may take by default (podman's own stop timeout is 10 s
/// before SIGKILL; this leaves room for `ExecStopPost` clean-up).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// systemd's D-Bus error for a unit that is not loaded.
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
/// The object path below which systemd puts its unit objects.
const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit";
const SYSTEMD_SERVICE: &str = "org.freedesktop.systemd1";
const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
/// Unit names a [`DbusSystemd::unit_changes`] reader may lag behind by
/// before further names are dropped (see there).
const CHANGES_CAPACITY: usize = 256;

/// One row of `ListUnitsByNames`, `(ssssssouso)`: name, description, load
/// state, active state, sub state, followed unit, unit path, job id, job
/// type, job path.
pub type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_blocking = false
)]
trait Manager {
    /// Asks the manager to send unit and job signals to this connection
    /// (it sends none while nobody subscribed).
    fn subscribe(&self) -> zbus::Result<()>;
    /// Replies once the reload has finished.
    fn reload(&self) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn list_units_by_names(&self, names: &[String]) -> zbus::Result<Vec<UnitRow>>;
    /// The unit's object, loading it if needed (a unit without a file comes
    /// back with load state `not-found`).
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_blocking = false
)]
trait Unit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1",
    gen_blocking = false
)]
trait Service {
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn exec_main_exit_timestamp(&self) -> zbus::Result<u64>;
}

/// What [`DbusSystemd::unit_details`] reports about one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitDetails {
    pub name: String,
    /// `loaded`, `not-found`, `bad-setting`, …
    pub load_state: String,
    pub active_state: ActiveState,
    /// `running`, `dead`, `failed`, `auto-restart`, …
    pub sub_state: String,
    /// The service's `Result` (`success`, `exit-code`, `signal`, `timeout`,
    /// …); `None` for units that are not services.
    pub result: Option<String>,
    /// How often systemd restarted the service (`Restart=`) since it was
    /// last started by hand; `None` for units that are not services.
    pub n_restarts: Option<u32>,
}

/// The verbs that queue a job and wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Start,
    Stop,
    Restart,
}

impl Verb {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

/// The user's systemd manager over one D-Bus connection. Cheap to clone
/// (clones share the connection and its subscription).
#[derive(Debug, Clone)]
pub struct DbusSystemd {
    conn: Connection,
    manager: ManagerProxy<'static>,
    /// How long [`SystemdManager::start_unit`] and
    /// [`SystemdManager::restart_unit`] wait for their job.
    pub start_timeout: Duration,
    /// How long [`SystemdManager::stop_unit`] waits for its job.
    pub stop_timeout: Duration,
}

impl DbusSystemd {
    /// Connects to this user's manager on the session bus: the address in
    /// `DBUS_SESSION_BUS_ADDRESS`, else `unix:path=/run/user/<euid>/bus`.
    pub async fn connect_user_bus() -> Result<Self, SystemdError> {
        let address = user_bus_address(
            std::env::var("DBUS_SESSION_BUS_ADDRESS").ok().as_deref(),
            rustix::process::geteuid().as_raw(),
        );
        Self::connect(&address).await
    }

    /// Connects to the manager on the bus at `address` and subscribes to
    /// its signals.
    pub async fn connect(address: &str) -> Result<Self, SystemdError> {
        let conn = zbus::connection::Builder::address(address)
            .map_err(|e| SystemdError::Bus(format!("bus address `{address}`: {e}")))?
            .build()
            .await
            .map_err(|e| {
                SystemdError::Bus(format!(
                    "cannot connect to the user bus at `{address}` (is the user's manager running, with lingering on?): {e}"
                ))
            })?;
        let manager = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| bus_error("", &e))?;
        manager.subscribe().await.map_err(|e| bus_error("", &e))?;
        Ok(Self {
            conn,
            manager,
            start_timeout: DEFAULT_START_TIMEOUT,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
        })
    }

    /// Queues `verb` for `unit` (mode `replace`) and waits for the job's
    /// `JobRemoved`.
    ///
    /// The signal stream is opened (its match rule added) before the call,
    /// and drained while the call is in flight: a job that finishes before
    /// its reply has been read is still seen, and a busy manager cannot
    /// fill the connection's queue while we wait for the reply.
    async fn run_job(&self, verb: Verb, unit: &str) -> Result<(), SystemdError> {
        let limit = match verb {
            Verb::Start | Verb::Restart => self.start_timeout,
            Verb::Stop => self.stop_timeout,
        };
        let wait = async {
            let mut removed = self
                .manager
                .receive_job_removed()
                .await
                .map_err(|e| bus_error(unit, &e))?;
            let call = async {
                match verb {
                    Verb::Start => self.manager.start_unit(unit, "replace").await,
                    Verb::Stop => self.manager.stop_unit(unit, "replace").await,
                    Verb::Restart => self.manager.restart_unit(unit, "replace").await,
                }
            };
            let mut call = std::pin::pin!(call);
            // Jobs that ended while the call was in flight: job path → result.
            let mut early: HashMap<String, String> = HashMap::new();
            let job = loop {
                tokio::select! {
                    reply = &mut call => break reply.map_err(|e| bus_error(unit, &e))?,
                    signal = removed.next() => {
                        let Some(signal) = signal else { return Err(connection_lost(verb, unit)) };
                        if let Ok(args) = signal.args() {
                            early.insert(args.job.to_string(), args.result.to_owned());
                        }
                    }
                }
            };
            if let Some(result) = early.remove(job.as_str()) {
                return job_outcome(verb, unit, &result);
            }
            while let Some(signal) = removed.next().await {
                let Ok(args) = signal.args() else { continue };
                if args.job.as_str() == job.as_str() {
                    return job_outcome(verb, unit, args.result);
                }
            }
            Err(connection_lost(verb, unit))
        };
        tokio::time::timeout(limit, wait).await.unwrap_or_else(|_| {
            Err(SystemdError::Timeout {
                verb: verb.as_str(),
                unit: unit.to_owned(),
                secs: limit.as_secs(),
            })
        })
    }

    /// The `Service` interface of the unit at `path`, read fresh each time.
    async fn service_proxy(&self, path: OwnedObjectPath) -> zbus::Result<ServiceProxy<'_>> {
        ServiceProxy::builder(&self.conn)
            .path(path)?
            .cache_properties(CacheProperties::No)
            .build()
            .await
    }

    /// `ActiveState`, `SubState` and, for services, `Result` and
    /// `NRestarts` of `unit`. A unit without a file that is not running is
    /// [`SystemdError::NoSuchUnit`].
    pub async fn unit_details(&self, unit: &str) -> Result<UnitDetails, SystemdError> {
        let err = |e: zbus::Error| bus_error(unit, &e);
        let path = self.manager.load_unit(unit).await.map_err(err)?;
        let proxy = UnitProxy::builder(&self.conn)
            .path(path.clone())
            .map_err(err)?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(err)?;
        let load_state = proxy.load_state().await.map_err(err)?;
        let active_state = ActiveState::from_systemd(&proxy.active_state().await.map_err(err)?);
        if load_state == "not-found" && active_state == ActiveState::Inactive {
            return Err(SystemdError::NoSuchUnit(unit.to_owned()));
        }
        let sub_state = proxy.sub_state().await.map_err(err)?;
        let (result, n_restarts) = if unit.ends_with(".service") {
            let service = self.service_proxy(path).await.map_err(err)?;
            (
                Some(service.result().await.map_err(err)?),
                Some(service.n_restarts().await.map_err(err)?),
            )
        } else {
            (None, None)
        };
        Ok(UnitDetails {
            name: unit.to_owned(),
            load_state,
            active_state,
            sub_state,
            result,
            n_restarts,
        })
    }

    /// Names of units whose `ActiveState` changed, as systemd announces
    /// them (`PropertiesChanged` on the unit objects): what lets a dying
    /// container trigger a reconcile without polling. Changes from the
    /// moment this returns are seen; the first signal of a unit counts as
    /// a change. Needs a tokio runtime (a task drains the signals).
    ///
    /// The receiver ends when the connection does. Should it lag more than
    /// a few hundred names behind, further names are dropped until it
    /// catches up: a reader that reconciles everything on any name (the
    /// level-triggered reconciler) loses nothing by that, and a reader that
    /// never reads cannot stall the connection.
    pub async fn unit_changes(&self) -> Result<tokio::sync::mpsc::Receiver<String>, SystemdError> {
        let err = |e: zbus::Error| bus_error("", &e);
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(SYSTEMD_SERVICE)
            .map_err(err)?
            .interface("org.freedesktop.DBus.Properties")
            .map_err(err)?
            .member("PropertiesChanged")
            .map_err(err)?
            .path_namespace(UNIT_PATH_PREFIX)
            .map_err(err)?
            .arg(0, UNIT_INTERFACE)
            .map_err(err)?
            .build();
        let mut stream = MessageStream::for_match_rule(rule, &self.conn, None)
            .await
            .map_err(err)?;
        let (tx, rx) = tokio::sync::mpsc::channel(CHANGES_CAPACITY);
        tokio::spawn(async move {
            // Last ActiveState seen per unit: systemd sends every
            // emits-change property each time, changed or not.
            let mut last: HashMap<String, String> = HashMap::new();
            loop {
                let msg = tokio::select! {
                    msg = stream.next() => msg,
                    () = tx.closed() => break,
                };
                let Some(msg) = msg else { break };
                let Ok(msg) = msg else { continue };
                let Some(name) = active_state_change(&msg, &mut last) else {
                    continue;
                };
                if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(name) {
                    break;
                }
            }
        });
        Ok(rx)
    }
}

/// The unit name of a `PropertiesChanged` message from a unit object when
/// its `ActiveState` differs from the last one seen (kept in `last`).
fn active_state_change(msg: &zbus::Message, last: &mut HashMap<String, String>) -> Option<String> {
    let header = msg.header();
    let name = unit_name_from_path(header.path()?.as_str())?;
    let (interface, changed, _invalidated): (String, HashMap<String, OwnedValue>, Vec<String>) =
        msg.body().deserialize().ok()?;
    if interface != UNIT_INTERFACE {
        return None;
    }
    let state = String::try_from(changed.get("ActiveState")?.try_clone().ok()?).ok()?;
    if last.get(&name) == Some(&state) {
        return None;
    }
    last.insert(name.clone(), state);
    Some(name)
}

/// The user bus address: `DBUS_SESSION_BUS_ADDRESS` when set, else the
/// standard per-user socket of `euid`.
pub fn user_bus_address(session_env: Option<&str>, euid: u32) -> String {
    match session_env {
        Some(a) if !a.trim().is_empty() => a.to_owned(),
        _ => format!("unix:path=/run/user/{euid}/bus"),
    }
}

/// The unit name of a systemd unit object path
/// (`/org/freedesktop/systemd1/unit/hello_2eservice` → `hello.service`):
/// systemd writes every byte that is not an ASCII letter or digit as `_xx`.
pub fn unit_name_from_path(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PATH_PREFIX)?.strip_prefix('/')?;
    if label.is_empty() || label.contains('/') {
        return None;
    }
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The [`UnitState`] of one `ListUnitsByNames` row, under the name it was
/// asked for (systemd answers an alias with the unit's own name).
pub fn unit_state_from_row(asked: &str, row: &UnitRow) -> UnitState {
    UnitState {
        name: asked.to_owned(),
        load_state: row.2.clone(),
        active_state: ActiveState::from_systemd(&row.3),
        sub_state: row.4.clone(),
    }
}

/// A D-Bus error reply (its error name and message) about `unit`.
pub fn error_from_reply(unit: &str, error_name: &str, message: Option<&str>) -> SystemdError {
    if error_name == NO_SUCH_UNIT {
        return SystemdError::NoSuchUnit(unit.to_owned());
    }
    SystemdError::Bus(match message {
        Some(m) if !m.is_empty() => format!("{error_name}: {m}"),
        _ => error_name.to_owned(),
    })
}

/// Any zbus error about `unit`.
fn bus_error(unit: &str, e: &zbus::Error) -> SystemdError {
    match e {
        zbus::Error::MethodError(name, message, _) => {
            error_from_reply(unit, name.as_str(), message.as_deref())
        }
        zbus::Error::FDO(fdo) => error_from_reply(unit, fdo.name().as_str(), fdo.description()),
        other => SystemdError::Bus(other.to_string()),
    }
}

/// The end of a job: only `done` is success.
fn job_outcome(verb: Verb, unit: &str, result: &str) -> Result<(), SystemdError> {
    if result == "done" {
        Ok(())
    } else {
        Err(SystemdError::JobFailed {
            verb: verb.as_str(),
            unit: unit.to_owned(),
            result: result.to_owned(),
        })
    }
}

fn connection_lost(verb: Verb, unit: &str) -> SystemdError {
    SystemdError::Bus(format!(
        "the bus connection closed before the {} job of {unit} finished",
        verb.as_str()
    ))
}

impl SystemdManager for DbusSystemd {
    async fn reload(&self) -> Result<(), SystemdError> {
        self.manager.reload().await.map_err(|e| bus_error("", &e))
    }

    async fn start_unit(&self, unit: &str) -> Result<(), SystemdError> {
        self.run_job(Verb::Start, unit).await
    }

    async fn stop_unit(&self, unit: &str) -> Result<(), SystemdError> {
        self.run_job(Verb::Stop, unit).await
    }

    async fn restart_unit(&self, unit: &str) -> Result<(), SystemdError> {
        self.run_job(Verb::Restart, unit).await
    }

    async fn reset_failed_unit(&self, unit: &str) -> Result<(), SystemdError> {
        self.manager
            .reset_failed_unit(unit)
            .await
            .map_err(|e| bus_error(unit, &e))
    }

    async fn list_units_by_names(&self, units: &[String]) -> Result<Vec<UnitState>, SystemdError> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .manager
            .list_units_by_names(units)
            .await
            .map_err(|e| bus_error(&units.join(" "), &e))?;
        if rows.len() != units.len() {
            return Err(SystemdError::Bus(format!(
                "ListUnitsByNames answered {} rows for {} names",
                rows.len(),
                units.len()
            )));
        }
        Ok(units
            .iter()
            .zip(&rows)
            .map(|(asked, row)| unit_state_from_row(asked, row))
            .collect())
    }

    async fn main_exit(&self, unit: &str) -> Result<Option<MainExit>, SystemdError> {
        let err = |e: zbus::Error| bus_error(unit, &e);
        let path = self.manager.load_unit(unit).await.map_err(err)?;
        let service = self.service_proxy(path).await.map_err(err)?;
        if service.exec_main_exit_timestamp().await.map_err(err)? == 0 {
            return Ok(None);
        }
        // siginfo codes: CLD_EXITED = 1, CLD_KILLED = 2, CLD_DUMPED = 3.
        let code = service.exec_main_code().await.map_err(err)?;
        Ok(Some(MainExit {
            result: service.result().await.map_err(err)?,
            signal: code == 2 || code == 3,
            status: service.exec_main_status().await.map_err(err)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_such_unit_is_its_own_error_and_others_keep_their_name() {
        assert_eq!(
            error_from_reply(
                "nope.service",
                "org.freedesktop.systemd1.NoSuchUnit",
                Some("Unit nope.service not found.")
            ),
            SystemdError::NoSuchUnit("nope.service".into())
        );
        assert_eq!(
            error_from_reply(
                "x.service",
                "org.freedesktop.systemd1.UnitMasked",
                Some("Unit x.service is masked.")
            ),
            SystemdError::Bus(
                "org.freedesktop.systemd1.UnitMasked: Unit x.service is masked.".into()
            )
        );
        assert_eq!(
            error_from_reply("", "org.freedesktop.DBus.Error.AccessDenied", None),
            SystemdError::Bus("org.freedesktop.DBus.Error.AccessDenied".into())
        );
    }

    #[test]
    fn job_results_other_than_done_fail() {
        assert_eq!(job_outcome(Verb::Start, "a.service", "done"), Ok(()));
        assert_eq!(
            job_outcome(Verb::Restart, "a.service", "dependency"),
            Err(SystemdError::JobFailed {
                verb: "restart",
                unit: "a.service".into(),
                result: "dependency".into()
            })
        );
    }

    fn row(name: &str, load: &str, active: &str, sub: &str) -> UnitRow {
        let root = OwnedObjectPath::try_from("/").unwrap();
        (
            name.into(),
            String::new(),
            load.into(),
            active.into(),
            sub.into(),
            String::new(),
            root.clone(),
            0,
            String::new(),
            root,
        )
    }

    #[test]
    fn list_rows_become_unit_states_under_the_asked_name() {
        let s = unit_state_from_row(
            "hello.service",
            &row("hello.service", "loaded", "active", "running"),
        );
        assert_eq!(
            s,
            UnitState {
                name: "hello.service".into(),
                load_state: "loaded".into(),
                active_state: ActiveState::Active,
                sub_state: "running".into(),
            }
        );
        let s = unit_state_from_row(
            "gone.service",
            &row("gone.service", "not-found", "inactive", "dead"),
        );
        assert_eq!(s.load_state, "not-found");
        assert_eq!(s.active_state, ActiveState::Inactive);
        let s = unit_state_from_row(
            "alias.service",
            &row("real.service", "loaded", "failed", "failed"),
        );
        assert_eq!(
            (s.name.as_str(), s.active_state),
            ("alias.service", ActiveState::Failed)
        );
        let s = unit_state_from_row("x.service", &row("x.service", "loaded", "maintenance", "x"));
        assert_eq!(s.active_state, ActiveState::Unknown);
    }

    #[test]
    fn unit_paths_unescape_to_names() {
        assert_eq!(
            unit_name_from_path("/org/freedesktop/systemd1/unit/hello_2eservice").as_deref(),
            Some("hello.service")
        );
        assert_eq!(
            unit_name_from_path("/org/freedesktop/systemd1/unit/hello_2dweb_5fweb_2eservice")
                .as_deref(),
            Some("hello-web_web.service")
        );
        assert_eq!(
            unit_name_from_path("/org/freedesktop/systemd1/job/12"),
            None
        );
        assert_eq!(unit_name_from_path("/org/freedesktop/systemd1/unit"), None);
        assert_eq!(
            unit_name_from_path("/org/freedesktop/systemd1/unit/bad_2"),
            None
        );
    }

    #[test]
    fn the_user_bus_address_falls_back_to_the_runtime_dir() {
        assert_eq!(user_bus_address(None, 1000), "unix:path=/run/user/1000/bus");
        assert_eq!(user_bus_address(Some(""), 7), "unix:path=/run/user/7/bus");
        assert_eq!(
            user_bus_address(Some("unix:path=/tmp/b"), 1000),
            "unix:path=/tmp/b"
        );
    }
}
