//! Authorization of a RADIUS login: who may log in through which client
//! (`allowed_groups`, `allowed_token_types`), and the attributes an
//! Access-Accept carries (`authorization.rules`).
//!
//! The user is looked up once, before any OTP is checked, when a rule or
//! the client's `allowed_groups` depends on the directory; a user outside
//! `allowed_groups` is rejected `not_allowed_here` without a failure being
//! counted. Owns no packet: the RADIUS layer puts the reply's bytes in the
//! Access-Accept.

use super::radius_modes::{Outcome, RadiusRequest, normalize_user};
use super::{DomainError, Service};
use crate::config::ClientAccess;
use crate::directory::DirectoryUser;
use crate::model::audit::Actor;
use crate::model::decision::{Decision, RejectReason};
use crate::model::reply::Reply;
use crate::model::reply::rules::in_groups;

/// What a RADIUS login came to, with the Accept's reply attributes.
#[derive(Debug)]
pub struct Login {
    pub outcome: Outcome,
    /// Empty unless the outcome is an Accept.
    pub reply: Reply,
}

/// What a login through one client would get (`radotpctl user show`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientReply {
    pub client: String,
    /// False: the client's `allowed_groups` leave the user out (`not_allowed_here`).
    pub allowed: bool,
    /// The rules that would apply.
    pub rules: Vec<String>,
    /// The reply attributes, `Attribute = value`.
    pub attributes: Vec<String>,
    /// Lines that would be left out, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl Service {
    /// Answers one RADIUS request: the client's access policy, then its
    /// mode ([`Service::radius_authenticate`]), then the reply rules.
    pub async fn radius_login<'a>(
        &self,
        actor: &Actor,
        request: RadiusRequest<'a>,
        access: &'a ClientAccess,
    ) -> Result<Login, DomainError> {
        let token_types = access.allowed_token_types.as_deref().or(request.token_types);
        let request = RadiusRequest { token_types, ..request };
        let mut entry = None;
        let settings = self.settings();
        let auth = &settings.auth;
        let user = normalize_user(request.user, auth.strip_realm, auth.case_insensitive_users);
        if settings.authorization.needs_directory() || access.allowed_groups.is_some() {
            match self.directory_entry(actor, &user).await {
                Ok(found) => entry = Some(found),
                Err(outcome) => return Ok(Login { outcome, reply: Reply::default() }),
            }
        }
        if let (Some(allowed), Some(found)) = (&access.allowed_groups, &entry) {
            if !allowed.iter().any(|group| in_groups(group, &found.groups)) {
                let detail = format!("not in allowed_groups of client {}", request.client);
                self.record_radius(actor, &user, "reject", RejectReason::NotAllowedHere, Some(detail)).await;
                let outcome = Outcome::Decided(Decision::Reject { reason: RejectReason::NotAllowedHere, serial: None });
                return Ok(Login { outcome, reply: Reply::default() });
            }
        }
        let client = request.client;
        let outcome = self.radius_authenticate(actor, RadiusRequest { known: entry.as_ref(), ..request }).await?;
        let reply = match &outcome {
            Outcome::Decided(Decision::Accept { .. }) => {
                let who = entry.unwrap_or_else(|| DirectoryUser { name: user, ..DirectoryUser::default() });
                let reply = settings.authorization.reply_for(client, &who.groups, &who);
                for skipped in &reply.skipped {
                    tracing::warn!(user = %who.name, "reply attribute left out: {skipped}");
                }
                reply
            }
            _ => Reply::default(),
        };
        Ok(Login { outcome, reply })
    }

    /// What a login of `user` through each RADIUS client (or only `client`)
    /// would get, for `radotpctl user show`: no OTP is checked.
    pub fn preview_replies(&self, user: &DirectoryUser, client: Option<&str>) -> Result<Vec<ClientReply>, DomainError> {
        let settings = self.settings();
        if let Some(name) = client {
            if !settings.clients.iter().any(|(known, _)| known == name) {
                return Err(DomainError::Invalid(format!("no RADIUS client is called {name:?}")));
            }
        }
        Ok(settings
            .clients
            .iter()
            .filter(|(name, _)| client.is_none_or(|wanted| wanted == name))
            .map(|(name, access)| {
                let allowed = access
                    .allowed_groups
                    .as_ref()
                    .is_none_or(|allowed| allowed.iter().any(|group| in_groups(group, &user.groups)));
                let reply =
                    if allowed { settings.authorization.reply_for(name, &user.groups, user) } else { Reply::default() };
                ClientReply {
                    client: name.clone(),
                    allowed,
                    rules: reply.rules,
                    attributes: reply.lines,
                    skipped: reply.skipped,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::AuthConfig;
    use crate::directory::static_list::StaticDirectory;
    use crate::domain::testing::Fixture;
    use crate::model::reply::{Authorization, Dictionary, ReplyItem, Rule};
    use crate::secret::Secret;

    async fn fixture() -> Fixture {
        let users = ["alice", "bob"].map(|name| DirectoryUser {
            name: name.into(),
            groups: if name == "alice" { vec!["vpn-admins".into()] } else { vec!["staff".into()] },
            ..DirectoryUser::default()
        });
        let f = Fixture::with_tokens(AuthConfig::default()).await;
        let d = Dictionary::builtin();
        let rule = |name: &str, group: &str, line: &str| Rule {
            name: name.into(),
            groups: vec![group.into()],
            clients: vec![],
            reply: vec![ReplyItem::parse(line, &d).unwrap()],
        };
        let authorization = Authorization::new(vec![
            rule("admins", "vpn-admins", "Filter-Id = admins"),
            rule("staff", "staff", "Filter-Id = staff"),
        ])
        .unwrap();
        let mut settings = (*f.service.settings()).clone();
        settings.authorization = Arc::new(authorization);
        f.service.replace_settings(settings, Arc::new(StaticDirectory::new(users)));
        f
    }

    fn request<'a>(user: &'a str, password: &'a Secret) -> RadiusRequest<'a> {
        RadiusRequest { client: "vpn", mode: None, user, password, state: None, token_types: None, known: None }
    }

    #[tokio::test]
    async fn an_accept_carries_the_attributes_of_the_users_groups() {
        let f = fixture().await;
        let otp = Secret::from("755224");
        let login =
            f.service.radius_login(&Actor::Daemon, request("alice", &otp), &ClientAccess::default()).await.unwrap();
        assert!(matches!(login.outcome, Outcome::Decided(Decision::Accept { .. })));
        assert_eq!(login.reply.lines, ["Filter-Id = admins"]);
        assert_eq!(login.reply.rules, ["admins"]);
        let wrong = Secret::from("000000");
        let login =
            f.service.radius_login(&Actor::Daemon, request("bob", &wrong), &ClientAccess::default()).await.unwrap();
        assert!(login.reply.attributes.is_empty(), "a Reject carries no attributes");
    }

    #[tokio::test]
    async fn outside_allowed_groups_is_not_allowed_here_and_counts_no_failure() {
        let f = fixture().await;
        let access = ClientAccess { allowed_groups: Some(vec!["vpn-admins".into()]), allowed_token_types: None };
        let otp = Secret::from("755224");
        let login = f.service.radius_login(&Actor::Daemon, request("bob", &otp), &access).await.unwrap();
        assert_eq!(
            login.outcome,
            Outcome::Decided(Decision::Reject { reason: RejectReason::NotAllowedHere, serial: None })
        );
        let token = f.service.get_token("B1").await.unwrap();
        assert_eq!((token.fail_count, token.counter), (0, 0), "no failure counted, the OTP not consumed");
        let types = ClientAccess { allowed_groups: None, allowed_token_types: Some(vec!["app-totp".into()]) };
        let login = f.service.radius_login(&Actor::Daemon, request("alice", &otp), &types).await.unwrap();
        assert_eq!(
            login.outcome,
            Outcome::Decided(Decision::Reject { reason: RejectReason::NotAllowedHere, serial: None })
        );
        let login =
            f.service.radius_login(&Actor::Daemon, request("alice", &otp), &ClientAccess::default()).await.unwrap();
        assert!(matches!(login.outcome, Outcome::Decided(Decision::Accept { .. })), "the OTP was not consumed");
    }
}
