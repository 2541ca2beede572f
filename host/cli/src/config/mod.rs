//! The `reprise.toml` model: components, named instances of them with their own config and
//! limits, queues, and the admin server. Unknown keys are errors, so a typo is never ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

mod grants;
mod quotas;
mod server;
mod steps;
mod telemetry;
mod units;

pub use grants::{DirConfig, SecretSource, existing_dir, host_patterns, tcp_patterns};
pub use server::ServerConfig;
pub use telemetry::TelemetryConfig;
use units::{duration, optional_duration, optional_size, size};
pub use units::{parse_duration, parse_size};

use reprise_host::engine::EngineOptions;
use reprise_host::grants::Grants;
use reprise_host::limits::{InstanceLimits, TrapClass};
use reprise_host::node::queue::QueueOptions;
use reprise_host::runtime::{
    AtEnd, InstanceOptions, MemoryGrowth, Runtime, RuntimeOptions, StepLimit, TrapPolicies,
    TrapPolicy, UpgradePolicy,
};
use reprise_host::telemetry::Telemetry;
use reprise_store::{Durability, RateLimit, open_store};

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The cause is the `source`, not repeated in the message.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid `reprise.toml` (a typo in a key, a bad size or duration).
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// A whole `reprise.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SQLite file (relative to the config file), `sqlite://` URL, or `postgres://` URL.
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default)]
    /// `synced` or `process`.
    pub durability: Durability,
    #[serde(default = "default_executor")]
    /// Who owns the workflows this server starts.
    pub executor_id: String,
    /// How long this server's lease lasts unrenewed (`5s` if unset); it renews it every third.
    #[serde(default, deserialize_with = "optional_duration")]
    pub lease: Option<Duration>,
    /// Ended workflows older than this are deleted with their steps (`30d`); none if unset.
    #[serde(default, deserialize_with = "optional_duration")]
    pub retention: Option<Duration>,
    /// `text` or `json` logs on stderr; `--log-format` wins.
    #[serde(default)]
    pub log_format: Option<LogFormat>,
    /// Live WebAssembly instances at once (the instance pool's size). Executions beyond it
    /// wait their turn; waiting workflows are parked and hold none.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    #[serde(default)]
    /// The admin API.
    pub server: ServerConfig,
    /// Component name → `.wasm` file or guest crate directory (relative to the config file).
    #[serde(default)]
    pub components: BTreeMap<String, PathBuf>,
    /// Named instances of components with their own config values and limits. Every
    /// component is also an instance of its own name with default settings, unless an instance
    /// of that name is declared here.
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceConfig>,
    #[serde(default)]
    /// Queues by name.
    pub queues: BTreeMap<String, QueueConfig>,
    /// Schedules by name: each starts a workflow at the times of its cron expression.
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleConfig>,
    /// Traces over OTLP.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[schedules.NAME]`: a workflow started at each time of a cron expression.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// With seconds, in UTC: `"0 0 2 * * *"` is 02:00:00 every day.
    pub cron: String,
    /// The workflow each firing starts.
    pub workflow: String,
    /// The instance it runs on (needed when several define the workflow).
    pub instance: Option<String>,
    /// The input each firing gets (any TOML value, as JSON).
    #[serde(default)]
    pub input: Option<toml::Value>,
    /// Enqueue each firing on this queue.
    pub queue: Option<String>,
    /// After downtime: `"skip"` the missed firings (default) or run `"all"` of them.
    #[serde(default)]
    pub catch_up: reprise_protocol::wire::CatchUp,
}

impl Config {
    /// The schedules as the API takes them.
    pub fn schedule_bodies(&self) -> Result<Vec<reprise_protocol::wire::ScheduleBody>, String> {
        self.schedules
            .iter()
            .map(|(name, s)| {
                let input = match &s.input {
                    Some(value) => serde_json::to_value(value)
                        .map_err(|e| format!("schedules.{name}.input: {e}"))?,
                    None => serde_json::Value::Null,
                };
                Ok(reprise_protocol::wire::ScheduleBody {
                    name: name.clone(),
                    cron: s.cron.clone(),
                    workflow: s.workflow.clone(),
                    instance: s.instance.clone(),
                    input,
                    queue: s.queue.clone(),
                    catch_up: s.catch_up,
                })
            })
            .collect()
    }
}

