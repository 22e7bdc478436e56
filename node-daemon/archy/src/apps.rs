//! The commands that call a node with the stored session: node info, the
//! catalog, and an app's lifecycle (install, update, start, stop, restart,
//! status, uninstall, list, logs, stats). Each is one API method; with
//! `--json` its result is printed as is, otherwise as a table or key/value
//! block.

use std::fmt::Write as _;

use archipelago_api::ErrorCode;
use archipelago_api::methods::{
    AppParams, CatalogList, Empty, LogEntry, LogsParams, Method, NodeInfo, PackageInstall,
    PackageList, PackageLogs, PackageRestart, PackageStart, PackageStats, PackageStatus,
    PackageStatusMethod, PackageStop, PackageUninstall, PackageUpdate, UninstallParams,
};
use archipelago_api::rpc::StreamEvent;
use archipelago_client::Address;
use serde::Serialize;

use crate::context::Ctx;
use crate::exit::api_error_code;
use crate::output::{Out, Table, ago, bytes, duration, key_values};
use crate::pairing::confirm;
use crate::progress::ProgressView;

/// Calls `M` with the stored session.
pub async fn call<M: Method>(ctx: &Ctx, params: M::Params) -> anyhow::Result<M::Output> {
    let (entry, client) = ctx.session_client()?;
    client
        .call::<M>(params)
        .await
        .map_err(|e| ctx.call_error(&entry, e))
}

/// Calls `M` with the stored session, showing its events as they come.
pub async fn call_with_progress<M: Method>(
    ctx: &Ctx,
    params: M::Params,
) -> anyhow::Result<M::Output> {
    let (entry, client) = ctx.session_client()?;
    let mut view = ProgressView::new(ctx.json);
    let result = client
        .call_streaming::<M>(params, |event| view.event(&event))
        .await;
    view.finish();
    result.map_err(|e| ctx.call_error(&entry, e))
}

/// The serde name of an enum value (`running`, `healthy`, …).
fn wire_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub async fn info(ctx: &mut Ctx) -> anyhow::Result<()> {
    let info = call::<NodeInfo>(ctx, Empty {}).await?;
    if ctx.json {
        return Ok(ctx.out.json(&info)?);
    }
    let [l1, l5, l15] = info.cpu.load;
    let text = key_values(&[
        ("hostname", info.hostname.clone()),
        ("version", info.version.clone()),
        ("uptime", duration(info.uptime_secs)),
        (
            "apps",
            format!(
                "{} installed, {} running, {} failed",
                info.apps_installed, info.apps_running, info.apps_failed
            ),
        ),
        (
            "cpu",
            format!("{} cores, load {l1:.2} {l5:.2} {l15:.2}", info.cpu.cores),
        ),
        (
            "memory",
            format!(
                "{} available of {}",
                bytes(info.memory.available_bytes),
                bytes(info.memory.total_bytes)
            ),
        ),
        (
            "disk",
            format!(
                "{} free of {}",
                bytes(info.disk.free_bytes),
                bytes(info.disk.total_bytes)
            ),
        ),
    ]);
    Ok(ctx.out.text(&text)?)
}

pub async fn catalog(ctx: &mut Ctx) -> anyhow::Result<()> {
    let catalog = call::<CatalogList>(ctx, Empty {}).await?;
    if ctx.json {
        return Ok(ctx.out.json(&catalog)?);
    }
    let mut text = String::new();
    // Refused catalogs first: the user must see why apps are missing.
    for source in &catalog.sources {
        if let Some(error) = &source.error {
            let _ = writeln!(
                text,
                "catalog `{}` ({}) REFUSED: {error}",
                source.name, source.location
            );
        }
    }
    if catalog.apps.is_empty() {
        text.push_str("no catalog of this node offers an app");
        return Ok(ctx.out.text(&text)?);
    }
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "VERSION",
        "CATEGORY",
        "CATALOG",
        "INSTALLED",
        "NEEDS",
    ]);
    for app in &catalog.apps {
        table.row(vec![
            app.id.clone(),
            app.name.clone(),
            app.version.clone(),
            app.category.clone(),
            app.source.clone(),
            match &app.installed {
                Some(v) if app.update_available => format!("{v} → {}", app.version),
                Some(v) => v.clone(),
                None => "-".to_owned(),
            },
            if app.dependencies.is_empty() {
                "-".to_owned()
            } else {
                app.dependencies.join(", ")
            },
        ]);
    }
    text.push_str(&table.render());
    Ok(ctx.out.text(&text)?)
}

