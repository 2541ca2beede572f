//! Bad input gets a clear error that names the problem, and nothing is written half-way.

use crate::common;
use crate::guests::FIB;

use std::process::Command;

use common::{Harness, guest, options, reprise_bin};
use reprise_host::engine::EngineError;
use reprise_host::store::WorkflowFilter;
use reprise_host::{Durability, RuntimeError, SqliteStore, WorkflowStatus};

async fn nothing_written(h: &Harness) {
    let all = h
        .store
        .list_workflows(&WorkflowFilter::default())
        .await
        .expect("list");
    assert!(
        all.is_empty(),
        "no workflow may be created by a rejected request: {all:?}"
    );
}

#[tokio::test]
async fn garbage_bytes_are_not_a_component() {
    let h = Harness::new(options(3)).await;
    let garbage = b"this is not wasm at all".to_vec();
    let err = h
        .runtime
        .register(&garbage)
        .await
        .expect_err("garbage must be rejected");
    assert!(
        matches!(err, RuntimeError::Engine(EngineError::InvalidComponent(_))),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("not a valid WebAssembly component"),
        "{err}"
    );
    let digest = reprise_host::engine::digest(&garbage);
    assert_eq!(
        h.store.get_component(&digest).await.expect("read"),
        None,
        "garbage is not stored"
    );
    nothing_written(&h).await;
}

#[tokio::test]
async fn a_component_of_another_world_is_rejected_by_name() {
    let h = Harness::new(options(3)).await;
    let bytes =
        std::fs::read(guest("not-a-workflow")).expect("command component built by build.rs");
    let err = h
        .runtime
        .register(&bytes)
        .await
        .expect_err("a wasi command is no workflow component");
    assert!(
        matches!(err, RuntimeError::Engine(EngineError::WrongWorld(_))),
        "{err}"
    );
    assert!(err.to_string().contains("reprise:workflow"), "{err}");
    nothing_written(&h).await;
}

#[tokio::test]
async fn an_unknown_workflow_name_lists_the_ones_that_exist() {
    let h = Harness::new(options(3)).await;
    let component = h.component(FIB).await;
    let err = h
        .runtime
        .start(&component, "fibonacci", "10", None)
        .await
        .expect_err("unknown name");
    let message = err.to_string();
    assert!(
        message.contains("\"fibonacci\"") && message.contains("fib_slow"),
        "{message}"
    );
    nothing_written(&h).await;
}

#[tokio::test]
async fn malformed_json_input_is_rejected_before_anything_is_written() {
    let h = Harness::new(options(3)).await;
    let component = h.component(FIB).await;
    let err = h
        .runtime
        .start(&component, "fib", "{not json", None)
        .await
        .expect_err("bad json");
    assert!(matches!(err, RuntimeError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    nothing_written(&h).await;
}

#[tokio::test]
async fn json_of_the_wrong_type_fails_the_workflow_naming_the_mismatch() {
    let mut h = Harness::new(options(3)).await;
    let wf = h.run(FIB, "fib", r#""ten""#).await;
    assert_eq!(wf.status, WorkflowStatus::Error);
    let error = wf.error.unwrap_or_default();
    assert!(
        error.contains("invalid input for workflow \"fib\""),
        "{error}"
    );
    assert!(h.steps(&wf.id).await.is_empty(), "no step ran");
}

#[tokio::test]
async fn a_database_path_that_cannot_be_opened_names_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing-dir").join("reprise.db");
    let Err(err) = SqliteStore::open(&path.to_string_lossy(), Durability::Synced).await else {
        panic!("a database in a missing directory cannot be opened");
    };
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

#[test]
fn the_cli_reports_bad_input_with_exit_code_2_and_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm but not really").expect("write");
    let db = dir.path().join("cli.db");
    let cli = |args: &[&str]| {
        Command::new(reprise_bin())
            .args(args)
            .arg("--database")
            .arg(&db)
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .output()
            .expect("run reprise")
    };

    let out = cli(&["run", &garbage.to_string_lossy(), "fib", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid WebAssembly component"));

    let fib = guest(FIB);
    let out = cli(&["run", &fib.to_string_lossy(), "fib", "[1,"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input is not valid JSON"));

    let out = cli(&["run", &fib.to_string_lossy(), "nope", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workflow named \"nope\""));

    let out = cli(&["workflow", "list", "--json"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[]",
        "nothing was written"
    );

    let out = cli(&["run", &fib.to_string_lossy(), "fib", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "55");

    let unopenable = Command::new(reprise_bin())
        .args([
            "workflow",
            "list",
            "--database",
            "/nonexistent-dir/x/reprise.db",
        ])
        .output()
        .expect("run reprise");
    assert_eq!(unopenable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unopenable.stderr).contains("/nonexistent-dir/x/reprise.db"));
}
