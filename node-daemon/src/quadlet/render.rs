//! Manifest → unit files. Names are chosen so that nothing collides and
//! everything can be traced back to its app (app ids and container names
//! contain no `_`):
//!
//! | manifest part | file | systemd unit | podman object |
//! |---|---|---|---|
//! | container `web` of `hello` | `hello_web.container` | `hello_web.service` | container `hello_web` |
//! | volume `data` of `hello` | `hello_data.volume` | `hello_data-volume.service` | volume `hello_data` |
//! | app `hello` | `hello.network` | `hello-network.service` | network `archipelago-hello` |

use super::container::{ContainerSection, ContainerUnit, HealthKeys};
use super::network::NetworkUnit;
use super::unit::{InstallSection, ServiceSection, UnitSection};
use super::volume::VolumeUnit;
use crate::layout::Layout;
use crate::manifest::{Container, Manifest, Mount, Port};
use archipelago_api::RunState;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// First line of every file we write; how the reconciler tells our files
/// from files a person put in the same folder.
pub const MANAGED_MARKER: &str = "Managed by archipelagod: edits are overwritten.";
/// Label on every container, volume and network we create.
pub const LABEL_MANAGED: &str = "io.archipelago.managed";
/// Label naming the app a container, volume or network belongs to.
pub const LABEL_APP: &str = "io.archipelago.app";
const LABEL_CONTAINER: &str = "io.archipelago.container";
/// Label carrying a digest of the container's unit file: a running
/// container whose digest differs from the file on disk was started from an
/// older file and needs a restart — even when the pass that wrote the file
/// never got to restart it (a crash, a failed restart).
pub const LABEL_CONFIG: &str = "io.archipelago.config";

/// Default start timeout: a cold pull of a large image on a home line plus
/// the first passing health check.
pub const DEFAULT_START_TIMEOUT_SECS: u64 = 900;

/// How much longer than a container's stop timeout systemd waits before it
/// kills the unit itself: time for podman to send SIGKILL and clean up.
const STOP_TIMEOUT_MARGIN_SECS: u64 = 30;

/// What kind of Quadlet file a rendered unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitKind {
    Network,
    Volume,
    Container,
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedUnit {
    /// File name in the Quadlet folder, such as `hello_web.container`.
    pub file_name: String,
    pub kind: UnitKind,
    /// The systemd unit Quadlet generates from it.
    pub service: String,
    pub contents: String,
    /// For container units: the value of its [`LABEL_CONFIG`] label.
    pub config_digest: Option<String>,
}

/// The systemd unit of one app container.
pub fn container_service(app: &str, container: &str) -> String {
    format!("{app}_{container}.service")
}

/// The podman container of one app container.
pub fn container_name(app: &str, container: &str) -> String {
    format!("{app}_{container}")
}

/// True when the file text was written by us.
pub fn is_managed(contents: &str) -> bool {
    contents
        .lines()
        .next()
        .is_some_and(|l| l.strip_prefix("# ") == Some(MANAGED_MARKER))
}

/// The app a Quadlet file name of ours belongs to (`hello_web.container` →
/// `hello`), or `None` for names we never produce.
pub fn app_of_unit_file(file_name: &str) -> Option<&str> {
    let (stem, ext) = file_name.rsplit_once('.')?;
    match ext {
        "container" | "volume" => stem.split_once('_').map(|(app, _)| app),
        "network" if !stem.contains('_') => Some(stem),
        _ => None,
    }
}

