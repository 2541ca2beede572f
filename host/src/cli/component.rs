//! Resolves a COMPONENT argument: a `.wasm` file, or a guest crate directory that is built
//! for `wasm32-wasip2` first (so `reprise run guests/fib fib 10` works from a fresh clone).

use std::path::Path;

use anyhow::Context;

/// The bytes of the component at `path`, building the crate first when `path` is a directory.
pub fn component_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = if path.is_dir() {
        reprise_toolchain::build_guest_crate(path)?
    } else {
        path.to_path_buf()
    };
    std::fs::read(&file).with_context(|| format!("cannot read component {}", file.display()))
}
