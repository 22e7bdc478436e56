//! The failed-login slowdown, so that guessing a node's password costs
//! time: after the n-th failed login in a row from one client, its next
//! attempt is refused until 2^(n-1) s have passed (at most 60 s); a success
//! resets the count. A client is an IPv4 address or an IPv6 /64 (a home or
//! a host usually has a whole /64). One client has at most one login being
//! checked at a time, so parallel guesses do not slip past the count.
//!
//! Time is passed in (monotonic, so that a clock change neither lengthens
//! nor skips a wait), which lets tests step it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use archipelago_api::{ApiError, ErrorCode};

/// Longest wait imposed after failed logins.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A client whose last failure is this old is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Clients remembered at most.
const MAX_CLIENTS: usize = 4096;

/// Failed logins per client.
#[derive(Debug, Default)]
pub(super) struct LoginThrottle {
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// Failures in a row.
    count: u32,
    last: Instant,
    /// A login of this client is being checked now.
    in_flight: bool,
}

/// One login attempt let through; until it is dropped, the client's other
/// attempts are refused.
#[derive(Debug)]
pub(super) struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    client: IpAddr,
}

impl LoginThrottle {
    /// Lets an attempt from `peer` through, or says how long to wait.
    pub(super) fn begin(&self, peer: IpAddr, now: Instant) -> Result<Attempt<'_>, ApiError> {
        let client = client_key(peer);
        let mut clients = self.lock();
        if clients.len() >= MAX_CLIENTS {
            prune(&mut clients, now);
        }
        let entry = clients.entry(client).or_insert(Failures {
            count: 0,
            last: now,
            in_flight: false,
        });
        if entry.in_flight {
            return Err(ErrorCode::TooManyAttempts
                .with("a login from this address is already being checked: try again in 1 s"));
        }
        if entry.count > 0 {
            let ready_at = entry.last + delay(entry.count);
            if now < ready_at {
                let wait = ready_at.duration_since(now);
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Err(ErrorCode::TooManyAttempts.with(format!(
                    "too many failed logins from this address: try again in {secs} s"
                )));
            }
        }
        entry.in_flight = true;
        Ok(Attempt {
            throttle: self,
            client,
        })
    }

    /// Clients remembered now.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Attempt<'_> {
    /// The password was right: the client starts afresh.
    pub(super) fn succeeded(self) {
        self.throttle.lock().remove(&self.client);
    }

    /// The password was wrong, at `now`; returns the failures in a row.
    pub(super) fn failed(self, now: Instant) -> u32 {
        let mut clients = self.throttle.lock();
        let entry = clients.entry(self.client).or_insert(Failures {
            count: 0,
            last: now,
            in_flight: true,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        entry.count
    }
}

/// Also when the login future is dropped half-way.
impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.throttle.lock().get_mut(&self.client) {
            entry.in_flight = false;
        }
    }
}

/// How long a client waits after `failures` failures in a row.
fn delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs(1 << exp).min(MAX_WAIT)
}

/// Forgets clients idle for a while; if still too many, the oldest quarter.
fn prune(clients: &mut HashMap<IpAddr, Failures>, now: Instant) {
    clients.retain(|_, f| f.in_flight || now.saturating_duration_since(f.last) < FORGET_AFTER);
    if clients.len() >= MAX_CLIENTS {
        let mut by_age: Vec<(IpAddr, Instant)> =
            clients.iter().map(|(ip, f)| (*ip, f.last)).collect();
        by_age.sort_by_key(|(_, last)| *last);
        for (ip, _) in by_age.into_iter().take(MAX_CLIENTS / 4) {
            clients.remove(&ip);
        }
    }
}

/// The unit the slowdown counts per.
fn client_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                IpAddr::V4(v4)
            } else {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_and_is_capped() {
        let secs: Vec<u64> = (1..=10).map(|n| delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert_eq!(delay(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn one_attempt_at_a_time_per_client() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = t.begin(ip, now).unwrap();
        let e = t.begin(ip, now).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooManyAttempts);
        // Dropped (the login future was cancelled): no failure counted.
        drop(first);
        t.begin(ip, now).unwrap().succeeded();
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn clients_are_ipv4_addresses_or_ipv6_slash_64s() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key("2001:db8:1:2::10"), key("2001:db8:1:2:ffff::99"));
        assert_ne!(key("2001:db8:1:2::10"), key("2001:db8:1:3::10"));
    }

    #[test]
    fn a_full_table_forgets_idle_clients_first() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..MAX_CLIENTS {
            let ip = IpAddr::V4(u32::try_from(i).unwrap().into());
            t.begin(ip, start).unwrap().failed(start);
        }
        let later = start + FORGET_AFTER;
        t.begin("198.51.100.1".parse().unwrap(), later)
            .unwrap()
            .failed(later);
        assert_eq!(t.len(), 1);
    }
}
