//! The state file: round trips, no-op saves, backups, and every way a state
//! file can be bad being reported (never silently replaced by an empty state).

// Every function in this file is test code, helpers included.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use archipelago_api::RunState;
use archipelagod::fsutil::TEMP_PREFIX;
use archipelagod::state::{InstalledApp, NodeState, STATE_FORMAT_VERSION, StateError, StateStore};

fn app(version: &str, run: RunState) -> InstalledApp {
    InstalledApp {
        manifest: PathBuf::from(format!(
            "/var/lib/archipelago/apps/x/{version}/manifest.yml"
        )),
        version: version.to_owned(),
        run,
        source: String::new(),
        settings: archipelago_api::methods::AppSettings::default(),
        catalog_sha256: String::new(),
        previous_images: Vec::new(),
        update: None,
    }
}

fn state_with(apps: &[(&str, &str, RunState)]) -> NodeState {
    let mut state = NodeState::new();
    for (id, version, run) in apps {
        state.apps.insert((*id).to_owned(), app(version, *run));
    }
    state
}

fn one() -> NodeState {
    state_with(&[("hello-web", "1.0.0", RunState::Running)])
}

fn two() -> NodeState {
    state_with(&[
        ("hello-web", "1.0.0", RunState::Stopped),
        ("bitcoin-knots", "28.1", RunState::Running),
    ])
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    (dir, path)
}

fn corrupt_copies(dir: &Path) -> Vec<PathBuf> {
    let mut copies: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        })
        .collect();
    copies.sort();
    copies
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn missing_file_is_an_empty_state_and_save_round_trips() {
    let (dir, path) = setup();
    let store = StateStore::new(path.clone());
    let fresh = store.load().unwrap();
    assert_eq!(fresh, NodeState::new());
    assert_eq!(fresh.version, STATE_FORMAT_VERSION);
    assert_eq!(NodeState::default(), NodeState::new());
    assert!(!path.exists(), "load must not create the file");

    assert!(store.save(&two()).unwrap());
    assert_eq!(store.load().unwrap(), two());
    assert_eq!(StateStore::new(path.clone()).load().unwrap(), two());

    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("}\n"), "{text:?}");
    assert!(text.contains("\"run\": \"stopped\""), "{text}");
    assert_eq!(
        names_in(dir.path()),
        ["state.json", "state.json.bak"],
        "the state, its backup, no temp"
    );
}

#[test]
fn save_creates_the_state_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/archipelago/state.json");
    let store = StateStore::new(path.clone());
    assert_eq!(store.load().unwrap(), NodeState::new());
    assert!(store.save(&one()).unwrap());
    assert_eq!(StateStore::new(path).load().unwrap(), one());
}

#[test]
fn no_op_save_writes_nothing() {
    let (_dir, path) = setup();
    let store = StateStore::new(path.clone());
    assert!(store.save(&one()).unwrap());
    let before = fs::metadata(&path).unwrap();
    let backup_before = fs::metadata(store.backup_path()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));

    assert!(!store.save(&one()).unwrap());
    // A store that has not seen the file yet reads it and also writes nothing.
    let other = StateStore::new(path.clone());
    assert!(!other.save(&one()).unwrap());

    let after = fs::metadata(&path).unwrap();
    assert_eq!(before.ino(), after.ino(), "the file was replaced");
    assert_eq!(before.modified().unwrap(), after.modified().unwrap());
    let backup_after = fs::metadata(store.backup_path()).unwrap();
    assert_eq!(
        (backup_before.ino(), backup_before.modified().unwrap()),
        (backup_after.ino(), backup_after.modified().unwrap()),
        "a no-op save rewrote the backup"
    );
}

