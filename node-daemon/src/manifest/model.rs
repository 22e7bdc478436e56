//! The app manifest as written in `apps/<id>/manifest.yml`: plain serde types,
//! strict (`deny_unknown_fields` everywhere), with no behaviour beyond small
//! accessors. What is *allowed* is decided by [`super::validate`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// One app: its identity, its containers and what it needs and offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable identifier: lowercase letters, digits and single dashes. Used in
    /// unit, volume, network and secret names.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The app's version as its upstream names it.
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Icon file name in `icons/`.
    #[serde(default)]
    pub icon: Option<String>,
    pub category: Category,
    /// At least one; each becomes a `.container` Quadlet unit.
    pub containers: Vec<Container>,
    /// Named volumes of the app; each becomes a `.volume` Quadlet unit.
    #[serde(default)]
    pub volumes: Vec<VolumeDecl>,
    /// Secrets the node generates for this app before its units start.
    #[serde(default)]
    pub generated_secrets: Vec<GeneratedSecret>,
    /// Other apps this one talks to.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// What this app offers to apps that depend on it.
    #[serde(default)]
    pub exports: Exports,
    /// Capabilities this app stands for (`bitcoin-node`): another app may
    /// depend on the capability instead of on this app, and any installed
    /// app that provides it satisfies the dependency. Apps providing the
    /// same capability promise the same `exports` (port and secret names),
    /// so a dependant reads the same names from whichever is installed.
    #[serde(default)]
    pub provides: Vec<String>,
    /// Where a person opens the app.
    #[serde(default)]
    pub ui: Option<Ui>,
    /// How to back the app up while it runs. Without it, a backup stops
    /// the app for the copy and starts it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupHook>,
}

/// A command that makes the app's data consistent on disk while it runs (a
/// database dump into its data folder, say); the copy starts once it
/// exits 0, with the app running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupHook {
    /// The container the command runs in.
    pub container: String,
    /// The command and its arguments.
    pub pre: Vec<String>,
}

/// Marketplace category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Bitcoin,
    Lightning,
    Ecash,
    Commerce,
    Explorer,
    Files,
    Utilities,
    Developer,
}

/// One container of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    /// Name within the app (`web`, `db`); unique in the app.
    pub name: String,
    /// Fully qualified image reference, pinned by digest for catalog apps:
    /// `registry.example/owner/name:tag@sha256:<64 hex>`.
    pub image: String,
    /// Overrides the image's entrypoint.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Arguments (the image's `CMD` when empty).
    #[serde(default)]
    pub command: Vec<String>,
    /// Plain environment. Never put secrets here: use `secrets`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Secrets given to this container, as an environment variable or a file.
    #[serde(default)]
    pub secrets: Vec<SecretUse>,
    /// Addresses of ports exported by dependencies, given as environment.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Ports published on the node.
    #[serde(default)]
    pub ports: Vec<Port>,
    /// Named app volumes and folders of the app's data directory.
    #[serde(default)]
    pub volumes: Vec<Mount>,
    /// Health check; when present the unit counts as started only once healthy.
    #[serde(default)]
    pub health: Option<Health>,
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Capabilities added back after all are dropped (allowlisted).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `uid[:gid]` inside the container.
    #[serde(default)]
    pub user: Option<String>,
    /// Read-only root filesystem.
    #[serde(default)]
    pub read_only: bool,
    /// Run a minimal init (catatonit) as PID 1 so that signals and zombies are
    /// handled; on by default.
    #[serde(default = "default_true")]
    pub init: bool,
    /// Other containers of the same app that must be up first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// How long starting may take, image pull included.
    #[serde(default)]
    pub start_timeout: Option<HumanDuration>,
    /// How long the container may take to stop after SIGTERM before it is
    /// killed (podman's default: 10s). Databases and chain daemons that
    /// flush caches on shutdown need minutes.
    #[serde(default)]
    pub stop_timeout: Option<HumanDuration>,
    /// Refused by validation; present so the error can say why.
    #[serde(default)]
    pub privileged: bool,
    /// Refused by validation when `host`.
    #[serde(default)]
    pub network: NamespaceMode,
    /// Refused by validation when `host`.
    #[serde(default)]
    pub pid: NamespaceMode,
    /// Refused by validation when `host`.
    #[serde(default)]
    pub ipc: NamespaceMode,
}

const fn default_true() -> bool {
    true
}