fn default_max_instances() -> u32 {
    reprise_host::engine::EngineOptions::default().max_instances
}

/// How logs are written: for people, or for a log shipper.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `message` and the fields
    /// (`workflow_id`, `step` for guest logs).
    Json,
}

/// One configured instance (DBOS's configured instance): a component, config values, limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Name of an entry of `[components]`.
    pub component: String,
    #[serde(default, deserialize_with = "optional_size")]
    /// Memory limit of each instance.
    pub memory_limit: Option<u64>,
    /// CPU budget of each step attempt and stretch of workflow code.
    pub fuel: Option<u64>,
    #[serde(default, deserialize_with = "optional_size")]
    /// Largest output of a workflow or step.
    pub max_output: Option<u64>,
    /// Recoveries after the workflow's own traps.
    pub max_recovery_attempts: Option<u32>,
    /// Recoveries after host crashes or restarts, counted apart from the workflow's traps.
    pub max_host_recoveries: Option<u32>,
    /// Values the guest reads through `workflow_info().config`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Trap policies by trap class (`out_of_memory`, `cpu_limit`, …).
    #[serde(default)]
    pub traps: BTreeMap<TrapClass, TrapPolicyConfig>,
    /// Hosts steps may send HTTP requests to: `host`, `host:port`, `host:*`.
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// Hosts steps may open TCP connections to.
    #[serde(default)]
    pub allow_tcp: Vec<String>,
    /// Directories steps see, by the path the guest uses.
    #[serde(default)]
    pub dirs: BTreeMap<String, DirConfig>,
    /// Secrets steps read by name, and where each value comes from.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// Timeout of each phase of an HTTP request that sets none [default: 30s].
    #[serde(default, deserialize_with = "optional_duration")]
    pub http_timeout: Option<Duration>,
    /// Other instances whose workflows this one's code may send to, read events of and await
    /// (`["*"]`: all); by default only its own instance's and its own children.
    #[serde(default)]
    pub reach: Vec<String>,
    /// What its workflows may take of what all instances share.
    #[serde(default)]
    pub quotas: quotas::QuotasConfig,
    /// `"pinned"` (default): workflows keep their version until moved; `"auto"`: they move
    /// to the newest one when they wake or recover and their history replays cleanly on it.
    #[serde(default)]
    pub upgrade: UpgradePolicy,
    /// Limits on its steps, by step name (`[instances.X.steps.charge]`).
    #[serde(default)]
    pub steps: BTreeMap<String, steps::StepLimitConfig>,
    /// `steps`, checked when the config loads.
    #[serde(skip)]
    pub step_limits: BTreeMap<String, StepLimit>,
    /// The grants above, read when the config loads.
    #[serde(skip)]
    pub grants: Arc<Grants>,
}

/// `[instances.NAME.traps.CLASS]`: what happens after traps of one class.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrapPolicyConfig {
    /// Traps of this class in a row that are recovered.
    pub max_recoveries: Option<u32>,
    /// `out_of_memory` only: `{ factor = 2.0, max = "256MiB" }`.
    pub grow_memory: Option<GrowthConfig>,
    /// `"fail"` (default) or `"pause"`.
    #[serde(default)]
    pub then: AtEnd,
}

/// How the memory limit grows on each out-of-memory recovery.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowthConfig {
    /// The multiplier, more than 1.
    pub factor: f64,
    /// The cap.
    #[serde(deserialize_with = "size")]
    pub max: u64,
}

impl InstanceConfig {
    fn trap_policies(&self) -> TrapPolicies {
        self.traps
            .iter()
            .map(|(class, policy)| {
                let grow_memory = policy.grow_memory.map(|g| MemoryGrowth {
                    factor: g.factor,
                    max_bytes: g.max,
                });
                let policy = TrapPolicy {
                    max_recoveries: policy.max_recoveries,
                    grow_memory,
                    then: policy.then,
                };
                (*class, policy)
            })
            .collect()
    }

