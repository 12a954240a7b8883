//! Writing a private file (a backup, a QR code that carries a seed) into a
//! directory that other users may share.
//!
//! The content goes to a new temporary file in the target's directory
//! (created exclusively, mode 0600, so no link is followed and nobody else's
//! file is opened), is synced, and then takes the target's name: by a hard
//! link when nothing may be replaced (so an existing name is never
//! overwritten, even in a race), by a rename otherwise. An existing target
//! that is a symbolic link, not a regular file, or another user's file is
//! refused. The file at the target name is therefore always new, owned by
//! the writer, mode 0600.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    #[error("{0} exists already")]
    Exists(String),
    #[error("{0} is a symbolic link; it is not written through")]
    Symlink(String),
    #[error("{0} is not a regular file")]
    NotRegular(String),
    #[error("{path} belongs to uid {owner}, not to uid {me}; another user's file is not replaced")]
    Foreign { path: String, owner: u32, me: u32 },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Writes `path` through `write` as described in the module doc. With
/// `replace` false an existing `path` is refused ([`PrivateFileError::Exists`]);
/// with `replace` true an existing regular file of the same user is replaced.
pub fn write_private(
    path: &Path,
    replace: bool,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), PrivateFileError> {
    let shown = path.display().to_string();
    let io_err = |source: io::Error| PrivateFileError::Io { path: shown.clone(), source };
    check_target(path, replace)?;
    let name = path.file_name().ok_or_else(|| PrivateFileError::NotRegular(shown.clone()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut suffix = [0u8; 8];
    crate::crypto::random_bytes(&mut suffix).map_err(|e| io_err(io::Error::other(e.to_string())))?;
    let temporary = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), data_encoding::HEXLOWER.encode(&suffix)));
    let written = (|| {
        // create_new: O_CREAT | O_EXCL, which never follows a link at the name.
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        write(&mut file)?;
        file.sync_all()
    })();
    let placed = written.and_then(|()| {
        if replace {
            std::fs::rename(&temporary, path)
        } else {
            std::fs::hard_link(&temporary, path).and_then(|()| std::fs::remove_file(&temporary))
        }
    });
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temporary);
        return Err(if e.kind() == io::ErrorKind::AlreadyExists { PrivateFileError::Exists(shown) } else { io_err(e) });
    }
    // The new name itself is durable once the directory is synced.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn check_target(path: &Path, replace: bool) -> Result<(), PrivateFileError> {
    let shown = path.display().to_string();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(PrivateFileError::Io { path: shown, source }),
    };
    if meta.file_type().is_symlink() {
        return Err(PrivateFileError::Symlink(shown));
    }
    if !meta.is_file() {
        return Err(PrivateFileError::NotRegular(shown));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(PrivateFileError::Foreign { path: shown, owner: meta.uid(), me });
    }
    if !replace {
        return Err(PrivateFileError::Exists(shown));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write_text(path: &Path, replace: bool, text: &str) -> Result<(), PrivateFileError> {
        write_private(path, replace, |f| f.write_all(text.as_bytes()))
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_file_is_private_and_an_existing_one_needs_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.json");
        write_text(&path, false, "one").unwrap();
        assert_eq!((std::fs::read_to_string(&path).unwrap().as_str(), mode(&path)), ("one", 0o600));
        assert!(matches!(write_text(&path, false, "two"), Err(PrivateFileError::Exists(_))));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        // An own file readable by all is replaced by a new private one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = std::fs::metadata(&path).unwrap().ino();
        write_text(&path, true, "three").unwrap();
        assert_eq!((std::fs::read_to_string(&path).unwrap().as_str(), mode(&path)), ("three", 0o600));
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), before, "a new file, not the old one rewritten");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    }

    #[test]
    fn a_symbolic_link_is_never_followed_nor_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("qr.png");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for replace in [false, true] {
            assert!(matches!(write_text(&link, replace, "png"), Err(PrivateFileError::Symlink(_))));
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(write_text(&dangling, true, "png"), Err(PrivateFileError::Symlink(_))));
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn a_directory_is_not_a_target() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(write_text(dir.path(), true, "x"), Err(PrivateFileError::NotRegular(_))));
    }
}
