//! `upgrade-check`: every workflow in flight replayed against new code, with nothing executed,
//! and the verdicts grouped by where and how they part from their histories.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinSet;

use super::{Next, Replay, Verdict, replay_on};
use crate::runtime::error::RuntimeError;
use crate::runtime::execution::instance::LoadedComponent;
use crate::runtime::shared::Shared;
use reprise_store::{WorkflowFilter, WorkflowRecord, WorkflowStatus};

/// Which workflows in flight to check.
#[derive(Debug, Clone, Default)]
pub struct CheckFilter {
    /// Only this instance's.
    pub instance: Option<String>,
    /// Only those on a version whose digest starts with this. With it, a workflow the new
    /// component no longer defines is checked too (and reported); without it, only the
    /// workflows the new component defines are.
    pub from: Option<String>,
}

/// One workflow's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The workflow's id.
    pub id: String,
    /// Its name.
    pub workflow: String,
    /// Its instance.
    pub instance: String,
    /// The version it runs on now.
    pub app_version: String,
    /// What the replay found.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Workflows of one name that part from their histories in the same place and way (or, when
/// clean, would make the same next call).
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The workflows' name.
    pub workflow: String,
    /// Their verdict's name.
    pub verdict: &'static str,
    /// Where and how, in words.
    pub at: String,
    /// How many.
    pub count: usize,
    /// Up to three of their ids.
    pub examples: Vec<String>,
}

/// The answer of `upgrade-check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The new component's digest.
    pub component: String,
    /// Workflows checked.
    pub checked: usize,
    /// Of which clean.
    pub clean: usize,
    /// The verdicts grouped, problems first.
    pub groups: Vec<Group>,
    /// Every workflow's verdict, by id.
    pub workflows: Vec<Checked>,
}

impl CheckReport {
    /// Whether every checked workflow replays cleanly.
    pub fn all_clean(&self) -> bool {
        self.clean == self.checked
    }
}

/// Replays every PENDING workflow `filter` selects against `component`.
pub(crate) async fn upgrade_check(
    shared: &Arc<Shared>,
    component: Arc<LoadedComponent>,
    filter: &CheckFilter,
) -> Result<CheckReport, RuntimeError> {
    let defined = &component.definitions.workflows;
    let todo: Vec<WorkflowRecord> = in_flight(shared, filter.instance.clone(), filter.from.clone())
        .await?
        .into_iter()
        .filter(|w| filter.from.is_some() || defined.contains(&w.name))
        .collect();
    let replayed = replay_all(shared, todo, Some(component.clone())).await?;
    let workflows = replayed
        .into_iter()
        .map(|(workflow, replay)| Checked {
            id: workflow.id,
            workflow: workflow.name,
            instance: workflow.instance,
            app_version: workflow.app_version,
            verdict: replay.verdict,
        })
        .collect();
    Ok(report(component.digest.clone(), workflows))
}

/// The PENDING workflows of `instance` on versions starting with `from` (either: any), by id.
pub(super) async fn in_flight(
    shared: &Shared,
    instance: Option<String>,
    from: Option<String>,
) -> Result<Vec<WorkflowRecord>, RuntimeError> {
    let mut listed = shared
        .store
        .list_workflows(&WorkflowFilter {
            status: Some(WorkflowStatus::Pending),
            instance,
            app_version: from,
            ..WorkflowFilter::default()
        })
        .await?;
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(listed)
}

/// How many dry replays run at once: each is CPU in the guest, so one per core, and a second
/// one each to cover the reads of histories.
fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// Dry-replays each workflow, several at once, on `component` or (none) its own version;
/// the results in the workflows' order.
pub(super) async fn replay_all(
    shared: &Arc<Shared>,
    workflows: Vec<WorkflowRecord>,
    component: Option<Arc<LoadedComponent>>,
) -> Result<Vec<(WorkflowRecord, Replay)>, RuntimeError> {
    let mut done = Vec::with_capacity(workflows.len());
    let mut running = JoinSet::new();
    let mut queue = workflows.into_iter().enumerate();
    loop {
        while running.len() < parallelism() {
            let Some((index, workflow)) = queue.next() else {
                break;
            };
            let (shared, component) = (shared.clone(), component.clone());
            running.spawn(async move {
                let replayed = replay_on(&shared, &workflow, None, component).await;
                replayed.map(|(_, _, replay)| (index, workflow, replay))
            });
        }
        let Some(finished) = running.join_next().await else {
            break;
        };
        done.push(finished.map_err(|e| RuntimeError::Task(e.to_string()))??);
    }
    done.sort_by_key(|(index, ..)| *index);
    Ok(done.into_iter().map(|(_, w, r)| (w, r)).collect())
}

/// Where a verdict parts from the history (or what a clean one does next), in words: the key
/// its group is made by.
pub fn at(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Clean { next } => match next {
            Next::Call { position, name, .. } => format!("next: {name} at position {position}"),
            Next::Return { .. } => "next: returns".into(),
            Next::Fail { error } => format!("next: fails: {error}"),
            Next::ContinueAsNew { input } => format!("next: continues as new with {input}"),
        },
        Verdict::Diverged {
            position,
            recorded,
            requested,
            ..
        } => format!("position {position}: recorded {recorded}, code calls {requested}"),
        Verdict::Unconsumed {
            position,
            left,
            recorded,
            ..
        } => format!("ended at position {position} with {left} left, {recorded}"),
        Verdict::Trap { class, message, .. } => {
            format!("{class}: {}", message.lines().next().unwrap_or_default())
        }
        Verdict::Signature { message } => message.clone(),
    }
}

fn report(component: String, workflows: Vec<Checked>) -> CheckReport {
    let mut groups: BTreeMap<(bool, String, &'static str, String), Group> = BTreeMap::new();
    for checked in &workflows {
        let label = checked.verdict.label();
        let at = at(&checked.verdict);
        // Problems first, then by workflow and place.
        let key = (
            checked.verdict.is_clean(),
            checked.workflow.clone(),
            label,
            at.clone(),
        );
        let group = groups.entry(key).or_insert_with(|| Group {
            workflow: checked.workflow.clone(),
            verdict: label,
            at,
            count: 0,
            examples: Vec::new(),
        });
        group.count += 1;
        if group.examples.len() < 3 {
            group.examples.push(checked.id.clone());
        }
    }
    CheckReport {
        component,
        checked: workflows.len(),
        clean: workflows.iter().filter(|w| w.verdict.is_clean()).count(),
        groups: groups.into_values().collect(),
        workflows,
    }
}
