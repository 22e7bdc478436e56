//! The `.container` Quadlet unit: one app container, rootless, with every
//! capability dropped and only the declared ones added back.

use super::ini::{Section, UnitFile, quote_words};
use super::unit::{InstallSection, ServiceSection, UnitSection};

/// A `.container` file.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerUnit {
    pub unit: UnitSection,
    pub container: ContainerSection,
    pub service: ServiceSection,
    pub install: Option<InstallSection>,
}

/// The `[Container]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSection {
    /// `Image=`: fully qualified, digest-pinned for catalog apps.
    pub image: String,
    /// `ContainerName=`: `<app>_<container>`, so podman's view matches ours.
    pub container_name: String,
    /// `Entrypoint=`: JSON array form when the manifest overrides it.
    pub entrypoint: Option<Vec<String>>,
    /// `Exec=`: the command's words, quoted.
    pub exec: Vec<String>,
    /// `Environment=`: plain variables, one line each, sorted.
    pub environment: Vec<(String, String)>,
    /// `EnvironmentFile=`: the 0600 file with the container's secret
    /// variables. podman reads it; the values never appear in argv.
    pub environment_file: Option<String>,
    /// `Network=`: the app's own network, then those of its dependencies.
    pub networks: Vec<String>,
    /// `NetworkAlias=`: `<container>.<app>`, how other containers reach it.
    pub network_alias: String,
    /// `PublishPort=`: `[ip:]host:container/proto`.
    pub publish_ports: Vec<String>,
    /// `Volume=`: named volumes, data folders and secret files.
    pub volumes: Vec<String>,
    /// `AddCapability=`, after `DropCapability=all`.
    pub add_capabilities: Vec<String>,
    /// `ReadOnly=true`.
    pub read_only: bool,
    /// `User=`.
    pub user: Option<String>,
    /// `RunInit=true`: catatonit as PID 1.
    pub run_init: bool,
    /// `StopTimeout=` in seconds: how long podman waits after SIGTERM
    /// before SIGKILL (podman's default is 10 s, too short for a database
    /// or a chain daemon flushing its caches).
    pub stop_timeout: Option<u64>,
    /// `Health*=` keys and `Notify=healthy`.
    pub health: Option<HealthKeys>,
    /// `PodmanArgs=`: flags Quadlet has no key for (`--memory`, `--cpus`).
    pub podman_args: Vec<String>,
    /// `Label=`: marks the container as ours and names its app.
    pub labels: Vec<(String, String)>,
}

/// The health check as Quadlet keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthKeys {
    /// The command, exec form; rendered by [`health_cmd`].
    pub cmd: Vec<String>,
    /// `HealthInterval=`, `HealthTimeout=`, `HealthStartPeriod=` (`30s`).
    pub interval: String,
    pub timeout: String,
    pub start_period: String,
    /// `HealthRetries=`.
    pub retries: u32,
}

impl ContainerUnit {
    /// The unit file's text model.
    pub fn to_unit_file(&self, header: Vec<String>) -> UnitFile {
        let mut sections = vec![
            self.unit.to_section(),
            self.container.to_section(),
            self.service.to_section(),
        ];
        if let Some(install) = &self.install {
            sections.push(install.to_section());
        }
        UnitFile { header, sections }
    }
}

impl ContainerSection {
    fn to_section(&self) -> Section {
        let mut s = Section::new("Container");
        s.add("Image", &self.image)
            .add("ContainerName", &self.container_name);
        if let Some(ep) = &self.entrypoint {
            s.add("Entrypoint", json_array(ep));
        }
        if !self.exec.is_empty() {
            s.add("Exec", quote_words(&self.exec));
        }
        for (k, v) in &self.environment {
            s.add("Environment", quote_words(&[format!("{k}={v}")]));
        }
        s.add_opt("EnvironmentFile", self.environment_file.as_ref());
        for n in &self.networks {
            s.add("Network", n);
        }
        s.add("NetworkAlias", &self.network_alias);
        for p in &self.publish_ports {
            s.add("PublishPort", p);
        }
        for v in &self.volumes {
            s.add("Volume", v);
        }
        s.add("DropCapability", "all");
        if !self.add_capabilities.is_empty() {
            s.add("AddCapability", self.add_capabilities.join(" "));
        }
        s.add("NoNewPrivileges", "true");
        if self.read_only {
            s.add("ReadOnly", "true");
        }
        s.add_opt("User", self.user.as_ref());
        if self.run_init {
            s.add("RunInit", "true");
        }
        s.add_opt(
            "StopTimeout",
            self.stop_timeout.map(|t| t.to_string()).as_ref(),
        );
        if let Some(h) = &self.health {
            s.add("HealthCmd", health_cmd(&h.cmd))
                .add("HealthInterval", &h.interval)
                .add("HealthTimeout", &h.timeout)
                .add("HealthStartPeriod", &h.start_period)
                .add("HealthRetries", h.retries.to_string())
                // An unhealthy container is killed; systemd's Restart= brings it back.
                .add("HealthOnFailure", "kill")
                .add("Notify", "healthy");
        }
        if !self.podman_args.is_empty() {
            s.add("PodmanArgs", quote_words(&self.podman_args));
        }
        for (k, v) in &self.labels {
            s.add("Label", format!("{k}={v}"));
        }
        s
    }
}

/// `HealthCmd=` so that podman runs the command without a shell (images
/// need not have one). podman reads `--health-cmd` like this: a JSON array
/// of two or more words is run as is (it adds `CMD` itself); a value whose
/// first word is `CMD` is split on white space — so a JSON array starting
/// with `CMD` turns into one word and fails, as a real node showed. One
/// word is therefore written `CMD word` (validation keeps white space out
/// of a one-word health command); more words as a JSON array.
pub fn health_cmd(words: &[String]) -> String {
    match words {
        [one] => format!("CMD {one}"),
        _ => json_array(words),
    }
}

/// A JSON array of strings, as podman accepts for `--entrypoint` and
/// `--health-cmd`.
fn json_array(words: &[String]) -> String {
    serde_json::to_string(words).unwrap_or_else(|_| String::from("[]"))
}
