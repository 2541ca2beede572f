//! Granted directories, reachable from steps only. wasi-libc opens the preopened directories
//! once and keeps them, so hiding them from workflow code is not enough: every operation on a
//! descriptor checks the phase, and from workflow code fails with "not permitted".

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, ErrorCode, HostDescriptor, HostDirectoryEntryStream,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

use super::Access;

/// `wasi:filesystem/types` behind the step gate, for the linker.
pub struct GatedFilesystem;

impl HasData for GatedFilesystem {
    type Data<'a> = GatedFilesystemView<'a>;
}

/// wasmtime-wasi's filesystem, and the access that decides whether it may be used now.
pub struct GatedFilesystemView<'a> {
    pub(crate) inner: WasiFilesystemCtxView<'a>,
    pub(crate) access: &'a Access,
}

impl GatedFilesystemView<'_> {
    fn gate(&self, operation: &str) -> FsResult<()> {
        self.access
            .in_step(|| format!("a file operation ({operation})"))
            .map_err(|_| FsError::from(ErrorCode::NotPermitted))
    }
}

/// Each method checks the gate, then hands its arguments to wasmtime-wasi.
macro_rules! gated {
    ($(async fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(async fn $name(&mut self $(, $arg: $ty)*) -> $ret {
            self.gate(stringify!($name))?;
            HostDescriptor::$name(&mut self.inner $(, $arg)*).await
        })*
    };
}

type Fd = Resource<types::Descriptor>;

impl HostDescriptor for GatedFilesystemView<'_> {
    gated! {
        async fn advise(&mut self, fd: Fd, offset: u64, len: u64, advice: types::Advice) -> FsResult<()>;
        async fn sync_data(&mut self, fd: Fd) -> FsResult<()>;
        async fn get_flags(&mut self, fd: Fd) -> FsResult<types::DescriptorFlags>;
        async fn get_type(&mut self, fd: Fd) -> FsResult<types::DescriptorType>;
        async fn set_size(&mut self, fd: Fd, size: u64) -> FsResult<()>;
        async fn set_times(&mut self, fd: Fd, atim: types::NewTimestamp, mtim: types::NewTimestamp) -> FsResult<()>;
        async fn read(&mut self, fd: Fd, len: u64, offset: u64) -> FsResult<(Vec<u8>, bool)>;
        async fn write(&mut self, fd: Fd, buf: Vec<u8>, offset: u64) -> FsResult<u64>;
        async fn read_directory(&mut self, fd: Fd) -> FsResult<Resource<types::DirectoryEntryStream>>;
        async fn sync(&mut self, fd: Fd) -> FsResult<()>;
        async fn create_directory_at(&mut self, fd: Fd, path: String) -> FsResult<()>;
        async fn stat(&mut self, fd: Fd) -> FsResult<types::DescriptorStat>;
        async fn stat_at(&mut self, fd: Fd, path_flags: types::PathFlags, path: String) -> FsResult<types::DescriptorStat>;
        async fn set_times_at(&mut self, fd: Fd, path_flags: types::PathFlags, path: String, atim: types::NewTimestamp, mtim: types::NewTimestamp) -> FsResult<()>;
        async fn link_at(&mut self, fd: Fd, old_path_flags: types::PathFlags, old_path: String, new_descriptor: Fd, new_path: String) -> FsResult<()>;
        async fn open_at(&mut self, fd: Fd, path_flags: types::PathFlags, path: String, oflags: types::OpenFlags, flags: types::DescriptorFlags) -> FsResult<Fd>;
        async fn readlink_at(&mut self, fd: Fd, path: String) -> FsResult<String>;
        async fn remove_directory_at(&mut self, fd: Fd, path: String) -> FsResult<()>;
        async fn rename_at(&mut self, fd: Fd, old_path: String, new_fd: Fd, new_path: String) -> FsResult<()>;
        async fn unlink_file_at(&mut self, fd: Fd, path: String) -> FsResult<()>;
        async fn metadata_hash(&mut self, fd: Fd) -> FsResult<types::MetadataHashValue>;
        async fn metadata_hash_at(&mut self, fd: Fd, path_flags: types::PathFlags, path: String) -> FsResult<types::MetadataHashValue>;
    }

    /// A link whose target would lead out of the directory it is made in is refused: the
    /// guest could not follow it, but a host process handling the granted directory could.
    async fn symlink_at(&mut self, fd: Fd, target: String, link: String) -> FsResult<()> {
        self.gate("symlink_at")?;
        if leaves_directory(&link, &target) {
            self.access.refuse(format!(
                "a link {link:?} → {target:?} would lead out of its directory: a step may only \
                 link within a granted directory"
            ));
            return Err(ErrorCode::NotPermitted.into());
        }
        HostDescriptor::symlink_at(&mut self.inner, fd, target, link).await
    }

    fn read_via_stream(&mut self, fd: Fd, offset: u64) -> FsResult<Resource<DynInputStream>> {
        self.gate("read_via_stream")?;
        HostDescriptor::read_via_stream(&mut self.inner, fd, offset)
    }

    fn write_via_stream(&mut self, fd: Fd, offset: u64) -> FsResult<Resource<DynOutputStream>> {
        self.gate("write_via_stream")?;
        HostDescriptor::write_via_stream(&mut self.inner, fd, offset)
    }

    fn append_via_stream(&mut self, fd: Fd) -> FsResult<Resource<DynOutputStream>> {
        self.gate("append_via_stream")?;
        HostDescriptor::append_via_stream(&mut self.inner, fd)
    }

    async fn is_same_object(&mut self, a: Fd, b: Fd) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.inner, a, b).await
    }

    fn drop(&mut self, fd: Fd) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.inner, fd)
    }
}

impl HostDirectoryEntryStream for GatedFilesystemView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        self.gate("read_directory_entry")?;
        HostDirectoryEntryStream::read_directory_entry(&mut self.inner, stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}

impl types::Host for GatedFilesystemView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

/// Whether a link at `link` (relative to a directory) to `target` resolves outside that
/// directory: an absolute target, or more `..` than the link's own depth allows at any point.
fn leaves_directory(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth: i64 = 0;
    let link_dir = link.rsplit_once('/').map_or("", |(dir, _)| dir);
    for part in link_dir.split('/').chain(target.split('/')) {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::leaves_directory;

    #[test]
    fn links_may_not_lead_out_of_their_directory() {
        for (link, target) in [
            ("evil", "../outside.txt"),
            ("evil", "/etc/passwd"),
            ("a/evil", "../../outside"),
            ("a/evil", "b/../../../x"),
        ] {
            assert!(leaves_directory(link, target), "{link} -> {target}");
        }
        for (link, target) in [
            ("ok", "inside.txt"),
            ("a/ok", "../sibling"),
            ("a/b/ok", "../../top"),
            ("ok", "./x/../y"),
        ] {
            assert!(!leaves_directory(link, target), "{link} -> {target}");
        }
    }
}
