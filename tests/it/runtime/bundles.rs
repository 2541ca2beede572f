//! Repro bundles: a workflow in flight exported with its children, replayed from the file
//! with no database anywhere, and imported into another database — never a secret's value.

use crate::common;
use crate::guests::{ORDERS_V1, ORDERS_V2};

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{Harness, guest, reprise_bin};
use reprise_host::RuntimeOptions;
use reprise_host::grants::{Grants, Secrets};
use reprise_host::runtime::{InstanceOptions, StartRequest};
use serde_json::Value;

const SECRET: &str = "s3cr3t-value-never-exported";

fn reprise(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(reprise_bin())
        .current_dir(dir)
        .env_remove("REPRISE_DATABASE_URL")
        .args(args)
        .output()
        .expect("run reprise");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_bundle_replays_with_no_database_and_imports_into_another_without_secrets() {
    let grants = Grants {
        secrets: Secrets::new([("API_KEY".to_string(), SECRET.to_string())]),
        ..Grants::default()
    };
    let instance = InstanceOptions {
        grants: Arc::new(grants),
        ..InstanceOptions::default()
    };
    let harness = Harness::new(RuntimeOptions::single("local", instance)).await;
    let v1 = harness.component(ORDERS_V1).await;
    let request = StartRequest {
        id: Some("b-1".into()),
        ..StartRequest::new("batch", "1")
    };
    harness.runtime.submit(&v1, request).await.expect("submit");
    // The parent waits on its child, the child on its message.
    common::waiting_in_recv(&*harness.store, "b-1-0")
        .await
        .expect("steps");
    let database = harness.db_path().display().to_string();
    let work = tempfile::tempdir().expect("dir");
    let file = work.path().join("b-1.bundle.json");
    let file_arg = file.display().to_string();
    let (code, _, stderr) = reprise(
        work.path(),
        &[
            "workflow",
            "export",
            "b-1",
            "--children",
            "-o",
            &file_arg,
            "--database",
            &database,
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&file).expect("bundle");
    let bundle: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(bundle["format"], "reprise-bundle/1");
    // Grants come by name from the exporting host's own config: here the runtime's.
    let own = harness.runtime.export("b-1", false).await.expect("export");
    let own = serde_json::to_string(&own).expect("json");
    assert!(
        own.contains("\"secrets\":[\"API_KEY\"]"),
        "{}",
        &own[..200.min(own.len())]
    );
    assert!(
        !own.contains(SECRET),
        "a secret's value never leaves the host"
    );
    assert_eq!(bundle["workflow"]["id"], "b-1");
    assert_eq!(bundle["children"][0]["id"], "b-1-0");
    assert_eq!(bundle["children"][0]["bundle"]["workflow"]["name"], "order");
    assert_eq!(bundle["settings"]["random_seed"], "b-1");
    assert_eq!(bundle["settings"]["engine"]["wasmtime"], "48.0.8");

    // Replayed where there is no database: nothing is opened or created.
    let empty = tempfile::tempdir().expect("dir");
    let (code, text, stderr) = reprise(empty.path(), &["replay", "--bundle", &file_arg]);
    assert_eq!(code, Some(0), "{text}{stderr}");
    assert!(
        text.contains("CLEAN: next: reprise.await-child:b-1-0 at position 1"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(empty.path()).expect("dir").count(),
        0,
        "nothing created"
    );
    let v2 = guest(ORDERS_V2).display().to_string();
    let (code, text, _) = reprise(
        empty.path(),
        &["replay", "--bundle", &file_arg, "--to", &v2],
    );
    assert_eq!(
        code,
        Some(1),
        "v2 starts the child with another input: {text}"
    );
    assert!(text.contains("DIVERGED: position 0"), "{text}");

    // Imported into another database, paused; its history replays there as here.
    let other = work.path().join("other.db").display().to_string();
    let (code, _, stderr) = reprise(
        work.path(),
        &[
            "workflow",
            "import",
            &file_arg,
            "--paused",
            "--database",
            &other,
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (_, json, _) = reprise(
        work.path(),
        &["workflow", "get", "b-1", "--json", "--database", &other],
    );
    let imported: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(imported["status"], "PAUSED", "{imported}");
    assert_eq!(imported["app_version"], v1.digest.as_str());
    let (code, text, stderr) = reprise(work.path(), &["replay", "b-1", "--database", &other]);
    assert_eq!(code, Some(0), "{text}{stderr}");
    assert!(
        text.contains("CLEAN: next: reprise.await-child:b-1-0"),
        "{text}"
    );
    // An id that exists is refused, and nothing changes.
    let (code, _, stderr) = reprise(
        work.path(),
        &["workflow", "import", &file_arg, "--database", &other],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("b-1 already exists"), "{stderr}");
}
