//! Schedules in a running `reprise serve`: the config's schedules stored at start, those added
//! through the API, and the task that fires each when it is due. Every host sharing a
//! database fires every schedule it can run; a firing's workflow id is made of the schedule
//! and the scheduled time, so a firing starts one workflow however many hosts fire it.

use std::sync::Arc;
use std::time::Duration;

use reprise_protocol::wire::{ScheduleBody, ScheduleView};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::node::schedule::{self, firing_id};
use crate::node::serving::Serving;
use crate::runtime::{Runtime, RuntimeError, StartRequest, validate_workflow_id};
use reprise_store::{ScheduleRecord, StoreError, now_ms};

/// How often the scheduler looks for schedules other processes added or changed.
const POLL: Duration = Duration::from_secs(1);
/// Most firings one backfill starts.
pub const MAX_BACKFILL: usize = 10_000;
/// The longest schedule name: a firing's id adds `@` and the time.
const MAX_NAME: usize = 150;

/// Why a schedule operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// No schedule has that name.
    #[error("no schedule named {0:?}")]
    Unknown(String),
    /// One already has it.
    #[error("a schedule named {0:?} exists")]
    Exists(String),
    /// The definition is wrong; the message says where.
    #[error("{0}")]
    Invalid(String),
    /// Starting a firing failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The schedules of one server: the instances it can fire them on.
pub struct Scheduler {
    runtime: Runtime,
    serving: Arc<Serving>,
    /// Wakes the firing task when a schedule changes here.
    changed: Notify,
}

impl Scheduler {
    /// A scheduler firing on the versions `serving` serves.
    pub fn new(runtime: Runtime, serving: Arc<Serving>) -> Self {
        Scheduler {
            runtime,
            serving,
            changed: Notify::new(),
        }
    }

    /// Checks a definition and makes its row: a valid name and cron expression, an instance
    /// that defines the workflow (the only one that does, when none is named), JSON input.
    pub fn record(&self, body: ScheduleBody) -> Result<ScheduleRecord, ScheduleError> {
        let invalid = |m: String| ScheduleError::Invalid(format!("schedule {:?}: {m}", body.name));
        validate_workflow_id(&body.name).map_err(|e| invalid(e.to_string()))?;
        if body.name.len() > MAX_NAME {
            return Err(invalid(format!("a name has at most {MAX_NAME} characters")));
        }
        schedule::parse(&body.cron).map_err(invalid)?;
        let instances = self.serving.instances();
        let defining: Vec<&String> = instances
            .iter()
            .filter(|(_, c)| c.has_workflow(&body.workflow))
            .map(|(name, _)| name)
            .collect();
        let instance = match (&body.instance, defining.as_slice()) {
            (Some(name), _) if defining.contains(&name) => name.clone(),
            (Some(name), _) => {
                return Err(invalid(format!(
                    "instance {name:?} does not define a workflow {:?}",
                    body.workflow
                )));
            }
            (None, [only]) => (*only).clone(),
            (None, []) => {
                return Err(invalid(format!(
                    "no configured instance defines a workflow {:?}",
                    body.workflow
                )));
            }
            (None, many) => {
                let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(invalid(format!(
                    "workflow {:?} is defined by instances {}: name one with instance",
                    body.workflow,
                    names.join(", ")
                )));
            }
        };
        Ok(ScheduleRecord {
            name: body.name,
            cron: body.cron,
            workflow: body.workflow,
            instance,
            input: body.input.to_string(),
            queue: body.queue,
            catch_up: body.catch_up,
            paused: false,
            last_fired: None,
            created_at: now_ms(),
        })
    }

    /// Stores the config's schedules, replacing their definitions (pauses and progress stay).
    pub async fn put_configured(&self, bodies: Vec<ScheduleBody>) -> Result<(), ScheduleError> {
        for body in bodies {
            let record = self.record(body)?;
            self.runtime.store().put_schedule(&record, true).await?;
        }
        Ok(())
    }

    /// Adds a schedule through the API.
    pub async fn add(&self, body: ScheduleBody) -> Result<ScheduleRecord, ScheduleError> {
        let record = self.record(body)?;
        if !self.runtime.store().put_schedule(&record, false).await? {
            return Err(ScheduleError::Exists(record.name));
        }
        self.changed.notify_one();
        Ok(record)
    }

    /// The schedule of that name.
    pub async fn get(&self, name: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.runtime
            .store()
            .get_schedule(name)
            .await?
            .ok_or_else(|| ScheduleError::Unknown(name.to_string()))
    }

    /// Pauses or resumes a schedule.
    pub async fn pause(&self, name: &str, paused: bool) -> Result<ScheduleRecord, ScheduleError> {
        if !self.runtime.store().pause_schedule(name, paused).await? {
            return Err(ScheduleError::Unknown(name.to_string()));
        }
        self.changed.notify_one();
        self.get(name).await
    }