/// Renders every unit of `app` in a stable order (network, volumes,
/// containers). `installed` looks up the manifests of other installed apps,
/// for dependency ordering and networks; an optional dependency that is not
/// installed is ignored.
pub fn render_app<'a>(
    app: &Manifest,
    run: RunState,
    installed: impl Fn(&str) -> Option<&'a Manifest>,
    layout: &Layout,
) -> Vec<RenderedUnit> {
    let header = vec![
        MANAGED_MARKER.to_owned(),
        format!("App: {} {}", app.id, app.version),
    ];
    let labels = |extra: Option<(&str, &str)>| {
        let mut l = vec![
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_APP.to_owned(), app.id.clone()),
        ];
        if let Some((k, v)) = extra {
            l.push((k.to_owned(), v.to_owned()));
        }
        l
    };
    let mut out = Vec::new();

    let network = NetworkUnit {
        description: format!("{}: network", app.name),
        network_name: format!("archipelago-{}", app.id),
        labels: labels(None),
    };
    out.push(RenderedUnit {
        file_name: format!("{}.network", app.id),
        kind: UnitKind::Network,
        service: format!("{}-network.service", app.id),
        contents: network.to_unit_file(header.clone()).to_text(),
        config_digest: None,
    });

    for v in &app.volumes {
        let unit = VolumeUnit {
            description: format!("{}: volume {}", app.name, v.name),
            volume_name: format!("{}_{}", app.id, v.name),
            labels: labels(None),
        };
        out.push(RenderedUnit {
            file_name: format!("{}_{}.volume", app.id, v.name),
            kind: UnitKind::Volume,
            service: format!("{}_{}-volume.service", app.id, v.name),
            contents: unit.to_unit_file(header.clone()).to_text(),
            config_digest: None,
        });
    }

    // Dependencies that are present, in manifest order.
    let deps: Vec<(&Manifest, bool)> = app
        .dependencies
        .iter()
        .filter_map(|d| installed(&d.app).map(|m| (m, d.optional)))
        .collect();

    for c in &app.containers {
        let mut unit = ContainerUnit {
            unit: unit_section(app, c, &deps),
            container: container_section(
                app,
                c,
                &deps,
                layout,
                labels(Some((LABEL_CONTAINER, &c.name))),
            ),
            service: ServiceSection {
                restart: "on-failure",
                restart_sec: 5,
                timeout_start_sec: c
                    .start_timeout
                    .map_or(DEFAULT_START_TIMEOUT_SECS, |t| t.0.as_secs()),
                // podman's own stop (SIGTERM, wait, SIGKILL) must finish
                // before systemd gives up on the unit.
                timeout_stop_sec: c
                    .stop_timeout
                    .map(|t| t.0.as_secs().saturating_add(STOP_TIMEOUT_MARGIN_SECS)),
            },
            install: (run == RunState::Running).then_some(InstallSection {
                wanted_by: "default.target",
            }),
        };
        // The digest covers the whole file as it would be without it.
        let digest = config_digest(&unit.to_unit_file(header.clone()).to_text());
        unit.container
            .labels
            .push((LABEL_CONFIG.to_owned(), digest.clone()));
        out.push(RenderedUnit {
            file_name: format!("{}_{}.container", app.id, c.name),
            kind: UnitKind::Container,
            service: container_service(&app.id, &c.name),
            contents: unit.to_unit_file(header.clone()).to_text(),
            config_digest: Some(digest),
        });
    }
    out
}

/// The first 16 hex digits of the text's SHA-256: stable across daemon
/// versions, so that upgrading the daemon restarts nothing whose unit file
/// is unchanged.
fn config_digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(text.as_bytes());
    hex::encode(&hash[..8])
}

fn unit_section(app: &Manifest, c: &Container, deps: &[(&Manifest, bool)]) -> UnitSection {
    let mut requires: Vec<String> = c
        .depends_on
        .iter()
        .map(|d| container_service(&app.id, d))
        .collect();
    let mut wants = Vec::new();
    for (dep, optional) in deps {
        let units = dep
            .containers
            .iter()
            .map(|dc| container_service(&dep.id, &dc.name));
        if *optional {
            wants.extend(units);
        } else {
            requires.extend(units);
        }
    }
    UnitSection {
        description: format!("{}: {}", app.name, c.name),
        requires,
        wants,
    }
}

