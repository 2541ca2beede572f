//! Version 2 of `orders-v1`: `order` gained a fraud check behind a patch, so it replays v1's
//! histories; the other workflows changed without one, each in a way `upgrade-check` reports.

use std::time::Duration;

use reprise_guest::prelude::*;

const A_DAY: Duration = Duration::from_secs(86_400);

#[step]
fn reserve(order: u32) -> Result<String, String> {
    Ok(format!("reserved {order}"))
}

#[step]
fn fraud_check(order: u32) -> Result<bool, String> {
    Ok(order != 13)
}

#[step]
fn charge(order: u32) -> Result<String, String> {
    Ok(format!("charged {order} (checked)"))
}

#[step]
fn find(order: u32) -> Result<u32, String> {
    Ok(order * 100)
}

#[step]
fn note(what: String) -> Result<String, String> {
    Ok(what)
}

/// Reserve, check for fraud (new: behind a patch), wait for `ship`, charge.
#[workflow]
pub fn order(order: u32) -> Result<String, Error> {
    reserve(order)?;
    if patched("fraud-check") && !fraud_check(order)? {
        bail!("order {order} refused by the fraud check");
    }
    info!("order {order} reserved, waiting for ship");
    recv::<String>("ship", A_DAY)?;
    Ok(charge(order)?)
}

/// The lookup step was renamed: a divergence at position 0.
#[workflow]
pub fn refund(order: u32) -> Result<u32, Error> {
    let cents = find(order)?;
    recv::<String>("approve", A_DAY)?;
    Ok(cents)
}

/// Ends after the first note: v1's later positions are left unconsumed.
#[workflow]
pub fn audit(order: u32) -> Result<String, Error> {
    note(format!("first {order}"))?;
    Ok("audited early".into())
}

/// Starts its child with another input: the same call with other arguments.
#[workflow]
pub fn batch(order: u32) -> Result<String, Error> {
    let child = start_child::<String, _>("order", &(order + 1))?;
    Ok(child.result()?)
}

#[step]
fn renew(turn: u32) -> Result<String, String> {
    let key = idempotency_key().unwrap_or_default();
    Ok(format!("renewed {turn} (v2) key {key}"))
}

/// A subscription: renews, waits for `next`, and goes on as a new run, three turns in all.
#[workflow]
pub fn subscription(turn: u32) -> Result<String, Error> {
    let renewed = renew(turn)?;
    recv::<String>("next", A_DAY)?;
    if turn >= 2 {
        return Ok(renewed);
    }
    continue_as_new(&(turn + 1))
}

reprise_guest::export!(
    workflows = [order, refund, audit, batch, subscription],
    steps = [reserve, fraud_check, charge, find, note, renew],
);
