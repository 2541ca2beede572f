//! A throwaway Postgres cluster for the tests that need a real server: one per test process,
//! started on first use, with a fresh database per test.
//!
//! All the tests are one binary, so one process: every module that needs Postgres (the store
//! contract, the runtime scenarios run on both backends, the Postgres-only runtime tests, the
//! hosts sharing a database) shares this one cluster. Starting a cluster takes seconds, which
//! is why they share it. Statics are never dropped, so the cluster cannot be stopped from a
//! `Drop`; instead a small reaper process waits on a pipe whose only writer is this process
//! (its end is close-on-exec, so no child process holds it). When the process exits, however
//! it exits (passing, failing, panicking, killed) and however many tests used the cluster,
//! the kernel closes the pipe and the reaper stops the cluster and deletes its directory.
//!
//! Sharing one cluster, tests must not share a database: [`database`] makes each name unique
//! in the process, so two tests (or two modules) may ask for the same one.
//!
//! Postgres refuses to run as root: as root, the cluster runs as the `postgres` user. When
//! Postgres cannot be started (no binaries, no such user), every test that needs it fails with
//! a message saying what is missing; none is skipped.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use sqlx::Connection;

/// What the tests need from the machine, said when it is missing.
const INSTALL_HINT: &str = "install PostgreSQL (for example `apt-get install postgresql`; \
                            .ci/run does) so that initdb, pg_ctl and postgres are on PATH or in \
                            /usr/lib/postgresql/<version>/bin";

/// The cluster of this test process, or why it could not start.
static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// Databases created so far in this process: the suffix that keeps each name unique.
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// Postgres's longest identifier (`NAMEDATALEN - 1`); a longer name would be cut silently.
const MAX_NAME: usize = 63;

/// Connections the cluster accepts. Every module's tests share it, and a store's pool holds up
/// to `reprise_host::store::postgres::POOL_SIZE` of them (several `reprise serve` hosts at once in
/// `hosts/many_hosts.rs`), so the default of 100 is raised.
const MAX_CONNECTIONS: u32 = 300;

/// A running cluster on a free local port, trusting local connections.
pub struct Cluster {
    port: u16,
    /// The write end of the reaper's pipe: held (never written) until the process exits.
    _lifeline: Mutex<ChildStdin>,
}

/// Creates a fresh database named after `name` on this process's cluster (starting the cluster
/// first if need be) and returns its URL. The name gets a suffix unique in this process (and is
/// shortened to fit), so every call has a database of its own. Panics, saying why, when
/// Postgres cannot be started.
pub async fn database(name: &str) -> String {
    let cluster = match CLUSTER.get_or_init(Cluster::start) {
        Ok(cluster) => cluster,
        Err(why) => panic!("cannot start a throwaway Postgres cluster: {why}"),
    };
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the cluster's postgres database");
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?} must be a plain identifier"
    );
    let suffix = format!("_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
    let name = format!(
        "{}{suffix}",
        &name[..name.len().min(MAX_NAME - suffix.len())]
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("create database {name}: {err}"));
    conn.close().await.expect("close the admin connection");
    format!("postgres://postgres@127.0.0.1:{}/{name}", cluster.port)
}

impl Cluster {
    fn start() -> Result<Cluster, String> {
        let bin = postgres_bin_dir()
            .ok_or_else(|| format!("no Postgres binaries found: {INSTALL_HINT}"))?;
        let as_postgres = is_root()?;
        if as_postgres && !succeeds(Command::new("id").arg("postgres")) {
            return Err(
                "running as root, Postgres must run as the unprivileged `postgres` \
                        user, which does not exist (create it with `useradd --system \
                        --create-home postgres`; .ci/run does)"
                    .to_owned(),
            );
        }
        // Kept on disk past this function: the reaper deletes it once the cluster is stopped.
        let dir = tempfile::Builder::new()
            .prefix("reprise-pg-")
            .tempdir()
            .map_err(|err| format!("cannot create the cluster's directory: {err}"))?
            .keep();
        if as_postgres {
            check(
                "chown the cluster's directory to postgres",
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(&dir)
                    .output(),
            )?;
        }
        let tools = Tools {
            bin,
            dir,
            as_postgres,
        };
        let port = free_port()?;
        let data = tools.dir.join("data");
        check(
            "initdb",
            tools
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "--no-sync"])
                .output(),
        )?;
        // The reaper goes first, so a failed start is cleaned up too. Its own process group
        // keeps a Ctrl-C meant for the tests from killing it before it has stopped the cluster.
        let mut stop = tools.command("pg_ctl");
        stop.arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"]);
        let reaper = Command::new("sh")
            .args([
                "-c",
                "read _; \"$@\"; cd /; rm -rf \"$REPRISE_PG_DIR\"",
                "reaper",
            ])
            .arg(stop.get_program())
            .args(stop.get_args())
            .env("REPRISE_PG_DIR", &tools.dir)
            .current_dir(&tools.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|err| format!("cannot start the cluster's reaper: {err}"))?;
        let lifeline = reaper
            .stdin
            .ok_or("the reaper has no stdin pipe".to_owned())?;
        let server_options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c max_connections={MAX_CONNECTIONS}",
            tools.dir.display()
        );
        check(
            "pg_ctl start",
            tools
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &server_options, "-w", "-l"])
                .arg(tools.dir.join("server.log"))
                .arg("start")
                .output(),
        )?;
        Ok(Cluster {
            port,
            _lifeline: Mutex::new(lifeline),
        })
    }
}

/// How to run the Postgres tools on this machine.
struct Tools {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
}

impl Tools {
    /// A Postgres tool, run as the `postgres` user when we are root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut command = if !self.as_postgres {
            Command::new(program)
        } else if Path::new("/usr/sbin/runuser").exists() || on_path("runuser") {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            // `su -c` takes one shell command line; the arguments follow as $0, $1, ….
            let mut command = Command::new("su");
            command
                .args(["postgres", "-s", "/bin/sh", "-c", "exec \"$0\" \"$@\""])
                .arg(program);
            command
        };
        // Somewhere the postgres user may enter.
        command.current_dir(&self.dir);
        command
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, if any.
fn postgres_bin_dir() -> Option<PathBuf> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_all(d))
    {
        return Some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|dir| has_all(dir))
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> Result<bool, String> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|err| format!("cannot run `id -u`: {err}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|out| out.status.success())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("no free local port: {err}"))
}

fn check(what: &str, output: std::io::Result<Output>) -> Result<(), String> {
    let output = output.map_err(|err| format!("{what}: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}
