//! The node's own vital signs for `node.info`: uptime, memory, load, disk
//! (its names and addresses are [`crate::api`]'s, for pairing).
//! Read from `/proc` and `statvfs`, parsed by pure functions that tests feed
//! with sample text.

use archipelago_api::methods::{CpuInfo, DiskInfo, MemoryInfo};
use std::path::Path;

/// Seconds since boot, from `/proc/uptime` (`"12345.67 2345.12"`).
pub fn parse_uptime(text: &str) -> Option<u64> {
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    // Truncation is the point: whole seconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(secs.max(0.0) as u64)
}

/// Total and available memory from `/proc/meminfo` (values in kB).
pub fn parse_meminfo(text: &str) -> Option<MemoryInfo> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some(MemoryInfo {
        total_bytes: field("MemTotal")?,
        available_bytes: field("MemAvailable")?,
    })
}

/// The three load averages from `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}

/// Uptime in seconds (0 when unknown).
pub fn uptime() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| parse_uptime(&t))
        .unwrap_or(0)
}

/// Memory totals (zeros when unknown).
pub fn memory() -> MemoryInfo {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo(&t))
        .unwrap_or(MemoryInfo {
            total_bytes: 0,
            available_bytes: 0,
        })
}

/// Cores and load.
pub fn cpu() -> CpuInfo {
    CpuInfo {
        cores: std::thread::available_parallelism()
            .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        load: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| parse_loadavg(&t))
            .unwrap_or([0.0; 3]),
    }
}

/// Size and free space of the filesystem holding `path` (or its nearest
/// existing parent); zeros when it cannot be read.
pub fn disk(path: &Path) -> DiskInfo {
    let mut at = Some(path);
    while let Some(p) = at {
        if let Ok(s) = rustix::fs::statvfs(p) {
            return DiskInfo {
                total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
                free_bytes: s.f_bavail.saturating_mul(s.f_frsize),
            };
        }
        at = p.parent();
    }
    DiskInfo {
        total_bytes: 0,
        free_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        assert_eq!(parse_uptime("3723.45 7000.01\n"), Some(3723));
        assert_eq!(parse_uptime(""), None);
        let m = parse_meminfo(
            "MemTotal:       24558648 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n",
        )
        .unwrap();
        assert_eq!(m.total_bytes, 24_558_648 * 1024);
        assert_eq!(m.available_bytes, 20_000_000 * 1024);
        assert!(parse_meminfo("MemTotal: 5 kB\n").is_none());
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 1/467 12345\n"),
            Some([0.52, 0.58, 0.59])
        );
    }

    #[test]
    fn disk_of_a_missing_path_is_its_parent() {
        let d = disk(Path::new("/tmp/does/not/exist/anywhere"));
        assert!(d.total_bytes > 0);
    }
}
