//! A component is compiled once per digest: the artifact is kept on disk and loaded by the next
//! engine; an unusable artifact is recompiled, never trusted.

use crate::common;
use crate::guests::FIB;

use std::path::Path;

use common::guest;
use reprise_host::EngineOptions;
use reprise_host::runtime::WorkflowEngine as Engine;

fn artifacts(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_compiled_artifact_is_cached_by_digest_and_reused() {
    let cache = tempfile::tempdir().expect("temp dir");
    let options = EngineOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..EngineOptions::default()
    };
    let bytes = std::fs::read(guest(FIB)).expect("fib guest");
    let digest = reprise_host::engine::digest(&bytes);

    let first = Engine::new(&options)
        .expect("engine")
        .load(&bytes)
        .await
        .expect("load");
    let files = artifacts(cache.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        name.starts_with(&digest) && name.ends_with(".cwasm"),
        "{name}"
    );

    let modified = std::fs::metadata(&files[0])
        .and_then(|m| m.modified())
        .expect("mtime");
    let second = Engine::new(&options)
        .expect("engine")
        .load(&bytes)
        .await
        .expect("load from cache");
    assert_eq!(second.digest, first.digest);
    assert_eq!(second.definitions.workflows, first.definitions.workflows);
    let after = std::fs::metadata(&files[0])
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(modified, after, "a cached artifact is read, not rewritten");
}

#[tokio::test]
async fn a_corrupt_artifact_is_recompiled() {
    let cache = tempfile::tempdir().expect("temp dir");
    let options = EngineOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..EngineOptions::default()
    };
    let bytes = std::fs::read(guest(FIB)).expect("fib guest");
    Engine::new(&options)
        .expect("engine")
        .load(&bytes)
        .await
        .expect("load");
    let artifact = artifacts(cache.path()).pop().expect("artifact");
    std::fs::write(&artifact, b"not a compiled component").expect("corrupt it");

    let loaded = Engine::new(&options)
        .expect("engine")
        .load(&bytes)
        .await
        .expect("recompiled");
    assert!(loaded.has_workflow("fib"));
    let rewritten = std::fs::read(&artifact).expect("artifact");
    assert_ne!(
        rewritten, b"not a compiled component",
        "the bad artifact was replaced"
    );
}
