//! The fulfilment saga under `cargo test`: the services stubbed, the shipment typed, the wait
//! and the retries in virtual time.

use std::cell::RefCell;
use std::rc::Rc;

use fulfilment::{Order, Outcome, Shipped, fulfil};
use reprise_guest::http::Response;
use reprise_guest::testing::Harness;
use serde_json::json;

fn order() -> Order {
    Order {
        id: "o-1".into(),
        email: "ada@example.com".into(),
        item: "book".into(),
        quantity: 1,
        amount_cents: 4200,
    }
}

/// A harness whose services create what they are asked to, each request noted by path.
fn harness() -> (Harness, Rc<RefCell<Vec<String>>>) {
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let noted = seen.clone();
    let mut h = Harness::new();
    h.config("payments_url", "https://pay.example")
        .config("inventory_url", "https://stock.example")
        .config("mail_url", "https://mail.example")
        .config("ship_within_ms", "60000")
        .secret("PAYMENT_KEY", "sk_test")
        .stub_http(move |req| {
            let path = req
                .url
                .split(".example")
                .nth(1)
                .unwrap_or_default()
                .to_string();
            assert_eq!(req.header_value("authorization"), Some("Bearer sk_test"));
            noted.borrow_mut().push(path.clone());
            let id = format!("{}-1", path.trim_start_matches('/'));
            Ok(Response::json_body(201, &json!({ "id": id })))
        });
    (h, seen)
}

#[test]
fn a_shipped_order_is_confirmed() {
    let (mut h, seen) = harness();
    h.message(
        "shipped",
        &Shipped {
            tracking: "1Z999".into(),
            carrier: "UPS".into(),
        },
    );
    let outcome = h.run(|| fulfil(order())).expect("no crash");
    assert_eq!(
        outcome,
        Ok(Outcome {
            order_id: "o-1".into(),
            charge: "charges-1".into(),
            status: "shipped".into(),
            tracking: Some("1Z999".into()),
            refund: None,
        })
    );
    assert_eq!(*seen.borrow(), ["/charges", "/reservations", "/mail"]);
    assert_eq!(h.events()["status"], json!("shipped"));
}

#[test]
fn an_order_not_shipped_in_time_is_released_and_refunded() {
    let (mut h, seen) = harness();
    let start = h.now_ms();
    let outcome = h.run(|| fulfil(order())).expect("no crash").expect("ended");
    assert_eq!(outcome.status, "refunded");
    assert_eq!(outcome.refund.as_deref(), Some("refunds-1"));
    assert_eq!(
        *seen.borrow(),
        ["/charges", "/reservations", "/releases", "/refunds"]
    );
    assert_eq!(h.now_ms() - start, 60_000, "waited the minute, virtually");
}

#[test]
fn a_malformed_shipment_is_refused_before_the_workflow_sees_it() {
    let (mut h, _) = harness();
    let refused = h
        .try_message("shipped", &json!({ "tracking": "1Z999" }))
        .err()
        .expect("refused: no carrier");
    assert!(refused.contains("missing field `carrier`"), "{refused}");
    let outcome = h.run(|| fulfil(order())).expect("no crash").expect("ended");
    assert_eq!(outcome.status, "refunded", "nothing shipped");
}

#[test]
fn the_charge_carries_a_key_that_a_retry_repeats() {
    let keys: Rc<RefCell<Vec<String>>> = Rc::default();
    let noted = keys.clone();
    let (mut h, _) = harness();
    h.stub_http(move |req| {
        if req.url.ends_with("/charges") {
            let key = req.header_value("idempotency-key").unwrap_or("none");
            noted.borrow_mut().push(key.to_string());
            if noted.borrow().len() == 1 {
                return Ok(Response::new(503, "busy"));
            }
        }
        Ok(Response::json_body(201, &json!({ "id": "x" })))
    })
    .message(
        "shipped",
        &Shipped {
            tracking: "1Z".into(),
            carrier: "DHL".into(),
        },
    );
    h.run(|| fulfil(order()))
        .expect("no crash")
        .expect("shipped");
    let keys = keys.borrow();
    assert_eq!(keys.len(), 2, "a failed attempt and its retry");
    assert_eq!(keys[0], keys[1], "the same key on every attempt");
    assert_ne!(keys[0], "none");
    assert_eq!(h.executions("charge"), 1);
    assert_eq!(h.attempts("charge"), 2);
}
