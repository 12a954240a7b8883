//! A directory given as a list in the configuration (`directory.kind: static`).

use std::collections::BTreeMap;

use super::{DirectoryFuture, DirectoryUser, UserDirectory};

pub struct StaticDirectory {
    users: BTreeMap<String, DirectoryUser>,
}

impl StaticDirectory {
    pub fn new(users: impl IntoIterator<Item = DirectoryUser>) -> Self {
        StaticDirectory { users: users.into_iter().map(|u| (u.name.clone(), u)).collect() }
    }
}

impl UserDirectory for StaticDirectory {
    fn lookup<'a>(&'a self, name: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        Box::pin(async move { Ok(self.users.get(name).cloned()) })
    }

    fn search<'a>(&'a self, query: &'a str, limit: usize) -> DirectoryFuture<'a, Vec<DirectoryUser>> {
        Box::pin(async move {
            let needle = query.to_lowercase();
            let contains = |field: &Option<String>| field.as_ref().is_some_and(|v| v.to_lowercase().contains(&needle));
            Ok(self
                .users
                .values()
                .filter(|u| u.name.to_lowercase().contains(&needle) || contains(&u.display_name) || contains(&u.email))
                .take(limit)
                .cloned()
                .collect())
        })
    }
}

impl From<&crate::config::StaticUser> for DirectoryUser {
    fn from(u: &crate::config::StaticUser) -> Self {
        DirectoryUser {
            name: u.name.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            dn: None,
            groups: u.groups.clone(),
            attributes: Default::default(),
        }
    }
}
