//! Keeps the store's files to the daemon's user: the directory 0700 and
//! everything in it 0700 (directories) or 0600 (files), whatever the umask.
//! Tokens' counters, owners and the audit chain are nobody else's business,
//! even with the seeds sealed.

use std::fs::Permissions;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::store::StoreError;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates the store directory 0700 (missing parents 0755, as `mkdir -p`
/// would under the usual umask), or narrows an existing one to 0700, before sled creates anything in it.
pub(super) fn prepare_dir(path: &Path) -> Result<(), StoreError> {
    let unavailable =
        |what: &str, e: std::io::Error| StoreError::Unavailable(format!("{what} {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        crate::fsmode::create_dir_all_with_mode(parent, 0o755).map_err(|e| unavailable("cannot create", e))?;
    }
    std::fs::DirBuilder::new().mode(DIR_MODE).create(path).or_else(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists if path.is_dir() => Ok(()),
        _ => Err(unavailable("cannot create", e)),
    })?;
    narrow(path, DIR_MODE).map_err(|e| unavailable("cannot make private", e))
}

/// Narrows what sled created under `path` (files 0600, directories 0700).
/// A file that cannot be narrowed (owned by another user) is logged, not
/// fatal: the directory itself is private.
pub(super) fn narrow_contents(path: &Path) {
    let Ok(entries) = std::fs::read_dir(path) else { return };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let child = entry.path();
        let result = if kind.is_dir() {
            narrow_contents(&child);
            narrow(&child, DIR_MODE)
        } else if kind.is_file() {
            narrow(&child, FILE_MODE)
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::warn!(path = %child.display(), error = %e, "cannot make a store file private");
        }
    }
}

/// Sets `mode` unless the permissions are already that narrow.
fn narrow(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, Permissions::from_mode(current & mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Every mode under `path` (the path itself included) that others or the group could use.
    fn open_modes(path: &Path) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let mut found = Vec::new();
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            found.push(format!("{} {mode:o}", path.display()));
        }
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                found.extend(open_modes(&entry.unwrap().path()));
            }
        }
        found
    }

    #[test]
    fn the_store_directory_is_0700_and_its_files_0600_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var").join("db");
        let store = super::super::core::Core::open(&path, 1 << 20, None).unwrap();
        store.insert_all(&[crate::store::contract::token("P1", Some("alice"))]).unwrap();
        store.flush().unwrap();
        drop(store);
        let store = super::super::core::Core::open(&path, 1 << 20, None).unwrap();
        assert!(open_modes(&path).is_empty(), "{:?}", open_modes(&path));
        assert!(std::fs::read_dir(&path).unwrap().count() > 0);
        drop(store);

        // A store made by an older radotpd under umask 022 is narrowed when opened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(path.join("conf"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = super::super::core::Core::open(&path, 1 << 20, None).unwrap();
        assert!(open_modes(&path).is_empty(), "{:?}", open_modes(&path));
    }
}
