//! The web console's sign-in: directory name and password, a code from the
//! operator's own radotp token (the same OTP check as RADIUS, lockout
//! included), and a role from the operator's directory groups.
//!
//! Each attempt is audited as `web.login` with the operator's name and the
//! source address (the actor); the OTP check audits itself as well.

use super::{DomainError, Service};
use crate::directory::{DirectoryError, DirectoryUser};
use crate::model::audit::{Actor, AuditEvent};
use crate::model::decision::Decision;
use crate::secret::Secret;

/// What a console user may do. Admins may do everything operators may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsoleRole {
    Operator,
    Admin,
}

impl ConsoleRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleRole::Operator => "operator",
            ConsoleRole::Admin => "admin",
        }
    }
}

/// The directory groups that give each role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleRoleGroups {
    pub operator: Vec<String>,
    pub admin: Vec<String>,
}

/// Why a sign-in failed. The page says only "wrong credentials" for the
/// first, so that it does not tell which factor was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Unknown user, wrong password or wrong OTP (a locked token too).
    WrongCredentials,
    /// Right credentials, but in none of the role groups.
    NoRole,
    /// The directory did not answer.
    DirectoryUnavailable,
}

impl LoginRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginRefusal::WrongCredentials => "wrong_credentials",
            LoginRefusal::NoRole => "no_role",
            LoginRefusal::DirectoryUnavailable => "directory_unavailable",
        }
    }
}

/// A granted sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLogin {
    /// The directory's spelling of the name.
    pub user: String,
    pub role: ConsoleRole,
}

impl Service {
    /// Signs an operator in. `actor` is [`Actor::Web`] with the name as
    /// typed and the source address.
    pub async fn console_login(
        &self,
        actor: &Actor,
        user: &str,
        password: &Secret,
        otp: &str,
        roles: &ConsoleRoleGroups,
    ) -> Result<Result<ConsoleLogin, LoginRefusal>, DomainError> {
        let outcome = self.check_console_login(actor, user, password, otp, roles).await;
        let (result, reason, role) = match &outcome {
            Ok(Ok(login)) => ("ok", None, Some(login.role.as_str())),
            Ok(Err(refusal)) => ("reject", Some(refusal.as_str().to_string()), None),
            Err(e) => (e.kind().as_str(), Some(e.to_string()), None),
        };
        let event = AuditEvent {
            operation: "web.login".into(),
            user: Some(user.chars().take(256).collect()),
            serial: None,
            details: serde_json::json!({ "role": role }),
            result: result.into(),
            reason,
        };
        self.record(actor, event).await;
        outcome
    }

    async fn check_console_login(
        &self,
        actor: &Actor,
        user: &str,
        password: &Secret,
        otp: &str,
        roles: &ConsoleRoleGroups,
    ) -> Result<Result<ConsoleLogin, LoginRefusal>, DomainError> {
        let directory = self.directory();
        let entry = match directory.lookup(user).await {
            Ok(Some(entry)) => entry,
            Ok(None) | Err(DirectoryError::NotInGroup(_) | DirectoryError::BadName(_)) => {
                return Ok(Err(LoginRefusal::WrongCredentials));
            }
            Err(DirectoryError::Unavailable(_)) => return Ok(Err(LoginRefusal::DirectoryUnavailable)),
            Err(e) => return Err(e.into()),
        };
        match directory.check_password(&entry, password).await {
            Ok(true) => {}
            Ok(false) => {
                self.count_wrong_password(&entry.name).await?;
                return Ok(Err(LoginRefusal::WrongCredentials));
            }
            Err(DirectoryError::Unavailable(_)) => return Ok(Err(LoginRefusal::DirectoryUnavailable)),
            Err(e) => return Err(e.into()),
        }
        // The role before the OTP: a code is not spent on a refused sign-in.
        let role = match self.console_role(&entry, roles).await {
            Ok(Some(role)) => role,
            Ok(None) => return Ok(Err(LoginRefusal::NoRole)),
            Err(DirectoryError::Unavailable(_)) => return Ok(Err(LoginRefusal::DirectoryUnavailable)),
            Err(e) => return Err(e.into()),
        };
        match self.authenticate(actor, &entry.name, otp).await? {
            Decision::Accept { .. } => Ok(Ok(ConsoleLogin { user: entry.name, role })),
            Decision::Reject { .. } => Ok(Err(LoginRefusal::WrongCredentials)),
        }
    }

