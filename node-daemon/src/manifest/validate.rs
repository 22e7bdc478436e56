//! Validation of manifests, including the security lint of pillar 5
//! (rootless, no privileges, no host namespaces, no host paths, allowlisted
//! capabilities, pinned images). Every check reports the field path and a
//! reason that says what to do; all problems are collected, not just the first.

use super::error::{FieldError, ManifestError};
use super::model::{Container, Dependency, Manifest, Mount, NamespaceMode, SecretKindName};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

/// How strict image references must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Catalog apps: every image pinned by `@sha256:` digest.
    Catalog,
    /// Apps under development or test: a tag is enough.
    Local,
}

/// Capabilities an app may add back after all are dropped. Anything that
/// gives power over the host or other containers (`SYS_ADMIN`, `NET_ADMIN`,
/// `SYS_PTRACE`, `SYS_MODULE`, …) is absent on purpose.
pub const CAPABILITY_ALLOWLIST: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
];

const MAX_CONTAINERS: usize = 16;
const MIN_HOST_PORT: u16 = 1024;

/// Checks one manifest on its own. Problems involving other apps (missing
/// dependencies, ports taken by another app) are [`validate_set`]'s job.
pub fn validate(file: &Path, m: &Manifest, strictness: Strictness) -> Result<(), ManifestError> {
    let mut v = Validator {
        errors: Vec::new(),
        strictness,
    };
    v.manifest(m);
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(ManifestError {
            file: file.to_owned(),
            errors: v.errors,
        })
    }
}

/// Checks a set of apps that will be installed together: required
/// dependencies present (a capability provided by exactly one app of the
/// set), imported secrets and ports exported by the dependency, no host port
/// used twice across apps, no capability named like an app, and no
/// dependency cycle.
pub fn validate_set<'a>(
    apps: impl IntoIterator<Item = (&'a Path, &'a Manifest)>,
) -> Result<(), Vec<ManifestError>> {
    let apps: Vec<(&Path, &Manifest)> = apps.into_iter().collect();
    let set = AppSet::new(&apps);
    let mut port_owner: BTreeMap<(u16, String), &str> = BTreeMap::new();
    let mut out = Vec::new();
    for (file, m) in &apps {
        let mut errs = Vec::new();
        for (i, p) in m.provides.iter().enumerate() {
            if set.by_id.contains_key(p.as_str()) {
                errs.push(err(
                    format!("provides[{i}]"),
                    format!("`{p}` is also the id of an app in the set: a capability must not be named like an app"),
                ));
            }
        }
        missing_dependencies(m, &set, &mut errs);
        for (ci, c) in m.containers.iter().enumerate() {
            for (si, s) in c.secrets.iter().enumerate() {
                let Some(from) = &s.from else { continue };
                if let Some(dep) = set.resolve_name(m, from) {
                    if !dep.exports.secrets.contains(&s.name) {
                        errs.push(err(
                            format!("containers[{ci}].secrets[{si}].name"),
                            format!(
                                "app `{}` does not export a secret named `{}`",
                                dep.id, s.name
                            ),
                        ));
                    }
                }
            }
            for (li, l) in c.links.iter().enumerate() {
                if let Some(dep) = set.resolve_name(m, &l.app) {
                    if !dep.exports.ports.contains_key(&l.port) {
                        errs.push(err(
                            format!("containers[{ci}].links[{li}].port"),
                            format!("app `{}` does not export a port named `{}`", dep.id, l.port),
                        ));
                    }
                }
            }
            for (pi, p) in c.ports.iter().enumerate() {
                let key = (p.host, p.protocol.to_string());
                match port_owner.get(&key) {
                    Some(other) if *other != m.id => errs.push(err(
                        format!("containers[{ci}].ports[{pi}].host"),
                        format!(
                            "host port {}/{} is already used by app `{other}`: pick another port",
                            p.host, p.protocol
                        ),
                    )),
                    _ => {
                        port_owner.insert(key, &m.id);
                    }
                }
            }
        }
        if !errs.is_empty() {
            out.push(ManifestError {
                file: (*file).to_owned(),
                errors: errs,
            });
        }
    }
    for (file, m) in &apps {
        if let Some(i) = dependency_cycle(m, &set) {
            let key = if m.dependencies[i].capability {
                "capability"
            } else {
                "app"
            };
            let e = err(
                format!("dependencies[{i}].{key}"),
                format!(
                    "`{}` depends back on `{}` (directly or through other apps): dependencies must not form a cycle",
                    m.dependencies[i].app, m.id
                ),
            );
            match out
                .iter_mut()
                .find(|me: &&mut ManifestError| me.file == *file)
            {
                Some(me) => me.errors.push(e),
                None => out.push(ManifestError {
                    file: (*file).to_owned(),
                    errors: vec![e],
                }),
            }
        }
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Required dependencies of `m` that the set does not satisfy, and
/// capabilities it cannot tell apart.
fn missing_dependencies(m: &Manifest, set: &AppSet<'_>, errs: &mut Vec<FieldError>) {
    for (i, dep) in m.dependencies.iter().enumerate() {
        match set.resolve(dep) {
            Ok(Some(_)) => {}
            Ok(None) if dep.optional => {}
            Ok(None) if dep.capability => errs.push(err(
                format!("dependencies[{i}].capability"),
                format!(
                    "requires an app that provides `{}`, and none is installed: install one first",
                    dep.app
                ),
            )),
            Ok(None) => errs.push(err(
                format!("dependencies[{i}].app"),
                format!(
                    "requires app `{}`, which is not installed: install it first",
                    dep.app
                ),
            )),
            Err(providers) => errs.push(err(
                format!("dependencies[{i}].capability"),
                format!(
                    "`{}` is provided by several installed apps ({}): keep only one of them",
                    dep.app,
                    providers.join(", ")
                ),
            )),
        }
    }
}

/// Checks a set with [`validate_set`], then binds every app to it: each
/// dependency on a capability becomes a dependency on the app of the set
/// that provides it, and the secrets (`from`) and links (`app`) that named
/// the capability name that app. The result says only app ids, so
/// rendering, secrets and the reconciler need to know nothing about
/// capabilities. An optional capability nobody provides stays as it is
/// (and is ignored like any missing optional dependency). Apps come back in
/// the order given.
pub fn bind_set<'a>(
    apps: impl IntoIterator<Item = (&'a Path, &'a Manifest)>,
) -> Result<Vec<Manifest>, Vec<ManifestError>> {
    let apps: Vec<(&Path, &Manifest)> = apps.into_iter().collect();
    validate_set(apps.iter().copied())?;
    let set = AppSet::new(&apps);
    Ok(apps.iter().map(|(_, m)| set.bind(m)).collect())
}

/// The apps of a set by id, and the providers of each capability.
struct AppSet<'a> {
    by_id: HashMap<&'a str, &'a Manifest>,
    providers: BTreeMap<&'a str, Vec<&'a Manifest>>,
}

