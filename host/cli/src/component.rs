//! Resolves a COMPONENT argument: a `.wasm` file, or a guest crate directory that is built
//! for `wasm32-wasip2` first (so `reprise run guests/fib fib 10` works from a fresh clone).

use std::path::Path;

use anyhow::{Context, bail};

/// The bytes of the component at `path`, building the crate first when `path` is a directory.
pub fn component_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = if path.is_dir() {
        reprise_toolchain::build_guest_crate(path)?
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
