//! What operators read: the daemon's status, the token types, and the audit
//! log (filtered reading and chain verification).

use serde::{Deserialize, Serialize};

use super::{DomainError, Service};
use crate::metrics::RadiusCounters;
use crate::model::audit::{Actor, AuditEntry, AuditQuery, ChainReport};
use crate::model::token::TokenType;
use crate::store::{Census, StoreError, StoreHealth};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub uptime_seconds: u64,
    pub tokens_total: u64,
    pub tokens_by_state: std::collections::BTreeMap<String, u64>,
    pub tokens_unassigned: u64,
    pub store_bytes: u64,
    pub radius: RadiusCounters,
    /// The store engine and whether it can write now.
    #[serde(default)]
    pub store: StoreHealth,
}

impl Service {
    pub async fn status(&self, actor: &Actor) -> Result<StatusReport, DomainError> {
        let result = self.status_report().await;
        self.audit_read(actor, "status", None, None, serde_json::Value::Null, &result).await;
        result
    }

    async fn status_report(&self) -> Result<StatusReport, DomainError> {
        let settings = self.settings();
        let mut health = self.store.health().await;
        // A store that cannot be reached is reported as such, not as a failed status.
        let census = match self.store.census(self.now(), settings.auth.lockout_seconds).await {
            Ok(census) => census,
            Err(StoreError::Unavailable(reason)) => {
                health.failing.get_or_insert(reason);
                Census::empty()
            }
            Err(e) => return Err(e.into()),
        };
        let radius = self.metrics.snapshot();
        Ok(StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.started.elapsed().as_secs(),
            tokens_total: census.total,
            tokens_by_state: census.by_state,
            tokens_unassigned: census.unassigned,
            store_bytes: health.bytes,
            radius,
            store: health,
        })
    }

    pub async fn token_types(&self, actor: &Actor) -> Vec<TokenType> {
        let types = self.settings().token_types.clone();
        self.audit_read::<()>(actor, "types", None, None, serde_json::Value::Null, &Ok(())).await;
        types
    }

    pub async fn audit(&self, actor: &Actor, query: &AuditQuery) -> Result<Vec<AuditEntry>, DomainError> {
        let result = self.store.audit(query).await.map_err(DomainError::from);
        let details = serde_json::to_value(query).unwrap_or_default();
        self.audit_read(actor, "audit.list", None, None, details, &result).await;
        result
    }

    /// Verifies every audit chain; the report of the first broken one, or
    /// of all of them together.
    pub async fn audit_verify(&self, actor: &Actor) -> Result<ChainReport, DomainError> {
        let result = self.store.verify_audit().await.map_err(DomainError::from).map(|reports| {
            let entries = reports.iter().map(|r| r.entries).sum();
            let pruned_through = reports.iter().filter_map(|r| r.pruned_through).max();
            match reports.into_iter().find(|r| !r.ok) {
                Some(broken) => ChainReport { entries, ..broken },
                None => ChainReport { entries, ok: true, first_broken: None, problem: None, pruned_through },
            }
        });
        // The chain holds together: does it still reach its anchored head?
        let result = match result {
            Ok(report) if report.ok => self.check_against_anchor(report).await,
            other => other,
        };
        self.audit_read(actor, "audit.verify", None, None, serde_json::Value::Null, &result).await;
        result
    }

    /// `report` (of a chain that verifies) turned into a failure when the
    /// log does not reach its anchor; otherwise the head is anchored anew.
    async fn check_against_anchor(&self, report: ChainReport) -> Result<ChainReport, DomainError> {
        use super::audit_anchor::{AnchorCheck, check_anchor};
        match check_anchor(self.store.as_ref(), &self.cipher).await? {
            AnchorCheck::Broken { seq, problem } => {
                Ok(ChainReport { ok: false, first_broken: seq, problem: Some(problem), ..report })
            }
            AnchorCheck::Reached | AnchorCheck::NotAnchored => {
                self.anchor_audit().await?;
                Ok(report)
            }
        }
    }
}
