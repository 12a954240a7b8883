//! Why this account may not open the admin socket: the file's owner, group
//! and mode against the account's groups, and the setting that fixes it.
//! (A role in admin.roles is checked by the daemon only after the file's
//! permissions let the connection through.)

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The hint printed under "Permission denied" for `socket`.
pub(crate) fn permission_hint(socket: &Path) -> String {
    let mine = own_groups();
    match std::fs::metadata(socket) {
        Ok(meta) => {
            let in_group = mine.contains(&meta.gid());
            let group_may = meta.permissions().mode() & 0o060 == 0o060;
            let why = if in_group && !group_may {
                "its group may not write to it: the administrator sets admin.socket_mode (default 0660)".to_string()
            } else if !in_group {
                // The missing piece is the file's group, not a role: say how to get it.
                let uid = nix::unistd::getuid().as_raw();
                let (me, group) = (user_name(uid), group_name(meta.gid()));
                format!(
                    "this account ({me}, uid {uid}) is not in group {group}: add it (usermod -aG {group} {me}, then \
                     log in again), or the administrator sets admin.socket_group to a group it is in and reloads \
                     radotpd"
                )
            } else {
                "ask the administrator to check admin.socket_group and admin.socket_mode".to_string()
            };
            format!("(the socket {} is {}: {why})", socket.display(), describe(&meta))
        }
        // The file cannot even be looked at: a directory on the way is closed.
        Err(_) => {
            let parent = socket.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let place = match std::fs::metadata(parent) {
                Ok(meta) => format!("its directory {} is {}", parent.display(), describe(&meta)),
                Err(_) => format!("a directory on the way to {} is closed to this account", socket.display()),
            };
            format!(
                "({place}: this account may not reach the socket; the administrator lets the operators' group \
                 through the directory, and sets admin.socket_group)"
            )
        }
    }
}

/// `srw-rw---- root:radotp-ops (0660)`
fn describe(meta: &std::fs::Metadata) -> String {
    let mode = meta.permissions().mode();
    let kind = if meta.file_type().is_dir() {
        'd'
    } else if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
        's'
    } else {
        '-'
    };
    let bits: String = (0..9)
        .map(|i| {
            let on = mode & (0o400 >> i) != 0;
            match (on, i % 3) {
                (false, _) => '-',
                (true, 0) => 'r',
                (true, 1) => 'w',
                (true, _) => 'x',
            }
        })
        .collect();
    format!(
        "{kind}{bits} owner {} group {} (mode {:04o})",
        user_name(meta.uid()),
        group_name(meta.gid()),
        mode & 0o7777
    )
}

fn own_groups() -> Vec<u32> {
    let mut groups: Vec<u32> = nix::unistd::getgroups().unwrap_or_default().iter().map(|g| g.as_raw()).collect();
    groups.push(nix::unistd::getegid().as_raw());
    groups
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
        Ok(Some(group)) => group.name,
        _ => gid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_file_is_described_like_ls_with_names_and_octal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
        let text = describe(&std::fs::metadata(&path).unwrap());
        assert!(text.starts_with("srw-rw---- owner "), "{text}");
        assert!(text.ends_with("(mode 0660)"), "{text}");
    }
}
