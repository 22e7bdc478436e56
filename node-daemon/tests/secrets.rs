//! The secret store against a real file system: generation, idempotence,
//! self-healing, crash leftovers, symlinks, env files and uninstall.
//!
//! The suite runs as root (as CI does) so that a file can be given to
//! another owner.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use archipelagod::fsutil::TEMP_PREFIX;
use archipelagod::layout::Layout;
use archipelagod::manifest::{self, Manifest, Strictness};
use archipelagod::secrets::{
    MIN_BCRYPT_COST, Problem, Repair, SecretError, SecretReport, SecretStore,
};
use tempfile::TempDir;

const ALPHA: &str = r"
id: alpha
name: Alpha
version: '1.0'
category: utilities
generated_secrets:
  # The hash comes before its source on purpose: order must not matter.
  - name: admin-hash
    kind: bcrypt
    from: admin-password
  - name: admin-password
    kind: hex16
  - name: db-key
    kind: hex32
  - name: api-token
    kind: hex16
exports:
  secrets: [api-token]
containers:
  - name: web
    image: docker.io/library/nginx:1.27
    secrets:
      - name: api-token
        env: API_TOKEN
      - name: admin-hash
        env: ADMIN_HASH
      - name: db-key
        file: /run/secrets/db-key
  - name: db
    image: docker.io/library/postgres:17
    secrets:
      - name: db-key
        env: DB_KEY
      - name: admin-password
        env: ADMIN_PASSWORD
  - name: cache
    image: docker.io/library/redis:7
";

/// ALPHA after an upgrade in which `db` takes its key as a file instead.
const ALPHA_DB_FILE_ONLY: &str = r"
id: alpha
name: Alpha
version: '1.1'
category: utilities
generated_secrets:
  - name: admin-hash
    kind: bcrypt
    from: admin-password
  - name: admin-password
    kind: hex16
  - name: db-key
    kind: hex32
  - name: api-token
    kind: hex16
exports:
  secrets: [api-token]
containers:
  - name: web
    image: docker.io/library/nginx:1.27
    secrets:
      - name: api-token
        env: API_TOKEN
      - name: admin-hash
        env: ADMIN_HASH
  - name: db
    image: docker.io/library/postgres:17
    secrets:
      - name: db-key
        file: /run/secrets/db-key
";

const BETA: &str = r"
id: beta
name: Beta
version: '2.0'
category: utilities
dependencies:
  - app: alpha
generated_secrets:
  - name: own-token
    kind: hex32
containers:
  - name: main
    image: docker.io/library/busybox:1
    secrets:
      - name: api-token
        from: alpha
        env: ALPHA_TOKEN
      - name: own-token
        env: OWN_TOKEN
";

struct Node {
    _home: TempDir,
    layout: Layout,
    store: SecretStore,
}

impl Node {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(home.path());
        let store = SecretStore::new(layout.clone()).with_bcrypt_cost(MIN_BCRYPT_COST);
        Self {
            _home: home,
            layout,
            store,
        }
    }

    fn secret(&self, app: &str, name: &str) -> PathBuf {
        self.layout.secret_file(app, name)
    }

    fn value(&self, app: &str, name: &str) -> String {
        fs::read_to_string(self.secret(app, name)).unwrap()
    }
}

fn manifest(yaml: &str) -> Manifest {
    let m = manifest::parse(Path::new("m.yml"), yaml).unwrap();
    manifest::validate(Path::new("m.yml"), &m, Strictness::Local).unwrap();
    m
}

fn alpha() -> Manifest {
    manifest(ALPHA)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn repair(secret: &str, problem: Problem) -> Repair {
    Repair {
        secret: secret.to_owned(),
        problem,
    }
}

/// Every file and folder under `dir` with what would betray a write, a
/// rename or a chmod: content, inode, mode, mtime and ctime.
type Snapshot = BTreeMap<PathBuf, (Vec<u8>, u64, u32, i64, i64, i64, i64)>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let content = if meta.is_dir() {
                todo.push(path.clone());
                Vec::new()
            } else {
                fs::read(&path).unwrap()
            };
            out.insert(
                path,
                (
                    content,
                    meta.ino(),
                    meta.mode(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    meta.ctime(),
                    meta.ctime_nsec(),
                ),
            );
        }
    }
    out
}

