//! Whether a workflow whose execution ended early may run again, decided from what is
//! recorded: its own traps against its bounds (overall, and per trap class by its instance's
//! trap policy), host interruptions against theirs; and the memory the next execution gets
//! when the policy grows it after running out. One small, pure place, like `history.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::limits::TrapClass;
use reprise_store::WorkflowRecord;

/// What a trap policy does once its bound is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AtEnd {
    /// The workflow ends `MAX_RECOVERY_ATTEMPTS_EXCEEDED` (the default, as without a policy).
    #[default]
    Fail,
    /// The workflow is `PAUSED` for an operator, who resumes it, with new limits if need be.
    Pause,
}

/// How the memory limit grows on each out-of-memory recovery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryGrowth {
    /// Each recovery's limit is the last one times this (more than 1).
    pub factor: f64,
    /// Never more than this many bytes.
    pub max_bytes: u64,
}

/// One trap class's policy. Unset parts keep the default meaning: recoveries bounded only by
/// `max_recovery_attempts`, the same memory limit each time, failing at the end.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrapPolicy {
    /// Traps of this class in a row that are recovered; the next one ends the workflow.
    pub max_recoveries: Option<u32>,
    /// Only for `out_of_memory`: grow the memory limit on each recovery.
    pub grow_memory: Option<MemoryGrowth>,
    /// What happens when a bound is reached after a trap of this class.
    pub then: AtEnd,
}

/// Trap policies by class.
pub type TrapPolicies = BTreeMap<TrapClass, TrapPolicy>;

/// Whether a workflow may be recovered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Recover,
    /// It ends `MAX_RECOVERY_ATTEMPTS_EXCEEDED` with this error.
    Fail(String),
    /// It is `PAUSED` with this message.
    Pause(String),
}

/// Decides, from the recorded counts, whether `workflow` may begin another execution under
/// its instance's trap policies and bound on host interruptions.
pub(crate) fn verdict(
    workflow: &WorkflowRecord,
    policies: &TrapPolicies,
    max_host: u32,
) -> Verdict {
    let class = workflow.trap_class.as_deref().and_then(TrapClass::parse);
    let policy = class.and_then(|c| policies.get(&c).copied());
    let own_bound = match (class, policy.and_then(|p| p.max_recoveries)) {
        (Some(class), Some(max)) if workflow.trap_streak > max => Some(format!(
            "workflow {} trapped with {class} {} times in a row, more than the {max} recoveries \
             its trap policy allows{}",
            workflow.id,
            workflow.trap_streak,
            last_trap(workflow)
        )),
        _ if workflow.traps > workflow.max_recovery_attempts => Some(format!(
            "workflow {} exceeded {} recovery attempts{}",
            workflow.id,
            workflow.max_recovery_attempts,
            last_trap(workflow)
        )),
        _ => None,
    };
    if let Some(message) = own_bound {
        return match policy.map(|p| p.then).unwrap_or_default() {
            AtEnd::Fail => Verdict::Fail(message),
            AtEnd::Pause => Verdict::Pause(format!(
                "paused by its trap policy: {message}; resume it, with new limits if need be \
                 (reprise workflow resume {} --memory-limit …)",
                workflow.id
            )),
        };
    }
    let host = workflow.executions.saturating_sub(workflow.traps);
    if host > max_host {
        return Verdict::Fail(format!(
            "workflow {} was interrupted by {host} host crashes or restarts, more than the \
             {max_host} its instance allows (its own traps: {})",
            workflow.id, workflow.traps
        ));
    }
    Verdict::Recover
}

/// The memory limit the next execution gets after a trap of `class` under limit `current`,
/// when the class's policy grows it (and it can still grow).
pub(crate) fn grown_memory_limit(
    class: TrapClass,
    current: u64,
    policies: &TrapPolicies,
) -> Option<u64> {
    let growth = policies.get(&class)?.grow_memory?;
    let grown = ((current as f64) * growth.factor).ceil();
    let grown = if grown >= growth.max_bytes as f64 {
        growth.max_bytes
    } else {
        grown as u64
    };
    (grown > current).then_some(grown)
}

