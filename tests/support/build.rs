//! Builds the guests in `guests/` for wasm32-wasip2 before the integration tests compile, in
//! their own target dir (so the nested cargo does not wait on the outer one's lock), and tells
//! the tests where the components are through `REPRISE_GUEST_DIR`. A missing wasm32-wasip2
//! target is added first, exactly as `reprise run <crate dir>` does.

use std::path::PathBuf;

use reprise_toolchain::{Target, Toolchain, ensure_target};

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    for watched in ["guests", "guest-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let guests = root.join("guests");
    match ensure_target(&Toolchain::from_env(), &guests) {
        Ok(Target::Present) => {}
        Ok(Target::Added { command }) => {
            println!("cargo:warning=added the missing wasm32-wasip2 target with `{command}`")
        }
        Err(err) => panic!("{err}"),
    }
    let target_dir = guests.join("target");
    let status = reprise_toolchain::cargo_build(&guests)
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("cannot run cargo to build the guests");
    assert!(
        status.success(),
        "building the guests for wasm32-wasip2 failed"
    );
    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=REPRISE_GUEST_DIR={}", out.display());
}
