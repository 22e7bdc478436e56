//! `fixture-chain`: a chain daemon in miniature, shaped like bitcoind's RPC.
//!
//! ```text
//! fixture-chain [--rpc-port 18443] [--data /data]
//!               [--rpcauth-file /run/secrets/rpc-password-hash] [--bind 0.0.0.0]
//! fixture-chain health [--rpc-port 18443]
//! ```
//!
//! - Every second the block height grows by one and is written to
//!   `DATA/chain.dat` (atomically); on start it continues from the height
//!   found there, so a test can tell whether the data volume survived.
//! - `GET /health` answers 200 `ok` once the last write to the data folder
//!   succeeded, 503 otherwise. No auth.
//! - `POST /rpc` with HTTP Basic auth, user `rpc` and the password whose
//!   bcrypt hash is in the rpcauth file, answers `{"height": N}`; wrong or
//!   missing credentials get 401, an unreadable hash file 500.
//! - `health` exits 0 iff `GET http://127.0.0.1:PORT/health` answers 200.
//! - With `FIXTURE_VERSION` set (the images built as other versions set
//!   it), it leaves `DATA/ran-<version>` at start, so a test can tell which
//!   versions touched the data (an update rolled back must leave no trace).

use fixture_apps::args::{Args, usage_error};
use fixture_apps::auth::{Authenticator, Verdict};
use fixture_apps::http::{self, Request, Response};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

const PROGRAM: &str = "fixture-chain";
const FLAGS: &[&str] = &["rpc-port", "data", "rpcauth-file", "bind"];
const DEFAULT_PORT: u16 = 18443;
const RPC_USER: &str = "rpc";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), FLAGS) {
        Ok(a) => a,
        Err(e) => return usage_error(PROGRAM, &e),
    };
    let port = match args.value("rpc-port", DEFAULT_PORT) {
        Ok(p) => p,
        Err(e) => return usage_error(PROGRAM, &e),
    };
    match args.words.as_slice() {
        [] => run(&args, port),
        [w] if w == "health" => http::health_check(PROGRAM, port),
        _ => usage_error(
            PROGRAM,
            "usage: fixture-chain [health] [--rpc-port N] [--data DIR] [--rpcauth-file FILE] [--bind ADDR]",
        ),
    }
}

/// What the RPC handler and the block counter share.
#[derive(Debug)]
struct Chain {
    height: AtomicU64,
    /// Why the last write to the data folder failed; `None` once it worked.
    data_error: Mutex<Option<String>>,
    auth: Authenticator,
    block_file: PathBuf,
}

impl Chain {
    fn new(data: &Path, rpcauth_file: PathBuf) -> Self {
        let block_file = data.join("chain.dat");
        let height = read_height(&block_file);
        Self {
            height: AtomicU64::new(height),
            data_error: Mutex::new(Some("no block written yet".to_owned())),
            auth: Authenticator::new(RPC_USER, rpcauth_file),
            block_file,
        }
    }

    /// Writes the current height; records whether that worked.
    fn persist(&self) {
        let h = self.height.load(Ordering::SeqCst);
        let result = write_atomically(&self.block_file, format!("{h}\n").as_bytes());
        let mut err = self
            .data_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => *err = None,
            Err(e) => {
                let msg = format!("cannot write {}: {e}", self.block_file.display());
                if err.as_deref() != Some(msg.as_str()) {
                    eprintln!("{PROGRAM}: {msg}");
                }
                *err = Some(msg);
            }
        }
    }

    /// One block.
    fn mine(&self) {
        self.height.fetch_add(1, Ordering::SeqCst);
        self.persist();
    }

    fn handle(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/health") => {
                match &*self
                    .data_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                {
                    None => Response::text(200, "ok\n"),
                    Some(e) => Response::text(503, format!("{e}\n")),
                }
            }
            ("POST", "/rpc") => match self.auth.check(req.header("authorization")) {
                Verdict::Allowed => Response::json(
                    200,
                    format!("{{\"height\": {}}}", self.height.load(Ordering::SeqCst)),
                ),
                Verdict::Denied => Response::json(401, "{\"error\": \"unauthorized\"}")
                    .header("WWW-Authenticate", "Basic realm=\"fixture-chain\""),
                Verdict::Misconfigured(m) => {
                    eprintln!("{PROGRAM}: {m}");
                    Response::text(500, format!("{m}\n"))
                }
            },
            (_, "/rpc") => Response::text(405, "use POST\n").header("Allow", "POST"),
            (_, "/health") => Response::text(405, "use GET\n").header("Allow", "GET"),
            _ => Response::text(404, "not found\n"),
        }
    }
}