#[test]
fn first_materialise_generates_every_kind_private_and_owned() {
    let node = Node::new();
    let report = node.store.materialise(&alpha()).unwrap();

    let mut generated = report.generated.clone();
    generated.sort();
    assert_eq!(
        generated,
        ["admin-hash", "admin-password", "api-token", "db-key"]
    );
    assert!(report.repaired.is_empty(), "{report:?}");
    let mut written = report.env_files_written.clone();
    written.sort();
    assert_eq!(written, ["db", "web"], "no env file for `cache`");

    let password = node.value("alpha", "admin-password");
    assert!(
        is_lower_hex(&password, 32),
        "hex16: {} chars",
        password.len()
    );
    assert!(is_lower_hex(&node.value("alpha", "api-token"), 32));
    assert!(is_lower_hex(&node.value("alpha", "db-key"), 64));
    assert_ne!(password, node.value("alpha", "api-token"), "random");
    let hash = node.value("alpha", "admin-hash");
    assert!(hash.starts_with("$2"), "a bcrypt hash");
    assert!(bcrypt::verify(&password, &hash).unwrap());
    assert_eq!(
        node.store.read("alpha", "admin-password").unwrap(),
        Some(password)
    );

    let app_dir = node.layout.app_secrets_dir("alpha");
    for dir in [
        node.layout.secrets_root.clone(),
        app_dir.clone(),
        node.layout.secret_files_dir("alpha"),
        node.layout.env_files_dir("alpha"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        assert_eq!(fs::metadata(&dir).unwrap().uid(), euid());
    }
    let files = snapshot(&app_dir);
    let regular: Vec<_> = files.iter().filter(|(p, _)| p.is_file()).collect();
    assert_eq!(regular.len(), 6, "4 secrets + 2 env files: {files:#?}");
    for (path, _) in regular {
        assert_eq!(mode(path), 0o600, "{}", path.display());
        assert_eq!(fs::metadata(path).unwrap().uid(), euid());
        assert!(!fs::read(path).unwrap().ends_with(b"\n\n"));
    }
    assert!(
        !fs::read(node.secret("alpha", "db-key"))
            .unwrap()
            .ends_with(b"\n")
    );
}

#[test]
fn second_materialise_changes_nothing() {
    let node = Node::new();
    let app = alpha();
    assert!(node.store.materialise(&app).unwrap().changed());
    let before = snapshot(&node.layout.secrets_root);

    let report = node.store.materialise(&app).unwrap();
    assert!(!report.changed(), "{report:?}");
    assert_eq!(report, SecretReport::default());
    assert_eq!(snapshot(&node.layout.secrets_root), before);

    // A fresh store (daemon restart) also leaves everything as it is.
    let restarted = SecretStore::new(node.layout.clone()).with_bcrypt_cost(MIN_BCRYPT_COST);
    assert!(!restarted.materialise(&app).unwrap().changed());
    assert_eq!(snapshot(&node.layout.secrets_root), before);
}

#[test]
fn wrong_mode_is_repaired_keeping_the_value() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let token = node.secret("alpha", "api-token");
    let key = node.secret("alpha", "db-key");
    let (token_value, key_value) = (
        node.value("alpha", "api-token"),
        node.value("alpha", "db-key"),
    );
    fs::set_permissions(&token, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o000)).unwrap();
    let files_dir = node.layout.secret_files_dir("alpha");
    fs::set_permissions(&files_dir, fs::Permissions::from_mode(0o755)).unwrap();

    let report = node.store.materialise(&app).unwrap();
    assert_eq!(
        report.repaired,
        [
            repair("db-key", Problem::WrongMode(0)),
            repair("api-token", Problem::WrongMode(0o644)),
        ]
    );
    assert!(report.generated.is_empty() && report.env_files_written.is_empty());
    assert_eq!(
        (mode(&token), mode(&key), mode(&files_dir)),
        (0o600, 0o600, 0o700)
    );
    assert_eq!(node.value("alpha", "api-token"), token_value);
    assert_eq!(node.value("alpha", "db-key"), key_value);
    assert!(!node.store.materialise(&app).unwrap().changed());
}

