//! Streams used from workflow code are refused, as opening them there is: a connection, a
//! file stream or an HTTP body a step opened and kept (in a static, say) cannot be read or
//! written once the step is over, since replay could not reproduce what it read. The guest's
//! stdin, stdout and stderr stay open to workflow code (a panic's message goes to stderr).

use std::collections::HashSet;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::cli::WasiCliCtxView;
use wasmtime_wasi::p2::bindings::cli::{stderr, stdin, stdout};
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    self, Host, HostInputStream, HostOutputStream,
};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamError};

use super::Access;

type StreamResult<T> = Result<T, StreamError>;

/// `wasi:io/streams` behind the step gate, for the linker.
pub struct GatedStreams;

impl HasData for GatedStreams {
    type Data<'a> = GatedStreamsView<'a>;
}

/// The instance's resources, the access that decides whether a stream may be used now, and
/// the streams that are the guest's stdio.
pub struct GatedStreamsView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) access: &'a Access,
    pub(crate) stdio: &'a mut HashSet<u32>,
    /// Where the pollables on streams steps opened are noted (see [`super::poll`]).
    pub(crate) step_pollables: &'a mut HashSet<u32>,
}

impl GatedStreamsView<'_> {
    /// Notes `pollable` when it waits on a stream other than stdio: only a step opens one, so
    /// only a step may wait on it, whenever it was subscribed.
    fn note(&mut self, stream: u32, pollable: &Resource<DynPollable>) {
        if !self.stdio.contains(&stream) {
            self.step_pollables.insert(pollable.rep());
        }
    }

    /// Refuses a use of stream `rep` from workflow code, unless it is stdio.
    fn gate(&self, rep: u32, what: &str) -> StreamResult<()> {
        if self.stdio.contains(&rep) {
            return Ok(());
        }
        self.access
            .in_step(|| format!("to {what} a stream a step opened"))
            .map_err(|refused| StreamError::LastOperationFailed(wasmtime::format_err!("{refused}")))
    }
}

impl Host for GatedStreamsView<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        Host::convert_stream_error(self.table, err)
    }
}

impl HostOutputStream for GatedStreamsView<'_> {
    async fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        // Its slot may hold a step's stream next.
        self.stdio.remove(&stream.rep());
        HostOutputStream::drop(self.table, stream).await
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        self.gate(stream.rep(), "write to")?;
        HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        self.gate(stream.rep(), "write to")?;
        HostOutputStream::write(self.table, stream, bytes)
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let rep = stream.rep();
        let pollable = HostOutputStream::subscribe(self.table, stream)?;
        self.note(rep, &pollable);
        Ok(pollable)
    }

    async fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        self.gate(stream.rep(), "write to")?;
        HostOutputStream::blocking_write_and_flush(self.table, stream, bytes).await
    }

    async fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        self.gate(stream.rep(), "write to")?;
        HostOutputStream::blocking_write_zeroes_and_flush(self.table, stream, len).await
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        self.gate(stream.rep(), "write to")?;
        HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        self.gate(stream.rep(), "flush")?;
        HostOutputStream::flush(self.table, stream)
    }

    async fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        self.gate(stream.rep(), "flush")?;
        HostOutputStream::blocking_flush(self.table, stream).await
    }

    fn splice(
        &mut self,
        dest: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        self.gate(dest.rep(), "write to")?;
        self.gate(src.rep(), "read from")?;
        HostOutputStream::splice(self.table, dest, src, len)
    }

    async fn blocking_splice(
        &mut self,
        dest: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        self.gate(dest.rep(), "write to")?;
        self.gate(src.rep(), "read from")?;
        HostOutputStream::blocking_splice(self.table, dest, src, len).await
    }
}

impl HostInputStream for GatedStreamsView<'_> {
    async fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        self.stdio.remove(&stream.rep());
        HostInputStream::drop(self.table, stream).await
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        self.gate(stream.rep(), "read from")?;
        HostInputStream::read(self.table, stream, len)
    }

    async fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        self.gate(stream.rep(), "read from")?;
        HostInputStream::blocking_read(self.table, stream, len).await
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        self.gate(stream.rep(), "read from")?;
        HostInputStream::skip(self.table, stream, len)
    }

    async fn blocking_skip(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        self.gate(stream.rep(), "read from")?;
        HostInputStream::blocking_skip(self.table, stream, len).await
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let rep = stream.rep();
        let pollable = HostInputStream::subscribe(self.table, stream)?;
        self.note(rep, &pollable);
        Ok(pollable)
    }
}

/// `wasi:cli/stdin`, `stdout` and `stderr`, noting the streams they hand out, for the linker.
pub struct Stdio;

impl HasData for Stdio {
    type Data<'a> = StdioView<'a>;
}

/// wasmtime-wasi's stdio, and where the streams it hands out are noted.
pub struct StdioView<'a> {
    pub(crate) inner: WasiCliCtxView<'a>,
    pub(crate) stdio: &'a mut HashSet<u32>,
}

impl stdin::Host for StdioView<'_> {
    fn get_stdin(&mut self) -> wasmtime::Result<Resource<DynInputStream>> {
        let stream = stdin::Host::get_stdin(&mut self.inner)?;
        self.stdio.insert(stream.rep());
        Ok(stream)
    }
}

impl stdout::Host for StdioView<'_> {
    fn get_stdout(&mut self) -> wasmtime::Result<Resource<DynOutputStream>> {
        let stream = stdout::Host::get_stdout(&mut self.inner)?;
        self.stdio.insert(stream.rep());
        Ok(stream)
    }
}

impl stderr::Host for StdioView<'_> {
    fn get_stderr(&mut self) -> wasmtime::Result<Resource<DynOutputStream>> {
        let stream = stderr::Host::get_stderr(&mut self.inner)?;
        self.stdio.insert(stream.rep());
        Ok(stream)
    }
}
