//! Backup files copied to and from a node, piece by piece, against the
//! crate's TLS test server playing `backup.download` and `backup.upload`:
//! byte-exact round trips, resumed downloads and uploads, and pieces that
//! do not fit refused before anything is kept.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use archipelago_api::ErrorCode;
use archipelago_api::methods::{BACKUP_CHUNK_BYTES, BackupInfo, BackupUploadResult};
use archipelago_client::test_server::{TestReply, TestRequest, TestServer, backup_chunk};
use archipelago_client::{Client, ClientError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use sha2::{Digest, Sha256};

const NAME: &str = "fixture-chain-1.0.0-20261127T213000Z.archy-backup";
/// Two whole pieces and a part of a third.
const SIZE: usize = 1_300_000;
const CHUNK: u64 = BACKUP_CHUNK_BYTES as u64;

/// Bytes that do not repeat with the piece size (xorshift).
fn data(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn client(server: &TestServer) -> Client {
    Client::new(&server.address(), server.fingerprint())
        .unwrap()
        .with_token("t")
}

/// A node serving `data` as the backup [`NAME`].
fn download_server(data: Arc<Vec<u8>>) -> TestServer {
    TestServer::start(move |req| {
        assert_eq!(req.rpc_method(), "backup.download");
        let params = req.rpc_params();
        if params["name"] != NAME {
            return TestReply::error(req, ErrorCode::BackupNotFound.with("no such backup"));
        }
        TestReply::result(
            req,
            &backup_chunk(&data, params["offset"].as_u64().unwrap()),
        )
    })
    .unwrap()
}

fn info(bytes: &[u8]) -> BackupInfo {
    BackupInfo {
        name: NAME.into(),
        app: "fixture-chain".into(),
        version: "1.0.0".into(),
        created: 1_795_815_000,
        bytes: bytes.len() as u64,
        path: format!("/var/lib/archipelago/backups/{NAME}"),
        sha256: sha256_hex(bytes),
    }
}

/// A node that keeps uploaded pieces in `stored` (which may already hold
/// the start of an earlier upload), as the API says: a piece at another
/// offset than what it has is not taken, and the answer says what it has.
fn upload_handler(stored: Arc<Mutex<Vec<u8>>>) -> impl Fn(&TestRequest) -> TestReply {
    move |req| {
        assert_eq!(req.rpc_method(), "backup.upload");
        let params = req.rpc_params();
        assert_eq!(params["name"], NAME);
        let mut stored = stored.lock().unwrap();
        if params["offset"].as_u64().unwrap() != stored.len() as u64 {
            let answer = BackupUploadResult {
                received: stored.len() as u64,
                done: None,
            };
            return TestReply::result(req, &answer);
        }
        let piece = BASE64
            .decode(params["data_base64"].as_str().unwrap())
            .unwrap();
        assert!(piece.len() <= BACKUP_CHUNK_BYTES);
        stored.extend_from_slice(&piece);
        let done = params["sha256"].as_str().map(|sha| {
            assert_eq!(sha, sha256_hex(&stored), "the file's hash");
            info(&stored)
        });
        let answer = BackupUploadResult {
            received: stored.len() as u64,
            done,
        };
        TestReply::result(req, &answer)
    }
}

fn offsets(server: &TestServer) -> Vec<u64> {
    server
        .requests()
        .iter()
        .map(|r| r.rpc_params()["offset"].as_u64().unwrap())
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_backup_downloads_and_uploads_byte_for_byte() {
    let bytes = Arc::new(data(SIZE));
    let server = download_server(Arc::clone(&bytes));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join(NAME);
    let mut seen = Vec::new();
    let got = client(&server)
        .download_backup(NAME, &dest, |done, total| seen.push((done, total)))
        .await
        .unwrap();
    assert_eq!(got.path, dest);
    assert_eq!(got.bytes, SIZE as u64);
    assert_eq!(got.sha256, sha256_hex(&bytes));
    assert_eq!(std::fs::read(&dest).unwrap(), *bytes);
    assert_eq!(mode(&dest), 0o600);
    assert!(!tmp.path().join(format!("{NAME}.part")).exists());
    let total = SIZE as u64;
    assert_eq!(seen, [(CHUNK, total), (2 * CHUNK, total), (total, total)]);
    assert_eq!(offsets(&server), [0, CHUNK, 2 * CHUNK]);

    // And back to a node.
    let stored = Arc::new(Mutex::new(Vec::new()));
    let node = TestServer::start(upload_handler(Arc::clone(&stored))).unwrap();
    let mut seen = Vec::new();
    let backup = client(&node)
        .upload_backup(&dest, NAME, |done, total| seen.push((done, total)))
        .await
        .unwrap();
    assert_eq!(*stored.lock().unwrap(), *bytes);
    assert_eq!(backup, info(&bytes));
    assert_eq!(seen.last(), Some(&(total, total)));
    let requests = node.requests();
    assert_eq!(offsets(&node), [0, CHUNK, 2 * CHUNK]);
    // The hash goes with the last piece only.
    assert_eq!(requests[0].rpc_params().get("sha256"), Some(&json!(null)));
    assert_eq!(requests[1].rpc_params().get("sha256"), Some(&json!(null)));
    assert_eq!(requests[2].rpc_params()["sha256"], sha256_hex(&bytes));
}

#[tokio::test]
async fn a_partial_download_resumes_where_it_stopped() {
    let bytes = Arc::new(data(SIZE));
    let server = download_server(Arc::clone(&bytes));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("copy.archy-backup");
    let part = tmp.path().join("copy.archy-backup.part");
    std::fs::write(&part, &bytes[..600_000]).unwrap();
    let got = client(&server)
        .download_backup(NAME, &dest, |_, _| {})
        .await
        .unwrap();
    assert_eq!(offsets(&server), [600_000, 600_000 + CHUNK]);
    assert_eq!(std::fs::read(&dest).unwrap(), *bytes);
    // The hash covers the bytes of the earlier run too.
    assert_eq!(got.sha256, sha256_hex(&bytes));
    assert_eq!(mode(&dest), 0o600);
    assert!(!part.exists());

    // A `.part` longer than the backup is not part of it.
    std::fs::write(&part, data(SIZE + 1)).unwrap();
    let err = client(&server)
        .download_backup(NAME, &dest, |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("delete it"), "{err}");
}

/// A node that answers `backup.download` wrongly in one way.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The piece after the one asked for.
    WrongOffset,
    /// One byte more than a piece may have.
    TooLarge,
    /// A total that shrinks after the first piece.
    TotalChanges,
    /// The last piece runs past the total it states.
    PastTheEnd,
    /// Says it ended before the total.
    EarlyEof,
    /// An empty piece that is not the end (would loop forever).
    Empty,
}

fn faulty_server(fault: Fault) -> TestServer {
    let bytes = data(SIZE);
    TestServer::start(move |req| {
        let offset = req.rpc_params()["offset"].as_u64().unwrap();
        let mut chunk = backup_chunk(&bytes, offset);
        match fault {
            Fault::WrongOffset => chunk = backup_chunk(&bytes, offset + CHUNK),
            Fault::TooLarge => {
                chunk.data_base64 = BASE64.encode(&bytes[..=BACKUP_CHUNK_BYTES]);
            }
            Fault::TotalChanges if offset > 0 => chunk.total -= 1,
            Fault::PastTheEnd => chunk.total = SIZE as u64 - 10,
            Fault::EarlyEof if offset > 0 => chunk.eof = true,
            Fault::Empty => {
                chunk.data_base64 = String::new();
                chunk.eof = false;
            }
            Fault::TotalChanges | Fault::EarlyEof => {}
        }
        TestReply::result(req, &chunk)
    })
    .unwrap()
}

#[tokio::test]
async fn pieces_that_do_not_fit_are_refused() {
    let cases = [
        (Fault::WrongOffset, "not the one at 0"),
        (Fault::TooLarge, "524289 bytes in one piece"),
        (Fault::TotalChanges, "then 1299999"),
        (Fault::PastTheEnd, "past the end"),
        (Fault::EarlyEof, "ends at 1048576"),
        (Fault::Empty, "empty piece"),
    ];
    for (fault, want) in cases {
        let server = faulty_server(fault);
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join(NAME);
        let err = client(&server)
            .download_backup(NAME, &dest, |_, _| {})
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Protocol { .. }),
            "{fault:?}: {err:?}"
        );
        assert!(err.to_string().contains(want), "{fault:?}: {err}");
        assert!(!dest.exists(), "{fault:?}: the file was kept");
    }
}

