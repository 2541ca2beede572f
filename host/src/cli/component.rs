//! Resolves a COMPONENT argument: a `.wasm` file, or a guest crate directory that is built
//! for `wasm32-wasip2` first (so `reprise run guests/fib fib 10` works from a fresh clone).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The bytes of the component at `path`, building the crate first when `path` is a directory.
pub fn component_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = if path.is_dir() {
        build_guest_crate(path)?
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file)
        .with_context(|| format!("cannot read component {}", file.display()))?;
    check_header(&file, &bytes)?;
    Ok(bytes)
}

/// The WebAssembly magic bytes, then a version and a layer: layer 1 is a component, layer 0 a
/// core module.
const MAGIC: &[u8; 4] = b"\0asm";
const COMPONENT_LAYER: [u8; 2] = [1, 0];
const MODULE_LAYER: [u8; 2] = [0, 0];

/// Refuses what is plainly no component in one line naming the file, before the engine's
/// parser reports it at length (with a dump of the bytes it expected).
fn check_header(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let why = match (bytes.get(..4), bytes.get(6..8)) {
        (Some(magic), Some(layer)) if magic == MAGIC && layer == COMPONENT_LAYER => return Ok(()),
        (Some(magic), Some(layer)) if magic == MAGIC && layer == MODULE_LAYER => {
            "it is a core WebAssembly module; guests built for wasm32-wasip2 are components"
        }
        (Some(magic), _) if magic == MAGIC => "its WebAssembly header is of an unknown version",
        _ => "it does not start with the WebAssembly magic bytes",
    };
    bail!(
        "{} is not a valid WebAssembly component: {why}",
        file.display()
    )
}

/// Builds a guest crate with cargo and returns the path of the `.wasm` it produced.
fn build_guest_crate(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} is neither a .wasm file nor a crate directory (no Cargo.toml)",
            dir.display()
        );
    }
    eprintln!("building guest crate {} for wasm32-wasip2", dir.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo to build the guest crate")?;
    if !output.status.success() {
        bail!("building guest crate {} failed", dir.display());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut wasm = None;
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let manifest_matches = message["manifest_path"]
            .as_str()
            .map(|p| Path::new(p).parent() == std::fs::canonicalize(dir).ok().as_deref())
            .unwrap_or(false);
        if !manifest_matches {
            continue;
        }
        if let Some(files) = message["filenames"].as_array() {
            wasm = files
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from)
                .or(wasm);
        }
    }
    wasm.with_context(|| {
        format!(
            "cargo built {} but produced no .wasm (is crate-type = [\"cdylib\"] set?)",
            dir.display()
        )
    })
}