impl<'a> AppSet<'a> {
    fn new(apps: &[(&'a Path, &'a Manifest)]) -> Self {
        let mut providers: BTreeMap<&str, Vec<&Manifest>> = BTreeMap::new();
        for (_, m) in apps {
            for p in &m.provides {
                providers.entry(p.as_str()).or_default().push(*m);
            }
        }
        Self {
            by_id: apps.iter().map(|(_, m)| (m.id.as_str(), *m)).collect(),
            providers,
        }
    }

    /// The app of the set satisfying `dep`; `Err` with their ids when
    /// several apps provide the capability.
    fn resolve(&self, dep: &Dependency) -> Result<Option<&'a Manifest>, Vec<String>> {
        if !dep.capability {
            return Ok(self.by_id.get(dep.app.as_str()).copied());
        }
        match self.providers.get(dep.app.as_str()).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(*one)),
            Some(many) => Err(many.iter().map(|m| m.id.clone()).collect()),
        }
    }

    /// The app that `m`'s dependency called `name` resolves to, if exactly one.
    fn resolve_name(&self, m: &Manifest, name: &str) -> Option<&'a Manifest> {
        let dep = m.dependencies.iter().find(|d| d.app == name)?;
        self.resolve(dep).ok().flatten()
    }

    fn bind(&self, m: &Manifest) -> Manifest {
        let mut bound = m.clone();
        let mut renamed: BTreeMap<String, String> = BTreeMap::new();
        for dep in &mut bound.dependencies {
            if !dep.capability {
                continue;
            }
            if let Ok(Some(provider)) = self.resolve(dep) {
                renamed.insert(dep.app.clone(), provider.id.clone());
                dep.app.clone_from(&provider.id);
                dep.capability = false;
            }
        }
        for c in &mut bound.containers {
            for s in &mut c.secrets {
                if let Some(to) = s.from.as_ref().and_then(|f| renamed.get(f)) {
                    s.from = Some(to.clone());
                }
            }
            for l in &mut c.links {
                if let Some(to) = renamed.get(&l.app) {
                    l.app.clone_from(to);
                }
            }
        }
        bound
    }
}

/// The index of a dependency of `m` through which the dependency graph leads
/// back to `m`, if any.
fn dependency_cycle(m: &Manifest, set: &AppSet<'_>) -> Option<usize> {
    m.dependencies.iter().position(|first| {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut todo: Vec<&Manifest> = set.resolve(first).ok().flatten().into_iter().collect();
        while let Some(app) = todo.pop() {
            if app.id == m.id {
                return true;
            }
            if seen.insert(app.id.as_str()) {
                todo.extend(
                    app.dependencies
                        .iter()
                        .filter_map(|d| set.resolve(d).ok().flatten()),
                );
            }
        }
        false
    })
}

/// `hello-web`, `bitcoin-knots`: lowercase letters and digits in dash-separated
/// words, starting with a letter, at most 40 characters.
pub fn is_valid_app_id(s: &str) -> bool {
    is_dns_label(s, 40)
}

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

struct Validator {
    errors: Vec<FieldError>,
    strictness: Strictness,
}

