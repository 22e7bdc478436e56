//! The INI form of systemd unit files, with the quoting and escaping rules
//! that Quadlet and systemd apply, so that any string a manifest may carry
//! reaches the container exactly as written.
//!
//! Two layers of interpretation sit between a unit file and `podman run`:
//! Quadlet splits some values (`Exec=`, `Environment=`) into words with
//! systemd's quoting rules, and systemd expands `%` specifiers everywhere and
//! `$VAR` in the generated `ExecStart=`. Quadlet passes both through
//! untouched, so we escape them here: `%` → `%%` in every value, and `$` →
//! `$$` in the values of the `[Container]` section (they all end up in
//! `ExecStart=`).

use std::fmt::Write as _;

/// One `[Section]` with its `Key=value` lines in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: &'static str,
    pub entries: Vec<(&'static str, String)>,
}

impl Section {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            entries: Vec::new(),
        }
    }

    /// Adds `key=value`, escaping `%` (and `$` in `[Container]`).
    pub fn add(&mut self, key: &'static str, value: impl AsRef<str>) -> &mut Self {
        let escaped = escape_specifiers(value.as_ref(), self.name == "Container");
        self.entries.push((key, escaped));
        self
    }

    /// Adds `key=value` only when `value` is `Some`.
    pub fn add_opt(&mut self, key: &'static str, value: Option<impl AsRef<str>>) -> &mut Self {
        if let Some(v) = value {
            self.add(key, v);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A whole unit file: a header comment and sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub header: Vec<String>,
    pub sections: Vec<Section>,
}

impl UnitFile {
    /// The exact text written to disk. Empty sections are left out.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "# {line}");
        }
        let mut first = self.header.is_empty();
        for section in self.sections.iter().filter(|s| !s.is_empty()) {
            if !first {
                out.push('\n');
            }
            first = false;
            let _ = writeln!(out, "[{}]", section.name);
            for (k, v) in &section.entries {
                let _ = writeln!(out, "{k}={v}");
            }
        }
        out
    }
}

fn escape_specifiers(value: &str, dollars: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' if dollars => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

/// Quotes one word so that systemd/Quadlet word splitting gives it back
/// unchanged: bare when it has no special characters, else double-quoted
/// with `\` and `"` escaped.
pub fn quote_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '\\' | ';'));
    if plain {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes and joins words for `Exec=`-style keys.
pub fn quote_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_word("plain-word"), "plain-word");
        assert_eq!(quote_word("two words"), "\"two words\"");
        assert_eq!(quote_word(""), "\"\"");
        assert_eq!(quote_word(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote_word("x;y"), "\"x;y\"");
    }

    #[test]
    fn escaping_depends_on_section() {
        let mut c = Section::new("Container");
        c.add("Exec", "echo $HOME 100%");
        let mut u = Section::new("Unit");
        u.add("Description", "costs $5, 100%");
        let f = UnitFile {
            header: vec!["hello".into()],
            sections: vec![u, Section::new("Empty"), c],
        };
        assert_eq!(
            f.to_text(),
            "# hello\n\n[Unit]\nDescription=costs $5, 100%%\n\n[Container]\nExec=echo $$HOME 100%%\n"
        );
    }
}