#[tokio::test]
async fn a_missing_backup_is_the_nodes_error_and_leaves_no_file() {
    let server = download_server(Arc::new(data(10)));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("x");
    let err = client(&server)
        .download_backup("other.archy-backup", &dest, |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BackupNotFound));
    assert!(!dest.exists());
}

#[tokio::test]
async fn an_empty_backup_downloads_and_uploads() {
    let server = download_server(Arc::new(Vec::new()));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join(NAME);
    let got = client(&server)
        .download_backup(NAME, &dest, |_, _| {})
        .await
        .unwrap();
    assert_eq!(got.bytes, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"");

    let stored = Arc::new(Mutex::new(Vec::new()));
    let node = TestServer::start(upload_handler(Arc::clone(&stored))).unwrap();
    let backup = client(&node)
        .upload_backup(&dest, NAME, |_, _| {})
        .await
        .unwrap();
    assert_eq!(backup.bytes, 0);
    assert_eq!(node.requests().len(), 1);
}

#[tokio::test]
async fn an_upload_resumes_where_the_node_stopped() {
    let bytes = data(SIZE);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(NAME);
    std::fs::write(&file, &bytes).unwrap();
    // An earlier upload broke after 700 000 bytes.
    let stored = Arc::new(Mutex::new(bytes[..700_000].to_vec()));
    let node = TestServer::start(upload_handler(Arc::clone(&stored))).unwrap();
    let mut seen = Vec::new();
    let backup = client(&node)
        .upload_backup(&file, NAME, |done, total| seen.push((done, total)))
        .await
        .unwrap();
    assert_eq!(*stored.lock().unwrap(), bytes);
    assert_eq!(backup.sha256, sha256_hex(&bytes));
    // The first piece was refused; the rest went from where the node was.
    assert_eq!(offsets(&node), [0, 700_000, 700_000 + CHUNK]);
    let total = SIZE as u64;
    assert_eq!(
        seen,
        [(700_000, total), (700_000 + CHUNK, total), (total, total)]
    );
    // The first refused piece carried no hash; the last one did.
    let requests = node.requests();
    assert_eq!(requests[0].rpc_params()["sha256"], json!(null));
    assert_eq!(requests[2].rpc_params()["sha256"], sha256_hex(&bytes));
}

