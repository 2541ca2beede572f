//! Under `cargo test`, a step's request goes to whatever transport the test harness set for
//! this thread; the harness depends on this module, not the other way round.

use std::cell::RefCell;
use std::rc::Rc;

use reprise_protocol::redact::redacted_url;

use super::{HttpError, Request, Response, parse_url};

/// What answers a request natively.
pub(crate) type Transport = Rc<dyn Fn(&Request) -> Result<Response, HttpError>>;

thread_local! {
    static TRANSPORT: RefCell<Option<Transport>> = const { RefCell::new(None) };
}

/// Sets this thread's transport; returns the one it replaces.
pub(crate) fn set_transport(transport: Option<Transport>) -> Option<Transport> {
    TRANSPORT.with(|t| t.replace(transport))
}

pub(super) fn send(request: &Request) -> Result<Response, HttpError> {
    parse_url(&request.url)?;
    let transport = TRANSPORT.with(|t| t.borrow().clone());
    match transport {
        Some(transport) => transport(request),
        None => Err(HttpError::Failed {
            request: format!("{} {}", request.method.as_str(), redacted_url(&request.url)),
            message: "no HTTP outside a component but under testing::Harness::run".into(),
        }),
    }
}
