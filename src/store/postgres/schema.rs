//! The PostgreSQL schema of radotp: created and migrated by radotpd itself.
//!
//! Every node runs [`migrate`] at start. It takes a transaction-scoped
//! advisory lock first, so two nodes starting together do not race, and it
//! refuses a database whose schema is newer than this build reads. DDL is
//! transactional in PostgreSQL: a migration is applied whole or not at all.

use tokio_postgres::{Client, GenericClient};

use super::db_error;
use crate::store::StoreError;

/// The schema version this build writes and reads.
pub const PG_SCHEMA_VERSION: i32 = 3;

/// The advisory lock key of migrations ("radotp" in ASCII).
const MIGRATION_LOCK: i64 = 0x7261_646f_7470;

/// Version 1: tokens with a version for compare-and-swap, one audit chain
/// per node, challenge states.
const V1: &str = r#"
CREATE TABLE radotp_schema (
    id      integer PRIMARY KEY CHECK (id = 1),
    version integer NOT NULL
);
CREATE TABLE radotp_tokens (
    serial  text COLLATE "C" PRIMARY KEY,
    type_id text NOT NULL,
    owner   text,
    version bigint NOT NULL,
    body    text NOT NULL
);
CREATE INDEX radotp_tokens_owner ON radotp_tokens (owner) WHERE owner IS NOT NULL;
CREATE TABLE radotp_audit (
    chain      text NOT NULL,
    seq        bigint NOT NULL,
    time       bigint NOT NULL,
    serial     text,
    user_name  text,
    prev_owner text,
    body       text NOT NULL,
    -- Orders the entries of several nodes within one second.
    written    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (chain, seq)
);
CREATE INDEX radotp_audit_time ON radotp_audit (time);
CREATE TABLE radotp_challenges (
    state         bytea PRIMARY KEY,
    expires_at_ms bigint NOT NULL,
    body          text NOT NULL
);
INSERT INTO radotp_schema (id, version) VALUES (1, 1);
"#;

/// Version 2: where each chain starts once audit retention pruned it.
const V2: &str = r#"
CREATE TABLE radotp_audit_checkpoints (
    chain text PRIMARY KEY,
    seq   bigint NOT NULL,
    hash  text NOT NULL
);
UPDATE radotp_schema SET version = 2 WHERE id = 1;
"#;

/// Version 3: small values about the store itself (the master key's check
/// value, the audit anchor).
const V3: &str = r#"
CREATE TABLE radotp_meta (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
UPDATE radotp_schema SET version = 3 WHERE id = 1;
"#;

/// The schema version of the database, or none when radotp has not created its tables.
pub async fn version(client: &impl GenericClient) -> Result<Option<i32>, StoreError> {
    let exists = client
        .query_one("SELECT to_regclass('radotp_schema') IS NOT NULL", &[])
        .await
        .map_err(db_error)?
        .get::<_, bool>(0);
    if !exists {
        return Ok(None);
    }
    let row = client.query_opt("SELECT version FROM radotp_schema WHERE id = 1", &[]).await.map_err(db_error)?;
    Ok(row.map(|r| r.get(0)))
}

/// Creates or migrates the schema (under the advisory lock).
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(db_error)?;
    match version(&tx).await? {
        None => tx.batch_execute(&[V1, V2, V3].concat()).await.map_err(db_error)?,
        Some(1) => tx.batch_execute(&[V2, V3].concat()).await.map_err(db_error)?,
        Some(2) => tx.batch_execute(V3).await.map_err(db_error)?,
        Some(found) => check(found)?,
    }
    tx.commit().await.map_err(db_error)
}

/// Refuses a schema newer than this build (an older one would be migrated).
pub fn check(found: i32) -> Result<(), StoreError> {
    if !(1..=PG_SCHEMA_VERSION).contains(&found) {
        return Err(StoreError::Schema { found: found as u32, supported: PG_SCHEMA_VERSION as u32 });
    }
    Ok(())
}