#[tokio::test]
async fn an_upload_the_node_never_takes_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(NAME);
    std::fs::write(&file, data(SIZE)).unwrap();
    let node = TestServer::start(|req| {
        let answer = BackupUploadResult {
            received: 5,
            done: None,
        };
        TestReply::result(req, &answer)
    })
    .unwrap();
    let err = client(&node)
        .upload_backup(&file, NAME, |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another offset"), "{err}");
    assert_eq!(node.requests().len(), 4);

    // A node claiming more than the file holds.
    let node = TestServer::start(|req| {
        let answer = BackupUploadResult {
            received: 2_000_000,
            done: None,
        };
        TestReply::result(req, &answer)
    })
    .unwrap();
    let err = client(&node)
        .upload_backup(&file, NAME, |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than the file's"), "{err}");
}

#[tokio::test]
async fn a_missing_local_file_is_an_io_error_naming_it() {
    let node = TestServer::start(|req| TestReply::result(req, &json!({}))).unwrap();
    let err = client(&node)
        .upload_backup(Path::new("/nonexistent/x.archy-backup"), NAME, |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with("/nonexistent/x.archy-backup: "));
    assert!(node.requests().is_empty());
}

/// The desktop app runs transfers on a multi-threaded runtime.
#[test]
fn transfers_can_move_between_threads() {
    fn send_future<T: Send>(_: T) {}
    let client = Client::new("node.local", [0; 32]).unwrap();
    send_future(client.download_backup(NAME, Path::new("x"), |_, _| {}));
    send_future(client.upload_backup(Path::new("x"), NAME, |_, _| {}));
}
