//! Name lookups, from steps only: a lookup is I/O too, and its answer can change between a
//! run and its replay. Outside a step it fails as a refused connection would; inside one, only
//! names the instance's grants name are looked up, since a query carries its name to whoever
//! runs that domain's DNS.

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    Host, HostResolveAddressStream, IpAddress, Network, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use super::Access;
use crate::grants::lookup_not_granted;

/// `wasi:sockets/ip-name-lookup` behind the step gate, for the linker.
pub struct GatedNameLookup;

impl HasData for GatedNameLookup {
    type Data<'a> = GatedNameLookupView<'a>;
}

/// wasmtime-wasi's sockets, and the access that decides whether a lookup may happen now.
pub struct GatedNameLookupView<'a> {
    pub(crate) inner: WasiSocketsCtxView<'a>,
    pub(crate) access: &'a Access,
}

impl Host for GatedNameLookupView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        if self
            .access
            .in_step(|| format!("to look up {name:?}"))
            .is_err()
        {
            return Err(ErrorCode::AccessDenied.into());
        }
        if !self.access.grants.may_resolve(&name) {
            self.access
                .refuse(lookup_not_granted(&self.access.instance, &name));
            return Err(ErrorCode::AccessDenied.into());
        }
        Host::resolve_addresses(&mut self.inner, network, name)
    }
}

impl HostResolveAddressStream for GatedNameLookupView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        // A lookup a step began is the step's to read.
        if self
            .access
            .in_step(|| "to read the answer of a lookup a step began".into())
            .is_err()
        {
            return Err(ErrorCode::AccessDenied.into());
        }
        HostResolveAddressStream::resolve_next_address(&mut self.inner, stream)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.inner, stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        HostResolveAddressStream::drop(&mut self.inner, stream)
    }
}

impl wasmtime_wasi::p2::bindings::sockets::network::Host for GatedNameLookupView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        wasmtime_wasi::p2::bindings::sockets::network::Host::convert_error_code(
            &mut self.inner,
            error,
        )
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        wasmtime_wasi::p2::bindings::sockets::network::Host::network_error_code(
            &mut self.inner,
            err,
        )
    }
}

impl wasmtime_wasi::p2::bindings::sockets::network::HostNetwork for GatedNameLookupView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::bindings::sockets::network::HostNetwork::drop(&mut self.inner, network)
    }
}