fn run(args: &Args, port: u16) -> ExitCode {
    let data = PathBuf::from(args.get("data").unwrap_or("/data"));
    let rpcauth = PathBuf::from(
        args.get("rpcauth-file")
            .unwrap_or("/run/secrets/rpc-password-hash"),
    );
    let bind = match args.value("bind", IpAddr::V4(Ipv4Addr::UNSPECIFIED)) {
        Ok(b) => b,
        Err(e) => return usage_error(PROGRAM, &e),
    };
    let chain = Arc::new(Chain::new(&data, rpcauth));
    let listener = match TcpListener::bind((bind, port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{PROGRAM}: cannot listen on {bind}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "{PROGRAM}: RPC on {bind}:{port}, data in {}, height {}",
        data.display(),
        chain.height.load(Ordering::SeqCst)
    );
    chain.persist();
    if let Ok(version) = std::env::var("FIXTURE_VERSION") {
        let mark = data.join(format!("ran-{version}"));
        if let Err(e) = std::fs::write(&mark, b"") {
            eprintln!("{PROGRAM}: cannot write {}: {e}", mark.display());
        }
    }
    let miner = Arc::clone(&chain);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            miner.mine();
        }
    });
    let err = http::serve(&listener, move |req| chain.handle(req));
    eprintln!("{PROGRAM}: cannot accept connections: {err}");
    ExitCode::FAILURE
}

/// The height in `file`, or 0 when there is none yet.
fn read_height(file: &Path) -> u64 {
    match std::fs::read_to_string(file) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            eprintln!(
                "{PROGRAM}: {} does not hold a height; starting at 0",
                file.display()
            );
            0
        }),
        Err(_) => 0,
    }
}

fn write_atomically(file: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = file.with_extension("dat.tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixture_apps::auth::basic_header;

    fn req(method: &str, path: &str, auth: Option<&str>) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            headers: auth
                .map(|a| vec![("Authorization".to_owned(), a.to_owned())])
                .unwrap_or_default(),
            body: Vec::new(),
        }
    }

    #[test]
    fn healthy_once_a_block_is_written_and_height_persists() {
        let dir = tempfile::tempdir().unwrap();
        let chain = Chain::new(dir.path(), dir.path().join("hash"));
        assert_eq!(chain.handle(&req("GET", "/health", None)).status, 503);
        chain.persist();
        assert_eq!(chain.handle(&req("GET", "/health", None)).status, 200);
        chain.mine();
        chain.mine();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("chain.dat")).unwrap(),
            "2\n"
        );
        // A restart continues where the data folder left off.
        let again = Chain::new(dir.path(), dir.path().join("hash"));
        assert_eq!(again.height.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn unwritable_data_folder_is_unhealthy() {
        let dir = tempfile::tempdir().unwrap();
        let chain = Chain::new(&dir.path().join("missing"), dir.path().join("hash"));
        chain.persist();
        let r = chain.handle(&req("GET", "/health", None));
        assert_eq!(r.status, 503);
        assert!(String::from_utf8_lossy(&r.body).contains("cannot write"));
    }

    #[test]
    fn rpc_needs_the_password_behind_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let hash_file = dir.path().join("hash");
        std::fs::write(&hash_file, bcrypt::hash("pw", 4).unwrap()).unwrap();
        let chain = Chain::new(dir.path(), hash_file);
        chain.mine();
        let ok = chain.handle(&req("POST", "/rpc", Some(&basic_header("rpc", "pw"))));
        assert_eq!(
            (ok.status, ok.body.as_slice()),
            (200, &b"{\"height\": 1}"[..])
        );
        let wrong = chain.handle(&req("POST", "/rpc", Some(&basic_header("rpc", "no"))));
        assert_eq!(wrong.status, 401);
        assert!(wrong.headers.iter().any(|(n, _)| n == "WWW-Authenticate"));
        assert_eq!(chain.handle(&req("POST", "/rpc", None)).status, 401);
        assert_eq!(chain.handle(&req("GET", "/rpc", None)).status, 405);
        assert_eq!(chain.handle(&req("GET", "/", None)).status, 404);
    }

    #[test]
    fn missing_hash_file_is_a_server_error() {
        let dir = tempfile::tempdir().unwrap();
        let chain = Chain::new(dir.path(), dir.path().join("absent"));
        let r = chain.handle(&req("POST", "/rpc", Some(&basic_header("rpc", "pw"))));
        assert_eq!(r.status, 500);
    }
}
