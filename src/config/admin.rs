//! `admin`: the admin socket, its file mode and group, and who may do what on it.

use std::path::PathBuf;

use serde::Deserialize;

use super::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub socket: PathBuf,
    /// Besides root and the daemon's own uid.
    #[serde(default)]
    pub allowed_uids: Vec<u32>,
    /// Group names or numeric gids.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Who gets which role. Peers in `allowed_uids`/`allowed_groups`, root and
    /// the daemon's own uid are admins.
    #[serde(default)]
    pub roles: RolesConfig,
    /// Each request line must arrive within this many seconds, or the
    /// connection is closed (a client that stalls holds one of the few slots).
    #[serde(default = "default_admin_request_timeout_seconds")]
    pub request_timeout_seconds: u64,
    /// The group the socket file is given (name or gid), so that its members
    /// may open it; applied at start and on reload. None: the daemon's group.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// The socket file's mode, written in octal (`"0660"`); applied at start
    /// and on reload. Others may get nothing: roles are given by group.
    #[serde(default)]
    pub socket_mode: SocketMode,
}

/// A socket file's permission bits, written in octal in the file (`"0660"`,
/// or the number `0660`/`660`, whose digits are read as octal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketMode(pub u32);

impl Default for SocketMode {
    fn default() -> Self {
        SocketMode(0o660)
    }
}

impl std::fmt::Display for SocketMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for SocketMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u64),
            Text(String),
        }
        let digits = match Written::deserialize(d)? {
            Written::Number(n) => n.to_string(),
            Written::Text(text) => text.trim().trim_start_matches("0o").to_string(),
        };
        match u32::from_str_radix(&digits, 8) {
            Ok(mode) if !digits.is_empty() && mode <= 0o777 => Ok(SocketMode(mode)),
            _ => Err(serde::de::Error::custom(format!(
                "{digits:?} is not a file mode; write it in octal, such as \"0660\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    /// Day-to-day token handling: list, show, assign, reassign, unassign,
    /// enroll, reset, enable, disable, unlock, audit.
    #[serde(default)]
    pub operator: RoleMembers,
    /// Everything, including import and delete.
    #[serde(default)]
    pub admin: RoleMembers,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMembers {
    #[serde(default)]
    pub uids: Vec<u32>,
    /// Group names or numeric gids.
    #[serde(default)]
    pub groups: Vec<String>,
}