    /// Deletes a schedule; the workflows it started stay.
    pub async fn delete(&self, name: &str) -> Result<(), ScheduleError> {
        if !self.runtime.store().delete_schedule(name).await? {
            return Err(ScheduleError::Unknown(name.to_string()));
        }
        Ok(())
    }

    /// Fires a schedule now, paused or not; returns the firing's workflow id.
    pub async fn trigger(&self, name: &str) -> Result<String, ScheduleError> {
        let schedule = self.get(name).await?;
        self.fire(&schedule, now_ms()).await
    }

    /// Fires every time of the schedule in `[from, to)` (ms), at most [`MAX_BACKFILL`];
    /// times that already fired are found, not run again.
    pub async fn backfill(
        &self,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<String>, ScheduleError> {
        let now = now_ms();
        if to > now {
            return Err(ScheduleError::Invalid(format!(
                "a backfill fires past times only: `to` ({to}) is {} ms in the future, and the \
                 schedule fires those times itself when they come",
                to - now
            )));
        }
        let schedule = self.get(name).await?;
        let cron = schedule::parse(&schedule.cron).map_err(ScheduleError::Invalid)?;
        let times = cron.times(from.saturating_sub(1), to.saturating_sub(1), MAX_BACKFILL);
        let mut ids = Vec::with_capacity(times.len());
        for time in times {
            ids.push(self.fire(&schedule, time).await?);
        }
        Ok(ids)
    }

    /// Starts (or finds started) the workflow of the schedule's firing for `scheduled`.
    async fn fire(
        &self,
        schedule: &ScheduleRecord,
        scheduled: i64,
    ) -> Result<String, ScheduleError> {
        let instances = self.serving.instances();
        let component = instances.get(&schedule.instance).ok_or_else(|| {
            ScheduleError::Invalid(format!(
                "schedule {:?} runs on instance {:?}, which this server does not configure",
                schedule.name, schedule.instance
            ))
        })?;
        let request = StartRequest {
            id: Some(firing_id(&schedule.name, scheduled)),
            instance: schedule.instance.clone(),
            queue: schedule.queue.clone(),
            scheduled_at: Some(scheduled),
            ..StartRequest::new(&schedule.workflow, &schedule.input)
        };
        let inserted = self.runtime.submit(component, request).await?;
        if inserted.created {
            tracing::info!(schedule = %schedule.name, scheduled, workflow_id = %inserted.record.id, "schedule fired");
        }
        Ok(inserted.record.id)
    }

    /// The API's form of a schedule, with its next firing.
    pub fn view(&self, schedule: ScheduleRecord) -> Result<ScheduleView, StoreError> {
        let next_fire = match (schedule.paused, schedule::parse(&schedule.cron)) {
            (false, Ok(cron)) => cron.next_after(
                schedule
                    .last_fired
                    .unwrap_or(schedule.created_at)
                    .max(now_ms() - schedule::GRACE_MS),
            ),
            _ => None,
        };
        let input = serde_json::from_str(&schedule.input).map_err(|e| StoreError::Corrupt {
            table: "schedules",
            message: format!("schedule {}: input is not JSON: {e}", schedule.name),
        })?;
        Ok(ScheduleView {
            name: schedule.name,
            cron: schedule.cron,
            workflow: schedule.workflow,
            instance: schedule.instance,
            input,
            queue: schedule.queue,
            catch_up: schedule.catch_up,
            paused: schedule.paused,
            last_fired: schedule.last_fired,
            next_fire,
        })
    }

    /// Fires the schedules this server can run as they come due, until `stop`.
    pub fn spawn(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let scheduler = self.clone();
        tokio::spawn(async move {
            loop {
                let next = match scheduler.fire_due().await {
                    Ok(next) => next,
                    Err(err) => {
                        tracing::warn!("schedules could not fire, will retry: {err}");
                        None
                    }
                };
                let wait = next.map_or(POLL, |at| {
                    Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(POLL)
                });
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = scheduler.changed.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        })
    }

    /// One pass: fires what is due; returns when the next firing is.
    async fn fire_due(&self) -> Result<Option<i64>, ScheduleError> {
        let now = now_ms();
        let mut next: Option<i64> = None;
        for schedule in self.runtime.store().schedules().await? {
            if schedule.paused || !self.serving.instances().contains_key(&schedule.instance) {
                continue;
            }
            let cron = match schedule::parse(&schedule.cron) {
                Ok(cron) => cron,
                Err(err) => {
                    tracing::warn!(schedule = %schedule.name, "{err}");
                    continue;
                }
            };
            let last = schedule.last_fired.unwrap_or(schedule.created_at);
            let due = schedule::due(&cron, last, now, schedule.catch_up);
            for &time in &due.fire {
                self.fire(&schedule, time).await?;
            }
            let last = match due.advance_to {
                Some(to) => {
                    self.runtime
                        .store()
                        .advance_schedule(&schedule.name, to)
                        .await?;
                    to
                }
                None => last,
            };
            if let Some(at) = cron.next_after(last.max(now)) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok(next)
    }
}
