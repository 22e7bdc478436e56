//! One interface for every kind of throwaway node: boot, run commands as
//! root or as the service user, copy files in, reboot, cut the power. The
//! nspawn flavour ([`crate::nspawn`]) is fast and used in every CI run; the
//! VM flavour gives a real kernel and a real reboot.

use crate::cmd::Result;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The service user of every node: runs archipelagod and the apps.
pub const SERVICE_USER: &str = "archipelago";
pub const SERVICE_UID: u32 = 1000;
pub const SERVICE_HOME: &str = "/var/lib/archipelago";

/// Who runs a command in a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    Root,
    /// `archipelago`, with its systemd manager's environment
    /// (`XDG_RUNTIME_DIR`, `DBUS_SESSION_BUS_ADDRESS`) set.
    ServiceUser,
}

/// What a command in a node did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A throwaway node.
pub trait Node: std::fmt::Debug {
    /// Its name, unique among the run's nodes.
    fn name(&self) -> &str;
    /// Its address inside the run's namespace: what its registry pulls and
    /// the registry's log show it as.
    fn address(&self) -> Ipv4Addr;
    /// Where a port published in the node answers, from inside the run's
    /// namespace (the node's own address for nspawn; a forwarded loopback
    /// port for a VM on user networking).
    fn port(&self, node_port: u16) -> SocketAddr;
    /// Runs `argv` to completion.
    fn exec(&self, who: RunAs, argv: &[&str]) -> Result<ExecOutput>;
    /// Writes `contents` to `dest` in the node, owned by `who`, with `mode`.
    fn copy_in(&self, contents: &[u8], dest: &str, who: RunAs, mode: u32) -> Result<()>;
    /// Reboots from inside (`systemctl reboot`) and waits until it is up
    /// again; returns how long that took.
    fn reboot(&mut self) -> Result<Duration>;
    /// Stops the node at once, with no shutdown at all.
    fn power_cut(&mut self) -> Result<()>;
    /// Boots a node that was powered off; returns the time until booted.
    fn boot(&mut self) -> Result<Duration>;
    /// Shuts the node down and removes everything it had.
    fn destroy(&mut self) -> Result<()>;
}

/// A boxed node is a node: a run holds nspawn and VM nodes alike.
impl<T: Node + ?Sized> Node for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn address(&self) -> Ipv4Addr {
        (**self).address()
    }
    fn port(&self, node_port: u16) -> SocketAddr {
        (**self).port(node_port)
    }
    fn exec(&self, who: RunAs, argv: &[&str]) -> Result<ExecOutput> {
        (**self).exec(who, argv)
    }
    fn copy_in(&self, contents: &[u8], dest: &str, who: RunAs, mode: u32) -> Result<()> {
        (**self).copy_in(contents, dest, who, mode)
    }
    fn reboot(&mut self) -> Result<Duration> {
        (**self).reboot()
    }
    fn power_cut(&mut self) -> Result<()> {
        (**self).power_cut()
    }
    fn boot(&mut self) -> Result<Duration> {
        (**self).boot()
    }
    fn destroy(&mut self) -> Result<()> {
        (**self).destroy()
    }
}