#[test]
fn wrong_owner_is_repaired_keeping_the_value() {
    assert_eq!(
        euid(),
        0,
        "this test needs root: run the suite as root as CI does"
    );
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let token = node.secret("alpha", "api-token");
    let value = node.value("alpha", "api-token");
    std::os::unix::fs::chown(&token, Some(12345), Some(12345)).unwrap();
    fs::set_permissions(&token, fs::Permissions::from_mode(0o640)).unwrap();

    let report = node.store.materialise(&app).unwrap();
    assert_eq!(
        report.repaired,
        [
            repair("api-token", Problem::WrongMode(0o640)),
            repair("api-token", Problem::WrongOwner(12345)),
        ]
    );
    let meta = fs::metadata(&token).unwrap();
    assert_eq!((meta.uid(), mode(&token)), (euid(), 0o600));
    assert_eq!(node.value("alpha", "api-token"), value);
    assert!(
        report.env_files_written.is_empty(),
        "same value: env file untouched"
    );
    assert!(!node.store.materialise(&app).unwrap().changed());

    let env = node.layout.env_file("alpha", "db");
    let content = fs::read(&env).unwrap();
    std::os::unix::fs::chown(&env, Some(12345), None).unwrap();
    let report = node.store.materialise(&app).unwrap();
    assert_eq!(
        report.repaired,
        [repair("env/db.env", Problem::WrongOwner(12345))]
    );
    assert!(report.env_files_written.is_empty());
    assert_eq!(fs::metadata(&env).unwrap().uid(), euid());
    assert_eq!(fs::read(&env).unwrap(), content);
    assert!(!node.store.materialise(&app).unwrap().changed());
}

#[test]
fn empty_and_corrupt_secrets_are_regenerated() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let old_token = node.value("alpha", "api-token");
    let old_key = node.value("alpha", "db-key");
    let old_password = node.value("alpha", "admin-password");
    fs::write(node.secret("alpha", "api-token"), "").unwrap();
    // Right length for hex16 but the kind is hex32.
    fs::write(node.secret("alpha", "db-key"), &old_key[..32]).unwrap();
    // Right length, not lowercase hex.
    fs::write(
        node.secret("alpha", "admin-password"),
        format!("g{}", &old_password[1..]),
    )
    .unwrap();

    let report = node.store.materialise(&app).unwrap();
    let mut repaired = report.repaired.clone();
    repaired.sort_by(|a, b| a.secret.cmp(&b.secret));
    assert_eq!(
        repaired,
        [
            // The source changed, so its hash no longer verifies.
            repair("admin-hash", Problem::Mismatch),
            repair("admin-password", Problem::Corrupt),
            repair("api-token", Problem::Empty),
            repair("db-key", Problem::Corrupt),
        ]
    );
    let token = node.value("alpha", "api-token");
    let key = node.value("alpha", "db-key");
    let password = node.value("alpha", "admin-password");
    assert!(is_lower_hex(&token, 32) && token != old_token);
    assert!(is_lower_hex(&key, 64) && key != old_key);
    assert!(is_lower_hex(&password, 32) && password != old_password);
    assert!(bcrypt::verify(&password, &node.value("alpha", "admin-hash")).unwrap());
    let web_env = fs::read_to_string(node.layout.env_file("alpha", "web")).unwrap();
    assert!(web_env.contains(&format!("API_TOKEN={token}\n")));
    assert!(!node.store.materialise(&app).unwrap().changed());
}

#[test]
fn corrupt_bcrypt_hash_is_recomputed_from_the_unchanged_source() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let password = node.value("alpha", "admin-password");
    let hash_file = node.secret("alpha", "admin-hash");
    // Well-formed but of a cost that would take days to verify.
    let too_costly = bcrypt::hash(&password, MIN_BCRYPT_COST)
        .unwrap()
        .replacen("$04$", "$31$", 1);
    for corrupt in ["not a hash", "$2b$04$tooshort", &too_costly] {
        fs::write(&hash_file, corrupt).unwrap();
        let report = node.store.materialise(&app).unwrap();
        assert_eq!(
            report.repaired,
            [repair("admin-hash", Problem::Corrupt)],
            "{corrupt}"
        );
        assert_eq!(node.value("alpha", "admin-password"), password);
        assert!(bcrypt::verify(&password, &node.value("alpha", "admin-hash")).unwrap());
    }
    // A well-formed hash of another password does not verify.
    fs::write(
        &hash_file,
        bcrypt::hash("something else", MIN_BCRYPT_COST).unwrap(),
    )
    .unwrap();
    let report = node.store.materialise(&app).unwrap();
    assert_eq!(report.repaired, [repair("admin-hash", Problem::Mismatch)]);
    assert!(bcrypt::verify(&password, &node.value("alpha", "admin-hash")).unwrap());
}

