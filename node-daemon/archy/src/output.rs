//! Everything archy prints on stdout goes through here: aligned tables and
//! key/value blocks for people, one JSON document for `--json`. A closed
//! pipe (`archy list | head -1`) ends the output quietly instead of
//! panicking like `println!`.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Stdout.
#[derive(Debug, Default)]
pub struct Out {
    /// Set when stdout was closed by the reader; nothing more is written.
    closed: bool,
}

impl Out {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes text (a newline is added unless it ends with one).
    pub fn text(&mut self, text: &str) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut stdout = io::stdout().lock();
        let result = if text.ends_with('\n') || text.is_empty() {
            stdout.write_all(text.as_bytes())
        } else {
            writeln!(stdout, "{text}")
        }
        .and_then(|()| stdout.flush());
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }

    /// Writes a value as one line of JSON.
    pub fn json(&mut self, value: &impl Serialize) -> io::Result<()> {
        let text = serde_json::to_string(value).map_err(io::Error::other)?;
        self.text(&text)
    }

    /// Whether the reader went away.
    pub const fn is_closed(&self) -> bool {
        self.closed
    }
}

/// A table with a header row, columns padded to their widest cell (the last
/// column is not padded).
#[derive(Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Key/value lines with the keys padded to the widest.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let pad = width - k.chars().count();
        out.push_str(k);
        out.extend(std::iter::repeat_n(' ', pad + 2));
        out.push_str(v);
        out.push('\n');
    }
    out
}

/// `1.5 GiB`, `300 MiB`, `12 KiB`, `5 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut whole = n;
    while whole >= 1024 && unit + 1 < UNITS.len() {
        whole /= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n} B");
    }
    // One decimal, computed in integers: tenths of the unit.
    let divisor = 1u128 << (10 * unit);
    let tenths = (u128::from(n) * 10 + divisor / 2) / divisor;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// `3d 4h`, `4h 5m`, `5m 6s`, `6s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `2026-11-27 21:30 UTC`.
pub fn utc_time(unix: u64) -> String {
    // Howard Hinnant's days-to-civil, in unsigned arithmetic (no date
    // before 1970 is ever shown).
    let days = unix / 86_400 + 719_468;
    let (era, doe) = (days / 146_097, days % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (hour, minute) = (unix / 3600 % 24, unix / 60 % 60);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// `2h 5m ago` (`just now` for a time not in the past).
pub fn ago(unix: u64) -> String {
    let secs = now_unix().saturating_sub(unix);
    if secs == 0 {
        return "just now".to_owned();
    }
    format!("{} ago", duration(secs))
}

/// Seconds from now until a Unix time (0 when past).
pub fn secs_until(unix: u64) -> u64 {
    unix.saturating_sub(now_unix())
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fingerprint short enough for a table: first and last four bytes.
pub fn short_fingerprint(fp: &[u8; 32]) -> String {
    let full = archipelago_api::rpc::format_fingerprint(fp);
    format!("{}…{}", &full[..11], &full[full.len() - 11..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(&["ID", "NAME", "HEALTH"]);
        t.row(vec![
            "bitcoin-knots".into(),
            "Bitcoin Knots".into(),
            "healthy".into(),
        ]);
        t.row(vec!["lnd".into(), "LND".into(), String::new()]);
        assert_eq!(
            t.render(),
            "ID             NAME           HEALTH\n\
             bitcoin-knots  Bitcoin Knots  healthy\n\
             lnd            LND\n"
        );
    }

    #[test]
    fn key_values_align_their_values() {
        assert_eq!(
            key_values(&[("a", "1".into()), ("long", "2".into())]),
            "a     1\nlong  2\n"
        );
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(5), "5 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(4 * 1024 * 1024 * 1024), "4.0 GiB");
        assert_eq!(bytes(u64::MAX), "16777216.0 TiB");
        assert_eq!(duration(6), "6s");
        assert_eq!(duration(306), "5m 6s");
        assert_eq!(duration(4 * 3600 + 300), "4h 5m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600), "3d 4h");
    }

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_time(1_795_815_000), "2026-11-27 21:30 UTC");
        assert_eq!(
            utc_time(1_795_815_000 + 86_400 * 35),
            "2027-01-01 21:30 UTC"
        );
        assert_eq!(ago(now_unix() - 7200), "2h 0m ago");
        assert_eq!(ago(now_unix() + 5), "just now");
    }

    #[test]
    fn short_fingerprints_keep_both_ends() {
        let mut fp = [0u8; 32];
        fp[0] = 0xab;
        fp[31] = 0xcd;
        assert_eq!(short_fingerprint(&fp), "ab:00:00:00…00:00:00:cd");
    }
}