    /// Why the instance's trap policies make no sense, if they do not.
    fn check_traps(&self) -> Result<(), String> {
        let limit = self
            .memory_limit
            .unwrap_or(InstanceLimits::DEFAULT_MEMORY_BYTES);
        for (class, policy) in &self.traps {
            let Some(growth) = policy.grow_memory else {
                continue;
            };
            if *class != TrapClass::OutOfMemory {
                return Err(format!(
                    "traps.{class}: grow_memory applies to out_of_memory only"
                ));
            }
            if !(growth.factor > 1.0 && growth.factor.is_finite()) {
                return Err(format!(
                    "traps.{class}.grow_memory: factor must be more than 1, not {}",
                    growth.factor
                ));
            }
            if growth.max <= limit {
                return Err(format!(
                    "traps.{class}.grow_memory: max ({} bytes) must be more than the memory \
                     limit ({limit} bytes)",
                    growth.max
                ));
            }
        }
        Ok(())
    }
}

/// One queue's limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Most workflows of this queue running at once across all executors.
    pub concurrency: Option<u32>,
    /// Most running at once in this process.
    pub worker_concurrency: Option<u32>,
    /// At most so many starts per period.
    pub rate_limit: Option<RateLimitConfig>,
    /// `concurrency` and `rate_limit` hold per partition key, and partitions take turns.
    #[serde(default)]
    pub partitioned: bool,
    /// Whether a workflow parked in a wait keeps its worker slot [default: true].
    pub count_waiting: Option<bool>,
}

/// At most `limit` starts per `period`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Starts allowed per period.
    pub limit: u32,
    #[serde(deserialize_with = "duration")]
    /// The period.
    pub period: Duration,
}

impl QueueConfig {
    /// The limits its dispatcher enforces.
    pub fn options(&self) -> QueueOptions {
        QueueOptions {
            concurrency: self.concurrency,
            worker_concurrency: self.worker_concurrency,
            rate_limit: self.rate_limit.as_ref().map(RateLimitConfig::to_store),
            partitioned: self.partitioned,
            count_waiting: self.count_waiting.unwrap_or(true),
        }
    }
}

