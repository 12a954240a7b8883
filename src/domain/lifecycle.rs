//! A token's life after import: finding it, giving it to a user and taking it
//! back, enabling, disabling, unlocking and deleting it.
//!
//! Every change is a compare-and-swap carrying its audit entry
//! (`token.assign`, `token.unassign`, ...), durable before the operation
//! returns: once an operator's command has answered, the change is in force
//! on every node sharing the store. Refusals are audited too.

use serde::{Deserialize, Serialize};

use super::{Change, DomainError, Refusal, Service};
use crate::model::audit::{Actor, AuditEvent, AuditWrite};
use crate::model::token::{Owner, Token, TokenState, TokenView};
use crate::store::{Commit, Swap, TokenQuery};

/// Filters of `token list`; all given filters must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenFilter {
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub state: Option<TokenState>,
    #[serde(default)]
    pub unassigned: bool,
    /// At most this many tokens (0: no limit).
    #[serde(default)]
    pub limit: usize,
    /// Only tokens whose serial sorts after this one (the next page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// Result of an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub token: TokenView,
    pub previous_owner: Option<String>,
}

fn event(operation: &str, user: Option<String>, serial: &str, details: serde_json::Value) -> AuditEvent {
    AuditEvent {
        operation: operation.into(),
        user,
        serial: Some(serial.into()),
        details,
        result: "ok".into(),
        reason: None,
    }
}

impl Service {
    pub async fn show(&self, actor: &Actor, serial: &str) -> Result<TokenView, DomainError> {
        let settings = self.settings();
        let result = self.get_token(serial).await.map(|t| self.view(&t, &settings));
        let user = result.as_ref().ok().and_then(|v| v.user.clone());
        self.audit_read(actor, "token.show", user, Some(serial.into()), serde_json::Value::Null, &result).await;
        result
    }

    pub async fn list(&self, actor: &Actor, filter: &TokenFilter) -> Result<Vec<TokenView>, DomainError> {
        let result = self.list_matching(filter).await;
        let details = serde_json::to_value(filter).unwrap_or_default();
        self.audit_read(actor, "token.list", None, None, details, &result).await;
        result
    }

    async fn list_matching(&self, filter: &TokenFilter) -> Result<Vec<TokenView>, DomainError> {
        let settings = self.settings();
        let query = TokenQuery {
            serial_contains: filter.serial.clone(),
            type_id: filter.r#type.clone(),
            owner: filter.user.clone(),
            state: filter.state,
            unassigned: filter.unassigned,
            after: filter.after.clone(),
            limit: filter.limit,
            now: self.now(),
            lockout_seconds: settings.auth.lockout_seconds,
        };
        let found: Vec<TokenView> = self.store.find(&query).await?.iter().map(|t| self.view(t, &settings)).collect();
        // An empty answer for a type nobody defined is most likely a typo: say so.
        if let Some(type_id) = filter.r#type.as_deref().filter(|t| found.is_empty() && settings.token_type(t).is_none())
        {
            let known: Vec<&str> = settings.token_types.iter().map(|t| t.id.as_str()).collect();
            return Err(DomainError::Invalid(format!(
                "there is no token type {type_id:?} (defined: {})",
                known.join(", ")
            )));
        }
        Ok(found)
    }

