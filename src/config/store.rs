//! `store` and `node`: where tokens, the audit and challenges live (sled or PostgreSQL), and this node's name.

use std::path::PathBuf;

use serde::Deserialize;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// The data is on stable storage: it survives a power cut (`fdatasync`).
    #[default]
    Full,
    /// The data is in the operating system's hands: it survives a crash or
    /// kill of radotpd, but a power cut may lose the last moments of writes.
    Process,
}

/// Which engine keeps tokens, audit and challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded store: one node.
    #[default]
    Sled,
    /// PostgreSQL: several nodes on one database.
    Postgres,
}

/// `node`: names this radotpd among the nodes sharing one store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Default: the host name (with `store.kind: postgres`); none for a sled node.
    #[serde(default)]
    pub name: Option<String>,
}

impl NodeConfig {
    /// The configured name, or the host name.
    pub fn name_or_host(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "radotpd".into())
        })
    }
}

/// `store.postgres`: the shared database of several nodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// libpq-style URL; several hosts with `target_session_attrs=read-write`
    /// let the nodes find a new primary after a failover.
    pub url: String,
    /// A file holding the database password (mode 0600 or stricter).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Connections this node keeps open at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long connecting (or waiting for a free connection) may take.
    #[serde(default = "default_pg_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long one statement (or one group commit) may take.
    #[serde(default = "default_pg_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// CA certificates (PEM) the database's certificate must chain to. With
    /// it (or `sslmode=require` in the URL) connections use TLS, the server
    /// name checked against the certificate; without it the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl PostgresConfig {
    /// The password from `password_file`, if one is given.
    pub fn read_password(&self) -> Result<Option<Secret>, String> {
        let Some(path) = &self.password_file else { return Ok(None) };
        crate::crypto::check_private(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(Secret::from(text.trim_end_matches(['\n', '\r']))))
    }
}

pub(super) fn default_pool_size() -> usize {
    16
}
pub(super) fn default_pg_timeout_ms() -> u64 {
    2000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sled` (the default) or `postgres`.
    #[serde(default)]
    pub kind: StoreKind,
    /// The sled store's directory (`store.kind: sled`).
    #[serde(default)]
    pub path: PathBuf,
    pub key_file: PathBuf,
    /// The database (`store.kind: postgres`).
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
    /// Page cache of the embedded store, in MiB.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
    /// What must hold before an Accept leaves: `full` (its counter survives a
    /// power cut: fdatasync) or `process` (it survives a crash of radotpd).
    #[serde(default)]
    pub durability: Durability,
    /// How often the embedded store moves its journal into sled, in
    /// milliseconds (10 to 60000): a longer interval writes sled less often
    /// and leaves more journal to replay after a crash.
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_ms: u64,
}

pub(super) fn default_checkpoint_ms() -> u64 {
    2000
}
