//! `fixture-wallet`: an app that depends on `fixture-chain`.
//!
//! ```text
//! CHAIN_RPC_ADDR=host:port CHAIN_RPC_PASSWORD=… fixture-wallet [--port 8081] [--bind 0.0.0.0]
//! fixture-wallet health [--port 8081]
//! ```
//!
//! Every two seconds it calls the chain's RPC with user `rpc` and the
//! password it was given (the chain's exported secret). `GET /` shows the
//! height it last got; `GET /health` answers 200 only while the last call
//! succeeded, so the wallet is healthy exactly when the dependency wiring
//! (network, address, secret) works. `health` exits 0 iff
//! `GET http://127.0.0.1:PORT/health` answers 200.

use fixture_apps::args::{Args, usage_error};
use fixture_apps::auth::basic_header;
use fixture_apps::http::{self, Request, Response};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

const PROGRAM: &str = "fixture-wallet";
const FLAGS: &[&str] = &["port", "bind"];
const DEFAULT_PORT: u16 = 8081;
const POLL_EVERY: Duration = Duration::from_secs(2);
const RPC_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), FLAGS) {
        Ok(a) => a,
        Err(e) => return usage_error(PROGRAM, &e),
    };
    let port = match args.value("port", DEFAULT_PORT) {
        Ok(p) => p,
        Err(e) => return usage_error(PROGRAM, &e),
    };
    match args.words.as_slice() {
        [] => run(&args, port),
        [w] if w == "health" => http::health_check(PROGRAM, port),
        _ => usage_error(
            PROGRAM,
            "usage: fixture-wallet [health] [--port N] [--bind ADDR]",
        ),
    }
}

/// The outcome of the last call to the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Last {
    calls: u64,
    result: Option<Result<u64, String>>,
}

#[derive(Debug, Default)]
struct Wallet {
    chain_addr: String,
    last: Mutex<Last>,
}

impl Wallet {
    fn record(&self, result: Result<u64, String>) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = match (&last.result, &result) {
            (Some(Ok(_)), Ok(_)) => false,
            (old, new) => old.as_ref() != Some(new),
        };
        if changed {
            match &result {
                Ok(h) => eprintln!(
                    "{PROGRAM}: chain at {} answers, height {h}",
                    self.chain_addr
                ),
                Err(e) => eprintln!("{PROGRAM}: chain at {}: {e}", self.chain_addr),
            }
        }
        last.calls += 1;
        last.result = Some(result);
    }

    fn handle(&self, req: &Request) -> Response {
        let last = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/health") => match &last.result {
                Some(Ok(_)) => Response::text(200, "ok\n"),
                Some(Err(e)) => {
                    Response::text(503, format!("last call to the chain failed: {e}\n"))
                }
                None => Response::text(503, "no call to the chain yet\n"),
            },
            ("GET", "/") => Response::html(200, page(&self.chain_addr, &last)),
            _ => Response::text(404, "not found\n"),
        }
    }
}

fn page(chain: &str, last: &Last) -> String {
    let status = match &last.result {
        Some(Ok(h)) => format!("<p>Chain height: <b id=\"height\">{h}</b></p>"),
        Some(Err(e)) => format!("<p>No answer from the chain: {}</p>", escape(e)),
        None => "<p>Asking the chain…</p>".to_owned(),
    };
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Fixture Wallet</title></head>\n\
         <body><h1>Fixture Wallet</h1>\n{status}\n<p>Chain RPC at {}, {} calls so far.</p></body></html>\n",
        escape(chain),
        last.calls
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One RPC call: the chain's height, or why there is none.
fn call_chain(addr: &str, password: &str) -> Result<u64, String> {
    let auth = basic_header("rpc", password);
    let r = http::request(
        addr,
        "POST",
        "/rpc",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"method": "getblockcount"}"#,
        RPC_TIMEOUT,
    )
    .map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!(
            "answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body).trim()
        ));
    }
    parse_height(&r.body).ok_or_else(|| {
        format!(
            "answer has no height: {}",
            String::from_utf8_lossy(&r.body).trim()
        )
    })
}

/// The number after `"height":` in a JSON object (just enough JSON).
fn parse_height(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let after = &text[text.find("\"height\"")? + "\"height\"".len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let digits: &str = &after[..after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len())];
    digits.parse().ok()
}

fn env(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{name} is not set")),
    }
}

fn run(args: &Args, port: u16) -> ExitCode {
    let (addr, password) = match (env("CHAIN_RPC_ADDR"), env("CHAIN_RPC_PASSWORD")) {
        (Ok(a), Ok(p)) => (a, p),
        (Err(e), _) | (_, Err(e)) => return usage_error(PROGRAM, &e),
    };
    let bind = match args.value("bind", IpAddr::V4(Ipv4Addr::UNSPECIFIED)) {
        Ok(b) => b,
        Err(e) => return usage_error(PROGRAM, &e),
    };
    let listener = match TcpListener::bind((bind, port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{PROGRAM}: cannot listen on {bind}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("{PROGRAM}: serving on {bind}:{port}, chain RPC at {addr}");
    let wallet = Arc::new(Wallet {
        chain_addr: addr.clone(),
        last: Mutex::default(),
    });
    let poller = Arc::clone(&wallet);
    std::thread::spawn(move || {
        loop {
            poller.record(call_chain(&addr, &password));
            std::thread::sleep(POLL_EVERY);
        }
    });
    let err = http::serve(&listener, move |req| wallet.handle(req));
    eprintln!("{PROGRAM}: cannot accept connections: {err}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(w: &Wallet, path: &str) -> Response {
        w.handle(&Request {
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    #[test]
    fn parses_the_height() {
        assert_eq!(parse_height(br#"{"height": 42}"#), Some(42));
        assert_eq!(parse_height(br#"{"x":1,"height":7}"#), Some(7));
        assert_eq!(parse_height(br#"{"height": "7"}"#), None);
        assert_eq!(parse_height(br#"{"error": "unauthorized"}"#), None);
        assert_eq!(parse_height(b"\xff"), None);
    }

    #[test]
    fn healthy_only_while_the_last_call_worked() {
        let w = Wallet {
            chain_addr: "chain.fixture-chain:18443".into(),
            ..Wallet::default()
        };
        assert_eq!(get(&w, "/health").status, 503);
        w.record(Ok(12));
        assert_eq!(get(&w, "/health").status, 200);
        let page = String::from_utf8(get(&w, "/").body).unwrap();
        assert!(page.contains("<b id=\"height\">12</b>"), "{page}");
        w.record(Err("answered 401: <bad>".into()));
        let h = get(&w, "/health");
        assert_eq!(h.status, 503);
        assert!(String::from_utf8_lossy(&h.body).contains("401"));
        let page = String::from_utf8(get(&w, "/").body).unwrap();
        assert!(
            page.contains("&lt;bad&gt;") && page.contains("2 calls"),
            "{page}"
        );
        assert_eq!(get(&w, "/nope").status, 404);
    }

    #[test]
    fn an_unreachable_chain_is_an_error_not_a_hang() {
        // Port 1 on loopback: nothing listens there.
        let e = call_chain("127.0.0.1:1", "pw").unwrap_err();
        assert!(!e.is_empty());
    }
}
