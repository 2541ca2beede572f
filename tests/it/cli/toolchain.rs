//! The README's first command on a machine whose toolchain lacks `wasm32-wasip2`: `reprise run
//! <crate dir>` adds the target with rustup (saying so) before it builds, or fails naming the
//! command to run. Fake `rustc` and `rustup` programs stand first on `PATH`, so the machine's
//! real toolchain is never changed: the fake rustc reports a sysroot without the target and
//! passes every other call to the real rustc.

use crate::common;
use crate::guests::FIB;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::reprise_bin;

const TOOLCHAIN: &str = "1.95.0-fake-linux";

struct FakeToolchain {
    dir: tempfile::TempDir,
}

impl FakeToolchain {
    fn new() -> FakeToolchain {
        let dir = tempfile::tempdir().expect("temp dir");
        let real_sysroot = Command::new("rustc")
            .args(["--print", "sysroot"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("real rustc");
        let real_rustc = PathBuf::from(String::from_utf8_lossy(&real_sysroot.stdout).trim())
            .join("bin")
            .join("rustc");
        let fake = FakeToolchain { dir };
        std::fs::create_dir_all(fake.bin()).expect("bin dir");
        std::fs::create_dir_all(fake.sysroot().join("lib/rustlib")).expect("sysroot");
        fake.script(
            "rustc",
            &format!(
                "if [ \"$#\" = 2 ] && [ \"$1\" = --print ] && [ \"$2\" = sysroot ]; then echo '{}'; exit 0; fi\nexec '{}' \"$@\"",
                fake.sysroot().display(),
                real_rustc.display()
            ),
        );
        fake
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn sysroot(&self) -> PathBuf {
        self.dir.path().join("toolchains").join(TOOLCHAIN)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("rustup.log")
    }

    fn script(&self, name: &str, body: &str) {
        let path = self.bin().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// A rustup that logs its arguments and installs the target into the fake sysroot.
    fn add_rustup(&self) {
        self.script(
            "rustup",
            &format!(
                "echo \"$@\" >> '{}'\nmkdir -p '{}/lib/rustlib/wasm32-wasip2'",
                self.log().display(),
                self.sysroot().display()
            ),
        );
    }

    /// `reprise run guests/fib fib 10` with only the fakes and the system's tools on PATH.
    fn run_fib(&self, db: &Path) -> Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Command::new(reprise_bin())
            .current_dir(root)
            .args(["run", format!("guests/{FIB}").as_str(), "fib", "10"])
            .env("REPRISE_DATABASE_URL", db)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin().display()))
            .env_remove("RUSTC")
            .output()
            .expect("run reprise")
    }
}

#[test]
fn a_missing_target_is_added_with_rustup_then_the_guest_builds_and_runs() {
    let fake = FakeToolchain::new();
    fake.add_rustup();
    let db = fake.dir.path().join("reprise.db");
    let out = fake.run_fib(&db);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reprise run failed:\n{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "55");
    assert!(
        stderr.contains(&format!(
            "added the missing wasm32-wasip2 target with `rustup target add wasm32-wasip2 --toolchain {TOOLCHAIN}`"
        )),
        "{stderr}"
    );
    let logged = std::fs::read_to_string(fake.log()).expect("rustup was run");
    assert_eq!(
        logged.trim(),
        format!("target add wasm32-wasip2 --toolchain {TOOLCHAIN}")
    );

    // Now the target is there: the next run does not call rustup again.
    let again = fake.run_fib(&db);
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("added the missing"));
    let logged = std::fs::read_to_string(fake.log()).expect("log");
    assert_eq!(logged.lines().count(), 1, "rustup ran again: {logged}");
}

#[test]
fn without_rustup_the_run_fails_with_one_line_naming_the_command() {
    let fake = FakeToolchain::new();
    let db = fake.dir.path().join("reprise.db");
    let out = fake.run_fib(&db);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&format!(
            "run `rustup target add wasm32-wasip2 --toolchain {TOOLCHAIN}`"
        )),
        "{stderr}"
    );
    assert!(!fake.sysroot().join("lib/rustlib/wasm32-wasip2").exists());
}
