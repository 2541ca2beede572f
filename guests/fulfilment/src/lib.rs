//! The payments team's order saga, end to end: charge the customer over HTTP (with the step's
//! idempotency key, which the SDK sends by default, so a charge repeated by a recovery is
//! charged once), reserve the stock, publish the order's status as an event, wait up to a
//! deadline for a typed `shipped` message, then e-mail the confirmation — or, when nothing
//! ships in time, release the stock and refund the charge.
//!
//! The instance's config names the services (`payments_url`, `inventory_url`, `mail_url`, each
//! `http://host:port`) and the wait (`ship_within_ms`, default a minute); its secret
//! `PAYMENT_KEY` authorises the charge and the refund. The config file limits `charge` per
//! instance (`[instances.orders.steps.charge] concurrency = 2`): what is scarce is the payment
//! API, not the workflows.

use std::time::Duration;

use reprise_guest::http::Request;
use reprise_guest::prelude::*;
use serde::{Deserialize, Serialize};

/// What a customer ordered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub email: String,
    pub item: String,
    pub quantity: u32,
    pub amount_cents: u64,
}

/// The warehouse's word that an order left: the host refuses a `shipped` message of any
/// other shape, so the workflow never meets one.
#[topic("shipped")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shipped {
    pub tracking: String,
    pub carrier: String,
}

/// How an order ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub order_id: String,
    pub charge: String,
    /// `shipped` or `refunded`.
    pub status: String,
    pub tracking: Option<String>,
    pub refund: Option<String>,
}

/// An answer of the services: `{"id": …}`.
#[derive(Deserialize)]
struct Created {
    id: String,
}

/// POSTs `body` to `url` with the payment key; the created object's id.
fn create(url: String, body: serde_json::Value) -> Result<String, String> {
    let key = reprise_guest::secret("PAYMENT_KEY")?;
    let response = Request::post(url.as_str())
        .header("authorization", format!("Bearer {key}"))
        .json(&body)?
        .send()?;
    if !response.is_success() {
        return Err(format!("{url} answered {}", response.status));
    }
    Ok(response.json::<Created>()?.id)
}

/// Charges the order. Its body runs at least once (again, if a host dies before the outcome
/// is recorded); the `Idempotency-Key` the SDK sends makes the charge itself happen once.
#[step(max_attempts = 4, interval_ms = 200, backoff_rate = 2.0)]
fn charge(payments_url: String, order: Order) -> Result<String, String> {
    let body = serde_json::json!({ "order_id": order.id, "amount_cents": order.amount_cents });
    create(format!("{payments_url}/charges"), body)
}

#[step(max_attempts = 4, interval_ms = 100)]
fn reserve(inventory_url: String, order: Order) -> Result<String, String> {
    let body =
        serde_json::json!({ "order_id": order.id, "item": order.item, "quantity": order.quantity });
    create(format!("{inventory_url}/reservations"), body)
}

#[step(max_attempts = 5, interval_ms = 100)]
fn release(inventory_url: String, reservation: String) -> Result<String, String> {
    create(
        format!("{inventory_url}/releases"),
        serde_json::json!({ "reservation": reservation }),
    )
}

#[step(max_attempts = 5, interval_ms = 200)]
fn refund(payments_url: String, charge: String) -> Result<String, String> {
    create(
        format!("{payments_url}/refunds"),
        serde_json::json!({ "charge": charge }),
    )
}

#[step(max_attempts = 3, interval_ms = 500)]
fn confirm(mail_url: String, to: String, text: String) -> Result<String, String> {
    create(
        format!("{mail_url}/mail"),
        serde_json::json!({ "to": to, "text": text }),
    )
}

fn setting(key: &str) -> Result<String, String> {
    workflow_info()
        .config
        .get(key)
        .cloned()
        .ok_or_else(|| format!("the instance has no config value {key:?}"))
}

/// Charge, reserve, wait for the shipment; confirm it, or undo both.
#[workflow]
pub fn fulfil(order: Order) -> Result<Outcome, String> {
    let payments = setting("payments_url")?;
    let inventory = setting("inventory_url")?;
    let ship_within = workflow_info()
        .config
        .get("ship_within_ms")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(60_000);

    let charge_id = charge(payments.clone(), order.clone())?;
    set_event("status", &"charged")?;
    let reservation = match reserve(inventory.clone(), order.clone()) {
        Ok(reservation) => reservation,
        Err(e) => {
            refund(payments, charge_id)?;
            set_event("status", &"refunded")?;
            return Err(format!("no stock for {}: {e}; charge refunded", order.id));
        }
    };
    set_event("status", &"awaiting shipment")?;
    match Shipped::recv(Duration::from_millis(ship_within))? {
        Some(shipped) => {
            let text = format!(
                "Order {} is on its way: {} {}",
                order.id, shipped.carrier, shipped.tracking
            );
            confirm(setting("mail_url")?, order.email.clone(), text)?;
            set_event("status", &"shipped")?;
            Ok(Outcome {
                order_id: order.id,
                charge: charge_id,
                status: "shipped".into(),
                tracking: Some(shipped.tracking),
                refund: None,
            })
        }
        None => {
            release(inventory, reservation)?;
            let refund_id = refund(payments, charge_id.clone())?;
            set_event("status", &"refunded")?;
            Ok(Outcome {
                order_id: order.id,
                charge: charge_id,
                status: "refunded".into(),
                tracking: None,
                refund: Some(refund_id),
            })
        }
    }
}

/// The warehouse's side, as a workflow: tells order `to` that it shipped. The message goes
/// as given, so it may be of the wrong shape: then the host refuses the send, and the refusal
/// is this workflow's output.
#[workflow]
pub fn notify_shipped(to: String, message: serde_json::Value) -> Result<String, String> {
    match send(&to, Shipped::NAME, &message) {
        Ok(()) => Ok("sent".into()),
        Err(e) => Ok(format!("refused: {e}")),
    }
}

reprise_guest::export!(workflows = [fulfil, notify_shipped]);
