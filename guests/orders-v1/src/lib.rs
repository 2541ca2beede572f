//! Version 1 of an order service, for the guide "Changing code while workflows run" and the
//! host's version tests; `orders-v2` is the same service after a change. Each order waits for
//! a `ship` message between reserving stock and charging.

use std::time::Duration;

use reprise_guest::prelude::*;

const A_DAY: Duration = Duration::from_secs(86_400);

#[step]
fn reserve(order: u32) -> Result<String, String> {
    Ok(format!("reserved {order}"))
}

#[step]
fn charge(order: u32) -> Result<String, String> {
    Ok(format!("charged {order}"))
}

#[step]
fn lookup(order: u32) -> Result<u32, String> {
    Ok(order * 100)
}

#[step]
fn note(what: String) -> Result<String, String> {
    Ok(what)
}

/// Reserve, wait for `ship`, charge.
#[workflow]
pub fn order(order: u32) -> Result<String, Error> {
    reserve(order)?;
    info!("order {order} reserved, waiting for ship");
    recv::<String>("ship", A_DAY)?;
    Ok(charge(order)?)
}

/// Look the order up, wait for `approve`.
#[workflow]
pub fn refund(order: u32) -> Result<u32, Error> {
    let cents = lookup(order)?;
    recv::<String>("approve", A_DAY)?;
    Ok(cents)
}

/// Two notes, then a wait for `done`.
#[workflow]
pub fn audit(order: u32) -> Result<String, Error> {
    note(format!("first {order}"))?;
    note(format!("second {order}"))?;
    recv::<String>("done", A_DAY)?;
    Ok("audited".into())
}

/// Starts one order as a child and waits for it.
#[workflow]
pub fn batch(order: u32) -> Result<String, Error> {
    let child = start_child::<String, _>("order", &order)?;
    Ok(child.result()?)
}

#[step]
fn renew(turn: u32) -> Result<String, String> {
    let key = idempotency_key().unwrap_or_default();
    Ok(format!("renewed {turn} key {key}"))
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
    steps = [reserve, charge, lookup, note, renew],
);
