//! A directory given as a list in the configuration (`directory.kind: static`).

use std::collections::BTreeMap;

use super::{DirectoryFuture, DirectoryUser, UserDirectory};

pub struct StaticDirectory {
    /// Name -> the rest of the entry, compact (a list of 100,000 users takes
    /// about 90 bytes each instead of a `DirectoryUser`'s 220).
    users: BTreeMap<Box<str>, Entry>,
}

/// A user of the list without its name (the map's key).
struct Entry {
    display_name: Option<Box<str>>,
    email: Option<Box<str>>,
    groups: Box<[Box<str>]>,
}

impl Entry {
    fn user(&self, name: &str) -> DirectoryUser {
        DirectoryUser {
            name: name.to_string(),
            display_name: self.display_name.as_deref().map(str::to_string),
            email: self.email.as_deref().map(str::to_string),
            dn: None,
            groups: self.groups.iter().map(|g| g.to_string()).collect(),
            attributes: Default::default(),
        }
    }
}

impl StaticDirectory {
    pub fn new(users: impl IntoIterator<Item = DirectoryUser>) -> Self {
        let users = users
            .into_iter()
            .map(|u| {
                let entry = Entry {
                    display_name: u.display_name.map(String::into_boxed_str),
                    email: u.email.map(String::into_boxed_str),
                    groups: u.groups.into_iter().map(String::into_boxed_str).collect(),
                };
                (u.name.into_boxed_str(), entry)
            })
            .collect();
        StaticDirectory { users }
    }
}

impl UserDirectory for StaticDirectory {
    fn lookup<'a>(&'a self, name: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        Box::pin(async move { Ok(self.users.get(name).map(|entry| entry.user(name))) })
    }

    fn search<'a>(&'a self, query: &'a str, limit: usize) -> DirectoryFuture<'a, Vec<DirectoryUser>> {
        Box::pin(async move {
            let needle = query.to_lowercase();
            let contains =
                |field: &Option<Box<str>>| field.as_ref().is_some_and(|v| v.to_lowercase().contains(&needle));
            Ok(self
                .users
                .iter()
                .filter(|(name, e)| {
                    name.to_lowercase().contains(&needle) || contains(&e.display_name) || contains(&e.email)
                })
                .take(limit)
                .map(|(name, e)| e.user(name))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, display: Option<&str>, email: Option<&str>, groups: &[&str]) -> DirectoryUser {
        DirectoryUser {
            name: name.into(),
            display_name: display.map(Into::into),
            email: email.map(Into::into),
            dn: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            attributes: Default::default(),
        }
    }

    #[tokio::test]
    async fn users_come_back_as_they_were_given() {
        let alice = user("alice", Some("Alice Ärger"), Some("alice@example.org"), &["vpn", "admins"]);
        let bob = user("bob", None, None, &[]);
        let directory = StaticDirectory::new([alice.clone(), bob.clone()]);
        assert_eq!(directory.lookup("alice").await.unwrap(), Some(alice.clone()));
        assert_eq!(directory.lookup("bob").await.unwrap(), Some(bob));
        assert_eq!(directory.lookup("carol").await.unwrap(), None);
        assert_eq!(directory.search("ärger", 10).await.unwrap(), vec![alice.clone()]);
        assert_eq!(directory.search("EXAMPLE", 10).await.unwrap(), vec![alice]);
        assert_eq!(directory.search("", 1).await.unwrap().len(), 1);
    }
}