    /// The serials closest to `serial` (another case, or a character or two
    /// apart), at most five: the help shown when a serial
    /// does not exist. Runs only on that error path; reads the store in pages.
    pub async fn similar_serials(&self, serial: &str) -> Result<Vec<String>, DomainError> {
        const PAGE: usize = 1000;
        let wanted = serial.to_lowercase();
        let max_distance = if wanted.chars().count() >= 5 { 2 } else { 1 };
        let mut close: Vec<(usize, String)> = Vec::new();
        let mut query = TokenQuery { limit: PAGE, ..TokenQuery::default() };
        loop {
            let page = self.store.find(&query).await?;
            for token in &page {
                if let Some(distance) = edit_distance_within(&wanted, &token.serial.to_lowercase(), max_distance) {
                    close.push((distance, token.serial.clone()));
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => query.after = Some(last.serial.clone()),
                _ => break,
            }
        }
        close.sort();
        // Only the closest: "hw0001" suggests HW0001, not its neighbours too.
        let nearest = close.first().map(|(distance, _)| *distance);
        Ok(close.into_iter().take_while(|(d, _)| Some(*d) == nearest).take(5).map(|(_, serial)| serial).collect())
    }

    /// The tokens of `user` as operators see them (no audit entry of its own:
    /// part of `user show`).
    pub async fn tokens_of(&self, user: &str) -> Result<Vec<TokenView>, DomainError> {
        let settings = self.settings();
        Ok(self.store.tokens_of(user).await?.iter().map(|t| self.view(t, &settings)).collect())
    }

    /// Gives `serial` to `user`. A token owned by someone else is refused
    /// unless `reassign`; then the owner changes in one atomic step.
    pub async fn assign(
        &self,
        actor: &Actor,
        serial: &str,
        user: &str,
        reassign: bool,
    ) -> Result<Assignment, DomainError> {
        let details = serde_json::json!({ "reassign": reassign });
        let result = self.assign_to(actor, serial, user, reassign).await;
        if let Err(e) = &result {
            self.audit_refusal(actor, "token.assign", Some(user.into()), serial, details, e).await;
        }
        result
    }

    async fn assign_to(
        &self,
        actor: &Actor,
        serial: &str,
        user: &str,
        reassign: bool,
    ) -> Result<Assignment, DomainError> {
        let entry = self.directory_user(user).await?;
        let owner = Owner { name: entry.name.clone(), display_name: entry.display_name.clone(), dn: entry.dn.clone() };
        let mut details = serde_json::Map::new();
        details.insert("reassign".into(), reassign.into());
        self.move_owner(actor, "token.assign", Some(user), details, serial, |current| match current.owner_name() {
            Some(name) if name == owner.name => {
                Err(DomainError::refused(Refusal::AlreadyOwned, format!("token {serial} already belongs to {name}")))
            }
            Some(name) if !reassign => Err(DomainError::refused(
                Refusal::OwnedByOther,
                format!("token {serial} belongs to {name}; use --reassign to move it to {}", owner.name),
            )),
            _ => Ok(Some(owner.clone())),
        })
        .await
    }

    /// Takes a token from its owner. It stays active with its seed and
    /// counter; its fail count is cleared and it is ready for a new owner.
    pub async fn unassign(&self, actor: &Actor, serial: &str) -> Result<Assignment, DomainError> {
        let result = self
            .move_owner(actor, "token.unassign", None, serde_json::Map::new(), serial, |current| {
                match current.owner_name() {
                    None => Err(DomainError::refused(
                        Refusal::NotAssigned,
                        format!("token {serial} is not assigned to anyone"),
                    )),
                    Some(_) => Ok(None),
                }
            })
            .await;
        if let Err(e) = &result {
            self.audit_refusal(actor, "token.unassign", None, serial, serde_json::Value::Null, e).await;
        }
        result
    }

    /// Gives the token the owner `pick` chooses (none: unassigned) in one
    /// atomic step with its audit entry; the fail count and any lock go with
    /// the old owner.
    pub(crate) async fn move_owner(
        &self,
        actor: &Actor,
        operation: &str,
        asked_for: Option<&str>,
        details: serde_json::Map<String, serde_json::Value>,
        serial: &str,
        mut pick: impl FnMut(&Token) -> Result<Option<Owner>, DomainError>,
    ) -> Result<Assignment, DomainError> {
        let outcome = self
            .update(actor, serial, None, Commit::Durable, |current| match pick(current) {
                Err(e) => Change::Keep(Err(e)),
                Ok(owner) => {
                    let previous = current.owner_name().map(str::to_string);
                    let mut next = current.clone();
                    next.owner = owner;
                    next.clear_failures();
                    let mut details = details.clone();
                    details.insert("previous_owner".into(), previous.clone().into());
                    details.insert("new_owner".into(), next.owner_name().map(str::to_string).into());
                    let user = asked_for.map(str::to_string).or_else(|| previous.clone());
                    let audit = event(operation, user, serial, serde_json::Value::Object(details));
                    Change::Write(next, Some(audit), Ok(previous))
                }
            })
            .await?;
        match outcome {
            None => Err(DomainError::NoSuchToken(serial.to_string())),
            Some((Err(e), _)) => Err(e),
            Some((Ok(previous_owner), stored)) => {
                let token = stored.ok_or_else(|| DomainError::Internal("the change was not written".into()))?;
                Ok(Assignment { token: self.view(&token, &self.settings()), previous_owner })
            }
        }
    }

    /// Enables or disables a token.
    pub async fn set_disabled(&self, actor: &Actor, serial: &str, disabled: bool) -> Result<TokenView, DomainError> {
        let operation = if disabled { "token.disable" } else { "token.enable" };
        self.change(actor, operation, serial, |token| {
            token.disabled = disabled;
            if !disabled {
                token.clear_failures();
            }
            Ok(())
        })
        .await
    }

    /// Unlocks a token locked by failed OTPs.
    pub async fn unlock(&self, actor: &Actor, serial: &str) -> Result<TokenView, DomainError> {
        self.change(actor, "token.unlock", serial, |token| {
            token.clear_failures();
            Ok(())
        })
        .await
    }

    async fn change(
        &self,
        actor: &Actor,
        operation: &str,
        serial: &str,
        mut edit: impl FnMut(&mut Token) -> Result<(), DomainError>,
    ) -> Result<TokenView, DomainError> {
        let outcome = self
            .update(actor, serial, None, Commit::Durable, |current| {
                let mut next = current.clone();
                match edit(&mut next) {
                    Ok(()) => {
                        let user = next.owner_name().map(str::to_string);
                        let audit = event(operation, user, serial, serde_json::Value::Null);
                        Change::Write(next, Some(audit), Ok(()))
                    }
                    Err(e) => Change::Keep(Err(e)),
                }
            })
            .await;
        let result = match outcome {
            Err(e) => Err(e),
            Ok(None) => Err(DomainError::NoSuchToken(serial.to_string())),
            Ok(Some((Err(e), _))) => Err(e),
            Ok(Some((Ok(()), stored))) => match stored {
                Some(token) => Ok(self.view(&token, &self.settings())),
                None => Err(DomainError::Internal("the change was not written".into())),
            },
        };
        if let Err(e) = &result {
            self.audit_refusal(actor, operation, None, serial, serde_json::Value::Null, e).await;
        }
        result
    }

    /// Deletes a token for good (refused for types with `deletable: false`).
    pub async fn delete(&self, actor: &Actor, serial: &str) -> Result<TokenView, DomainError> {
        let result = self.delete_token(actor, serial).await;
        if let Err(e) = &result {
            self.audit_refusal(actor, "token.delete", None, serial, serde_json::Value::Null, e).await;
        }
        result
    }

    async fn delete_token(&self, actor: &Actor, serial: &str) -> Result<TokenView, DomainError> {
        let settings = self.settings();
        let mut token = self.get_token(serial).await?;
        for _ in 0..super::MAX_SWAP_ATTEMPTS {
            if let Some(ty) = settings.token_type(&token.type_id).filter(|t| !t.deletable) {
                return Err(DomainError::refused(
                    Refusal::DeleteNotAllowed,
                    format!("tokens of type {} ({}) may not be deleted; disable it instead", ty.label, ty.id),
                ));
            }
            let user = token.owner_name().map(str::to_string);
            let audit =
                AuditWrite::new(actor, self.now(), event("token.delete", user, serial, serde_json::Value::Null));
            match self.store.remove(serial, token.version, audit).await? {
                Swap::Swapped(removed) => return Ok(self.view(&removed, &settings)),
                Swap::Conflict(current) => token = current,
                Swap::NotFound => break,
            }
        }
        Err(DomainError::NoSuchToken(serial.to_string()))
    }

    /// Audits an operation that changed nothing (refused, not found, failed).
    pub(crate) async fn audit_refusal(
        &self,
        actor: &Actor,
        operation: &str,
        user: Option<String>,
        serial: &str,
        details: serde_json::Value,
        error: &DomainError,
    ) {
        let event = AuditEvent {
            operation: operation.into(),
            user,
            serial: Some(serial.into()),
            details,
            result: error.kind().as_str().into(),
            reason: Some(error.to_string()),
        };
        self.record(actor, event).await;
    }
}

/// The Levenshtein distance between `a` and `b` if it is at most `max`.
fn edit_distance_within(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous.last().copied().filter(|d| *d <= max)
}

#[cfg(test)]
mod suggestion_tests {
    use super::edit_distance_within;

    #[test]
    fn edit_distance_counts_changes_up_to_the_limit() {
        assert_eq!(edit_distance_within("hw1001", "hw1001", 2), Some(0));
        assert_eq!(edit_distance_within("hw1001", "hw1002", 2), Some(1));
        assert_eq!(edit_distance_within("hw101", "hw1001", 2), Some(1));
        assert_eq!(edit_distance_within("hw1001", "xx9999", 2), None);
        assert_eq!(edit_distance_within("a", "abcd", 2), None);
    }
}
