//! A real `reprise serve` process for tests: its own config, database and free port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{guest, reprise_bin};
use crate::guests::{FIB, PUBLISHER};

/// The guests and queues the serve tests use, with `{extra}` appended.
pub fn config(dir: &Path, extra: &str) -> String {
    config_with(dir, "", extra)
}

/// [`config`] with `server_keys` (lines like `body_timeout = "1s"`) added to its `[server]`
/// table, which `extra` cannot reopen.
pub fn config_with(dir: &Path, server_keys: &str, extra: &str) -> String {
    format!(
        r#"
database = "{db}"
durability = "process"
executor_id = "test-executor"

[server]
token = "secret"
grace_period = "10s"
max_body = "16KiB"
{server_keys}

[components]
fib = "{fib}"
publisher = "{publisher}"

[instances.alpha]
component = "publisher"
config = {{ topic = "alpha", fail_every = "3" }}

[instances.beta]
component = "publisher"
config = {{ topic = "beta", fail_every = "0" }}

[queues.fib]
worker_concurrency = 16

[queues.serial]
worker_concurrency = 1

[queues.limited]
rate_limit = {{ limit = 5, period = "1s" }}

[queues.publishers]
concurrency = 4
{extra}
"#,
        db = dir.join("serve.db").display(),
        fib = guest(FIB).display(),
        publisher = guest(PUBLISHER).display(),
    )
}

/// A running `reprise serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
    pub stderr_log: PathBuf,
}

impl Server {
    /// Writes `config_text` to `dir/reprise.toml` and starts a server on a free port.
    pub fn start(dir: &Path, config_text: &str) -> Server {
        Server::start_on(dir, config_text, "127.0.0.1:0")
    }

    /// [`Server::start`] listening on `listen`: a restarted server takes its predecessor's
    /// port, so a client that knows only the URL finds it again.
    pub fn start_on(dir: &Path, config_text: &str, listen: &str) -> Server {
        Server::start_logging(dir, config_text, listen, "reprise=info,guest=warn")
    }

    /// [`Server::start_on`] with `rust_log` as its `RUST_LOG`, for tests that read its log.
    pub fn start_logging(dir: &Path, config_text: &str, listen: &str, rust_log: &str) -> Server {
        let config_path = dir.join("reprise.toml");
        std::fs::write(&config_path, config_text).expect("write config");
        let stderr_log = dir.join(format!(
            "serve-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let stderr = std::fs::File::create(&stderr_log).expect("log file");
        let mut child = Command::new(reprise_bin())
            .args(["serve", "--listen", listen, "--config"])
            .arg(&config_path)
            .env("REPRISE_CACHE_DIR", dir.join("cache"))
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn reprise serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("reprise serve listening on ")
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
                panic!("serve did not start: {line:?}\n{log}")
            })
            .to_string();
        Server {
            child,
            url,
            dir: dir.to_path_buf(),
            stderr_log,
        }
    }

    /// `host:port`, for raw TCP.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    pub fn client(&self) -> reprise_client::Client {
        reprise_client::Client::new(&self.url, Some("secret".into())).expect("client")
    }

    /// Sends a signal (`TERM`, `INT` or `KILL`) and waits for the process to exit; returns its
    /// exit code. The shell's built-in `kill` needs no extra package on a fresh machine.
    pub fn signal_and_wait(&mut self, signal: &str) -> Option<i32> {
        if signal == "KILL" {
            self.child.kill().expect("SIGKILL");
        } else {
            let status = Command::new("sh")
                .args(["-c", &format!("kill -s {signal} {}", self.child.id())])
                .status()
                .expect("sh");
            assert!(status.success(), "could not send SIG{signal}");
        }
        self.child.wait().expect("wait for serve").code()
    }

    /// A workflow's recorded steps, through the API.
    pub async fn steps(&self, id: &str) -> Vec<serde_json::Value> {
        let url = format!("{}/workflows/{id}/steps", self.url);
        let steps: serde_json::Value = reqwest::Client::new()
            .get(&url)
            .bearer_auth("secret")
            .send()
            .await
            .expect("steps")
            .json()
            .await
            .expect("steps json");
        steps.as_array().cloned().unwrap_or_default()
    }

    /// The workflows `GET /workflows?{query}` lists (`query` should bound `limit`).
    pub async fn list(&self, query: &str) -> Vec<serde_json::Value> {
        let response = reqwest::Client::new()
            .get(format!("{}/workflows?{query}", self.url))
            .bearer_auth("secret")
            .send()
            .await
            .expect("list");
        let status = response.status();
        let listed: serde_json::Value = response.json().await.expect("list json");
        assert_eq!(status, 200, "GET /workflows?{query}: {listed}");
        listed.as_array().cloned().unwrap_or_default()
    }

    /// `GET /healthz`'s answer.
    pub async fn health(&self) -> serde_json::Value {
        reqwest::get(format!("{}/healthz", self.url))
            .await
            .expect("health")
            .json()
            .await
            .expect("health json")
    }

    /// Workflows parked in a wait here, holding no instance, from `/healthz`.
    pub async fn parked(&self) -> u64 {
        self.health().await["parked"].as_u64().unwrap_or(0)
    }

    /// Workflows of `queue` running now (PENDING), from `/healthz`.
    pub async fn pending_in(&self, queue: &str) -> u64 {
        let health = self.health().await;
        health["queues"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|q| q["queue"] == queue)
            .map(|q| q["pending"].as_u64().unwrap_or(0))
            .sum()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// The first line of its log holding each of `texts`, once one is written (a panic after
    /// `within`).
    pub fn wait_for_log(&self, texts: &[&str], within: std::time::Duration) -> String {
        let until = std::time::Instant::now() + within;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| texts.iter().all(|t| l.contains(t))) {
                return line.to_string();
            }
            assert!(
                std::time::Instant::now() < until,
                "no log line with {texts:?} within {within:?}:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Re-evaluates `probe` every 10 ms, for at most 5 s, until `done` holds; returns the last
/// value. For conditions only observable by asking (a count of recorded steps, say).
pub async fn poll_until<T, F, Fut>(probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    poll_within(std::time::Duration::from_secs(5), probe, done).await
}

/// [`poll_until`] for at most `within`: for what takes several round trips on a loaded
/// machine.
pub async fn poll_within<T, F, Fut>(
    within: std::time::Duration,
    mut probe: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let until = std::time::Instant::now() + within;
    let mut value = probe().await;
    while !done(&value) && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        value = probe().await;
    }
    value
}
