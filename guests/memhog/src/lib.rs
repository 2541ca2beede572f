//! Memory exhaustion in each place it can happen: in an inline step (kills the workflow's
//! instance), in an isolated step (a failed attempt, contained), and in the workflow body.

use reprise_guest::prelude::*;

/// Allocates `mib` MiB, touching every page, and returns a checksum so the allocation cannot be
/// optimized away.
fn allocate(mib: u32) -> u64 {
    let bytes = usize::try_from(mib)
        .unwrap_or(usize::MAX)
        .saturating_mul(1 << 20);
    let block = std::hint::black_box(vec![1u8; bytes]);
    block
        .iter()
        .step_by(4096)
        .map(|&b| u64::from(b))
        .sum::<u64>()
        + block.len() as u64
}

/// A trivial step, to have recorded steps around the interesting one.
#[step]
fn small(i: u32) -> Result<u32, String> {
    Ok(i)
}

/// Allocates `mib` MiB inside the workflow's own instance.
#[step(max_attempts = 2, interval_ms = 10)]
fn hog(mib: u32) -> Result<u64, String> {
    Ok(allocate(mib))
}

/// Allocates `mib` MiB in a fresh instance with its own memory limit.
#[step(isolated, max_attempts = 3, interval_ms = 10, backoff_rate = 1.0)]
fn hog_isolated(mib: u32) -> Result<u64, String> {
    Ok(allocate(mib))
}

/// Two small steps, then an inline step that allocates `mib` MiB; returns the sum.
#[workflow]
fn step_oom(mib: u32) -> Result<u64, String> {
    let a = small(1)?;
    let b = small(2)?;
    let c = hog(mib)?;
    Ok(u64::from(a) + u64::from(b) + c)
}

/// An isolated step that allocates `mib` MiB, then another step, proving the workflow's
/// instance lived on whatever happened to the isolated one.
#[workflow]
fn isolated_oom(mib: u32) -> Result<String, String> {
    small(1)?;
    let report = match hog_isolated(mib) {
        Err(StepError::MaxRetriesExceeded(e)) => {
            format!("contained after {} attempts", e.attempts)
        }
        Ok(v) => format!("ok {v}"),
        Err(other) => return Err(other.into()),
    };
    small(2)?;
    Ok(report)
}

/// Two small steps, then allocates `mib` MiB in the workflow body itself.
#[workflow]
fn workflow_oom(mib: u32) -> Result<u64, String> {
    small(1)?;
    small(2)?;
    Ok(allocate(mib))
}

/// Allocates `mib` MiB in the body only on the first execution: recovery then completes it.
#[workflow]
fn oom_once(mib: u32) -> Result<String, String> {
    small(1)?;
    small(2)?;
    if workflow_info().recovery_attempt == 0 {
        allocate(mib);
    }
    small(3)?;
    Ok("recovered".to_owned())
}

/// One step, then a deliberate error: the workflow ends with the ERROR status.
#[workflow]
fn fails() -> Result<(), String> {
    small(1)?;
    Err("deliberate failure".to_owned())
}

reprise_guest::export!(
    workflows = [step_oom, isolated_oom, workflow_oom, oom_once, fails],
    steps = [small, hog, hog_isolated],
);
