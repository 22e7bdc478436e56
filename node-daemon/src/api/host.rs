//! What the node knows about its own names and addresses, for the pairing
//! text an operator reads to a client and for the names in the node's
//! certificate. Read from `/proc` (no C library call): the IPv4 addresses
//! from `/proc/net/fib_trie`, the IPv6 ones from `/proc/net/if_inet6`, the
//! name from `/proc/sys/kernel/hostname`. Everything here is best effort: a
//! missing file gives an empty answer, never an error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host's name, when the kernel has one.
pub fn hostname() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = text.trim();
    (!name.is_empty() && name != "(none)").then(|| name.to_owned())
}

/// The host's addresses a client on the network could reach: IPv4 first,
/// then global IPv6; loopback, link-local and unspecified ones left out.
pub fn addresses() -> Vec<IpAddr> {
    let v4 = std::fs::read_to_string("/proc/net/fib_trie")
        .map(|t| parse_fib_trie(&t))
        .unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/if_inet6")
        .map(|t| parse_if_inet6(&t))
        .unwrap_or_default();
    v4.into_iter()
        .map(IpAddr::V4)
        .chain(v6.into_iter().map(IpAddr::V6))
        .collect()
}

/// The local IPv4 addresses in the kernel's routing trie: a `|-- <address>`
/// line followed by a `/32 host LOCAL` line. Each appears once (the trie
/// lists them under both the `Main` and `Local` tables).
fn parse_fib_trie(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("|--") {
            last = rest.trim().parse().ok();
        } else if line.starts_with("/32") && line.contains("host LOCAL") {
            if let Some(ip) = last.take() {
                if !ip.is_loopback()
                    && !ip.is_unspecified()
                    && !ip.is_link_local()
                    && !out.contains(&ip)
                {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// Global-scope IPv6 addresses from `/proc/net/if_inet6`: one line per
/// address, `<32 hex digits> <ifindex> <prefix> <scope> <flags> <name>`.
fn parse_if_inet6(text: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(hex), Some(_index), Some(_prefix), Some(scope)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // Scope 00 is global; 10 host (loopback), 20 link, 40 site.
        if scope != "00" || hex.len() != 32 {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let ip = Ipv6Addr::from(bits);
        if !ip.is_loopback() && !ip.is_unspecified() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE: &str = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.168.1.0/24 2 0 2
        |-- 192.168.1.0
           /24 link UNICAST
        |-- 192.168.1.20
           /32 host LOCAL
        |-- 192.168.1.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 127.0.0.1
        /32 host LOCAL
     |-- 192.168.1.20
        /32 host LOCAL
     |-- 10.0.0.7
        /32 host LOCAL
";

    #[test]
    fn local_ipv4_addresses_come_from_the_routing_trie_once_each() {
        assert_eq!(
            parse_fib_trie(FIB_TRIE),
            vec![Ipv4Addr::new(192, 168, 1, 20), Ipv4Addr::new(10, 0, 0, 7)]
        );
        assert!(parse_fib_trie("garbage\n|-- nonsense\n/32 host LOCAL\n").is_empty());
    }

    #[test]
    fn only_global_ipv6_addresses_are_listed() {
        let text = "\
00000000000000000000000000000001 01 80 10 80       lo
fe80000000000000021122fffe334455 02 40 20 80     eth0
20010db8000000000000000000000020 02 40 00 80     eth0
short 02 40 00 80 eth0
";
        assert_eq!(
            parse_if_inet6(text),
            vec!["2001:db8::20".parse::<Ipv6Addr>().unwrap()]
        );
    }

    #[test]
    fn this_host_answers_without_failing() {
        // Whatever the machine has; the call must simply not fail or list
        // loopback addresses.
        assert!(addresses().iter().all(|ip| !ip.is_loopback()));
        let _ = hostname();
    }
}