#[test]
fn source_changed_by_hand_gets_its_bcrypt_hash_recomputed() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let chosen = "0123456789abcdef0123456789abcdef";
    // As an editor would save it: with a trailing newline, which is tolerated.
    fs::write(
        node.secret("alpha", "admin-password"),
        format!("{chosen}\n"),
    )
    .unwrap();

    let report = node.store.materialise(&app).unwrap();
    assert_eq!(report.repaired, [repair("admin-hash", Problem::Mismatch)]);
    assert!(report.generated.is_empty());
    assert_eq!(
        node.store
            .read("alpha", "admin-password")
            .unwrap()
            .as_deref(),
        Some(chosen)
    );
    assert!(bcrypt::verify(chosen, &node.value("alpha", "admin-hash")).unwrap());
    let db_env = fs::read_to_string(node.layout.env_file("alpha", "db")).unwrap();
    assert!(
        db_env.contains(&format!("ADMIN_PASSWORD={chosen}\n")),
        "{db_env}"
    );
    assert!(!node.store.materialise(&app).unwrap().changed());
}

#[test]
fn crash_between_temp_write_and_rename_before_first_secret() {
    let node = Node::new();
    let app = alpha();
    // What a crash inside the first `atomic_write` leaves: the folders, a
    // half-written temporary file and no secret.
    let files_dir = node.layout.secret_files_dir("alpha");
    fs::create_dir_all(&files_dir).unwrap();
    let temp = files_dir.join(format!("{TEMP_PREFIX}api-token.4242"));
    fs::write(&temp, "0123456789ab").unwrap();

    let report = node.store.materialise(&app).unwrap();
    assert!(!temp.exists());
    assert!(report.repaired.contains(&repair(
        &format!("files/{TEMP_PREFIX}api-token.4242"),
        Problem::StaleTemp
    )));
    assert!(report.generated.contains(&"api-token".to_owned()));
    assert!(is_lower_hex(&node.value("alpha", "api-token"), 32));
    assert_eq!(mode(&files_dir), 0o700);
    assert!(!node.store.materialise(&app).unwrap().changed());
}

#[test]
fn crash_between_temp_write_and_rename_keeps_the_existing_secret() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let value = node.value("alpha", "db-key");
    let before = snapshot(&node.layout.secrets_root);
    let temp = node
        .layout
        .secret_files_dir("alpha")
        .join(format!("{TEMP_PREFIX}db-key.777"));
    fs::write(&temp, "ffff").unwrap();
    let env_temp = node
        .layout
        .env_files_dir("alpha")
        .join(format!("{TEMP_PREFIX}web.env.778"));
    fs::write(&env_temp, "API_TOKEN=").unwrap();

    // The crash took the daemon with it: the next pass is a new store's.
    let restarted = SecretStore::new(node.layout.clone()).with_bcrypt_cost(MIN_BCRYPT_COST);
    let report = restarted.materialise(&app).unwrap();
    assert_eq!(
        report.repaired,
        [
            repair(
                &format!("files/{TEMP_PREFIX}db-key.777"),
                Problem::StaleTemp
            ),
            repair(&format!("env/{TEMP_PREFIX}web.env.778"), Problem::StaleTemp),
        ]
    );
    assert!(report.generated.is_empty() && report.env_files_written.is_empty());
    assert!(!temp.exists() && !env_temp.exists());
    assert_eq!(node.value("alpha", "db-key"), value);
    // Everything but the folders' times is as before.
    let after = snapshot(&node.layout.secrets_root);
    let files = |s: &Snapshot| {
        s.iter()
            .filter(|(p, _)| !p.is_dir())
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(files(&after), files(&before));
    assert!(!restarted.materialise(&app).unwrap().changed());
}