#[test]
fn every_save_keeps_the_saved_state_as_backup() {
    let (dir, path) = setup();
    let store = StateStore::new(path.clone());
    store.save(&one()).unwrap();
    assert_eq!(
        fs::read(store.backup_path()).unwrap(),
        fs::read(&path).unwrap()
    );
    assert!(store.save(&two()).unwrap());
    let second = fs::read(&path).unwrap();

    // The last good state, whole: a file damaged later loses no edit.
    assert_eq!(store.backup_path(), dir.path().join("state.json.bak"));
    assert_eq!(fs::read(store.backup_path()).unwrap(), second);
    let mode = fs::metadata(store.backup_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o600);
    assert_eq!(store.load().unwrap(), two());
    assert_eq!(names_in(dir.path()), ["state.json", "state.json.bak"]);
}

#[test]
fn save_refuses_an_invalid_state() {
    let (_dir, path) = setup();
    let store = StateStore::new(path.clone());
    let bad = state_with(&[("Not_An_Id", "1", RunState::Running)]);
    let err = store.save(&bad).unwrap_err();
    assert!(matches!(err, StateError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("Not_An_Id"), "{err}");
    let mut old = one();
    old.version = 0;
    assert!(matches!(store.save(&old), Err(StateError::Invalid { .. })));
    assert!(!path.exists());
}

/// Writes `bad` as the state file over a store that has a good backup (when
/// `with_backup`), loads it, and checks everything a bad file must get:
/// an error naming the copy, the file untouched, a copy with the same bytes.
fn assert_rejected(bad: &[u8], with_backup: bool) -> StateError {
    let (dir, path) = setup();
    if with_backup {
        let store = StateStore::new(path.clone());
        store.save(&one()).unwrap();
        store.save(&two()).unwrap();
    }
    fs::write(&path, bad).unwrap();
    let store = StateStore::new(path.clone());
    let err = store.load().unwrap_err();

    assert_eq!(fs::read(&path).unwrap(), bad, "the bad file was changed");
    let copies = corrupt_copies(dir.path());
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(fs::read(&copies[0]).unwrap(), bad);
    let message = err.to_string();
    assert!(
        message.contains(&copies[0].display().to_string()),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("archipelagod state recover"), "{message}");

    let (kept_copy, backup) = match &err {
        StateError::Corrupt {
            kept_copy,
            backup,
            reason,
            ..
        } => {
            assert!(!reason.is_empty());
            (kept_copy, backup)
        }
        StateError::UnsupportedVersion {
            kept_copy, backup, ..
        } => (kept_copy, backup),
        other => panic!("not a corrupt-state error: {other:?}"),
    };
    assert_eq!(kept_copy, &copies[0]);
    if with_backup {
        assert_eq!(backup.as_deref(), Some(&two()));
        assert!(message.contains("state.json.bak"), "{message}");
    } else {
        assert!(backup.is_none());
    }
    // Loading again neither changes the file nor piles up copies.
    assert!(store.load().is_err());
    assert_eq!(corrupt_copies(dir.path()).len(), 1);
    assert_eq!(fs::read(&path).unwrap(), bad);
    err
}

fn reason_of(err: &StateError) -> &str {
    match err {
        StateError::Corrupt { reason, .. } => reason,
        other => panic!("not Corrupt: {other:?}"),
    }
}

fn good_bytes() -> Vec<u8> {
    let (_dir, path) = setup();
    StateStore::new(path.clone()).save(&two()).unwrap();
    fs::read(path).unwrap()
}

#[test]
fn truncated_file_is_corrupt() {
    let good = good_bytes();
    let half = &good[..good.len() / 2];
    for with_backup in [false, true] {
        let err = assert_rejected(half, with_backup);
        assert!(reason_of(&err).contains("EOF while parsing"), "{err}");
        assert!(reason_of(&err).contains("line"), "{err}");
    }
}

#[test]
fn garbage_is_corrupt() {
    let err = assert_rejected(b"\x00\xff\x13garbage\x7f", true);
    assert!(reason_of(&err).contains("column"), "{err}");
}

#[test]
fn empty_file_is_corrupt() {
    let err = assert_rejected(b"", true);
    assert!(reason_of(&err).contains("empty"), "{err}");
    assert!(matches!(
        assert_rejected(b"  \n", false),
        StateError::Corrupt { .. }
    ));
}

#[test]
fn unknown_field_is_corrupt() {
    let text = String::from_utf8(good_bytes()).unwrap().replace(
        "\"run\": \"running\"",
        "\"run\": \"running\",\n      \"colour\": \"blue\"",
    );
    assert!(text.contains("colour"));
    let err = assert_rejected(text.as_bytes(), true);
    assert!(reason_of(&err).contains("unknown field `colour`"), "{err}");

    let err = assert_rejected(br#"{"version": 1, "apps": {}, "extra": 1}"#, false);
    assert!(reason_of(&err).contains("extra"), "{err}");
}

#[test]
fn other_format_version_is_unsupported() {
    for (found, newer) in [(2, true), (0, false)] {
        let bytes = format!(r#"{{"version": {found}, "apps": {{}}, "new_thing": []}}"#);
        let err = assert_rejected(bytes.as_bytes(), true);
        match &err {
            StateError::UnsupportedVersion { found: f, .. } => assert_eq!(*f, found),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string().contains("newer archipelagod"),
            newer,
            "{err}"
        );
    }
    let err = assert_rejected(br#"{"version": "1", "apps": {}}"#, false);
    assert!(reason_of(&err).contains("invalid type"), "{err}");
}

#[test]
fn invalid_app_id_is_corrupt() {
    let text = String::from_utf8(good_bytes())
        .unwrap()
        .replace("\"hello-web\"", "\"../../etc\"");
    assert!(text.contains("../../etc"));
    let err = assert_rejected(text.as_bytes(), true);
    assert!(reason_of(&err).contains("\"../../etc\""), "{err}");
}

#[test]
fn corrupt_copies_are_never_overwritten() {
    let (dir, path) = setup();
    let store = StateStore::new(path.clone());
    fs::write(&path, b"{ first").unwrap();
    assert!(store.load().is_err());
    fs::write(&path, b"{ second").unwrap();
    assert!(store.load().is_err());
    let copies = corrupt_copies(dir.path());
    assert_eq!(copies.len(), 2, "{copies:?}");
    let mut contents: Vec<Vec<u8>> = copies.iter().map(|c| fs::read(c).unwrap()).collect();
    contents.sort();
    assert_eq!(contents, [b"{ first".to_vec(), b"{ second".to_vec()]);
}

#[test]
fn save_after_corrupt_load_is_refused_until_recover() {
    let (dir, path) = setup();
    let store = StateStore::new(path.clone());
    store.save(&one()).unwrap();
    store.save(&two()).unwrap();
    fs::write(&path, b"{\"version\": 1, \"apps\": {").unwrap();

    let store = StateStore::new(path.clone());
    let backup = match store.load() {
        Err(StateError::Corrupt {
            backup: Some(b), ..
        }) => *b,
        other => panic!("{other:?}"),
    };
    let err = store.save(&NodeState::new()).unwrap_err();
    assert!(matches!(err, StateError::SaveRefused { .. }), "{err:?}");
    assert!(
        err.to_string().contains("archipelagod state recover"),
        "{err}"
    );
    assert!(store.save(&backup).is_err());
    assert_eq!(fs::read(&path).unwrap(), b"{\"version\": 1, \"apps\": {");

    // A store that never loaded finds the same on its first save.
    let fresh = StateStore::new(path.clone());
    assert!(matches!(
        fresh.save(&NodeState::new()),
        Err(StateError::Corrupt { .. })
    ));
    assert!(matches!(
        fresh.save(&NodeState::new()),
        Err(StateError::SaveRefused { .. })
    ));

    store.recover(&backup).unwrap();
    assert_eq!(
        store.load().unwrap(),
        two(),
        "the last state saved before the damage"
    );
    assert_eq!(
        corrupt_copies(dir.path()).len(),
        1,
        "the corrupt copy is kept"
    );
    assert_eq!(
        fs::read(store.backup_path()).unwrap(),
        fs::read(&path).unwrap(),
        "the backup was not replaced by the corrupt file"
    );
    assert!(store.save(&one()).unwrap());
    assert_eq!(StateStore::new(path.clone()).load().unwrap(), one());
}

#[test]
fn recover_without_load_keeps_the_corrupt_file_aside() {
    let (dir, path) = setup();
    fs::write(&path, b"not json").unwrap();
    let store = StateStore::new(path.clone());
    store.recover(&one()).unwrap();
    assert_eq!(store.load().unwrap(), one());
    let copies = corrupt_copies(dir.path());
    assert_eq!(copies.len(), 1);
    assert_eq!(fs::read(&copies[0]).unwrap(), b"not json");
    let backup = fs::read(store.backup_path()).unwrap();
    assert_ne!(backup, b"not json", "a corrupt file is no backup");
    assert_eq!(StateStore::new(store.backup_path()).load().unwrap(), one());
}

#[test]
fn deleted_state_file_with_a_backup_is_not_an_empty_state() {
    let (_dir, path) = setup();
    let store = StateStore::new(path.clone());
    store.save(&one()).unwrap();
    store.save(&two()).unwrap();
    fs::remove_file(&path).unwrap();

    let store = StateStore::new(path.clone());
    let err = store.load().unwrap_err();
    match &err {
        StateError::Missing { backup, .. } => assert_eq!(backup.as_deref(), Some(&two())),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("archipelagod state recover"),
        "{err}"
    );
    assert!(matches!(
        store.save(&NodeState::new()),
        Err(StateError::SaveRefused { .. })
    ));
    assert!(!path.exists());
    store.recover(&one()).unwrap();
    assert_eq!(store.load().unwrap(), one());
}

#[test]
fn crash_between_temp_write_and_rename_leaves_the_old_state() {
    let (dir, path) = setup();
    StateStore::new(path.clone()).save(&one()).unwrap();
    let good = fs::read(&path).unwrap();
    let new = serde_json::to_vec_pretty(&two()).unwrap();
    let stray = dir.path().join(format!("{TEMP_PREFIX}state.json.4242"));
    fs::write(&stray, &new[..new.len() / 2]).unwrap();

    let store = StateStore::new(path.clone());
    assert_eq!(store.load().unwrap(), one());
    assert!(stray.exists(), "load only reads");
    assert_eq!(fs::read(&path).unwrap(), good);
    assert!(corrupt_copies(dir.path()).is_empty());

    assert!(store.save(&two()).unwrap());
    assert!(!stray.exists(), "the stray temp was not cleaned");
    assert_eq!(names_in(dir.path()), ["state.json", "state.json.bak"]);
    assert_eq!(StateStore::new(path).load().unwrap(), two());
}

#[test]
fn no_op_first_save_also_cleans_stray_temps() {
    let (dir, path) = setup();
    StateStore::new(path.clone()).save(&one()).unwrap();
    let stray = dir.path().join(format!("{TEMP_PREFIX}state.json.bak.4242"));
    fs::write(&stray, b"{\"ver").unwrap();
    let store = StateStore::new(path);
    assert!(!store.save(&one()).unwrap());
    assert!(!stray.exists());
}

#[test]
fn a_state_file_lost_after_the_first_save_is_not_an_empty_node() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("state.json");
    let store = StateStore::new(path.clone());
    let mut state = NodeState::new();
    state.apps.insert(
        "hello".into(),
        archipelagod::state::InstalledApp {
            manifest: "/apps/hello/manifest.yml".into(),
            version: "1".into(),
            run: archipelago_api::RunState::Running,
            source: String::new(),
            settings: archipelago_api::methods::AppSettings::default(),
            catalog_sha256: String::new(),
            previous_images: Vec::new(),
            update: None,
        },
    );
    assert!(store.save(&state).unwrap());
    std::fs::remove_file(&path).unwrap();
    let err = StateStore::new(path)
        .load()
        .expect_err("a lost state file is reported");
    assert!(
        matches!(&err, archipelagod::state::StateError::Missing { backup: Some(b), .. } if b.apps.len() == 1),
        "{err:?}"
    );
}
