//! TCP from steps: a connection goes out only inside a step attempt and only to a host of the
//! instance's `allow_tcp`. Listening, explicit binds and UDP are never granted.

use std::net::{IpAddr, SocketAddr};

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::grants::{HostPattern, Kind, not_granted};

use super::Access;

/// Lets the instance's sockets connect where `access` allows. TCP stays on without a grant,
/// so that a refused connection is refused by [`permits`], which says why.
pub(super) fn add_sockets(builder: &mut WasiCtxBuilder, access: &Access) {
    // Name lookups serve connections only: without a TCP grant there is nothing to look up.
    let granted = !access.grants.tcp.is_empty();
    builder
        .allow_tcp(true)
        .allow_udp(false)
        .allow_ip_name_lookup(granted);
    let access = access.clone();
    builder.socket_addr_check(move |addr, usage| {
        let access = access.clone();
        Box::pin(async move { permits(&access, addr, usage).await })
    });
}

async fn permits(access: &Access, addr: SocketAddr, usage: SocketAddrUse) -> bool {
    match usage {
        // A connect first binds to the wildcard address on any port: the connect decides.
        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
        SocketAddrUse::TcpConnect => {
            if let Err(_refused) = access.in_step(|| format!("to connect to {addr}")) {
                return false;
            }
            if granted(&access.grants.tcp, addr).await {
                return true;
            }
            access.refuse(not_granted(
                Kind::Tcp,
                &access.instance,
                &addr.ip().to_string(),
                addr.port(),
            ));
            false
        }
        _ => {
            access.refuse(format!(
                "{usage:?} on {addr} is never granted to a guest: steps may only connect out"
            ));
            false
        }
    }
}

/// Whether a pattern grants `addr`: by address, or by a name that resolves to it.
async fn granted(patterns: &[HostPattern], addr: SocketAddr) -> bool {
    for pattern in patterns {
        if pattern.port().is_some_and(|p| p != addr.port()) {
            continue;
        }
        if pattern.matches(&addr.ip().to_string(), addr.port()) {
            return true;
        }
        if pattern.ip().is_none() && !pattern.host().contains('*') {
            let addrs: Vec<IpAddr> = match tokio::net::lookup_host((pattern.host(), 0)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(err) => {
                    tracing::debug!(
                        host = pattern.host(),
                        "cannot resolve a granted host: {err}"
                    );
                    continue;
                }
            };
            if addrs.contains(&addr.ip()) {
                return true;
            }
        }
    }
    false
}