impl Validator {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(err(field, reason));
    }

    /// Strings that end up in unit files must not carry line breaks or other
    /// control characters (they would let a manifest inject unit keys).
    fn text(&mut self, field: &str, value: &str) {
        if value.chars().any(char::is_control) {
            self.push(
                field,
                "must not contain line breaks or other control characters",
            );
        }
    }

    fn manifest(&mut self, m: &Manifest) {
        self.identity(m);
        let volume_names = self.volume_decls(m);
        let secret_kinds = self.generated_secrets(m);
        self.provides(m);
        let deps = self.dependencies(m);
        self.containers(m, &volume_names, &secret_kinds, &deps);
        self.depends_on_cycles(m);
        self.exports(m, &secret_kinds);
        self.ui(m);
        self.backup(m);
    }

    /// The pre-backup command runs in one of the app's containers.
    fn backup(&mut self, m: &Manifest) {
        let Some(b) = &m.backup else {
            return;
        };
        if !m.containers.iter().any(|c| c.name == b.container) {
            self.push(
                "backup.container",
                format!("no container named `{}` in this app", b.container),
            );
        }
        if b.pre.is_empty() || b.pre.iter().any(String::is_empty) {
            self.push(
                "backup.pre",
                "give the command and its arguments, none of them empty",
            );
        }
        for (i, arg) in b.pre.iter().enumerate() {
            self.text(&format!("backup.pre[{i}]"), arg);
        }
    }

    /// id, name, version, description, icon.
    fn identity(&mut self, m: &Manifest) {
        if !is_valid_app_id(&m.id) {
            self.push(
                "id",
                format!(
                    "`{}` is not a valid app id: use 1-40 lowercase letters, digits and single dashes, starting with a letter",
                    m.id
                ),
            );
        }
        if m.name.trim().is_empty() || m.name.len() > 64 {
            self.push("name", "must be 1-64 characters");
        }
        self.text("name", &m.name);
        if m.version.is_empty()
            || m.version.len() > 64
            || !m
                .version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'))
        {
            self.push(
                "version",
                format!(
                    "`{}` is not a version: use letters, digits and . + - _",
                    m.version
                ),
            );
        }
        if m.description.len() > 4096 {
            self.push("description", "is longer than 4096 characters");
        }
        if let Some(icon) = &m.icon {
            // Lowercase extensions only, as the files in icons/ are named.
            let ok = is_bare_name(icon)
                && Path::new(icon)
                    .extension()
                    .is_some_and(|e| e == "png" || e == "svg");
            if !ok {
                self.push(
                    "icon",
                    format!("`{icon}` must be a bare .png or .svg file name from icons/"),
                );
            }
        }
    }

    /// Each container, and what must be unique across them.
    fn containers(
        &mut self,
        m: &Manifest,
        volume_names: &BTreeSet<String>,
        secret_kinds: &BTreeMap<String, SecretKindName>,
        deps: &BTreeSet<String>,
    ) {
        if m.containers.is_empty() {
            self.push("containers", "an app needs at least one container");
        }
        if m.containers.len() > MAX_CONTAINERS {
            self.push(
                "containers",
                format!("at most {MAX_CONTAINERS} containers per app"),
            );
        }
        let mut names = BTreeSet::new();
        let mut host_ports: BTreeMap<(u16, String), String> = BTreeMap::new();
        for (i, c) in m.containers.iter().enumerate() {
            let at = format!("containers[{i}]");
            if !is_dns_label(&c.name, 30) {
                self.push(
                    format!("{at}.name"),
                    format!("`{}` is not a valid container name: use lowercase letters, digits and single dashes", c.name),
                );
            } else if !names.insert(c.name.as_str()) {
                self.push(
                    format!("{at}.name"),
                    format!("container name `{}` is used twice", c.name),
                );
            }
            for (pi, p) in c.ports.iter().enumerate() {
                let key = (p.host, p.protocol.to_string());
                let here = format!("{at}.ports[{pi}].host");
                if let Some(first) = host_ports.get(&key) {
                    self.push(
                        here,
                        format!(
                            "host port {}/{} is already published by {first}",
                            p.host, p.protocol
                        ),
                    );
                } else {
                    host_ports.insert(key, here);
                }
            }
            self.container(&at, c, m, volume_names, secret_kinds, deps);
            if let Some(vol) = c.name.strip_suffix("-volume") {
                if volume_names.contains(vol) {
                    self.push(
                        format!("{at}.name"),
                        format!("container `{}` and volume `{vol}` would both be the unit `{}_{}.service`: rename one", c.name, m.id, c.name),
                    );
                }
            }
        }
        self.nested_data_paths(m);
    }

    /// A data folder mounted inside another mounted data folder could be
    /// swapped for a symlink by the container holding the outer one, and
    /// the next start would mount whatever it points at.
    fn nested_data_paths(&mut self, m: &Manifest) {
        let paths: Vec<(String, &str)> = m
            .containers
            .iter()
            .enumerate()
            .flat_map(|(ci, c)| {
                c.volumes.iter().enumerate().filter_map(move |(vi, v)| {
                    v.path
                        .as_deref()
                        .map(|p| (format!("containers[{ci}].volumes[{vi}].path"), p))
                })
            })
            .collect();
        for (field, inner) in &paths {
            if let Some((_, outer)) = paths.iter().find(|(_, outer)| {
                inner.len() > outer.len() && inner.starts_with(&format!("{outer}/"))
            }) {
                self.push(
                    field.clone(),
                    format!("`{inner}` lies inside `{outer}`, which is mounted too: a container could replace it with a symlink; mount a folder beside it instead"),
                );
            }
        }
    }

    fn ui(&mut self, m: &Manifest) {
        if let Some(ui) = &m.ui {
            let published = m
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .any(|p| p.host == ui.port && p.protocol == super::model::Protocol::Tcp);
            if !published {
                self.push(
                    "ui.port",
                    format!(
                        "port {} is not a TCP host port published by any container",
                        ui.port
                    ),
                );
            }
            if !ui.path.starts_with('/')
                || ui.path.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                self.push("ui.path", "must start with `/` and contain no spaces");
            }
        }
    }

    fn volume_decls(&mut self, m: &Manifest) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (i, v) in m.volumes.iter().enumerate() {
            if !is_dns_label(&v.name, 30) {
                self.push(
                    format!("volumes[{i}].name"),
                    format!(
                        "`{}` is not a valid volume name: use lowercase letters, digits and dashes",
                        v.name
                    ),
                );
            } else if !names.insert(v.name.clone()) {
                self.push(
                    format!("volumes[{i}].name"),
                    format!("volume `{}` is declared twice", v.name),
                );
            }
        }
        names
    }

    fn generated_secrets(&mut self, m: &Manifest) -> BTreeMap<String, SecretKindName> {
        let mut kinds = BTreeMap::new();
        for (i, s) in m.generated_secrets.iter().enumerate() {
            if !is_bare_name(&s.name) {
                self.push(
                    format!("generated_secrets[{i}].name"),
                    format!("`{}` must be a bare file name: letters, digits, `.`, `_`, `-`, no `/` and not `.` or `..`", s.name),
                );
            } else if kinds.contains_key(&s.name) {
                // Keep the first declaration's kind: the duplicate is the error.
                self.push(
                    format!("generated_secrets[{i}].name"),
                    format!("secret `{}` is declared twice", s.name),
                );
            } else {
                kinds.insert(s.name.clone(), s.kind);
            }
        }
        for (i, s) in m.generated_secrets.iter().enumerate() {
            match (s.kind.is_derived(), &s.from) {
                (true, None) => self.push(
                    format!("generated_secrets[{i}].from"),
                    format!(
                        "a {} secret needs `from`: the name of the hex secret it is derived from",
                        s.kind
                    ),
                ),
                (true, Some(from)) => match kinds.get(from) {
                    Some(SecretKindName::Hex16 | SecretKindName::Hex32) => {}
                    Some(other) => self.push(
                        format!("generated_secrets[{i}].from"),
                        format!(
                            "`{from}` is itself a {other} hash: derive from a hex16 or hex32 secret"
                        ),
                    ),
                    None => self.push(
                        format!("generated_secrets[{i}].from"),
                        format!("no generated secret named `{from}` in this manifest"),
                    ),
                },
                (false, Some(_)) => self.push(
                    format!("generated_secrets[{i}].from"),
                    format!(
                        "only bcrypt secrets take `from` (and rpcauth ones); a {} secret is random",
                        s.kind
                    ),
                ),
                (false, None) => {}
            }
            match (s.kind, &s.user) {
                (SecretKindName::Rpcauth, None) => self.push(
                    format!("generated_secrets[{i}].user"),
                    "an rpcauth secret needs `user`: the RPC user name clients log in with",
                ),
                (SecretKindName::Rpcauth, Some(user)) => {
                    if !is_rpc_user(user) {
                        self.push(
                            format!("generated_secrets[{i}].user"),
                            format!("`{user}` is not an RPC user name: use 1-64 letters, digits, `_`, `-` or `.`"),
                        );
                    }
                }
                (_, Some(_)) => self.push(
                    format!("generated_secrets[{i}].user"),
                    format!("only rpcauth secrets take `user`, not a {} secret", s.kind),
                ),
                (_, None) => {}
            }
        }
        kinds
    }

    fn dependencies(&mut self, m: &Manifest) -> BTreeSet<String> {
        let mut deps = BTreeSet::new();
        for (i, d) in m.dependencies.iter().enumerate() {
            let (at, what) = if d.capability {
                (format!("dependencies[{i}].capability"), "capability name")
            } else {
                (format!("dependencies[{i}].app"), "app id")
            };
            if !is_valid_app_id(&d.app) {
                self.push(at, format!("`{}` is not a valid {what}", d.app));
            } else if !d.capability && d.app == m.id {
                self.push(at, "an app cannot depend on itself");
            } else if d.capability && m.provides.contains(&d.app) {
                self.push(
                    at,
                    format!(
                        "this app provides `{}` itself: it cannot depend on it",
                        d.app
                    ),
                );
            } else if !deps.insert(d.app.clone()) {
                self.push(at, format!("`{}` is listed twice", d.app));
            }
        }
        deps
    }

    /// Capability names: like app ids, each once, never the app's own id.
    fn provides(&mut self, m: &Manifest) {
        let mut seen = BTreeSet::new();
        for (i, p) in m.provides.iter().enumerate() {
            let at = format!("provides[{i}]");
            if !is_valid_app_id(p) {
                self.push(at, format!("`{p}` is not a valid capability name: use 1-40 lowercase letters, digits and single dashes, starting with a letter"));
            } else if *p == m.id {
                self.push(
                    at,
                    "an app need not provide its own id: dependants name it with `app`",
                );
            } else if !seen.insert(p.as_str()) {
                self.push(at, format!("`{p}` is listed twice"));
            }
        }
    }

    #[allow(clippy::too_many_lines)]
    fn container(
        &mut self,
        at: &str,
        c: &Container,
        m: &Manifest,
        volumes: &BTreeSet<String>,
        secrets: &BTreeMap<String, SecretKindName>,
        deps: &BTreeSet<String>,
    ) {
        // Security lint first: these are the ones people must not miss.
        if c.privileged {
            self.push(
                format!("{at}.privileged"),
                "privileged containers are not allowed: add only the capabilities the app needs under `capabilities`",
            );
        }
        for (key, mode) in [("network", c.network), ("pid", c.pid), ("ipc", c.ipc)] {
            if mode == NamespaceMode::Host {
                self.push(
                    format!("{at}.{key}"),
                    format!("the host {key} namespace is not allowed: apps run in their own namespaces{}", if key == "network" { "; publish ports under `ports` instead" } else { "" }),
                );
            }
        }
        let mut caps = BTreeSet::new();
        for (i, cap) in c.capabilities.iter().enumerate() {
            let name = cap.strip_prefix("CAP_").unwrap_or(cap);
            if !CAPABILITY_ALLOWLIST.contains(&name) {
                self.push(
                    format!("{at}.capabilities[{i}]"),
                    format!(
                        "capability `{cap}` is not allowed; allowed: {}",
                        CAPABILITY_ALLOWLIST.join(", ")
                    ),
                );
            } else if !caps.insert(name) {
                self.push(
                    format!("{at}.capabilities[{i}]"),
                    format!("capability `{cap}` is listed twice"),
                );
            }
        }

        self.image(&format!("{at}.image"), &c.image);
        if let Some(ep) = &c.entrypoint {
            if ep.is_empty() {
                self.push(
                    format!("{at}.entrypoint"),
                    "must not be empty: leave it out to keep the image's entrypoint",
                );
            }
            for (i, a) in ep.iter().enumerate() {
                self.text(&format!("{at}.entrypoint[{i}]"), a);
            }
        }
        for (i, a) in c.command.iter().enumerate() {
            self.text(&format!("{at}.command[{i}]"), a);
        }

        // Every environment variable has one source.
        let mut env_names: BTreeSet<String> = BTreeSet::new();
        for (k, v) in &c.env {
            let field = format!("{at}.env.{k}");
            if !is_env_name(k) {
                self.push(field.clone(), "is not a valid variable name: use letters, digits and `_`, not starting with a digit");
            }
            self.text(&field, v);
            env_names.insert(k.clone());
        }
        let mut targets: BTreeSet<String> = BTreeSet::new();
        for (i, s) in c.secrets.iter().enumerate() {
            let sat = format!("{at}.secrets[{i}]");
            match &s.from {
                None => {
                    if !secrets.contains_key(&s.name) {
                        self.push(format!("{sat}.name"), format!("no generated secret named `{}`: declare it under `generated_secrets` or name the dependency in `from`", s.name));
                    }
                }
                Some(from) => {
                    if !deps.contains(from) {
                        self.push(
                            format!("{sat}.from"),
                            format!("`{from}` is not among this app's dependencies"),
                        );
                    } else if m.dependencies.iter().any(|d| &d.app == from && d.optional) {
                        self.push(
                            format!("{sat}.from"),
                            format!("`{from}` is an optional dependency and may not be installed: secrets can only come from a required dependency"),
                        );
                    }
                    if !is_bare_name(&s.name) {
                        self.push(
                            format!("{sat}.name"),
                            format!("`{}` must be a bare secret name", s.name),
                        );
                    }
                }
            }
            match (&s.env, &s.file) {
                (Some(env), None) => self.env_target(&format!("{sat}.env"), env, &mut env_names),
                (None, Some(file)) => {
                    if self.container_path(&format!("{sat}.file"), file) && !targets.insert(file.clone()) {
                        self.push(format!("{sat}.file"), format!("`{file}` is already a mount target in this container"));
                    }
                }
                _ => self.push(sat, "give exactly one of `env` (a variable name) or `file` (a path in the container)"),
            }
        }
        for (i, l) in c.links.iter().enumerate() {
            let lat = format!("{at}.links[{i}]");
            if !deps.contains(&l.app) {
                self.push(
                    format!("{lat}.app"),
                    format!("`{}` is not among this app's dependencies", l.app),
                );
            }
            if l.address_env.is_none()
                && l.host_env.is_none()
                && l.port_env.is_none()
                && l.url_env.is_none()
            {
                self.push(
                    lat.clone(),
                    "give at least one of `address_env`, `host_env`, `port_env`, `url_env`",
                );
            }
            match (&l.url_env, &l.scheme) {
                (Some(_), None) => self.push(
                    format!("{lat}.scheme"),
                    "`url_env` needs `scheme`, such as `http` or `tcp`",
                ),
                (None, Some(_)) => self.push(
                    format!("{lat}.scheme"),
                    "`scheme` is only used with `url_env`",
                ),
                (_, Some(scheme)) if !is_scheme(scheme) => self.push(
                    format!("{lat}.scheme"),
                    format!("`{scheme}` is not a URL scheme: use lowercase letters, digits, `+`, `-` or `.`, starting with a letter"),
                ),
                _ => {}
            }
            for (key, v) in [
                ("address_env", &l.address_env),
                ("host_env", &l.host_env),
                ("port_env", &l.port_env),
                ("url_env", &l.url_env),
            ] {
                if let Some(v) = v {
                    self.env_target(&format!("{lat}.{key}"), v, &mut env_names);
                }
            }
        }

        for (i, p) in c.ports.iter().enumerate() {
            if p.container == 0 {
                self.push(format!("{at}.ports[{i}].container"), "port 0 is not a port");
            }
            if p.host < MIN_HOST_PORT {
                self.push(
                    format!("{at}.ports[{i}].host"),
                    format!("host port {} is below {MIN_HOST_PORT}: rootless containers cannot bind privileged ports; pick a port of {MIN_HOST_PORT} or more", p.host),
                );
            }
        }

        for (i, mnt) in c.volumes.iter().enumerate() {
            self.mount(&format!("{at}.volumes[{i}]"), mnt, volumes, &mut targets);
        }

        if let Some(h) = &c.health {
            if h.command.is_empty() {
                self.push(format!("{at}.health.command"), "must name a program to run");
            }
            if let [one] = h.command.as_slice() {
                if one.chars().any(char::is_whitespace) {
                    self.push(
                        format!("{at}.health.command[0]"),
                        "a one-word health command must not contain spaces: give the program and its arguments as separate words",
                    );
                }
            }
            for (i, a) in h.command.iter().enumerate() {
                self.text(&format!("{at}.health.command[{i}]"), a);
            }
            if h.interval.0 < Duration::from_secs(1) {
                self.push(format!("{at}.health.interval"), "must be at least 1s");
            }
            if h.timeout.0.is_zero() || h.timeout.0 > h.interval.0 {
                self.push(
                    format!("{at}.health.timeout"),
                    "must be more than 0 and at most the interval",
                );
            }
            if h.retries == 0 || h.retries > 100 {
                self.push(format!("{at}.health.retries"), "must be 1-100");
            }
        }
        if let Some(l) = &c.limits {
            if let Some(mem) = l.memory {
                if mem.0 < 6 << 20 {
                    self.push(
                        format!("{at}.limits.memory"),
                        "must be at least 6M (podman's minimum)",
                    );
                }
            }
            if let Some(cpus) = l.cpus {
                if !(cpus.is_finite() && cpus > 0.0 && cpus <= 256.0) {
                    self.push(
                        format!("{at}.limits.cpus"),
                        "must be a number of cores above 0, such as 0.5 or 2",
                    );
                }
            }
        }
        if let Some(u) = &c.user {
            let ok = u.split(':').count() <= 2
                && u.split(':').all(|p| {
                    !p.is_empty()
                        && p.len() <= 32
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            if !ok {
                self.push(
                    format!("{at}.user"),
                    format!("`{u}` is not `user` or `user:group` (names or numbers)"),
                );
            }
        }
        for (i, d) in c.depends_on.iter().enumerate() {
            if d == &c.name {
                self.push(
                    format!("{at}.depends_on[{i}]"),
                    "a container cannot depend on itself",
                );
            } else if !m.containers.iter().any(|o| &o.name == d) {
                self.push(
                    format!("{at}.depends_on[{i}]"),
                    format!("no container named `{d}` in this app"),
                );
            }
        }
        if let Some(t) = c.stop_timeout {
            if t.0 < Duration::from_secs(1) || t.0 > Duration::from_secs(3600) {
                self.push(format!("{at}.stop_timeout"), "must be between 1s and 1h");
            }
        }
        if let Some(t) = c.start_timeout {
            if t.0 < Duration::from_secs(10) || t.0 > Duration::from_secs(3600) {
                self.push(
                    format!("{at}.start_timeout"),
                    "must be between 10s and 1h (it includes pulling the image)",
                );
            }
        }
    }

    fn env_target(&mut self, field: &str, name: &str, seen: &mut BTreeSet<String>) {
        if !is_env_name(name) {
            self.push(field, format!("`{name}` is not a valid variable name"));
        } else if !seen.insert(name.to_owned()) {
            self.push(
                field,
                format!("variable `{name}` is set twice in this container"),
            );
        }
    }

    fn mount(
        &mut self,
        at: &str,
        mnt: &Mount,
        volumes: &BTreeSet<String>,
        targets: &mut BTreeSet<String>,
    ) {
        match (&mnt.volume, &mnt.path) {
            (Some(v), None) => {
                if !volumes.contains(v) {
                    self.push(format!("{at}.volume"), format!("no volume named `{v}` under the app's `volumes`"));
                }
            }
            (None, Some(p)) => {
                if p.starts_with('/') {
                    self.push(
                        format!("{at}.path"),
                        format!("`{p}` is a host path: only folders inside the app's own data directory can be mounted; give a relative path such as `data`"),
                    );
                } else if !is_clean_relative(p) {
                    self.push(
                        format!("{at}.path"),
                        format!("`{p}` must stay inside the app's data directory: no `..`, `.`, empty parts, `:` or `,`"),
                    );
                }
            }
            _ => self.push(at, "give exactly one of `volume` (an app volume) or `path` (a folder in the app's data directory)"),
        }
        if self.container_path(&format!("{at}.target"), &mnt.target)
            && !targets.insert(mnt.target.clone())
        {
            self.push(
                format!("{at}.target"),
                format!(
                    "`{}` is already a mount target in this container",
                    mnt.target
                ),
            );
        }
    }

    /// An absolute, normalised path inside a container. Returns whether valid.
    fn container_path(&mut self, field: &str, p: &str) -> bool {
        let ok = p.starts_with('/') && p.len() > 1 && is_clean_relative(&p[1..]);
        if !ok {
            self.push(
                field,
                format!("`{p}` must be an absolute path in the container without `..`, `:` or `,`"),
            );
        }
        ok
    }

    fn image(&mut self, field: &str, image: &str) {
        match ImageRef::parse(image) {
            Err(reason) => self.push(
                field,
                format!("`{image}` is not an image reference: {reason}"),
            ),
            Ok(r) => {
                if !r.fully_qualified {
                    self.push(field, format!("`{image}` must name its registry (e.g. `docker.io/library/...`): short names are ambiguous"));
                }
                match self.strictness {
                    Strictness::Catalog if !r.has_digest => self.push(
                        field,
                        format!("`{image}` is not pinned: catalog images need `@sha256:<digest>`"),
                    ),
                    Strictness::Local if !r.has_digest && r.tag.is_none() => self.push(
                        field,
                        format!("`{image}` has neither tag nor digest: pin it with `@sha256:<digest>` or at least a tag"),
                    ),
                    _ => {}
                }
            }
        }
    }

    fn depends_on_cycles(&mut self, m: &Manifest) {
        // Depth-first search over the in-app `depends_on` graph.
        // Returns a container on the cycle found (the one reached twice).
        fn visit<'a>(
            n: &'a str,
            graph: &BTreeMap<&'a str, Vec<&'a str>>,
            state: &mut BTreeMap<&'a str, u8>,
        ) -> Option<&'a str> {
            match state.get(n) {
                Some(1) => return Some(n),
                Some(2) => return None,
                _ => {}
            }
            state.insert(n, 1);
            for next in graph.get(n).into_iter().flatten() {
                if let Some(on_cycle) = visit(next, graph, state) {
                    return Some(on_cycle);
                }
            }
            state.insert(n, 2);
            None
        }
        // Self-edges are left out: `container` already reports them.
        let graph: BTreeMap<&str, Vec<&str>> = m
            .containers
            .iter()
            .map(|c| {
                let deps = c
                    .depends_on
                    .iter()
                    .map(String::as_str)
                    .filter(|d| *d != c.name);
                (c.name.as_str(), deps.collect())
            })
            .collect();
        let mut state = BTreeMap::new();
        for c in &m.containers {
            if let Some(on_cycle) = visit(&c.name, &graph, &mut state) {
                // Name a container on the cycle, not the one the search began at.
                let i = m
                    .containers
                    .iter()
                    .position(|o| o.name == on_cycle)
                    .unwrap_or_default();
                self.push(
                    format!("containers[{i}].depends_on"),
                    format!("containers depend on each other in a cycle through `{on_cycle}`"),
                );
                return;
            }
        }
    }

    fn exports(&mut self, m: &Manifest, secrets: &BTreeMap<String, SecretKindName>) {
        for (name, p) in &m.exports.ports {
            let at = format!("exports.ports.{name}");
            if !is_dns_label(name, 30) {
                self.push(
                    at.clone(),
                    "port names use lowercase letters, digits and dashes",
                );
            }
            if !m.containers.iter().any(|c| c.name == p.container) {
                self.push(
                    format!("{at}.container"),
                    format!("no container named `{}` in this app", p.container),
                );
            }
            if p.port == 0 {
                self.push(format!("{at}.port"), "port 0 is not a port");
            }
        }
        for (i, s) in m.exports.secrets.iter().enumerate() {
            if !secrets.contains_key(s) {
                self.push(
                    format!("exports.secrets[{i}]"),
                    format!("no generated secret named `{s}` to export"),
                );
            }
        }
    }
}