/// Whether a container gets its own namespace or shares the host's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NamespaceMode {
    #[default]
    Private,
    Host,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// Port inside the container.
    pub container: u16,
    /// Port on the node.
    pub host: u16,
    #[serde(default)]
    pub protocol: Protocol,
    /// Node address to bind; all addresses when absent.
    #[serde(default)]
    pub bind: Option<IpAddr>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// A declared named volume of the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeDecl {
    pub name: String,
}

/// A mount into a container: exactly one of `volume` (a declared app volume)
/// or `path` (a folder relative to the app's data directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    #[serde(default)]
    pub volume: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// Absolute path inside the container.
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

/// A health check run inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Program and arguments (exec form, no shell).
    pub command: Vec<String>,
    #[serde(default = "Health::default_interval")]
    pub interval: HumanDuration,
    #[serde(default = "Health::default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "Health::default_retries")]
    pub retries: u32,
    #[serde(default = "Health::default_start_period")]
    pub start_period: HumanDuration,
}

impl Health {
    fn default_interval() -> HumanDuration {
        HumanDuration(Duration::from_secs(10))
    }
    fn default_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(5))
    }
    const fn default_retries() -> u32 {
        3
    }
    fn default_start_period() -> HumanDuration {
        HumanDuration(Duration::from_secs(0))
    }
}

/// Resource limits of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory limit such as `512M` or `2G`.
    #[serde(default)]
    pub memory: Option<ByteSize>,
    /// CPU limit in cores, such as `1.5`.
    #[serde(default)]
    pub cpus: Option<f64>,
}

/// A secret the node generates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedSecret {
    /// Bare file name of the secret (no `/`, no `..`).
    pub name: String,
    pub kind: SecretKindName,
    /// For `bcrypt` and `rpcauth`: the name of the generated hex secret it
    /// is derived from.
    #[serde(default)]
    pub from: Option<String>,
    /// For `rpcauth`: the RPC user name written into the line.
    #[serde(default)]
    pub user: Option<String>,
}

/// How a generated secret is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKindName {
    /// 16 random bytes, hex encoded (32 characters).
    Hex16,
    /// 32 random bytes, hex encoded (64 characters).
    Hex32,
    /// The bcrypt hash of another generated secret.
    Bcrypt,
    /// bitcoind's `rpcauth` value for another generated secret:
    /// `<user>:<salt>$<hmac>`, where the salt is 16 random bytes in hex and
    /// the hmac is HMAC-SHA256 keyed with the salt (as text) over the
    /// password, in hex — what bitcoin's `share/rpcauth/rpcauth.py` prints.
    Rpcauth,
}

impl SecretKindName {
    /// Whether the secret is computed from another generated secret (`from`)
    /// rather than drawn at random.
    pub const fn is_derived(self) -> bool {
        matches!(self, Self::Bcrypt | Self::Rpcauth)
    }
}

impl fmt::Display for SecretKindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hex16 => "hex16",
            Self::Hex32 => "hex32",
            Self::Bcrypt => "bcrypt",
            Self::Rpcauth => "rpcauth",
        })
    }
}

/// A secret given to a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretUse {
    /// The secret's name: one of this app's `generated_secrets`, or, with
    /// `from`, a secret exported by that dependency.
    pub name: String,
    #[serde(default)]
    pub from: Option<String>,
    /// Give it as this environment variable…
    #[serde(default)]
    pub env: Option<String>,
    /// …or as a read-only file at this absolute path in the container.
    #[serde(default)]
    pub file: Option<String>,
}

/// The address of a port exported by a dependency, given as environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The dependency.
    pub app: String,
    /// Name of the port in the dependency's `exports.ports`.
    pub port: String,
    /// Variable that gets `host:port`.
    #[serde(default)]
    pub address_env: Option<String>,
    /// Variable that gets the host name alone.
    #[serde(default)]
    pub host_env: Option<String>,
    /// Variable that gets the port number alone.
    #[serde(default)]
    pub port_env: Option<String>,
    /// Variable that gets `<scheme>://host:port`, for programs that want a
    /// URL (`http://…` for an RPC endpoint, `tcp://…` for a ZMQ socket).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The scheme of `url_env`; required with it.
    #[serde(default)]
    pub scheme: Option<String>,
}

