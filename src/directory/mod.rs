//! The user directory seam: where token owners come from.
//!
//! [`UserDirectory`] is implemented by the static list of the configuration
//! ([`static_list`]) and by LDAP ([`ldap`]). Look-ups are async because a
//! real directory is a network service; the static list answers at once.
//!
//! A directory may restrict its users to a group (LDAP `required_group`):
//! [`UserDirectory::lookup`] then answers [`DirectoryError::NotInGroup`] for
//! a user outside it, and [`UserDirectory::search`] leaves such users out.
//! Directories that hold passwords check them with
//! [`UserDirectory::check_password`]; the others answer
//! [`DirectoryError::Unsupported`].

pub mod ldap;
pub mod static_list;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// A user as the directory knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// The entry's distinguished name, for LDAP directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// The groups the user is in: names for a static list, DNs for LDAP
    /// (filled in by [`UserDirectory::lookup`] when groups are wanted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Directory attributes asked for by reply templates (`{ldap:NAME}`): the first value of each.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl crate::model::reply::UserValues for DirectoryUser {
    fn name(&self) -> &str {
        &self.name
    }

    fn attribute(&self, name: &str) -> Option<String> {
        self.attributes.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("user name {0:?} is not acceptable")]
    BadName(String),
    #[error("user name {0:?} matches several directory entries")]
    Ambiguous(String),
    /// The user exists but is outside the directory's required group.
    #[error("user {0} is not in the required group")]
    NotInGroup(String),
    /// The directory cannot do this (a static list checks no passwords).
    #[error("{0}")]
    Unsupported(String),
}

pub type DirectoryFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DirectoryError>> + Send + 'a>>;

pub trait UserDirectory: Send + Sync {
    /// The user called exactly `name`, if any.
    fn lookup<'a>(&'a self, name: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>>;

    /// Users whose name, display name or e-mail contains `query`, at most `limit`.
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> DirectoryFuture<'a, Vec<DirectoryUser>>;

    /// Whether `password` is the directory password of `user` (as found by
    /// [`UserDirectory::lookup`]). `Ok(false)` is a wrong password, an
    /// empty one, or a refused account; `Err` is a directory that cannot
    /// tell (down, or holding no passwords).
    fn check_password<'a>(&'a self, user: &'a DirectoryUser, password: &'a Secret) -> DirectoryFuture<'a, bool> {
        let _ = (user, password);
        Box::pin(async { Err(DirectoryError::Unsupported("this directory holds no passwords".into())) })
    }

    /// Whether `user` belongs to the directory's required group; true when
    /// there is none. [`UserDirectory::lookup`] already applies it.
    fn in_required_group<'a>(&'a self, user: &'a DirectoryUser) -> DirectoryFuture<'a, bool> {
        let _ = user;
        Box::pin(async { Ok(true) })
    }

    /// Checks that the directory answers, for start-up logs; says where.
    fn probe(&self) -> DirectoryFuture<'_, String> {
        Box::pin(async { Ok("local list".to_string()) })
    }
}