fn container_section(
    app: &Manifest,
    c: &Container,
    deps: &[(&Manifest, bool)],
    layout: &Layout,
    labels: Vec<(String, String)>,
) -> ContainerSection {
    let mut env: BTreeMap<String, String> = c.env.clone();
    for link in &c.links {
        let Some((dep, _)) = deps.iter().find(|(d, _)| d.id == link.app) else {
            continue;
        };
        let Some(port) = dep.exports.ports.get(&link.port) else {
            continue;
        };
        let host = format!("{}.{}", port.container, dep.id);
        if let Some(var) = &link.address_env {
            env.insert(var.clone(), format!("{host}:{}", port.port));
        }
        if let Some(var) = &link.host_env {
            env.insert(var.clone(), host.clone());
        }
        if let Some(var) = &link.port_env {
            env.insert(var.clone(), port.port.to_string());
        }
        if let (Some(var), Some(scheme)) = (&link.url_env, &link.scheme) {
            env.insert(var.clone(), format!("{scheme}://{host}:{}", port.port));
        }
    }

    let mut networks = vec![format!("{}.network", app.id)];
    networks.extend(deps.iter().map(|(d, _)| format!("{}.network", d.id)));

    let mut volumes: Vec<String> = c.volumes.iter().map(|m| mount(app, m, layout)).collect();
    for s in &c.secrets {
        if let Some(target) = &s.file {
            let owner = s.from.as_deref().unwrap_or(&app.id);
            volumes.push(format!(
                "{}:{target}:ro",
                layout.secret_file(owner, &s.name).display()
            ));
        }
    }

    let mut podman_args = Vec::new();
    if let Some(limits) = &c.limits {
        if let Some(mem) = limits.memory {
            podman_args.push(format!("--memory={mem}"));
        }
        if let Some(cpus) = limits.cpus {
            podman_args.push(format!("--cpus={cpus}"));
        }
    }

    ContainerSection {
        image: c.image.clone(),
        container_name: container_name(&app.id, &c.name),
        entrypoint: c.entrypoint.clone(),
        exec: c.command.clone(),
        environment: env.into_iter().collect(),
        environment_file: c
            .secrets
            .iter()
            .any(|s| s.env.is_some())
            .then(|| layout.env_file(&app.id, &c.name).display().to_string()),
        networks,
        network_alias: format!("{}.{}", c.name, app.id),
        publish_ports: c.ports.iter().map(publish).collect(),
        volumes,
        add_capabilities: c
            .capabilities
            .iter()
            .map(|cap| cap.strip_prefix("CAP_").unwrap_or(cap).to_owned())
            .collect(),
        read_only: c.read_only,
        user: c.user.clone(),
        run_init: c.init,
        stop_timeout: c.stop_timeout.map(|t| t.0.as_secs()),
        health: c.health.as_ref().map(|h| HealthKeys {
            cmd: h.command.clone(),
            interval: h.interval.to_string(),
            timeout: h.timeout.to_string(),
            start_period: h.start_period.to_string(),
            retries: h.retries,
        }),
        podman_args,
        labels,
    }
}

fn mount(app: &Manifest, m: &Mount, layout: &Layout) -> String {
    let source = match (&m.volume, &m.path) {
        (Some(v), _) => format!("{}_{v}.volume", app.id),
        (None, Some(p)) => layout.app_data_dir(&app.id).join(p).display().to_string(),
        // Validation guarantees one of the two; render the data folder itself.
        (None, None) => layout.app_data_dir(&app.id).display().to_string(),
    };
    let ro = if m.read_only { ":ro" } else { "" };
    format!("{source}:{}{ro}", m.target)
}

fn publish(p: &Port) -> String {
    match p.bind {
        None => format!("{}:{}/{}", p.host, p.container, p.protocol),
        Some(IpAddr::V4(ip)) => format!("{ip}:{}:{}/{}", p.host, p.container, p.protocol),
        Some(IpAddr::V6(ip)) => format!("[{ip}]:{}:{}/{}", p.host, p.container, p.protocol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_file_names_map_back_to_their_app() {
        assert_eq!(
            app_of_unit_file("hello-web_web.container"),
            Some("hello-web")
        );
        assert_eq!(app_of_unit_file("hello-web_data.volume"), Some("hello-web"));
        assert_eq!(app_of_unit_file("hello-web.network"), Some("hello-web"));
        assert_eq!(app_of_unit_file("mine.container"), None);
        assert_eq!(app_of_unit_file("notes.txt"), None);
    }

    #[test]
    fn managed_marker_is_the_first_line_only() {
        assert!(is_managed(&format!("# {MANAGED_MARKER}\n[Unit]\n")));
        assert!(!is_managed(&format!("[Unit]\n# {MANAGED_MARKER}\n")));
    }
}