pub async fn install(ctx: &mut Ctx, id: String) -> anyhow::Result<()> {
    let status = call_with_progress::<PackageInstall>(ctx, AppParams { id }).await?;
    print_status(ctx, &status)
}

pub async fn update(ctx: &mut Ctx, id: String) -> anyhow::Result<()> {
    let params = AppParams { id: id.clone() };
    let result = call_with_progress::<PackageUpdate>(ctx, params)
        .await
        .map_err(|e| {
            // The node's message says why (the container, its exit status,
            // its last log lines): it is printed in full after this.
            if api_error_code(&e) == Some(ErrorCode::UpdateRolledBack) {
                e.context(format!(
                    "the update of {id} was rolled back: the previous version runs again"
                ))
            } else {
                e
            }
        })?;
    if ctx.json {
        return Ok(ctx.out.json(&result)?);
    }
    let how = if result.data_snapshot {
        "its data was snapshotted first"
    } else {
        "same images: no data snapshot was needed"
    };
    ctx.out.text(&format!(
        "updated {id} {} → {} ({how})",
        result.from_version, result.to_version
    ))?;
    print_status(ctx, &result.status)
}

/// Which lifecycle verb.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    Start,
    Stop,
    Restart,
    Status,
}

pub async fn lifecycle(ctx: &mut Ctx, verb: Verb, id: String) -> anyhow::Result<()> {
    let params = AppParams { id };
    let status = match verb {
        Verb::Start => call::<PackageStart>(ctx, params).await?,
        Verb::Stop => call::<PackageStop>(ctx, params).await?,
        Verb::Restart => call::<PackageRestart>(ctx, params).await?,
        Verb::Status => call::<PackageStatusMethod>(ctx, params).await?,
    };
    print_status(ctx, &status)
}

pub fn print_status(ctx: &mut Ctx, status: &PackageStatus) -> anyhow::Result<()> {
    if ctx.json {
        return Ok(ctx.out.json(status)?);
    }
    let mut pairs = vec![
        ("id", status.id.clone()),
        ("name", status.name.clone()),
        ("version", status.version.clone()),
        ("run", wire_name(&status.run)),
        ("health", wire_name(&status.health)),
    ];
    if let Some(ui) = &status.ui {
        let host = ctx
            .node_entry()
            .ok()
            .and_then(|n| Address::parse(&n.address).ok())
            .map_or_else(|| "<node>".to_owned(), |a| url_host(a.host()));
        pairs.push((
            "ui",
            format!("{}://{host}:{}{}", ui.scheme, ui.port, ui.path),
        ));
    }
    if let Some(version) = &status.update_available {
        pairs.push((
            "update",
            format!("{version} available: archy update {}", status.id),
        ));
    }
    if status.last_backup.is_some() || status.backup_overdue {
        pairs.push(("backup", backup_age(status)));
    }
    if let Some(problem) = &status.problem {
        pairs.push(("problem", problem.clone()));
    }
    let mut text = key_values(&pairs);
    if !status.containers.is_empty() {
        let mut table = Table::new(&["CONTAINER", "UNIT", "STATE", "SUB"]);
        for c in &status.containers {
            table.row(vec![
                c.name.clone(),
                c.unit.clone(),
                wire_name(&c.active_state),
                c.sub_state.clone(),
            ]);
        }
        text.push('\n');
        text.push_str(&table.render());
    }
    Ok(ctx.out.text(&text)?)
}

/// `2h 5m ago`, `3d 4h ago, overdue`, `never, overdue`.
fn backup_age(status: &PackageStatus) -> String {
    let age = status.last_backup.map_or_else(|| "never".to_owned(), ago);
    if status.backup_overdue {
        format!("{age}, overdue")
    } else {
        age
    }
}

fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

pub async fn uninstall(
    ctx: &mut Ctx,
    id: String,
    keep_data: bool,
    yes: bool,
) -> anyhow::Result<()> {
    if !yes {
        let node = ctx.node_entry()?.name;
        let what = if keep_data {
            "its data is kept"
        } else {
            "ITS DATA IS DELETED"
        };
        confirm(&format!("Uninstall {id} from {node} ({what})? [y/N] "))?;
    }
    let result =
        call_with_progress::<PackageUninstall>(ctx, UninstallParams { id, keep_data }).await?;
    if ctx.json {
        return Ok(ctx.out.json(&result)?);
    }
    let mut text = format!(
        "uninstalled {}{}\n",
        result.id,
        if result.kept_data { " (data kept)" } else { "" }
    );
    for item in &result.removed {
        let _ = writeln!(text, "  removed {item}");
    }
    Ok(ctx.out.text(&text)?)
}

