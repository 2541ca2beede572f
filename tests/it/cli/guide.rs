//! The README's guide, executed: its Cargo.toml and src/lib.rs are written to a crate outside
//! this repository, built for wasm32-wasip2 with cargo, inspected and run with `reprise`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::reprise_bin;

/// The code blocks that follow `<!-- guide:PATH -->` markers in the README.
fn guide_files(readme: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut rest = readme;
    while let Some(start) = rest.find("<!-- guide:") {
        rest = &rest[start + "<!-- guide:".len()..];
        let Some(end) = rest.find(" -->") else { break };
        let path = rest[..end].to_string();
        let Some(fence) = rest.find("```") else { break };
        let body_start = rest[fence..]
            .find('\n')
            .map(|n| fence + n + 1)
            .expect("fence line");
        let body_len = rest[body_start..].find("```").expect("closing fence");
        files.push((path, rest[body_start..body_start + body_len].to_string()));
        rest = &rest[body_start + body_len..];
    }
    files
}

#[test]
fn the_readme_guide_builds_and_runs_outside_the_repository() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let files = guide_files(&readme);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["Cargo.toml", "src/lib.rs"], "the guide's files");
    let lib = &files[1].1;
    assert!(lib.lines().count() <= 30, "the guide stays short");

    let dir = tempfile::tempdir().expect("temp dir");
    let krate = dir.path().join("checkout");
    for (path, body) in &files {
        let body = body.replace(
            "/path/to/reprise/guest-sdk",
            &root.join("guest-sdk").to_string_lossy(),
        );
        let file = krate.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, body).expect("write guide file");
    }
    // Start from the guests' lock file so the build reuses their compiled dependencies.
    std::fs::copy(root.join("guests/Cargo.lock"), krate.join("Cargo.lock")).expect("lock file");
    let target = root.join("guests").join("target");
    let build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&krate)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo");
    assert!(
        build.status.success(),
        "building the guide's crate failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/checkout.wasm");
    assert!(wasm.is_file());

    let reprise = |args: &[&str]| {
        Command::new(reprise_bin())
            .args(args)
            .env("REPRISE_DATABASE_URL", dir.path().join("guide.db"))
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .output()
            .expect("run reprise")
    };
    let wasm_arg = wasm.to_string_lossy().to_string();

    let inspect = reprise(&["inspect", &wasm_arg, "--json"]);
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let defs: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspect json");
    assert_eq!(defs["workflows"], serde_json::json!(["checkout"]));
    assert_eq!(defs["steps"][1]["name"], "charge");
    assert_eq!(defs["steps"][1]["max_attempts"], 5);

    let run = reprise(&["run", &wasm_arg, "checkout", r#""book""#, "--id", "order-1"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        r#""receipt-400""#
    );

    let steps = reprise(&["workflow", "steps", "order-1", "--json"]);
    let steps: serde_json::Value = serde_json::from_slice(&steps.stdout).expect("steps json");
    assert_eq!(steps[0]["name"], "price_of");
    assert_eq!(steps[1]["name"], "charge");
    assert_eq!(
        steps[1]["attempts"], 2,
        "the charge step failed once and was retried"
    );
    assert!(Path::new(&wasm).exists());
}

/// The code blocks that follow `<!-- excerpt:PATH -->` markers: (path, code).
fn excerpts(readme: &str) -> Vec<(String, String)> {
    readme
        .split("<!-- excerpt:")
        .skip(1)
        .filter_map(|rest| {
            let (path, after) = rest.split_once(" -->")?;
            let code = after.split_once("```rust\n")?.1.split_once("```")?.0;
            Some((path.to_string(), code.to_string()))
        })
        .collect()
}

#[test]
fn the_readmes_excerpts_are_the_guests_code_line_for_line() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let found = excerpts(&readme);
    assert!(!found.is_empty(), "the README shows the approval guest");
    for (path, code) in found {
        let source = std::fs::read_to_string(root.join(&path)).expect("the excerpt's file");
        // Each line of the excerpt, in order, is a line of the file (the file has more).
        let mut lines = source.lines();
        for line in code.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                lines.any(|l| l == line),
                "README's excerpt of {path} has a line the file does not (or out of order): {line:?}"
            );
        }
    }
}
