//! The binary's exit codes and messages for bad input (nothing is started for these).

use std::process::Command;

fn pollpush(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pollpush"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_scenario_key_exits_2_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "name = \"typo\"\n[poll]\ninterval = \"5s\"\nevery = \"5s\"\n",
    )
    .unwrap();
    let (code, err) = pollpush(&["run", path.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("typo.toml"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("every"), "{err}");
}

#[test]
fn bad_duration_exits_2_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.toml");
    std::fs::write(&path, "name = \"slow\"\nduration = \"thirty seconds\"\n").unwrap();
    let (code, err) = pollpush(&["run", path.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("slow.toml:2: key `duration`"), "{err}");
    let (code, err) = pollpush(&["run", "--duration", "soon"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--set duration"), "{err}");
}

#[test]
fn bad_overrides_and_missing_files_exit_2() {
    let (code, err) = pollpush(&["run", "--users", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("users.count"), "{err}");
    let (code, err) = pollpush(&["run", "--set", "push.instancez=2"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("instancez"), "{err}");
    let (code, err) = pollpush(&["run", "/no/such/scenario.toml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read scenario file"), "{err}");
}

#[test]
fn unreachable_database_url_exits_2_quickly() {
    let start = std::time::Instant::now();
    let (code, err) = pollpush(&[
        "run",
        "--users",
        "10",
        "--database-url",
        "postgres://nobody:secret@127.0.0.1:1/db",
        "--out",
        tempfile::tempdir().unwrap().path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(!err.contains("secret"), "the password leaked: {err}");
    assert!(start.elapsed().as_secs() < 15);
}
