//! Directories created with the modes radotp chooses, not the umask's:
//! radotpd runs under umask 077 (its store files are its user's only), yet
//! the directories on the way to the admin socket must stay traversable.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Creates `path` and its missing parents, each created one with exactly
/// `mode` (existing directories are left as they are).
pub fn create_dir_all_with_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_dir_all_with_mode(parent, mode)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => std::fs::set_permissions(path, Permissions::from_mode(mode)),
        // Created meanwhile by someone else: theirs to keep.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_directories_get_the_mode_asked_for_and_existing_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o710)).unwrap();
        let deep = dir.path().join("a").join("b");
        create_dir_all_with_mode(&deep, 0o755).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&deep), mode(deep.parent().unwrap())), (0o755, 0o755));
        assert_eq!(mode(dir.path()), 0o710);
        create_dir_all_with_mode(&deep, 0o700).unwrap();
        assert_eq!(mode(&deep), 0o755);
    }
}
