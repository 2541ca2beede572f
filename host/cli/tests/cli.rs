//! The CLI's surface without guests: the commands exist and bad flags are named.
//! (Having an integration test here also makes `cargo test --workspace` build the `reprise`
//! binary that the root test suite drives.)

use std::process::Command;

fn reprise(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reprise"))
        .args(args)
        .output()
        .expect("run reprise")
}

#[test]
fn help_lists_every_command() {
    let out = reprise(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "recover", "inspect", "workflow", "bench"] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
}

#[test]
fn a_bad_memory_limit_names_the_unit() {
    let out = reprise(&["run", "x.wasm", "wf", "--memory-limit", "64parsecs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown size unit \"parsecs\""));
}

#[test]
fn a_missing_component_file_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db.sqlite");
    let out = reprise(&[
        "run",
        "/no/such/component.wasm",
        "wf",
        "--database",
        &db.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/component.wasm"));
}

#[test]
fn workflow_get_of_an_unknown_id_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db.sqlite");
    let out = reprise(&[
        "workflow",
        "get",
        "nope",
        "--database",
        &db.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workflow with id nope"));
}
