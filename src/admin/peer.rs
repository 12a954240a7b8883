//! Who is on the other end of an admin connection: its uid (SO_PEERCRED)
//! and the groups **the process itself** holds.
//!
//! Roles given to groups must follow the connecting process, not the
//! user's entry in /etc/group: a process that dropped a group
//! (`setpriv --clear-groups`, a service with `SupplementaryGroups=` left
//! out) must not keep that group's role, and a group given at run time
//! (systemd `SupplementaryGroups=`) must count. The groups are the gid
//! SO_PEERCRED reports plus the `Groups:` of `/proc/PID/status` for the
//! PID it reports. (Linux also has SO_PEERGROUPS, but reading it needs an
//! `unsafe` call this crate does not allow.) The process is pinned with a
//! pidfd (SO_PEERPIDFD) where the kernel has one: when the process is gone
//! by the time its status is read, or the status names another effective
//! uid, only the SO_PEERCRED gid counts.

use std::os::fd::AsFd;

use tokio::net::UnixStream;

use crate::model::audit::Actor;

/// The process on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    pub user: Option<String>,
    /// The process's effective gid and its supplementary groups.
    pub gids: Vec<u32>,
}

impl Peer {
    pub(super) fn identify(stream: &UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        let uid = cred.uid();
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten();
        let mut gids = vec![cred.gid()];
        if let Some(pid) = cred.pid() {
            // Taken before the status is read: it names this very process.
            let pidfd = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerPidfd).ok();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
            let still_there = pidfd.as_ref().is_none_or(|fd| !has_exited(fd));
            if let (Some(status), true) = (status, still_there) {
                if let Some(groups) = groups_of(&status, uid) {
                    gids.extend(groups.into_iter().filter(|g| *g != cred.gid()));
                }
            }
        }
        Ok(Peer { uid, pid: cred.pid(), user: user.map(|u| u.name), gids })
    }

    pub(super) fn actor(&self) -> Actor {
        Actor::Admin { uid: self.uid, user: self.user.clone() }
    }
}

/// A pidfd is readable once its process has exited.
fn has_exited(pidfd: &impl AsFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(ready) => ready > 0,
        Err(_) => true,
    }
}

/// The supplementary groups in a `/proc/PID/status` text, if its effective
/// uid is `uid` (else the status is of another process: none).
fn groups_of(status: &str, uid: u32) -> Option<Vec<u32>> {
    let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name)).map(str::split_whitespace);
    let effective_uid = field("Uid:")?.nth(1)?.parse::<u32>().ok()?;
    if effective_uid != uid {
        return None;
    }
    field("Groups:")?.map(|g| g.parse::<u32>().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tradotpctl\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nFDSize:\t64\nGroups:\t4 24 27 1000 \nNgid:\t0\n";

    #[test]
    fn groups_come_from_the_status_of_a_process_of_that_uid() {
        assert_eq!(groups_of(STATUS, 1000), Some(vec![4, 24, 27, 1000]));
        assert_eq!(groups_of(STATUS, 0), None, "another process's status");
        let cleared = STATUS.replace("Groups:\t4 24 27 1000 \n", "Groups:\t\n");
        assert_eq!(groups_of(&cleared, 1000), Some(vec![]), "setpriv --clear-groups");
        let odd = STATUS.replace("Groups:\t4 24", "Groups:\t4 x");
        assert_eq!(groups_of(&odd, 1000), None, "unreadable: none rather than a guess");
    }

    #[tokio::test]
    async fn a_peer_has_the_groups_of_its_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = Peer::identify(&a).unwrap();
        assert_eq!(peer.uid, nix::unistd::geteuid().as_raw());
        let mut ours: Vec<u32> = nix::unistd::getgroups().unwrap().iter().map(|g| g.as_raw()).collect();
        ours.push(nix::unistd::getegid().as_raw());
        ours.sort_unstable();
        ours.dedup();
        let mut theirs = peer.gids.clone();
        theirs.sort_unstable();
        assert_eq!(theirs, ours);
    }
}
