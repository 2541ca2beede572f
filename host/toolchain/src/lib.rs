//! Building guest crates for `wasm32-wasip2`, shared by the `reprise` CLI and the test build
//! script so both behave alike on a fresh machine.
//!
//! rustup installs the targets a `rust-toolchain.toml` names only when it installs the
//! toolchain itself, so a machine that already had the toolchain lacks `wasm32-wasip2`. As
//! `cargo component` does, [`ensure_target`] looks for the target in the toolchain's sysroot
//! and, when it is missing, adds it with `rustup target add` (or fails naming the command).

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target guests are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Why a guest crate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error("cannot run `{program} --print sysroot` to find the Rust toolchain: {reason}")]
    Rustc { program: String, reason: String },
    #[error(
        "the {TARGET} target is not installed and rustup is not on PATH to add it; run `{command}` (or install the target another way) and try again"
    )]
    NoRustup { command: String },
    #[error(
        "the {TARGET} target is not installed and `{command}` failed ({reason}); run it yourself and try again"
    )]
    AddFailed { command: String, reason: String },
    #[error("cannot run cargo to build the guest crate {dir}: {reason}")]
    Cargo { dir: PathBuf, reason: String },
    #[error("building guest crate {dir} failed (cargo's errors are above)")]
    BuildFailed { dir: PathBuf },
    #[error("{dir} is neither a .wasm file nor a crate directory (no Cargo.toml)")]
    NotACrate { dir: PathBuf },
    #[error("cargo built {dir} but produced no .wasm (is crate-type = [\"cdylib\"] set?)")]
    NoComponent { dir: PathBuf },
}

/// What [`ensure_target`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The toolchain already had the target.
    Present,
    /// It was missing and `rustup target add` installed it; the command is given.
    Added { command: String },
}

/// The programs that answer for the toolchain a crate directory builds with.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// `rustc`, or what `$RUSTC` names (cargo sets it for build scripts).
    pub rustc: OsString,
    /// `rustup`, looked up on `PATH`.
    pub rustup: OsString,
}

impl Toolchain {
    /// The programs cargo itself would use from this environment.
    pub fn from_env() -> Self {
        Toolchain {
            rustc: std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()),
            rustup: "rustup".into(),
        }
    }
}

/// Makes sure the toolchain that builds `dir` has the [`TARGET`], adding it with rustup when it
/// is missing. rustup's own output goes to stderr, never stdout (the CLI prints results there
/// and cargo reads a build script's stdout as directives).
pub fn ensure_target(toolchain: &Toolchain, dir: &Path) -> Result<Target, ToolchainError> {
    let sysroot = sysroot(toolchain, dir)?;
    if sysroot.join("lib").join("rustlib").join(TARGET).is_dir() {
        return Ok(Target::Present);
    }
    // A rustup-managed sysroot is `…/toolchains/<name>`: naming the toolchain makes the command
    // right from any directory, whatever override applies there.
    let name = sysroot
        .parent()
        .filter(|parent| parent.file_name().is_some_and(|n| n == "toolchains"))
        .and_then(|_| sysroot.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let mut args = vec!["target".to_string(), "add".into(), TARGET.into()];
    if let Some(name) = name {
        args.extend(["--toolchain".into(), name]);
    }
    let command = format!("rustup {}", args.join(" "));
    let status = Command::new(&toolchain.rustup)
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status();
    match status {
        Ok(status) if status.success() => Ok(Target::Added { command }),
        Ok(status) => Err(ToolchainError::AddFailed {
            command,
            reason: status.to_string(),
        }),
        Err(err) if err.kind() == ErrorKind::NotFound => Err(ToolchainError::NoRustup { command }),
        Err(err) => Err(ToolchainError::AddFailed {
            command,
            reason: err.to_string(),
        }),
    }
}

/// The sysroot of the toolchain rustc resolves to in `dir`.
fn sysroot(toolchain: &Toolchain, dir: &Path) -> Result<PathBuf, ToolchainError> {
    let program = toolchain.rustc.to_string_lossy().into_owned();
    let failed = |reason: String| ToolchainError::Rustc {
        program: program.clone(),
        reason,
    };
    let output = Command::new(&toolchain.rustc)
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!("{}: {}", output.status, stderr.trim())));
    }
    let text =
        String::from_utf8(output.stdout).map_err(|_| failed("output is not UTF-8".into()))?;
    Ok(PathBuf::from(text.trim()))
}

/// `cargo build --release --target wasm32-wasip2` in `dir`, with the flags meant for an
/// enclosing host build removed so they cannot leak into the wasm build.
pub fn cargo_build(dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(dir)
        .args(["build", "--release", "--target", TARGET])
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS");
    command
}

/// Builds the guest crate in `dir` (adding the target first when needed) and returns the path
/// of the component it produced. Says on stderr what it builds and whether it added the target.
pub fn build_guest_crate(dir: &Path) -> Result<PathBuf, ToolchainError> {
    if !dir.join("Cargo.toml").is_file() {
        return Err(ToolchainError::NotACrate {
            dir: dir.to_path_buf(),
        });
    }
    if let Target::Added { command } = ensure_target(&Toolchain::from_env(), dir)? {
        eprintln!("added the missing {TARGET} target with `{command}`");
    }
    eprintln!("building guest crate {} for {TARGET}", dir.display());
    let output = cargo_build(dir)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| ToolchainError::Cargo {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(ToolchainError::BuildFailed {
            dir: dir.to_path_buf(),
        });
    }
    component_of(dir, &String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
        ToolchainError::NoComponent {
            dir: dir.to_path_buf(),
        }
    })
}

/// The `.wasm` that cargo's JSON messages say the crate in `dir` produced.
fn component_of(dir: &Path, messages: &str) -> Option<PathBuf> {
    let crate_dir = std::fs::canonicalize(dir).ok();
    let mut wasm = None;
    for line in messages.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let manifest_dir = message["manifest_path"]
            .as_str()
            .and_then(|p| Path::new(p).parent());
        if manifest_dir.is_none() || manifest_dir != crate_dir.as_deref() {
            continue;
        }
        let files = message["filenames"].as_array().into_iter().flatten();
        if let Some(file) = files
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"))
        {
            wasm = Some(PathBuf::from(file));
        }
    }
    wasm
}
