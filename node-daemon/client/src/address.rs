//! A node's address as people type it — `host`, `host:port`, `[v6]`,
//! `[v6]:port`, a bare IPv6 address, optionally with `https://` in front —
//! turned into the one form the client uses everywhere (`host:port`, the
//! port [`DEFAULT_PORT`] when none is given).

use std::fmt;
use std::net::Ipv6Addr;

use archipelago_api::rpc::{DEFAULT_PORT, RPC_PATH};

/// A node's host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    host: String,
    port: u16,
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError(pub String);

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddressError {}

impl Address {
    /// Reads an address as people type it.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let bad = |why: &str| AddressError(format!("`{text}` is not a node address: {why}"));
        let mut rest = text.trim();
        if let Some(without) = rest.strip_prefix("https://") {
            rest = without;
        } else if rest.contains("://") {
            return Err(bad("nodes speak https only"));
        }
        let rest = rest.strip_suffix(RPC_PATH).unwrap_or(rest);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (v6, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("`[` without `]`"))?;
            v6.parse::<Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address between the brackets"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("expected `:port` after `]`"))?,
                ),
            };
            (v6, port)
        } else if rest.parse::<Ipv6Addr>().is_ok() {
            (rest, None)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.parse::<Ipv6Addr>().is_err()
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Err(bad(
                "a host is a name or an IP address (letters, digits, `-`, `.`)",
            ));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub const fn port(&self) -> u16 {
        self.port
    }

    fn is_v6(&self) -> bool {
        self.host.parse::<Ipv6Addr>().is_ok()
    }

    /// `https://host:port/rpc`.
    pub fn rpc_url(&self) -> String {
        format!("https://{self}{RPC_PATH}")
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v6() {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        Address::parse(text).unwrap().to_string()
    }

    #[test]
    fn the_default_port_is_added() {
        assert_eq!(ok("node.local"), "node.local:7443");
        assert_eq!(ok("10.0.0.5:8443"), "10.0.0.5:8443");
        assert_eq!(ok("  Node.Local:7443 "), "node.local:7443");
    }

    #[test]
    fn ipv6_with_and_without_brackets() {
        assert_eq!(ok("::1"), "[::1]:7443");
        assert_eq!(ok("[::1]"), "[::1]:7443");
        assert_eq!(ok("[fe80::1]:9000"), "[fe80::1]:9000");
        assert_eq!(Address::parse("[::1]:9000").unwrap().host(), "::1");
    }

    #[test]
    fn an_https_url_is_accepted() {
        assert_eq!(ok("https://node.local:7443/rpc"), "node.local:7443");
        assert_eq!(ok("https://node.local/"), "node.local:7443");
        assert_eq!(
            Address::parse("node.local").unwrap().rpc_url(),
            "https://node.local:7443/rpc"
        );
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            ":7443",
            "node:0",
            "node:99999",
            "node:http",
            "http://node",
            "[::1",
            "[nope]:1",
            "[::1]x",
            "no de",
            "user@node",
            "node/path",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
    }
}
