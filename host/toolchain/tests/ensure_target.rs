//! The target check against fake `rustc` and `rustup` programs, so the machine's real
//! toolchain is never touched: a fake rustc reports a sysroot in a temp dir, a fake rustup
//! logs its arguments and installs the target there (or fails).

use std::path::{Path, PathBuf};

use reprise_toolchain::{Target, Toolchain, ToolchainError, ensure_target};

struct Fakes {
    dir: tempfile::TempDir,
    sysroot: PathBuf,
}

impl Fakes {
    /// A sysroot at `<tmp>/<parent>/<name>` with no targets, and a fake rustc reporting it.
    fn new(parent: &str, name: &str) -> Fakes {
        let dir = tempfile::tempdir().expect("temp dir");
        let sysroot = dir.path().join(parent).join(name);
        std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu"))
            .expect("sysroot");
        let fakes = Fakes { dir, sysroot };
        fakes.script("rustc", &format!("echo '{}'", fakes.sysroot.display()));
        fakes
    }

    /// Writes an executable script. It is written to a draft and copied into place by
    /// another process (`install`): a file this process held open for writing could be
    /// inherited, still open, by a child that a parallel test forks, and running it would then
    /// fail with "Text file busy".
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let draft = self.dir.path().join(format!("{name}.draft"));
        std::fs::write(&draft, format!("#!/bin/sh\n{body}\n")).expect("write script");
        let installed = std::process::Command::new("install")
            .args(["-m", "755"])
            .arg(&draft)
            .arg(&path)
            .status()
            .expect("run install");
        assert!(installed.success(), "install {}", path.display());
        path
    }

    /// A rustup that logs its arguments and installs the target into the sysroot.
    fn working_rustup(&self) -> PathBuf {
        self.script(
            "rustup",
            &format!(
                "echo \"$@\" >> '{log}'\necho 'info: downloading component rust-std'\nmkdir -p '{target}'",
                log = self.log().display(),
                target = self.target_dir().display()
            ),
        )
    }

    fn toolchain(&self, rustup: &Path) -> Toolchain {
        Toolchain {
            rustc: self.dir.path().join("rustc").into(),
            rustup: rustup.into(),
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("rustup.log")
    }

    fn logged(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn target_dir(&self) -> PathBuf {
        self.sysroot.join("lib/rustlib/wasm32-wasip2")
    }
}

#[test]
fn a_present_target_is_left_alone() {
    let fakes = Fakes::new("toolchains", "1.95.0-x86_64-unknown-linux-gnu");
    std::fs::create_dir_all(fakes.target_dir()).expect("target");
    let rustup = fakes.working_rustup();
    let found = ensure_target(&fakes.toolchain(&rustup), fakes.dir.path()).expect("ensure");
    assert_eq!(found, Target::Present);
    assert!(
        fakes.logged().is_empty(),
        "rustup ran: {:?}",
        fakes.logged()
    );
}

#[test]
fn a_missing_target_is_added_once_for_that_toolchain() {
    let fakes = Fakes::new("toolchains", "1.95.0-x86_64-unknown-linux-gnu");
    let rustup = fakes.working_rustup();
    let toolchain = fakes.toolchain(&rustup);
    let found = ensure_target(&toolchain, fakes.dir.path()).expect("ensure");
    let command = "rustup target add wasm32-wasip2 --toolchain 1.95.0-x86_64-unknown-linux-gnu";
    assert_eq!(
        found,
        Target::Added {
            command: command.into()
        }
    );
    assert_eq!(
        fakes.logged(),
        ["target add wasm32-wasip2 --toolchain 1.95.0-x86_64-unknown-linux-gnu"]
    );
    assert!(fakes.target_dir().is_dir());
    assert_eq!(
        ensure_target(&toolchain, fakes.dir.path()).expect("again"),
        Target::Present
    );
    assert_eq!(fakes.logged().len(), 1, "rustup ran twice");
}

#[test]
fn a_sysroot_outside_rustup_gets_the_plain_command() {
    let fakes = Fakes::new("opt", "rust");
    let rustup = fakes.working_rustup();
    let found = ensure_target(&fakes.toolchain(&rustup), fakes.dir.path()).expect("ensure");
    assert_eq!(
        found,
        Target::Added {
            command: "rustup target add wasm32-wasip2".into()
        }
    );
}

#[test]
fn without_rustup_the_error_is_one_line_naming_the_command() {
    let fakes = Fakes::new("toolchains", "1.95.0-x86_64-unknown-linux-gnu");
    let missing = fakes.dir.path().join("no-such-rustup");
    let err = ensure_target(&fakes.toolchain(&missing), fakes.dir.path()).unwrap_err();
    assert!(matches!(err, ToolchainError::NoRustup { .. }), "{err:?}");
    let message = err.to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.contains(
            "run `rustup target add wasm32-wasip2 --toolchain 1.95.0-x86_64-unknown-linux-gnu`"
        ),
        "{message}"
    );
    assert!(!fakes.target_dir().exists());
}

#[test]
fn a_failing_rustup_is_named_with_its_command() {
    let fakes = Fakes::new("toolchains", "nightly");
    let rustup = fakes.script("rustup", "echo 'error: no network' >&2\nexit 1");
    let err = ensure_target(&fakes.toolchain(&rustup), fakes.dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ToolchainError::AddFailed { .. }), "{err:?}");
    assert!(
        message.contains(
            "`rustup target add wasm32-wasip2 --toolchain nightly` failed (exit status: 1)"
        ),
        "{message}"
    );
}

#[test]
fn an_unrunnable_rustc_is_named() {
    let fakes = Fakes::new("toolchains", "x");
    let toolchain = Toolchain {
        rustc: fakes.dir.path().join("no-such-rustc").into(),
        rustup: fakes.working_rustup().into(),
    };
    let err = ensure_target(&toolchain, fakes.dir.path()).unwrap_err();
    assert!(matches!(err, ToolchainError::Rustc { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no-such-rustc --print sysroot"),
        "{err}"
    );
}