/// Another app this app needs (or can use), named either by its id
/// (`app: bitcoin-knots`) or by a capability that apps `provide`
/// (`capability: bitcoin-node`), which any one installed provider satisfies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DependencyYaml", into = "DependencyYaml")]
pub struct Dependency {
    /// The name secrets' `from` and links' `app` use for this dependency:
    /// the app id, or the capability's name when `capability` is set.
    pub app: String,
    /// `app` names a capability, not an app. [`super::bind_set`] replaces it
    /// with the id of the app that provides it.
    pub capability: bool,
    /// Optional dependencies are used when installed and ignored otherwise.
    pub optional: bool,
}

/// How a dependency is written: exactly one of `app` and `capability`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DependencyYaml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    capability: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    optional: bool,
}

impl TryFrom<DependencyYaml> for Dependency {
    type Error = String;

    fn try_from(d: DependencyYaml) -> Result<Self, String> {
        match (d.app, d.capability) {
            (Some(app), None) => Ok(Self {
                app,
                capability: false,
                optional: d.optional,
            }),
            (None, Some(name)) => Ok(Self {
                app: name,
                capability: true,
                optional: d.optional,
            }),
            _ => Err("give exactly one of `app` (an app id) or `capability` (a capability that apps `provide`, such as `bitcoin-node`)".to_owned()),
        }
    }
}

impl From<Dependency> for DependencyYaml {
    fn from(d: Dependency) -> Self {
        let (app, capability) = if d.capability {
            (None, Some(d.app))
        } else {
            (Some(d.app), None)
        };
        Self {
            app,
            capability,
            optional: d.optional,
        }
    }
}

/// What an app offers to the apps that depend on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exports {
    /// Named ports reachable by dependants on the app's network.
    #[serde(default)]
    pub ports: BTreeMap<String, ExportedPort>,
    /// Names of generated secrets dependants may read.
    #[serde(default)]
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedPort {
    /// The container serving it.
    pub container: String,
    /// Port inside that container.
    pub port: u16,
}

/// The app's web interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ui {
    /// A host port published by one of the app's containers.
    pub port: u16,
    #[serde(default = "Ui::default_path")]
    pub path: String,
    #[serde(default)]
    pub scheme: UiScheme,
}

impl Ui {
    fn default_path() -> String {
        "/".to_owned()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UiScheme {
    #[default]
    Http,
    Https,
}

/// A duration written as a number and a unit: `500ms`, `30s`, `5m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` has no unit: write e.g. `30s`, `5m`, `1h` or `500ms`"))?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` does not start with a whole number"))?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => {
                return Err(format!(
                    "`{s}` has unknown unit `{unit}`: use `ms`, `s`, `m` or `h`"
                ));
            }
        };
        Ok(Self(d))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 != 0 {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A size in bytes written as `512M`, `2G`, `64K` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim_end_matches(['B', 'b', 'i']);
        let (num, mult) = match t.chars().last() {
            Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
            Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
            Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
            Some('T' | 't') => (&t[..t.len() - 1], 1 << 40),
            _ => (t, 1),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size: write e.g. `512M` or `2G`"))?;
        n.checked_mul(mult)
            .map(Self)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (suffix, unit) in [
            ("t", 1u64 << 40),
            ("g", 1 << 30),
            ("m", 1 << 20),
            ("k", 1 << 10),
        ] {
            if n >= unit && n % unit == 0 {
                return write!(f, "{}{suffix}", n / unit);
            }
        }
        write!(f, "{n}")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Self(n)),
            Raw::Str(s) => Self::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(
            HumanDuration::parse("30s").unwrap().0,
            Duration::from_secs(30)
        );
        assert_eq!(HumanDuration::parse("5m").unwrap().to_string(), "300s");
        assert_eq!(
            HumanDuration::parse("1500ms").unwrap().to_string(),
            "1500ms"
        );
        assert!(HumanDuration::parse("30").is_err());
        assert!(HumanDuration::parse("3d").is_err());
        assert!(HumanDuration::parse("s").is_err());
    }

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(ByteSize::parse("512M").unwrap().0, 512 << 20);
        assert_eq!(ByteSize::parse("2GiB").unwrap().to_string(), "2g");
        assert_eq!(ByteSize::parse("1536M").unwrap().to_string(), "1536m");
        assert_eq!(ByteSize::parse("100").unwrap().to_string(), "100");
        assert!(ByteSize::parse("lots").is_err());
    }
}
