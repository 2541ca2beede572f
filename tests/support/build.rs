//! Builds the guests in `guests/` for wasm32-wasip2 before the integration tests compile, in
//! their own target dir (so the nested cargo does not wait on the outer one's lock), copies the
//! `.wasm` files into `$OUT_DIR/guests/` and tells the tests where they are through
//! `REPRISE_GUEST_DIR`. A missing wasm32-wasip2 target is added first, exactly as `reprise run
//! <crate dir>` does.
//!
//! The copies are the tests' own: all the tests run in one process, and some of them build in
//! `guests/target` while the others run (`cli::toolchain` runs `reprise run guests/fib` under a
//! fake rustc, `cli::guide` builds there too). That build of fib differs from this one (another
//! digest), and cargo replaces the file in `release/` (unlink, then link), so a test reading
//! `guests/target/…/fib.wasm` meanwhile could find it missing, or find another component than
//! the one it loaded a moment before.
//!
//! It also writes `$OUT_DIR/guests.rs`, which `tests/it/guests.rs` includes: one constant per
//! guest component (`pub const FIB: &str = "fib";`, the component's file stem) and
//! `foreach_guest!($m)`, which expands to `$m!(fib);` and so on for each. A guest component is
//! a member of `guests/Cargo.toml`'s workspace with a `cdylib` library; other members (the
//! `not-a-workflow` command, a binary) are left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use reprise_toolchain::{Target, Toolchain, ensure_target};

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let guests = root.join("guests");
    let members = guest_members(&guests);
    // What the guests are built from. Not `guests/` as a whole: the build below (and tests)
    // write into `guests/target`, and a watched directory that changes during every build
    // would make every `cargo test` run this script again and recompile the tests.
    let mut watched = vec![
        guests.join("Cargo.toml"),
        guests.join("Cargo.lock"),
        root.join("guest-sdk"),
        root.join("wit"),
    ];
    watched.extend(members.iter().map(|member| member.dir.clone()));
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    write_guest_list(&guests, &members, &out_dir.join("guests.rs"));
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
    let built = target_dir.join("wasm32-wasip2").join("release");
    let copies = out_dir.join("guests");
    std::fs::create_dir_all(&copies).expect("create the guest copies' directory");
    for stem in members.iter().flat_map(|member| &member.outputs) {
        let file = format!("{stem}.wasm");
        // A new file, never a hard link to the one in `release/`.
        let _ = std::fs::remove_file(copies.join(&file));
        std::fs::copy(built.join(&file), copies.join(&file))
            .unwrap_or_else(|err| panic!("copy {file} out of {}: {err}", built.display()));
    }
    println!("cargo:rustc-env=REPRISE_GUEST_DIR={}", copies.display());
}

/// A member of the workspace in `guests`.
struct Member {
    /// The crate's directory.
    dir: PathBuf,
    /// Its `cdylib` library's name, which is the component's file stem (`-` made `_`); `None`
    /// for a crate that builds no component (a binary).
    component: Option<String>,
    /// The file stems of the `.wasm` files it builds (its component, its binaries), which the
    /// tests get copies of.
    outputs: Vec<String>,
}

/// The members of the workspace in `guests`, as `cargo metadata` reads them (no dependency
/// resolution, no network): exactly the crates and targets the build below builds.
fn guest_members(guests: &Path) -> Vec<Member> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(guests)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .expect("cannot run cargo metadata on guests/");
    assert!(
        output.status.success(),
        "cargo metadata in guests/ failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(|id| id.as_str())
        .collect();
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        if !members.contains(&package["id"].as_str().unwrap_or_default()) {
            continue;
        }
        let manifest = PathBuf::from(package["manifest_path"].as_str().expect("manifest_path"));
        let mut component = None;
        let mut outputs = Vec::new();
        for target in package["targets"].as_array().expect("targets") {
            let kinds = |key: &str| {
                target[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|kind| kind.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            };
            let name = target["name"].as_str().expect("target name").to_owned();
            if kinds("crate_types").iter().any(|t| t == "cdylib") {
                component = Some(name.clone());
                outputs.push(name);
            } else if kinds("kind").iter().any(|k| k == "bin") {
                outputs.push(name);
            }
        }
        found.push(Member {
            dir: manifest.parent().expect("a crate directory").to_path_buf(),
            component,
            outputs,
        });
    }
    found
}

/// Writes the constants and `foreach_guest!` for the members that build a component.
fn write_guest_list(guests: &Path, members: &[Member], path: &Path) {
    let mut components: Vec<(&String, &Path)> = members
        .iter()
        .filter_map(|m| Some((m.component.as_ref()?, m.dir.as_path())))
        .collect();
    components.sort();
    assert!(!components.is_empty(), "no guest component in guests/");
    let mut code = String::from(
        "// @generated by tests/support/build.rs from guests/Cargo.toml: one constant per guest\n\
         // component, and `foreach_guest!`.\n\n",
    );
    for (name, dir) in &components {
        let dir = dir
            .strip_prefix(guests.parent().expect("root"))
            .unwrap_or(dir);
        writeln!(
            code,
            "/// The `{name}` guest ({}), built to `{name}.wasm`.\npub const {}: &str = {name:?};",
            dir.display(),
            name.to_uppercase()
        )
        .expect("write to a string");
    }
    code.push_str(
        "\n/// Calls `$m!(name);` for each guest component, `name` being its constant's name in\n\
         /// lower case.\n\
         macro_rules! foreach_guest {\n    ($m:ident) => {\n",
    );
    for (name, _) in &components {
        writeln!(code, "        $m!({name});").expect("write to a string");
    }
    code.push_str("    };\n}\n");
    // Rewritten only when it changes, so the tests are not recompiled for nothing.
    if std::fs::read_to_string(path).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(path, code).expect("write the guest list");
    }
}