impl RateLimitConfig {
    /// The store's form of the limit.
    pub fn to_store(&self) -> RateLimit {
        RateLimit {
            limit: self.limit,
            period_ms: i64::try_from(self.period.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

fn default_database() -> String {
    "reprise.db".into()
}
fn default_executor() -> String {
    "local".into()
}

impl Config {
    /// Every queue's limits, as the dispatchers take them.
    pub fn queue_options(&self) -> BTreeMap<String, QueueOptions> {
        self.queues
            .iter()
            .map(|(name, queue)| (name.clone(), queue.options()))
            .collect()
    }

    /// Reads and checks a config file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut config: Config = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in config.components.values_mut() {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        let is_url = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| config.database.starts_with(scheme));
        if !is_url && Path::new(&config.database).is_relative() {
            config.database = base.join(&config.database).to_string_lossy().into_owned();
        }
        for (key, timeout) in [
            ("header_timeout", config.server.header_timeout),
            ("body_timeout", config.server.body_timeout),
        ] {
            if timeout.is_zero() {
                return Err(invalid(format!(
                    "server.{key} of 0 would cut off every request"
                )));
            }
        }
        for (name, instance) in &config.instances {
            if !config.components.contains_key(&instance.component) {
                return Err(invalid(format!(
                    "instance {name:?} names component {:?}, which [components] does not define",
                    instance.component
                )));
            }
            instance
                .check_traps()
                .map_err(|message| invalid(format!("instance {name:?}: {message}")))?;
            let known = |other: &String| {
                other == "*"
                    || config.instances.contains_key(other)
                    || config.components.contains_key(other)
            };
            if let Some(other) = instance.reach.iter().find(|other| !known(other)) {
                return Err(invalid(format!(
                    "instance {name:?}: reach names {other:?}, which is no instance"
                )));
            }
        }
        for (name, instance) in config.instances.iter_mut() {
            instance.grants = instance
                .read_grants(base)
                .map_err(|message| invalid(format!("instance {name:?}: {message}")))?;
            for (step, limit) in &instance.steps {
                let limit = limit.limit(name, step).map_err(invalid)?;
                instance.step_limits.insert(step.clone(), limit);
            }
        }
        for (name, schedule) in &config.schedules {
            reprise_host::node::schedule::parse(&schedule.cron)
                .map_err(|message| invalid(format!("schedules.{name}: {message}")))?;
            if let Some(queue) = &schedule.queue
                && !config.queues.contains_key(queue)
            {
                return Err(invalid(format!(
                    "schedules.{name}: queue {queue:?} is not in [queues]"
                )));
            }
        }
        config.telemetry.check().map_err(invalid)?;
        for (name, queue) in &config.queues {
            if queue.concurrency == Some(0) || queue.worker_concurrency == Some(0) {
                return Err(invalid(format!(
                    "queue {name:?}: a concurrency of 0 would never run anything"
                )));
            }
            if let Some(rate) = &queue.rate_limit
                && (rate.limit == 0 || rate.period.is_zero())
            {
                return Err(invalid(format!(
                    "queue {name:?}: rate_limit needs limit > 0 and period > 0"
                )));
            }
        }
        Ok(config)
    }

    /// The bearer token, from `token` or the variable `token_env` names.
    pub fn token(&self) -> Result<Option<String>, String> {
        match (&self.server.token, &self.server.token_env) {
            (Some(token), _) => Ok(Some(token.clone())),
            (None, Some(var)) => std::env::var(var)
                .map(Some)
                .map_err(|_| format!("server.token_env names {var}, which is not set")),
            (None, None) => Ok(None),
        }
    }

    /// Every instance, explicit ones and one per component named after it.
    pub fn all_instances(&self) -> BTreeMap<String, InstanceConfig> {
        let mut all: BTreeMap<String, InstanceConfig> = self
            .components
            .keys()
            .map(|name| {
                let implicit = InstanceConfig {
                    component: name.clone(),
                    memory_limit: None,
                    fuel: None,
                    max_output: None,
                    max_recovery_attempts: None,
                    max_host_recoveries: None,
                    config: BTreeMap::new(),
                    traps: BTreeMap::new(),
                    allow_http: Vec::new(),
                    allow_tcp: Vec::new(),
                    dirs: BTreeMap::new(),
                    secrets: BTreeMap::new(),
                    http_timeout: None,
                    reach: Vec::new(),
                    quotas: Default::default(),
                    upgrade: UpgradePolicy::Pinned,
                    steps: BTreeMap::new(),
                    step_limits: BTreeMap::new(),
                    grants: Arc::default(),
                };
                (name.clone(), implicit)
            })
            .collect();
        all.extend(self.instances.clone());
        all
    }

    /// The runtime's options: one entry per instance.
    /// The runtime this file describes, on its database, tracing to `telemetry`: what `serve`
    /// runs, and what the CLI runs with `--config`.
    pub async fn runtime(&self, telemetry: Telemetry) -> anyhow::Result<Runtime> {
        let store = open_store(&self.database, self.durability).await?;
        let engine = EngineOptions {
            max_instances: self.max_instances,
            ..Default::default()
        };
        let options = RuntimeOptions {
            telemetry,
            ..self.runtime_options()
        };
        Ok(Runtime::new(store, &engine, options)?)
    }

    pub fn runtime_options(&self) -> RuntimeOptions {
        let defaults = InstanceOptions::default();
        let instances = self
            .all_instances()
            .into_iter()
            .map(|(name, i)| {
                let options = InstanceOptions {
                    limits: InstanceLimits {
                        memory_bytes: i.memory_limit.unwrap_or(defaults.limits.memory_bytes),
                        fuel: i.fuel.unwrap_or(defaults.limits.fuel),
                        max_output_bytes: i.max_output.unwrap_or(defaults.limits.max_output_bytes),
                    },
                    max_recovery_attempts: i
                        .max_recovery_attempts
                        .unwrap_or(defaults.max_recovery_attempts),
                    max_host_recoveries: i
                        .max_host_recoveries
                        .unwrap_or(defaults.max_host_recoveries),
                    trap_policies: i.trap_policies(),
                    config: i.config,
                    grants: i.grants,
                    reach: i.reach,
                    quotas: i.quotas.quotas(),
                    upgrade: i.upgrade,
                    steps: i.step_limits,
                };
                (name, options)
            })
            .collect();
        // Started where the process has an async runtime to export on (`reprise serve`).
        RuntimeOptions {
            executor_id: self.executor_id.clone(),
            instances,
            telemetry: reprise_host::telemetry::Telemetry::off(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reprise.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(&path)
    }

    #[test]
    fn a_full_config_parses_with_units_and_relative_paths() {
        let config = load(
            r#"
            database = "data/reprise.db"
            durability = "process"
            [server]
            listen = "127.0.0.1:9000"
            token = "s3cret"
            grace_period = "5s"
            max_body = "64KiB"
            header_timeout = "2s"
            body_timeout = "500ms"
            [components]
            publisher = "guests/publisher"
            [instances.alpha]
            component = "publisher"
            memory_limit = "32MiB"
            config = { topic = "alpha" }
            [queues.publishers]
            concurrency = 4
            worker_concurrency = 2
            rate_limit = { limit = 10, period = "1s" }
            "#,
        )
        .expect("valid config");
        assert!(config.database.ends_with("data/reprise.db") && config.database.starts_with('/'));
        assert_eq!(config.server.grace_period, Duration::from_secs(5));
        assert_eq!(config.server.max_body, 64 << 10);
        assert_eq!(config.server.header_timeout, Duration::from_secs(2));
        assert_eq!(config.server.body_timeout, Duration::from_millis(500));
        let options = config.runtime_options();
        assert_eq!(options.instances["alpha"].limits.memory_bytes, 32 << 20);
        assert_eq!(options.instances["alpha"].config["topic"], "alpha");
        assert!(
            options.instances.contains_key("publisher"),
            "implicit instance per component"
        );
        let rate = config.queues["publishers"]
            .rate_limit
            .as_ref()
            .expect("rate")
            .to_store();
        assert_eq!((rate.limit, rate.period_ms), (10, 1000));
    }

    #[test]
    fn the_readme_example_config_is_valid() {
        let readme = include_str!("../../../../README.md");
        let section = readme
            .split("### The config file")
            .nth(1)
            .expect("README has a config section");
        let start = section.find("```toml\n").expect("toml block") + "```toml\n".len();
        let end = section[start..].find("```").expect("end of block");
        let config = load(&section[start..start + end]).expect("the README's config parses");
        let options = config.runtime_options();
        assert_eq!(options.instances["alpha"].config["fail_every"], "3");
        assert_eq!(config.queues["fib"].worker_concurrency, Some(8));
    }

    /// The README's instance with grants: a directory and a secret next to the config file.
    #[test]
    fn the_readmes_grants_parse() {
        let readme = include_str!("../../../../README.md");
        let start = readme
            .find("[instances.shop]")
            .expect("the README's grants example");
        let end = readme[start..].find("```").expect("end of block");
        // PATH is set wherever tests run; the README's variable is not.
        let block = readme[start..start + end].replace("env = \"PAYMENT_KEY\"", "env = \"PATH\"");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("data")).expect("data dir");
        let path = dir.path().join("reprise.toml");
        std::fs::write(
            &path,
            format!("[components]\nshop = \"shop.wasm\"\n{block}"),
        )
        .expect("write");
        let config = Config::load(&path).expect("the README's grants parse");
        let grants = &config.runtime_options().instances["shop"].grants;
        assert!(grants.http[0].matches("api.payments.example", 443));
        assert!(grants.tcp[0].matches("127.0.0.1", 7000));
        assert!(grants.dirs[0].read_only);
        assert_eq!(grants.dirs[0].guest_path, "/data");
        assert!(grants.secrets.get("PAYMENT_KEY").is_some());
        assert_eq!(grants.http_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_grants_stop_the_load_naming_the_instance_and_the_key() {
        for (keys, expected) in [
            (
                "allow_http = [\"http://x\"]",
                "allow_http: \"http://x\" is not a host grant",
            ),
            (
                "allow_tcp = [\"db:port\"]",
                "allow_tcp: \"db:port\" is not a host grant",
            ),
            (
                "dirs = { \"/d\" = { path = \"missing\" } }",
                "is not a directory",
            ),
            (
                "dirs = { \"rel\" = { path = \".\" } }",
                "the guest path must be absolute",
            ),
            (
                "secrets = { K = { env = \"REPRISE_SURELY_UNSET_VARIABLE\" } }",
                "secret \"K\" reads $REPRISE_SURELY_UNSET_VARIABLE, which is not set",
            ),
            (
                "secrets = { K = { file = \"nope.key\" } }",
                "secret \"K\" reads",
            ),
            ("secrets = { K = {} }", "exactly one of env"),
            (
                "reach = [\"billing\"]",
                "reach names \"billing\", which is no instance",
            ),
        ] {
            let text =
                format!("[components]\nc = \"c.wasm\"\n[instances.i]\ncomponent = \"c\"\n{keys}");
            let err = load(&text).expect_err(keys).to_string();
            assert!(
                err.contains("instance \"i\"") && err.contains(expected),
                "{keys}: {err}"
            );
        }
    }

    #[test]
    fn mistakes_are_named() {
        let err = load("databse = \"x\"").expect_err("typo").to_string();
        assert!(err.contains("databse"), "{err}");
        let err = load("[instances.a]\ncomponent = \"missing\"")
            .expect_err("dangling")
            .to_string();
        assert!(err.contains("\"missing\""), "{err}");
        let err = load("[queues.q]\nworker_concurrency = 0")
            .expect_err("zero")
            .to_string();
        assert!(err.contains("never run"), "{err}");
        let err = load("[server]\ngrace_period = \"5 parsecs\"")
            .expect_err("unit")
            .to_string();
        assert!(err.contains("parsecs"), "{err}");
        let err = load("[server]\nheader_timeout = \"0s\"")
            .expect_err("zero")
            .to_string();
        assert!(err.contains("server.header_timeout"), "{err}");
    }

    #[test]
    fn trap_policies_parse_per_instance_and_class_and_size_the_pool() {
        let config = load(
            r#"
            [components]
            memhog = "m.wasm"
            [instances.tight]
            component = "memhog"
            memory_limit = "16MiB"
            [instances.tight.traps.out_of_memory]
            max_recoveries = 3
            grow_memory = { factor = 2.0, max = "256MiB" }
            then = "pause"
            [instances.tight.traps.cpu_limit]
            max_recoveries = 0
            "#,
        )
        .expect("valid config");
        let options = config.runtime_options();
        let policies = &options.instances["tight"].trap_policies;
        let oom = policies[&TrapClass::OutOfMemory];
        assert_eq!(oom.max_recoveries, Some(3));
        assert_eq!(oom.then, AtEnd::Pause);
        assert_eq!(oom.grow_memory.map(|g| g.max_bytes), Some(256 << 20));
        assert_eq!(policies[&TrapClass::CpuLimit].then, AtEnd::Fail);
        assert!(options.instances["memhog"].trap_policies.is_empty());
        assert_eq!(
            options.max_memory_bytes(),
            256 << 20,
            "the pool fits the cap"
        );
    }

    #[test]
    fn nonsensical_trap_policies_are_refused_naming_the_key() {
        for (policy, expected) in [
            (
                "[instances.i.traps.panic]\ngrow_memory = { factor = 2.0, max = \"1GiB\" }",
                "out_of_memory only",
            ),
            (
                "[instances.i.traps.out_of_memory]\ngrow_memory = { factor = 1.0, max = \"1GiB\" }",
                "more than 1",
            ),
            (
                "[instances.i.traps.out_of_memory]\ngrow_memory = { factor = 2.0, max = \"1MiB\" }",
                "must be more than the memory limit",
            ),
            (
                "[instances.i.traps.out_of_memry]\nmax_recoveries = 1",
                "out_of_memry",
            ),
            ("[instances.i.traps.panic]\nthen = \"retry\"", "retry"),
        ] {
            let text =
                format!("[components]\nm = \"m.wasm\"\n[instances.i]\ncomponent = \"m\"\n{policy}");
            let err = load(&text).expect_err(policy).to_string();
            assert!(err.contains(expected), "{policy}: {err}");
        }
    }
}
