//! A step that always fails: DBOS-style retries, exhaustion handled by the workflow
//! (`provision`), and a non-retried failure that fails the workflow (`provision_once`).

use reprise_guest::prelude::*;

/// The message of a failed attempt, naming the attempt so the recorded errors differ.
fn no_capacity(region: &str) -> String {
    match step_status() {
        Some(s) => format!(
            "no capacity in {region} (attempt {}/{})",
            s.attempt, s.max_attempts
        ),
        None => format!("no capacity in {region}"),
    }
}

/// Always fails; retried 3 times, 20 ms then 40 ms apart.
#[step(max_attempts = 3, interval_ms = 20, backoff_rate = 2.0)]
fn provision_vm(region: String) -> Result<String, String> {
    Err(no_capacity(&region))
}

/// Always fails, and a failed attempt is final.
#[step(retries = false)]
fn provision_vm_once(region: String) -> Result<String, String> {
    Err(no_capacity(&region))
}

/// Tries to provision a VM; when every attempt fails, logs the errors and returns `true`
/// (the exhaustion was handled). Returns `false` if a VM was provisioned.
#[workflow]
fn provision(region: String) -> Result<bool, String> {
    match provision_vm(region) {
        Ok(vm) => {
            info!("provisioned {vm}");
            Ok(false)
        }
        Err(StepError::MaxRetriesExceeded(e)) => {
            info!(
                "step {} gave up after {} attempts: {:?}",
                e.step, e.attempts, e.errors
            );
            Ok(true)
        }
        Err(other) => Err(other.into()),
    }
}

/// Provisions with a step that is not retried: its error fails the workflow.
#[workflow]
fn provision_once(region: String) -> Result<String, String> {
    let vm = provision_vm_once(region)?;
    Ok(vm)
}

reprise_guest::export!(
    workflows = [provision, provision_once],
    steps = [provision_vm, provision_vm_once],
);
