//! Audit retention: removing what `audit.retention_days` and
//! `audit.max_entries` no longer keep, with an audit entry of its own.

use super::{DomainError, Service};
use crate::model::audit::{Actor, AuditEvent, Pruned};

impl Service {
    /// Applies the configured retention now (the daemon does every 10 seconds).
    /// The removal is recorded as `audit.prune` with how many entries went
    /// and the new checkpoint.
    pub async fn prune_audit(&self, actor: &Actor) -> Result<Pruned, DomainError> {
        let rule = self.settings().retention;
        let result = self.store.prune_audit(rule, self.now()).await.map_err(DomainError::from);
        match &result {
            Ok(pruned) if pruned.entries > 0 => {
                let details = serde_json::json!({ "entries": pruned.entries, "through": pruned.through });
                let event = AuditEvent {
                    operation: "audit.prune".into(),
                    details,
                    result: "ok".into(),
                    ..AuditEvent::default()
                };
                self.record(actor, event).await;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "audit retention could not run"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::testing::Fixture;
    use crate::model::audit::{Actor, AuditQuery};

    #[tokio::test]
    async fn pruning_keeps_the_newest_entries_and_records_itself() {
        // The fixture keeps 1000 entries.
        let f = Fixture::with_tokens(crate::config::AuthConfig::default()).await;
        for _ in 0..1200 {
            let event = crate::model::audit::AuditEvent { operation: "test".into(), ..Default::default() };
            f.service.record(&Actor::Daemon, event).await;
        }
        let pruned = f.service.prune_audit(&Actor::Daemon).await.unwrap();
        assert!(pruned.entries >= 200, "{pruned:?}");
        let kept = f.service.audit(&Actor::Daemon, &AuditQuery { limit: 0, ..AuditQuery::default() }).await.unwrap();
        assert_eq!(kept[0].operation, "audit.prune", "the removal records itself, newest");
        assert!(kept.len() <= 1001);
        assert!(f.service.audit_verify(&Actor::Daemon).await.unwrap().ok);
        // The reads above added entries: the next pass takes as many back.
        let again = f.service.prune_audit(&Actor::Daemon).await.unwrap();
        assert!(again.entries <= 3, "{again:?}");
    }
}