#[test]
fn deep_check_sweeps_a_running_store_again() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let temp = node
        .layout
        .secret_files_dir("alpha")
        .join(format!("{TEMP_PREFIX}db-key.99"));
    fs::write(&temp, "ff").unwrap();
    let stray = node.layout.env_file("alpha", "gone");
    fs::write(&stray, "X=1\n").unwrap();

    node.store.forget_verified();
    let report = node.store.materialise(&app).unwrap();
    assert_eq!(
        report.repaired,
        [repair(
            &format!("files/{TEMP_PREFIX}db-key.99"),
            Problem::StaleTemp
        )]
    );
    assert_eq!(report.env_files_removed, ["gone"]);
    assert!(!temp.exists() && !stray.exists());
    assert!(report.generated.is_empty() && report.env_files_written.is_empty());
    assert!(!node.store.materialise(&app).unwrap().changed());
}

#[test]
fn symlink_in_place_of_a_secret_is_replaced_and_its_target_untouched() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let outside = node.layout.data_root.join("elsewhere");
    fs::create_dir_all(&node.layout.data_root).unwrap();
    // A valid-looking value, so that following the link would accept it.
    let planted = "00000000000000000000000000000000";
    fs::write(&outside, planted).unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).unwrap();
    let token = node.secret("alpha", "api-token");
    fs::remove_file(&token).unwrap();
    symlink(&outside, &token).unwrap();

    let report = node.store.materialise(&app).unwrap();
    assert_eq!(report.repaired, [repair("api-token", Problem::Symlink)]);
    let meta = fs::symlink_metadata(&token).unwrap();
    assert!(meta.file_type().is_file(), "a regular file now");
    assert_eq!(mode(&token), 0o600);
    let value = node.value("alpha", "api-token");
    assert!(is_lower_hex(&value, 32) && value != planted);
    assert_eq!(fs::read_to_string(&outside).unwrap(), planted);
    assert_eq!(mode(&outside), 0o644);
    assert!(!node.store.materialise(&app).unwrap().changed());
}

#[test]
fn dangling_symlink_and_directory_in_place_of_secrets_are_replaced() {
    let node = Node::new();
    let app = alpha();
    let files_dir = node.layout.secret_files_dir("alpha");
    fs::create_dir_all(files_dir.join("db-key/inner")).unwrap();
    let target = node.layout.data_root.join("would-be-created");
    symlink(&target, files_dir.join("api-token")).unwrap();

    let report = node.store.materialise(&app).unwrap();
    let mut repaired = report.repaired.clone();
    repaired.sort_by(|a, b| a.secret.cmp(&b.secret));
    assert_eq!(
        repaired,
        [
            repair("api-token", Problem::Symlink),
            repair("db-key", Problem::NotAFile),
        ]
    );
    assert!(!target.exists(), "the link was not followed");
    assert!(
        fs::symlink_metadata(node.secret("alpha", "api-token"))
            .unwrap()
            .is_file()
    );
    assert!(is_lower_hex(&node.value("alpha", "db-key"), 64));
}