fn last_trap(workflow: &WorkflowRecord) -> String {
    let limit = workflow
        .memory_limit
        .map(|bytes| format!("; memory limit {} MiB", bytes >> 20))
        .unwrap_or_default();
    workflow
        .trap_message
        .as_deref()
        .map(|m| {
            format!(
                " (last trap: {} — {m}{limit})",
                workflow.trap_class.as_deref().unwrap_or("other")
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reprise_store::WorkflowStatus;

    const MIB: u64 = 1 << 20;

    fn trapped(class: &str, traps: u32, streak: u32) -> WorkflowRecord {
        WorkflowRecord {
            trap_class: Some(class.into()),
            trap_message: Some("boom".into()),
            traps,
            trap_streak: streak,
            executions: traps + 1,
            max_recovery_attempts: 100,
            ..WorkflowRecord::example("w", WorkflowStatus::Pending)
        }
    }

    /// The default bound on host interruptions.
    const MAX_HOST: u32 = 1000;

    fn with_policy(class: TrapClass, policy: TrapPolicy) -> TrapPolicies {
        TrapPolicies::from([(class, policy)])
    }

    fn verdict(workflow: &WorkflowRecord, policies: &TrapPolicies) -> Verdict {
        super::verdict(workflow, policies, MAX_HOST)
    }

    #[test]
    fn without_a_policy_the_overall_bound_fails_the_workflow() {
        let defaults = TrapPolicies::new();
        assert_eq!(
            verdict(&trapped("cpu_limit", 100, 100), &defaults),
            Verdict::Recover
        );
        let Verdict::Fail(message) = verdict(&trapped("cpu_limit", 101, 101), &defaults) else {
            panic!("expected a failure");
        };
        assert!(
            message.contains("exceeded 100 recovery attempts"),
            "{message}"
        );
        assert!(message.contains("cpu_limit — boom"), "{message}");
    }

    #[test]
    fn a_class_bound_counts_traps_of_that_class_in_a_row() {
        let policy = TrapPolicy {
            max_recoveries: Some(2),
            ..TrapPolicy::default()
        };
        let instance = with_policy(TrapClass::CpuLimit, policy);
        assert_eq!(
            verdict(&trapped("cpu_limit", 9, 2), &instance),
            Verdict::Recover
        );
        let Verdict::Fail(message) = verdict(&trapped("cpu_limit", 9, 3), &instance) else {
            panic!("expected a failure");
        };
        assert!(message.contains("cpu_limit 3 times in a row"), "{message}");
        assert!(message.contains("more than the 2 recoveries"), "{message}");
        // Another class's run is not bound by it.
        assert_eq!(
            verdict(&trapped("panic", 9, 3), &instance),
            Verdict::Recover
        );
    }

    #[test]
    fn a_pausing_policy_pauses_at_its_bound_and_at_the_overall_one() {
        let policy = TrapPolicy {
            max_recoveries: Some(1),
            then: AtEnd::Pause,
            ..TrapPolicy::default()
        };
        let instance = with_policy(TrapClass::OutOfMemory, policy);
        let Verdict::Pause(message) = verdict(&trapped("out_of_memory", 2, 2), &instance) else {
            panic!("expected a pause");
        };
        assert!(
            message.contains("reprise workflow resume w --memory-limit"),
            "{message}"
        );
        let no_bound = with_policy(
            TrapClass::OutOfMemory,
            TrapPolicy {
                then: AtEnd::Pause,
                ..TrapPolicy::default()
            },
        );
        assert!(matches!(
            verdict(&trapped("out_of_memory", 101, 1), &no_bound),
            Verdict::Pause(_)
        ));
    }

    #[test]
    fn host_interruptions_have_their_own_bound_and_always_fail() {
        let mut workflow = trapped("out_of_memory", 1, 1);
        workflow.executions = 1 + 1000;
        let instance = with_policy(
            TrapClass::OutOfMemory,
            TrapPolicy {
                then: AtEnd::Pause,
                ..TrapPolicy::default()
            },
        );
        assert_eq!(verdict(&workflow, &instance), Verdict::Recover);
        workflow.executions += 1;
        assert!(
            matches!(verdict(&workflow, &instance), Verdict::Fail(m) if m.contains("1001 host crashes"))
        );
    }

    #[test]
    fn memory_grows_by_its_factor_up_to_its_cap_then_stops() {
        let growth = MemoryGrowth {
            factor: 2.0,
            max_bytes: 48 * MIB,
        };
        let policies = TrapPolicies::from([(
            TrapClass::OutOfMemory,
            TrapPolicy {
                grow_memory: Some(growth),
                ..TrapPolicy::default()
            },
        )]);
        let grow = |current| grown_memory_limit(TrapClass::OutOfMemory, current, &policies);
        assert_eq!(grow(16 * MIB), Some(32 * MIB));
        assert_eq!(grow(32 * MIB), Some(48 * MIB));
        assert_eq!(grow(48 * MIB), None);
        assert_eq!(
            grown_memory_limit(TrapClass::CpuLimit, 16 * MIB, &policies),
            None
        );
    }
}
