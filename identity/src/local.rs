//! The replica's local state: secrets that never enter the synced store.
//!
//! `<store dir>/local/` (mode 0700) holds `root.key`, `device.key`, `dkim.key`,
//! `services/<service>.key` and `tsig/<device>.key`, each mode 0600. The store holds
//! only the public halves. Where the system has no users to hide them from (the hermit
//! unikernel), the modes are not set. A unikernel has no folder of its own: `kith disk
//! write` puts the same files on a branch of its disk that never travels
//! (`local/services`), which [`Local::on_branch`] reads.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use kith_store::Store;

use crate::error::{Error, Result};

/// The local state of one replica: a folder, or a disk's branch of secrets.
#[derive(Clone)]
pub enum Local {
    /// `<store dir>/local/`.
    Folder(PathBuf),
    /// A branch of a disk's store, read-only (see [`Local::on_branch`]).
    Branch(Store, String),
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Local::Folder(dir) => write!(f, "Local({})", dir.display()),
            Local::Branch(_, branch) => write!(f, "Local(branch {branch})"),
        }
    }
}

/// The root key's file.
pub const ROOT_KEY: &str = "root.key";
/// This device's TLS key's file.
pub const DEVICE_KEY: &str = "device.key";
/// The DKIM key's file.
pub const DKIM_KEY: &str = "dkim.key";

/// A service key's file.
pub fn service_key(service: &str) -> String {
    format!("services/{service}.key")
}

/// A device's TSIG secret's file.
pub fn tsig_key(device: &str) -> String {
    format!("tsig/{device}.key")
}

impl Local {
    /// The local state of the store in `store_dir`.
    pub fn new(store_dir: &Path) -> Local {
        Local::Folder(store_dir.join("local"))
    }

    /// The secrets `kith disk write` put on `branch` of a disk's store, read-only.
    pub fn on_branch(store: Store, branch: &str) -> Local {
        Local::Branch(store, branch.to_string())
    }

    /// Writes a secret file (0600), making its folders (0700).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.folder(name)?;
        let path = dir.join(name);
        let parent = path.parent().unwrap_or(dir);
        private::create_dir(parent).map_err(|e| io(parent, e))?;
        private::restrict_dir(dir).map_err(|e| io(dir, e))?;
        let tmp = path.with_extension("tmp");
        let mut file = private::file_options()
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        file.write_all(bytes)
            .and_then(|_| file.sync_all())
            .map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }

    /// Reads a secret file; `None` if absent.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let dir = match self {
            Local::Folder(dir) => dir,
            Local::Branch(store, branch) => return Ok(store.get(&store.head_tree(branch)?, name)?),
        };
        let path = dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Reads a secret file that must be there.
    pub fn require(&self, name: &str, what: &'static str) -> Result<Vec<u8>> {
        self.read(name)?.ok_or_else(|| Error::MissingSecret {
            what,
            path: match self {
                Local::Folder(dir) => dir.join(name),
                Local::Branch(_, branch) => Path::new(branch).join(name),
            },
        })
    }

    /// Removes a secret file if present.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.folder(name)?.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path, e)),
            _ => Ok(()),
        }
    }
}

impl Local {
    /// The folder, for a change to `name`; a disk's branch of secrets refuses changes
    /// (`kith disk write` writes it).
    fn folder(&self, name: &str) -> Result<&Path> {
        match self {
            Local::Folder(dir) => Ok(dir),
            Local::Branch(_, branch) => Err(io(
                &Path::new(branch).join(name),
                std::io::Error::new(
                    std::io::ErrorKind::ReadOnlyFilesystem,
                    "a disk's secrets are read-only; `kith disk write` writes them",
                ),
            )),
        }
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Owner-only folders (0700) and files (0600) on unix; plain ones elsewhere.
mod private {
    use std::fs;
    use std::path::Path;

    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};

    /// Creates `dir` and its parents.
    pub(super) fn create_dir(dir: &Path) -> std::io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(dir)
    }

    /// Makes an existing folder owner-only.
    pub(super) fn restrict_dir(dir: &Path) -> std::io::Result<()> {
        #[cfg(unix)]
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }

    /// Options that create (or empty) an owner-only file for writing.
    pub(super) fn file_options() -> fs::OpenOptions {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        options
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn secrets_are_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let local = Local::new(dir.path());
        local.write(&tsig_key("laptop"), b"secret").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let folder = dir.path().join("local");
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&folder.join("tsig")), 0o700);
        assert_eq!(mode(&folder.join("tsig/laptop.key")), 0o600);
        assert_eq!(local.read("tsig/laptop.key").unwrap().unwrap(), b"secret");
        assert!(local.read("nothing").unwrap().is_none());
    }

    #[test]
    fn a_disks_branch_of_secrets_reads_like_the_folder_and_refuses_changes() {
        let store = Store::memory();
        let local = Local::on_branch(store.clone(), "local/services");
        assert!(
            local.read(&tsig_key("laptop")).unwrap().is_none(),
            "no branch yet"
        );
        let mut tx = store.transaction("local/services").unwrap();
        tx.put(&tsig_key("laptop"), b"secret").unwrap();
        tx.commit("disk", "the keys").unwrap();
        assert_eq!(local.read(&tsig_key("laptop")).unwrap().unwrap(), b"secret");
        assert!(local.read(&tsig_key("phone")).unwrap().is_none());
        assert!(local.write(&tsig_key("phone"), b"x").is_err());
        assert!(local.remove(&tsig_key("laptop")).is_err());
        assert!(local.read(&tsig_key("laptop")).unwrap().is_some());
    }
}
