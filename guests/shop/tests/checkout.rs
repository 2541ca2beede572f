//! The checkout saga under `cargo test`: the services stubbed, retries in virtual time, a
//! crash replayed.

use reprise_guest::http::Response;
use reprise_guest::testing::Harness;
use serde_json::json;
use shop::{Order, Receipt, checkout};

fn order() -> Order {
    Order {
        id: "o-1".into(),
        item: "book".into(),
        quantity: 2,
        amount_cents: 4200,
    }
}

/// A harness with the instance's config and secret, the inventory stubbed.
fn harness() -> Harness {
    let mut h = Harness::new();
    h.config("payments_url", "https://pay.example")
        .config("inventory_addr", "inventory:7000")
        .secret("PAYMENT_KEY", "sk_test")
        .stub_step("reserve_stock", |_| Ok(json!("r-1")))
        .stub_step("release_stock", |_| Ok(json!(null)));
    h
}

#[test]
fn a_paid_order_gets_a_receipt() {
    let mut h = harness();
    h.stub_http(|req| {
        assert_eq!(req.url, "https://pay.example/charges");
        assert_eq!(req.header_value("authorization"), Some("Bearer sk_test"));
        Ok(Response::json_body(201, &json!({ "id": "ch_1" })))
    });
    let receipt = h.run(|| checkout(order())).expect("no crash");
    assert_eq!(
        receipt,
        Ok(Receipt {
            order_id: "o-1".into(),
            reservation: "r-1".into(),
            charge: "ch_1".into()
        })
    );
    let body: serde_json::Value = serde_json::from_slice(&h.http_requests()[0].body).unwrap();
    assert_eq!(body, json!({ "order_id": "o-1", "amount_cents": 4200 }));
}

#[test]
fn a_failing_payment_api_is_retried_with_backoff() {
    let mut h = harness();
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = calls.clone();
    h.stub_http(move |_| {
        seen.set(seen.get() + 1);
        Ok(match seen.get() {
            1 | 2 => Response::new(503, "busy"),
            _ => Response::json_body(201, &json!({ "id": "ch_2" })),
        })
    });
    let start = h.now_ms();
    let receipt = h
        .run(|| checkout(order()))
        .expect("no crash")
        .expect("paid");
    assert_eq!(receipt.charge, "ch_2");
    assert_eq!(h.executions("charge_payment"), 1, "one execution");
    assert_eq!(h.attempts("charge_payment"), 3, "of three attempts");
    assert_eq!(
        h.now_ms() - start,
        200 + 400,
        "waited 200 ms, then 400 ms: virtually"
    );
}

#[test]
fn when_payment_fails_for_good_the_stock_is_released() {
    let mut h = harness();
    h.stub_http(|_| Ok(Response::new(500, "down")));
    let err = h
        .run(|| checkout(order()))
        .expect("no crash")
        .expect_err("unpaid");
    assert!(err.starts_with("payment failed"), "{err}");
    assert!(err.ends_with("stock released"), "{err}");
    assert_eq!(h.executions("charge_payment"), 1);
    assert_eq!(h.attempts("charge_payment"), 4);
    assert_eq!(h.executions("release_stock"), 1);
}

#[test]
fn a_crash_after_reserving_does_not_reserve_again() {
    let mut h = harness();
    h.stub_http(|_| Ok(Response::json_body(201, &json!({ "id": "ch_3" }))))
        .crash_after_steps(1);
    assert!(
        h.run(|| checkout(order())).is_err(),
        "crashed after reserve_stock"
    );
    assert_eq!(h.executions("charge_payment"), 0);
    let receipt = h
        .run(|| checkout(order()))
        .expect("no crash")
        .expect("paid");
    assert_eq!(receipt.reservation, "r-1");
    assert_eq!(h.executions("reserve_stock"), 1, "replayed, not run again");
    assert_eq!(h.executions("charge_payment"), 1);
}