pub async fn list(ctx: &mut Ctx) -> anyhow::Result<()> {
    let list = call::<PackageList>(ctx, Empty {}).await?;
    if ctx.json {
        return Ok(ctx.out.json(&list)?);
    }
    if list.apps.is_empty() {
        return Ok(ctx.out.text("no app is installed")?);
    }
    let mut table = Table::new(&[
        "ID", "NAME", "VERSION", "RUN", "HEALTH", "UPDATE", "BACKUP", "PROBLEM",
    ]);
    for app in &list.apps {
        table.row(vec![
            app.id.clone(),
            app.name.clone(),
            app.version.clone(),
            wire_name(&app.run),
            wire_name(&app.health),
            app.update_available
                .clone()
                .unwrap_or_else(|| "-".to_owned()),
            if app.last_backup.is_some() || app.backup_overdue {
                backup_age(app)
            } else {
                "-".to_owned()
            },
            app.problem.clone().unwrap_or_default(),
        ]);
    }
    Ok(ctx.out.text(&table.render())?)
}

fn log_line(entry: &LogEntry) -> String {
    let mark = if entry.stream == "stderr" { "!" } else { "|" };
    format!("{} {mark} {}", entry.container, entry.text)
}

fn print_log(out: &mut Out, json: bool, entry: &LogEntry) -> std::io::Result<()> {
    if json {
        out.json(entry)
    } else {
        out.text(&log_line(entry))
    }
}

pub async fn logs(ctx: &mut Ctx, params: LogsParams) -> anyhow::Result<()> {
    if !params.follow {
        let result = call::<PackageLogs>(ctx, params).await?;
        if ctx.json {
            return Ok(ctx.out.json(&result)?);
        }
        for entry in &result.lines {
            ctx.out.text(&log_line(entry))?;
        }
        return Ok(());
    }
    // Followed: each line as it comes (as a JSON line with --json), until
    // the node ends the stream, Ctrl-C, or the reader of stdout goes away.
    let (entry, client) = ctx.session_client()?;
    let json = ctx.json;
    let mut out = Out::new();
    let closed = tokio::sync::Notify::new();
    let mut write_error = None;
    let call = client.call_streaming::<PackageLogs>(params, |event| {
        if let StreamEvent::Log(line) = &event {
            if let Err(e) = print_log(&mut out, json, line) {
                write_error = Some(e);
            }
            if out.is_closed() || write_error.is_some() {
                closed.notify_one();
            }
        }
    });
    let outcome = tokio::select! {
        result = call => Some(result),
        () = closed.notified() => None,
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if let Some(result) = outcome {
        let result = result.map_err(|e| ctx.call_error(&entry, e))?;
        // Lines that came in the result rather than as events.
        for line in &result.lines {
            print_log(&mut out, json, line)?;
        }
    }
    Ok(())
}

pub async fn stats(ctx: &mut Ctx, id: String) -> anyhow::Result<()> {
    let stats = call::<PackageStats>(ctx, AppParams { id }).await?;
    if ctx.json {
        return Ok(ctx.out.json(&stats)?);
    }
    let mut table = Table::new(&["CONTAINER", "CPU", "MEMORY", "LIMIT"]);
    for c in &stats.containers {
        table.row(vec![
            c.container.clone(),
            format!("{:.1}%", c.cpu_percent),
            c.memory_bytes.map_or_else(|| "-".to_owned(), bytes),
            if c.memory_limit_bytes == 0 {
                "-".to_owned()
            } else {
                bytes(c.memory_limit_bytes)
            },
        ]);
    }
    Ok(ctx.out.text(&table.render())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use archipelago_api::methods::Health;

    #[test]
    fn enum_values_print_as_on_the_wire() {
        assert_eq!(wire_name(&Health::Healthy), "healthy");
        assert_eq!(
            wire_name(&archipelago_api::ActiveState::Deactivating),
            "deactivating"
        );
    }

    #[test]
    fn log_lines_mark_stderr() {
        let mut e = LogEntry {
            container: "web".into(),
            stream: "stdout".into(),
            text: "hi".into(),
        };
        assert_eq!(log_line(&e), "web | hi");
        e.stream = "stderr".into();
        assert_eq!(log_line(&e), "web ! hi");
        assert_eq!(url_host("::1"), "[::1]");
    }
}
