//! Fibonacci, one durable step per iteration: the smallest useful workflow, used by the
//! guide, the crash-recovery tests and the benchmarks; `fib_children` runs `fib` as child
//! workflows.

use std::time::Duration;

use reprise_guest::prelude::*;

/// One Fibonacci iteration: `(a, b)` → `(b, a + b)`. A step, so each value is recorded.
#[step]
fn fib_step(a: u64, b: u64) -> Result<(u64, u64), String> {
    let next = a
        .checked_add(b)
        .ok_or_else(|| format!("fib overflows u64 after {b}"))?;
    Ok((b, next))
}

/// The `n`-th Fibonacci number (`fib(0) = 0`, `fib(1) = 1`), one step per iteration.
#[workflow]
fn fib(n: u32) -> Result<u64, String> {
    fib_with_delay(n, None)
}

/// Like `fib`, with a durable sleep of `step_delay_ms` after each step: a crash-recovery test
/// kills the host between steps, and on recovery the finished steps are replayed.
#[workflow]
fn fib_slow(n: u32, step_delay_ms: u64) -> Result<u64, String> {
    fib_with_delay(n, Some(Duration::from_millis(step_delay_ms)))
}

fn fib_with_delay(n: u32, delay: Option<Duration>) -> Result<u64, String> {
    let (mut a, mut b) = (0u64, 1u64);
    for i in 0..n {
        (a, b) = fib_step(a, b)?;
        info!("fib({}) = {a}", i + 1);
        if let Some(delay) = delay {
            sleep(delay);
        }
    }
    Ok(a)
}

/// Starts a child `fib(i)` for each `i` in `1..=n` at once (no queue), awaits them all, and
/// returns their outputs in order: child workflows without queues.
#[workflow]
fn fib_children(n: u32) -> Result<Vec<u64>, String> {
    let handles = (1..=n)
        .map(|i| start_child::<u64, _>("fib", &i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in &handles {
        outputs.push(handle.result()?);
    }
    Ok(outputs)
}

/// Like `fib_children`, but the first execution traps right after starting its children: the
/// recovery must find the recorded children, not start them again.
#[workflow]
fn fib_children_crash(n: u32) -> Result<Vec<u64>, String> {
    let handles = (1..=n)
        .map(|i| start_child::<u64, _>("fib", &i))
        .collect::<Result<Vec<_>, _>>()?;
    if workflow_info().recovery_attempt == 0 {
        panic!("crashing after starting {} children", handles.len());
    }
    handles
        .iter()
        .map(|h| h.result().map_err(String::from))
        .collect()
}

/// Starts `n` children `nap(100)` at once, awaits them all and returns how many succeeded: a
/// fan-out wider than the instance pool, of children that wait too.
#[workflow]
fn fan_out(n: u32) -> Result<u32, String> {
    let handles = (0..n)
        .map(|_| start_child::<u64, _>("nap", &100))
        .collect::<Result<Vec<_>, _>>()?;
    let mut done = 0;
    for handle in &handles {
        handle.result()?;
        done += 1;
    }
    Ok(done)
}

/// Sleeps `ms` durably and returns how many milliseconds after its due time the workflow ran
/// again, by the recorded clock: the wake-up latency of a parked workflow.
#[workflow]
fn nap(ms: u64) -> Result<u64, String> {
    let due = now_ms().saturating_add(ms);
    sleep(Duration::from_millis(ms));
    Ok(now_ms().saturating_sub(due))
}

/// Starts one child `nap(ms)` and awaits it: a workflow parked on its child, for
/// `reprise bench --parked`.
#[workflow]
fn await_nap(ms: u64) -> Result<u64, String> {
    Ok(start_child::<u64, _>("nap", &ms)?.result()?)
}

/// Starts a child `fib(1)` under the id `id` and reports how the start went, as its output:
/// `started <id>` or `not started: <message>`. A guest-chosen id the host refuses must be a
/// `ChildError::NotStarted` the parent can handle, not a trap.
#[workflow]
fn child_with_id(id: String) -> Result<String, String> {
    match Child::new("fib").id(id).start::<u64, _>(&1) {
        Ok(handle) => Ok(format!("started {}", handle.id())),
        Err(ChildError::NotStarted { message, .. }) => Ok(format!("not started: {message}")),
        Err(other) => Err(other.to_string()),
    }
}

/// A trivial step, for measuring the cost of a step.
#[step]
fn tick(i: u32) -> Result<u32, String> {
    Ok(i)
}

/// Runs `n` trivial steps and returns how many ran: step overhead benchmarks.
#[workflow]
fn count(n: u32) -> Result<u32, String> {
    let mut done = 0;
    for i in 0..n {
        done += u32::from(tick(i)? == i);
    }
    Ok(done)
}

/// `n` tick steps, then a wait of up to a day for a message on `go`: a workflow in flight with
/// a history, for `reprise bench`'s figures of `upgrade-check` and `replay`.
#[workflow]
fn ticks_then_wait(n: u32) -> Result<u32, reprise_guest::Error> {
    let mut done = 0;
    for i in 0..n {
        done += u32::from(tick(i)? == i);
    }
    recv::<u32>("go", Duration::from_secs(86_400))?;
    Ok(done)
}

/// Receives `count` numbers on topic `in` and writes each to the stream `out`, for
/// `reprise bench`: the round trip of a message to a waiting workflow.
#[workflow]
fn relay(count: u32) -> Result<u32, reprise_guest::Error> {
    for _ in 0..count {
        let n: u64 = recv("in", Duration::from_secs(3600))?
            .ok_or_else(|| reprise_guest::Error::msg("no message within an hour"))?;
        write_stream("out", &n)?;
    }
    Ok(count)
}

/// Waits up to `timeout_ms` for one message on topic `in`: a workflow parked in `recv`.
#[workflow]
fn wait_one(timeout_ms: u64) -> Result<Option<u64>, reprise_guest::Error> {
    recv("in", Duration::from_millis(timeout_ms))
}

/// A workflow without steps: the cost of starting and finishing a workflow.
#[workflow]
fn empty() {}

/// `n` GETs of `url` in one step, for `reprise bench`: how much a request from a step costs.
#[step(retries = false)]
fn get_many(url: String, n: u32) -> Result<u32, String> {
    for _ in 0..n {
        let response = reprise_guest::http::get(url.clone())?;
        if !response.is_success() {
            return Err(format!("GET {url}: {}", response.status));
        }
    }
    Ok(n)
}

/// Makes `n` GETs of `url` from one step.
#[workflow]
fn http_gets(url: String, n: u32) -> Result<u32, String> {
    Ok(get_many(url, n)?)
}

reprise_guest::export!(
    workflows = [
        fib,
        fib_slow,
        fib_children,
        fib_children_crash,
        fan_out,
        nap,
        ticks_then_wait,
        child_with_id,
        count,
        relay,
        wait_one,
        empty
    ],
    steps = [fib_step, tick]
);