#[test]
fn env_files_hold_exactly_the_containers_secret_variables() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let v = |name| node.value("alpha", name);

    let web = node.layout.env_file("alpha", "web");
    let db = node.layout.env_file("alpha", "db");
    assert_eq!(
        fs::read_to_string(&web).unwrap(),
        format!(
            "ADMIN_HASH={}\nAPI_TOKEN={}\n",
            v("admin-hash"),
            v("api-token")
        )
    );
    assert_eq!(
        fs::read_to_string(&db).unwrap(),
        format!(
            "ADMIN_PASSWORD={}\nDB_KEY={}\n",
            v("admin-password"),
            v("db-key")
        )
    );
    assert_eq!((mode(&web), mode(&db)), (0o600, 0o600));
    assert!(!node.layout.env_file("alpha", "cache").exists());
    let names: Vec<_> = fs::read_dir(node.layout.env_files_dir("alpha"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn tampered_env_file_is_rewritten() {
    let node = Node::new();
    let app = alpha();
    node.store.materialise(&app).unwrap();
    let web = node.layout.env_file("alpha", "web");
    let good = fs::read_to_string(&web).unwrap();

    fs::write(&web, format!("{good}EXTRA=1\n")).unwrap();
    let report = node.store.materialise(&app).unwrap();
    assert_eq!(report.env_files_written, ["web"]);
    assert!(report.repaired.is_empty() && report.generated.is_empty());
    assert_eq!(fs::read_to_string(&web).unwrap(), good);

    // Right content, wrong mode: a repair, not a new content.
    let ino = fs::metadata(&web).unwrap().ino();
    fs::set_permissions(&web, fs::Permissions::from_mode(0o644)).unwrap();
    let report = node.store.materialise(&app).unwrap();
    assert_eq!(
        report.repaired,
        [repair("env/web.env", Problem::WrongMode(0o644))]
    );
    assert!(report.env_files_written.is_empty());
    assert_eq!(mode(&web), 0o600);
    assert_eq!(fs::metadata(&web).unwrap().ino(), ino, "chmod, not rewrite");

    fs::remove_file(&web).unwrap();
    symlink(node.secret("alpha", "db-key"), &web).unwrap();
    assert_eq!(
        node.store.materialise(&app).unwrap().env_files_written,
        ["web"]
    );
    assert!(fs::symlink_metadata(&web).unwrap().is_file());
    assert_eq!(fs::read_to_string(&web).unwrap(), good);
    assert!(!node.store.materialise(&app).unwrap().changed());
}

#[test]
fn env_file_is_removed_when_its_container_no_longer_takes_env_secrets() {
    let node = Node::new();
    node.store.materialise(&alpha()).unwrap();
    let db = node.layout.env_file("alpha", "db");
    assert!(db.exists());
    let key = node.value("alpha", "db-key");

    let upgraded = manifest(ALPHA_DB_FILE_ONLY);
    let report = node.store.materialise(&upgraded).unwrap();
    assert_eq!(report.env_files_removed, ["db"]);
    assert!(report.env_files_written.is_empty() && report.generated.is_empty());
    assert!(!db.exists());
    assert!(node.layout.env_file("alpha", "web").exists());
    assert_eq!(
        node.value("alpha", "db-key"),
        key,
        "the secret itself stays"
    );
    assert!(!node.store.materialise(&upgraded).unwrap().changed());
}

#[test]
fn dependency_secret_is_read_from_the_dependency() {
    let node = Node::new();
    let beta = manifest(BETA);
    manifest::validate_set([(Path::new("a.yml"), &alpha()), (Path::new("b.yml"), &beta)]).unwrap();

    node.store.materialise(&alpha()).unwrap();
    let report = node.store.materialise(&beta).unwrap();
    assert_eq!(report.generated, ["own-token"]);
    let env = fs::read_to_string(node.layout.env_file("beta", "main")).unwrap();
    assert_eq!(
        env,
        format!(
            "ALPHA_TOKEN={}\nOWN_TOKEN={}\n",
            node.value("alpha", "api-token"),
            node.value("beta", "own-token")
        )
    );
    assert!(
        !node
            .layout
            .secret_files_dir("beta")
            .join("api-token")
            .exists()
    );
    assert!(!node.store.materialise(&beta).unwrap().changed());

    // The dependency's secret was repaired to a new value: follow it.
    fs::write(node.secret("alpha", "api-token"), "").unwrap();
    node.store.materialise(&alpha()).unwrap();
    assert_eq!(
        node.store.materialise(&beta).unwrap().env_files_written,
        ["main"]
    );
    let env = fs::read_to_string(node.layout.env_file("beta", "main")).unwrap();
    assert!(env.starts_with(&format!(
        "ALPHA_TOKEN={}\n",
        node.value("alpha", "api-token")
    )));
}

#[test]
fn missing_dependency_secret_is_an_error() {
    let node = Node::new();
    let err = node.store.materialise(&manifest(BETA)).unwrap_err();
    match &err {
        SecretError::DependencySecretMissing { app, from, name } => {
            assert_eq!(
                (app.as_str(), from.as_str(), name.as_str()),
                ("beta", "alpha", "api-token")
            );
        }
        other => panic!("wrong error: {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("install and reconcile `alpha`"),
        "{message}"
    );
    assert!(!node.layout.env_file("beta", "main").exists());
}

#[test]
fn remove_app_deletes_the_apps_secrets_and_nothing_else() {
    let node = Node::new();
    node.store.materialise(&alpha()).unwrap();
    node.store.materialise(&manifest(BETA)).unwrap();
    let alpha_before = snapshot(&node.layout.app_secrets_dir("alpha"));

    node.store.remove_app("beta").unwrap();
    assert!(!node.layout.app_secrets_dir("beta").exists());
    assert_eq!(mode(&node.layout.secrets_root), 0o700);
    assert_eq!(
        snapshot(&node.layout.app_secrets_dir("alpha")),
        alpha_before
    );
    let left: Vec<_> = fs::read_dir(&node.layout.secrets_root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["alpha"]);

    node.store.remove_app("beta").unwrap();
    assert!(node.store.remove_app("..").is_err(), "not an app id");
    assert_eq!(node.store.read("beta", "own-token").unwrap(), None);
}

#[test]
fn unchanged_bcrypt_pair_is_not_verified_again() {
    // Cost 12 so that a verification would be felt; counted, not timed.
    let node = Node::new();
    let app = alpha();
    let store = SecretStore::new(node.layout.clone()).with_bcrypt_cost(12);
    store.materialise(&app).unwrap();
    assert_eq!(
        store.bcrypt_verifications(),
        0,
        "a fresh hash is known good"
    );
    store.materialise(&app).unwrap();
    assert_eq!(store.bcrypt_verifications(), 0);

    // After a restart the pair is verified once, then remembered.
    let restarted = SecretStore::new(node.layout.clone()).with_bcrypt_cost(12);
    assert!(!restarted.materialise(&app).unwrap().changed());
    assert_eq!(restarted.bcrypt_verifications(), 1);
    for _ in 0..3 {
        assert!(!restarted.materialise(&app).unwrap().changed());
    }
    assert_eq!(restarted.bcrypt_verifications(), 1);

    // A byte-different valid hash is verified again, not trusted from cache.
    let password = node.value("alpha", "admin-password");
    let other = bcrypt::hash(&password, MIN_BCRYPT_COST).unwrap();
    fs::write(node.secret("alpha", "admin-hash"), &other).unwrap();
    let report = restarted.materialise(&app).unwrap();
    assert!(report.repaired.is_empty(), "{report:?}");
    assert_eq!(
        report.env_files_written,
        ["web"],
        "ADMIN_HASH follows the file"
    );
    assert_eq!(restarted.bcrypt_verifications(), 2);
    assert_eq!(
        node.value("alpha", "admin-hash"),
        other,
        "kept: it is valid"
    );
    assert!(!restarted.materialise(&app).unwrap().changed());
    assert_eq!(restarted.bcrypt_verifications(), 2);

    // A deep check verifies once more.
    restarted.forget_verified();
    assert!(!restarted.materialise(&app).unwrap().changed());
    assert!(!restarted.materialise(&app).unwrap().changed());
    assert_eq!(restarted.bcrypt_verifications(), 3);
}

#[test]
fn read_trims_the_newline_and_refuses_paths() {
    let node = Node::new();
    assert_eq!(node.store.read("alpha", "api-token").unwrap(), None);
    node.store.materialise(&alpha()).unwrap();
    let token = node.value("alpha", "api-token");
    assert_eq!(
        node.store.read("alpha", "api-token").unwrap(),
        Some(token.clone())
    );
    fs::write(node.secret("alpha", "api-token"), format!("{token}\n")).unwrap();
    assert_eq!(node.store.read("alpha", "api-token").unwrap(), Some(token));
    for (app, name) in [
        ("alpha", "../env/web.env"),
        ("alpha", ".."),
        ("../x", "a"),
        ("alpha", ""),
    ] {
        assert!(
            matches!(
                node.store.read(app, name),
                Err(SecretError::InvalidName { .. })
            ),
            "{app} {name}"
        );
    }
    let debug = format!("{:?}", node.store);
    assert!(
        !debug.contains(&node.value("alpha", "admin-password")),
        "{debug}"
    );
}
