//! The user directory seam: where token owners come from.
//!
//! [`UserDirectory`] is implemented by the static list of the configuration
//! ([`static_list`]) and, later, by LDAP. Look-ups are async because a real
//! directory is a network service; the static list answers at once.

pub mod static_list;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A user as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// The entry's distinguished name, for LDAP directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("user name {0:?} is not acceptable")]
    BadName(String),
    #[error("user name {0:?} matches several directory entries")]
    Ambiguous(String),
}

pub type DirectoryFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DirectoryError>> + Send + 'a>>;

pub trait UserDirectory: Send + Sync {
    /// The user called exactly `name`, if any.
    fn lookup<'a>(&'a self, name: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>>;

    /// Users whose name, display name or e-mail contains `query`, at most `limit`.
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> DirectoryFuture<'a, Vec<DirectoryUser>>;
}