    async fn console_role(
        &self,
        entry: &DirectoryUser,
        roles: &ConsoleRoleGroups,
    ) -> Result<Option<ConsoleRole>, DirectoryError> {
        let directory = self.directory();
        for (role, groups) in [(ConsoleRole::Admin, &roles.admin), (ConsoleRole::Operator, &roles.operator)] {
            for group in groups {
                if directory.in_group(entry, group).await? {
                    return Ok(Some(role));
                }
            }
        }
        Ok(None)
    }

    /// Whether the directory answers now, and where (the status page).
    pub async fn directory_reachability(&self) -> Result<String, String> {
        self.directory().probe().await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::directory::{DirectoryFuture, UserDirectory};
    use crate::domain::testing::{Fixture, RFC_CODES};
    use crate::model::audit::AuditQuery;

    /// alice is in `ops`, bob in no group; the password of both is "right".
    struct Groups;

    impl UserDirectory for Groups {
        fn lookup<'a>(&'a self, name: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
            let user = DirectoryUser { name: name.into(), ..DirectoryUser::default() };
            Box::pin(async move { Ok(["alice", "bob"].contains(&name).then_some(user)) })
        }
        fn search<'a>(&'a self, _: &'a str, _: usize) -> DirectoryFuture<'a, Vec<DirectoryUser>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn check_password<'a>(&'a self, _: &'a DirectoryUser, password: &'a Secret) -> DirectoryFuture<'a, bool> {
            Box::pin(async move { Ok(password.expose() == b"right") })
        }
        fn in_group<'a>(&'a self, user: &'a DirectoryUser, group: &'a str) -> DirectoryFuture<'a, bool> {
            Box::pin(async move { Ok(user.name == "alice" && group == "ops") })
        }
    }

    fn roles() -> ConsoleRoleGroups {
        ConsoleRoleGroups { operator: vec!["ops".into()], admin: vec!["admins".into()] }
    }

    async fn login(f: &Fixture, user: &str, password: &str, otp: &str) -> Result<ConsoleLogin, LoginRefusal> {
        let actor = Actor::Web { user: user.into(), address: "192.0.2.7".into() };
        f.service.console_login(&actor, user, &Secret::from(password), otp, &roles()).await.unwrap()
    }

    #[tokio::test]
    async fn sign_in_needs_password_otp_and_a_role_and_spends_the_code() {
        let f = Fixture::new(crate::config::AuthConfig::default(), Arc::new(Groups));
        f.import_tokens().await;
        assert_eq!(login(&f, "alice", "wrong", RFC_CODES[0]).await, Err(LoginRefusal::WrongCredentials));
        assert_eq!(f.token("A1").await.fail_count, 1, "a wrong password counts towards the lockout");
        assert_eq!(login(&f, "nobody", "right", RFC_CODES[0]).await, Err(LoginRefusal::WrongCredentials));
        assert_eq!(login(&f, "bob", "right", RFC_CODES[0]).await, Err(LoginRefusal::NoRole));
        assert_eq!(f.token("B1").await.counter, 0, "no code is spent on a refused role");
        let granted = login(&f, "alice", "right", RFC_CODES[0]).await;
        assert_eq!(granted, Ok(ConsoleLogin { user: "alice".into(), role: ConsoleRole::Operator }));
        assert_eq!(login(&f, "alice", "right", RFC_CODES[0]).await, Err(LoginRefusal::WrongCredentials), "replay");

        let query = AuditQuery { user: Some("alice".into()), ..Default::default() };
        let entries = f.service.audit(&Actor::Daemon, &query).await.unwrap();
        let logins: Vec<_> = entries.iter().filter(|e| e.operation == "web.login").collect();
        assert_eq!(logins.len(), 3, "{entries:#?}");
        assert!(logins.iter().all(|e| e.actor.to_string() == "web:alice@192.0.2.7"));
        assert!(logins.iter().any(|e| e.result == "ok" && e.details["role"] == "operator"));
    }
}
