//! Command-line arguments of the fixture apps: words (the subcommand) and
//! `--name value` or `--name=value` flags from a fixed list.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::str::FromStr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// Arguments that are not flags, in order.
    pub words: Vec<String>,
    flags: BTreeMap<String, String>,
}

impl Args {
    /// Parses `args` (without the program name); `known` lists the flag
    /// names without their dashes.
    pub fn parse(args: impl IntoIterator<Item = String>, known: &[&str]) -> Result<Self, String> {
        let mut out = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                out.words.push(arg);
                continue;
            };
            let (name, value) = if let Some((n, v)) = flag.split_once('=') {
                (n.to_owned(), v.to_owned())
            } else {
                let v = args
                    .next()
                    .ok_or_else(|| format!("--{flag} needs a value"))?;
                (flag.to_owned(), v)
            };
            if !known.contains(&name.as_str()) {
                return Err(format!(
                    "unknown flag --{name} (known: {})",
                    known
                        .iter()
                        .map(|k| format!("--{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            out.flags.insert(name, value);
        }
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    /// The flag parsed as `T`, or `default` when absent.
    pub fn value<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: `{v}` is not a valid value")),
        }
    }
}

/// Prints `program: message` and returns the exit code for bad usage.
pub fn usage_error(program: &str, message: &str) -> ExitCode {
    eprintln!("{program}: {message}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| (*s).to_owned()), &["port", "data"])
    }

    #[test]
    fn words_and_both_flag_forms() {
        let a = parse(&["health", "--port", "8081", "--data=/d"]).unwrap();
        assert_eq!(a.words, ["health"]);
        assert_eq!(a.value("port", 1u16), Ok(8081));
        assert_eq!(a.get("data"), Some("/d"));
        assert_eq!(a.value("missing", 7u16), Ok(7));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(
            parse(&["--nope", "1"])
                .unwrap_err()
                .contains("unknown flag --nope")
        );
        assert!(parse(&["--port"]).unwrap_err().contains("needs a value"));
        assert!(
            parse(&["--port", "x"])
                .unwrap()
                .value("port", 0u16)
                .is_err()
        );
    }
}
