//! The fixture apps as processes, talking over loopback the way they will
//! in containers: the wallet reaches the chain with the password whose hash
//! the chain holds, and each `health` subcommand reports what the HTTP
//! endpoint says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fixture_apps::auth::basic_header;
use fixture_apps::http;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHAIN: &str = env!("CARGO_BIN_EXE_fixture-chain");
const WALLET: &str = env!("CARGO_BIN_EXE_fixture-wallet");
const BROKEN: &str = env!("CARGO_BIN_EXE_fixture-broken");

/// Kills the process it holds when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<http::ClientResponse> {
    http::request(
        &format!("127.0.0.1:{port}"),
        "GET",
        path,
        &[],
        b"",
        Duration::from_secs(5),
    )
    .ok()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn health(bin: &str, flag: &str, port: u16) -> bool {
    Command::new(bin)
        .args(["health", flag, &port.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn start_chain(data: &Path, hash_file: &Path, port: u16) -> Running {
    Running(
        Command::new(CHAIN)
            .args(["--bind", "127.0.0.1", "--rpc-port", &port.to_string()])
            .arg("--data")
            .arg(data)
            .arg("--rpcauth-file")
            .arg(hash_file)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn wallet_reaches_the_chain_with_the_exported_password() {
    let dir = tempfile::tempdir().unwrap();
    let hash_file = dir.path().join("rpc-password-hash");
    std::fs::write(&hash_file, bcrypt::hash("s3cret", 4).unwrap()).unwrap();
    let (chain_port, wallet_port) = (free_port(), free_port());

    assert!(!health(CHAIN, "--rpc-port", chain_port), "nothing runs yet");
    let chain = start_chain(dir.path(), &hash_file, chain_port);
    wait_for("the chain's health", || {
        health(CHAIN, "--rpc-port", chain_port)
    });

    let rpc = |password: Option<&str>| {
        let auth = password.map(|p| basic_header("rpc", p));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        http::request(
            &format!("127.0.0.1:{chain_port}"),
            "POST",
            "/rpc",
            &headers,
            b"{}",
            Duration::from_secs(10),
        )
        .unwrap()
    };
    let ok = rpc(Some("s3cret"));
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).starts_with("{\"height\": "));
    assert_eq!(rpc(Some("wrong")).status, 401);
    assert_eq!(rpc(None).status, 401);

    let wallet = Running(
        Command::new(WALLET)
            .args(["--bind", "127.0.0.1", "--port", &wallet_port.to_string()])
            .env("CHAIN_RPC_ADDR", format!("localhost:{chain_port}"))
            .env("CHAIN_RPC_PASSWORD", "s3cret")
            .spawn()
            .unwrap(),
    );
    wait_for("the wallet's health", || {
        health(WALLET, "--port", wallet_port)
    });
    let page = get(wallet_port, "/").unwrap();
    let page = String::from_utf8_lossy(&page.body);
    assert!(page.contains("Chain height: <b id=\"height\">"), "{page}");

    // Once the chain is gone the wallet turns unhealthy within a poll or two.
    wait_for("a block", || chain_height(&rpc(Some("s3cret"))) >= 1);
    drop(chain);
    let written: u64 = std::fs::read_to_string(dir.path().join("chain.dat"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(written >= 1, "the chain wrote height {written}");
    wait_for("the wallet to notice", || {
        !health(WALLET, "--port", wallet_port)
    });

    // Restarted on the same data folder, the chain goes on from there and the
    // wallet recovers.
    let _chain = start_chain(dir.path(), &hash_file, chain_port);
    wait_for("the chain's health", || {
        health(CHAIN, "--rpc-port", chain_port)
    });
    assert!(chain_height(&rpc(Some("s3cret"))) >= written);
    wait_for("the wallet to recover", || {
        health(WALLET, "--port", wallet_port)
    });
    drop(wallet);
}

fn chain_height(r: &http::ClientResponse) -> u64 {
    let body = String::from_utf8_lossy(&r.body);
    body.trim_start_matches("{\"height\": ")
        .trim_end_matches('}')
        .parse()
        .unwrap_or_else(|_| panic!("not a height: {body}"))
}

#[test]
fn wallet_with_the_wrong_password_stays_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let hash_file = dir.path().join("rpc-password-hash");
    std::fs::write(&hash_file, bcrypt::hash("right", 4).unwrap()).unwrap();
    let (chain_port, wallet_port) = (free_port(), free_port());
    let _chain = start_chain(dir.path(), &hash_file, chain_port);
    wait_for("the chain's health", || {
        health(CHAIN, "--rpc-port", chain_port)
    });
    let _wallet = Running(
        Command::new(WALLET)
            .args(["--bind", "127.0.0.1", "--port", &wallet_port.to_string()])
            .env("CHAIN_RPC_ADDR", format!("127.0.0.1:{chain_port}"))
            .env("CHAIN_RPC_PASSWORD", "wrong")
            .spawn()
            .unwrap(),
    );
    wait_for("the wallet's first call", || {
        get(wallet_port, "/health")
            .is_some_and(|r| String::from_utf8_lossy(&r.body).contains("answered 401"))
    });
    assert!(!health(WALLET, "--port", wallet_port));
}

#[test]
fn wallet_without_its_environment_says_what_is_missing() {
    let out = Command::new(WALLET)
        .env_remove("CHAIN_RPC_ADDR")
        .env_remove("CHAIN_RPC_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHAIN_RPC_ADDR is not set"));
}

#[test]
fn broken_fails_in_both_ways() {
    let out = Command::new(BROKEN).arg("exit").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fixture-broken: exiting on purpose"));

    assert_eq!(
        Command::new(BROKEN)
            .arg("health")
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );
    let mut running = Running(
        Command::new(BROKEN)
            .arg("unhealthy")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        running.0.try_wait().unwrap().is_none(),
        "unhealthy must keep running"
    );
    assert_eq!(
        Command::new(BROKEN).output().unwrap().status.code(),
        Some(2),
        "no argument is a usage error"
    );
}
