//! The command line: what a new user meets, managing workflows across processes, progress,
//! the README's guide, a toolchain without the wasm target, guest crates' own `cargo test`,
//! and the compiled-component cache.

mod component_cache;
mod guest_crate_tests;
mod guide;
mod manage;
mod progress;
mod surface;
mod toolchain;