/// `http`, `tcp`, `ws`: a URL scheme per RFC 3986, lowercase, at most 16.
fn is_scheme(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 16
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

/// What bitcoind accepts before the `:` of an rpcauth line, kept to
/// characters that need no quoting anywhere.
fn is_rpc_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A file name with no directory part: what a secret or icon may be called.
fn is_bare_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `a/b/c` with no empty, `.` or `..` part and none of the characters that
/// podman's `-v` syntax or systemd would interpret.
fn is_clean_relative(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.chars().all(|c| {
                    !c.is_control() && !matches!(c, ':' | ',' | '%' | '$' | '\\' | '"' | '\'' | ' ')
                })
        })
}

/// The parts of an image reference that validation cares about.
#[derive(Debug)]
struct ImageRef {
    fully_qualified: bool,
    tag: Option<String>,
    has_digest: bool,
}

impl ImageRef {
    /// Parses `[host[:port]/]path[:tag][@sha256:hex]` per the OCI distribution
    /// reference grammar (lowercase path components).
    fn parse(s: &str) -> Result<Self, String> {
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            let hex = d
                .strip_prefix("sha256:")
                .ok_or("the digest must start with `sha256:`")?;
            if hex.len() != 64
                || !hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                return Err("a sha256 digest has 64 lowercase hex digits".into());
            }
        }
        // A tag follows the last ':' only if no '/' comes after it (else it's a port).
        let (name, tag) = match name_tag.rfind(':') {
            Some(i) if !name_tag[i..].contains('/') => (&name_tag[..i], Some(&name_tag[i + 1..])),
            _ => (name_tag, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(format!("`{t}` is not a valid tag"));
            }
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let first = parts.first().copied().unwrap_or_default();
        let fully_qualified =
            parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
        if fully_qualified {
            let host_ok = first
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
            if !host_ok {
                return Err(format!("`{first}` is not a registry host"));
            }
            parts.remove(0);
        }
        if parts.is_empty() {
            return Err("the image has no name".into());
        }
        for p in parts {
            let ok = !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                });
            if !ok {
                return Err(format!(
                    "`{p}` is not a valid name component (lowercase letters, digits, `.`, `_`, `-`)"
                ));
            }
        }
        Ok(Self {
            fully_qualified,
            tag: tag.map(str::to_owned),
            has_digest: digest.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let d = "sha256:".to_owned() + &"a".repeat(64);
        let r = ImageRef::parse(&format!("10.99.0.1:5000/hello-web:1.0@{d}")).unwrap();
        assert!(r.fully_qualified && r.has_digest && r.tag.as_deref() == Some("1.0"));
        let r = ImageRef::parse("localhost:5000/a/b").unwrap();
        assert!(r.fully_qualified && r.tag.is_none());
        assert!(!ImageRef::parse("nginx:latest").unwrap().fully_qualified);
        assert!(ImageRef::parse("docker.io/Library/nginx").is_err());
        assert!(ImageRef::parse("docker.io/library/nginx@sha256:abc").is_err());
        assert!(ImageRef::parse("docker.io/library/nginx:").is_err());
    }

    #[test]
    fn app_ids() {
        for ok in ["a", "hello-web", "bitcoin-knots", "lnd2"] {
            assert!(is_valid_app_id(ok), "{ok}");
        }
        for bad in [
            "",
            "Hello",
            "-a",
            "a-",
            "a--b",
            "1abc",
            "a_b",
            "a.b",
            &"a".repeat(41),
        ] {
            assert!(!is_valid_app_id(bad), "{bad}");
        }
    }
    /// A small valid app; `extra` is appended at the top level and
    /// `container` inside its one container.
    fn app(id: &str, extra: &str, container: &str) -> Manifest {
        let text = format!(
            "id: {id}\nname: {id}\nversion: '1'\ncategory: utilities\n{extra}\ncontainers:\n  - name: main\n    image: registry.example.org/{id}:1@sha256:{}\n{container}\n",
            "a".repeat(64)
        );
        crate::manifest::parse(Path::new("m.yml"), &text).unwrap()
    }

    fn fields(m: &Manifest) -> Vec<String> {
        validate(Path::new("m.yml"), m, Strictness::Catalog)
            .err()
            .map(|e| e.errors.into_iter().map(|e| e.field).collect())
            .unwrap_or_default()
    }

    const NODE: &str = "provides: [chain]\ngenerated_secrets:\n  - name: pw\n    kind: hex32\nexports:\n  ports:\n    rpc: { container: main, port: 1 }\n  secrets: [pw]";
    const CLIENT_DEPS: &str = "dependencies:\n  - capability: chain";
    const CLIENT_USES: &str = "    secrets:\n      - { name: pw, from: chain, env: PW }\n    links:\n      - { app: chain, port: rpc, url_env: RPC_URL, scheme: http }";

    #[test]
    fn a_dependency_names_an_app_or_a_capability_never_both() {
        let m = app("c", CLIENT_DEPS, CLIENT_USES);
        assert_eq!(fields(&m), Vec::<String>::new());
        assert!(m.dependencies[0].capability && m.dependencies[0].app == "chain");
        let yaml = serde_yaml::to_string(&m.dependencies).unwrap();
        assert_eq!(yaml.trim(), "- capability: chain");
        for bad in ["- { app: a, capability: b }", "- { optional: true }"] {
            let text = format!(
                "id: c\nname: c\nversion: '1'\ncategory: utilities\ncontainers: []\ndependencies:\n  {bad}\n"
            );
            let e = crate::manifest::parse(Path::new("m.yml"), &text).unwrap_err();
            assert_eq!(e.fields(), ["dependencies[0]"], "{e}");
            assert!(e.to_string().contains("exactly one of `app`"), "{e}");
        }
    }

    #[test]
    fn provides_and_capability_dependencies_are_checked() {
        assert_eq!(fields(&app("a", "provides: [Chain]", "")), ["provides[0]"]);
        assert_eq!(fields(&app("a", "provides: [a]", "")), ["provides[0]"]);
        assert_eq!(fields(&app("a", "provides: [x, x]", "")), ["provides[1]"]);
        assert_eq!(
            fields(&app(
                "a",
                "provides: [x]\ndependencies:\n  - capability: x",
                ""
            )),
            ["dependencies[0].capability"]
        );
    }

    #[test]
    fn rpcauth_secrets_need_a_hex_source_and_a_user() {
        let with = |secrets: &str| {
            app(
                "a",
                &format!(
                    "generated_secrets:\n  - {{ name: pw, kind: hex32 }}\n  - {{ name: h, kind: bcrypt, from: pw }}\n{secrets}"
                ),
                "",
            )
        };
        assert_eq!(
            fields(&with(
                "  - { name: r, kind: rpcauth, from: pw, user: alice }"
            )),
            Vec::<String>::new()
        );
        assert_eq!(
            fields(&with("  - { name: r, kind: rpcauth, from: pw }")),
            ["generated_secrets[2].user"]
        );
        assert_eq!(
            fields(&with("  - { name: r, kind: rpcauth, user: alice }")),
            ["generated_secrets[2].from"]
        );
        assert_eq!(
            fields(&with(
                "  - { name: r, kind: rpcauth, from: h, user: alice }"
            )),
            ["generated_secrets[2].from"]
        );
        assert_eq!(
            fields(&with(
                "  - { name: r, kind: rpcauth, from: pw, user: 'a:b' }"
            )),
            ["generated_secrets[2].user"]
        );
        assert_eq!(
            fields(&with("  - { name: r, kind: hex16, user: alice }")),
            ["generated_secrets[2].user"]
        );
    }

    #[test]
    fn url_links_need_a_scheme_and_stop_timeouts_a_sane_length() {
        let deps = "dependencies:\n  - app: b";
        let link = |l: &str| {
            app(
                "a",
                deps,
                &format!("    links:\n      - {{ app: b, port: rpc, {l} }}"),
            )
        };
        assert_eq!(
            fields(&link("url_env: U, scheme: http")),
            Vec::<String>::new()
        );
        assert_eq!(
            fields(&link("url_env: U")),
            ["containers[0].links[0].scheme"]
        );
        assert_eq!(
            fields(&link("address_env: A, scheme: http")),
            ["containers[0].links[0].scheme"]
        );
        assert_eq!(
            fields(&link("url_env: U, scheme: 'h/'")),
            ["containers[0].links[0].scheme"]
        );
        assert_eq!(
            fields(&app("a", "", "    stop_timeout: 2h")),
            ["containers[0].stop_timeout"]
        );
        assert_eq!(
            fields(&app("a", "", "    stop_timeout: 10m")),
            Vec::<String>::new()
        );
    }

    fn set_fields(apps: &[&Manifest]) -> Vec<String> {
        let f = Path::new("m.yml");
        validate_set(apps.iter().map(|m| (f, *m)))
            .err()
            .unwrap_or_default()
            .into_iter()
            .flat_map(|e| e.errors.into_iter().map(|e| e.field))
            .collect()
    }

    #[test]
    fn a_capability_is_satisfied_by_exactly_one_provider() {
        let client = app("c", CLIENT_DEPS, CLIENT_USES);
        let one = app("one", NODE, "");
        let two = app("two", NODE, "");
        assert_eq!(set_fields(&[&client, &one]), Vec::<String>::new());
        assert_eq!(set_fields(&[&client]), ["dependencies[0].capability"]);
        assert_eq!(
            set_fields(&[&client, &one, &two]),
            ["dependencies[0].capability"]
        );
        // A provider that does not export what the client reads.
        let bare = app("bare", "provides: [chain]", "");
        assert_eq!(
            set_fields(&[&client, &bare]),
            [
                "containers[0].secrets[0].name",
                "containers[0].links[0].port"
            ]
        );
        // A capability named like an app of the set.
        let named = app("chain", "", "");
        assert_eq!(set_fields(&[&one, &named]), ["provides[0]"]);
        // Optional and absent is fine.
        let optional = app(
            "o",
            "dependencies:\n  - { capability: chain, optional: true }",
            "",
        );
        assert_eq!(set_fields(&[&optional]), Vec::<String>::new());
    }

    #[test]
    fn binding_names_the_provider_everywhere_the_capability_was() {
        let client = app("c", CLIENT_DEPS, CLIENT_USES);
        let one = app("one", NODE, "");
        let optional = app(
            "o",
            "dependencies:\n  - { capability: other, optional: true }",
            "",
        );
        let f = Path::new("m.yml");
        let bound = bind_set([(f, &client), (f, &one), (f, &optional)]).unwrap();
        let c = &bound[0];
        assert_eq!(c.dependencies[0].app, "one");
        assert!(!c.dependencies[0].capability);
        assert_eq!(c.containers[0].secrets[0].from.as_deref(), Some("one"));
        assert_eq!(c.containers[0].links[0].app, "one");
        assert_eq!(bound[1], one);
        assert_eq!(
            bound[2], optional,
            "an absent optional capability stays as written"
        );
        assert_eq!(
            fields(c),
            Vec::<String>::new(),
            "a bound app is a valid app"
        );
        assert!(bind_set([(f, &client)]).is_err());
    }

    #[test]
    fn cycles_through_capabilities_are_found() {
        let a = app("a", "provides: [x]\ndependencies:\n  - capability: y", "");
        let b = app("b", "provides: [y]\ndependencies:\n  - capability: x", "");
        assert_eq!(
            set_fields(&[&a, &b]),
            ["dependencies[0].capability", "dependencies[0].capability"]
        );
    }
}
