//! The shared engine: PostgreSQL, for several radotpd nodes on one database.
//!
//! Nothing is cached on the node: every read asks the database, so an
//! operator's change made through any node is in force on every node once
//! its command returns. Writes go through the node's [`writer::Writer`]
//! (group commit, one conditional statement per token change, the audit
//! entry committed with its change). Each node appends to its own audit
//! chain (`radotp_audit.chain` = the node's name); reads merge the chains in
//! time order. Challenge states live in a table, so a NAS that fails over
//! between the two steps of challenge mode still succeeds, and a State is
//! taken once (`DELETE ... RETURNING`) whichever node asks.
//!
//! Seeds arrive sealed by [`crate::crypto`]; PostgreSQL never sees one in clear.

mod schema;
mod writer;

use std::collections::HashSet;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

pub use self::schema::PG_SCHEMA_VERSION;
use self::writer::{Change, Writer};
use super::{Census, Challenge, Commit, ExportSink, Store, StoreError, StoreHealth, Swap, TokenQuery};
use crate::model::audit::{AuditEntry, AuditQuery, AuditWrite, ChainReport, ChainWalk, Checkpoint, Pruned, Retention};
use crate::model::token::Token;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// A libpq-style URL; several hosts and `target_session_attrs=read-write` work.
    pub url: String,
    /// Overrides a password in the URL.
    pub password: Option<String>,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    /// CA certificates (DER) for TLS; see [`tls`].
    pub ca_certs: Option<Vec<Vec<u8>>>,
}

pub struct PostgresStore {
    pool: Pool,
    writer: mpsc::Sender<Change>,
    statement_timeout: Duration,
}

/// A database error as a store error: unique violations aside, the database
/// could not do it now.
pub(crate) fn db_error(e: tokio_postgres::Error) -> StoreError {
    let mut text = e.to_string();
    if let Some(db) = e.as_db_error() {
        text = format!("{text}: {}", db.message());
    } else if let Some(source) = std::error::Error::source(&e) {
        text = format!("{text}: {source}");
    }
    StoreError::Unavailable(text)
}

/// A pool error (no connection could be had) as a store error, with its cause.
pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_error(e),
        deadpool_postgres::PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection within store.postgres.connect_timeout_ms".into())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

pub(crate) fn i64_of(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{value} does not fit the database")))
}

pub(crate) fn token_body(token: &Token) -> Result<String, StoreError> {
    serde_json::to_string(token).map_err(|e| StoreError::Corrupt(format!("cannot encode token {}: {e}", token.serial)))
}

/// A token from a row of (version, body).
pub(crate) fn token_from_row(row: &Row) -> Result<Token, StoreError> {
    let version: i64 = row.get(0);
    let body: &str = row.get(1);
    let mut token: Token = serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("stored token: {e}")))?;
    token.version = version as u64;
    Ok(token)
}

fn entry_of(body: &str) -> Result<AuditEntry, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("audit entry: {e}")))
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

impl PostgresStore {
    /// Connects, creates or migrates the schema, and starts the node's
    /// writer; audit entries name `node`.
    pub async fn open(settings: &PgSettings, node: Option<String>) -> Result<Self, StoreError> {
        let pool = pool(settings)?;
        let mut client = pool.get().await.map_err(pool_error)?;
        schema::migrate(&mut client).await?;
        drop(client);
        let writer = Writer::spawn(pool.clone(), node, settings.statement_timeout);
        Ok(PostgresStore { pool, writer, statement_timeout: settings.statement_timeout })
    }

    /// Connects to look (`--check-config`): the schema is neither created
    /// nor migrated. None when radotp has not created its tables yet.
    pub async fn open_to_check(settings: &PgSettings) -> Result<Option<Self>, StoreError> {
        let pool = pool(settings)?;
        let client = pool.get().await.map_err(pool_error)?;
        let Some(found) = schema::version(&**client).await? else { return Ok(None) };
        schema::check(found)?;
        drop(client);
        let writer = Writer::spawn(pool.clone(), None, settings.statement_timeout);
        Ok(Some(PostgresStore { pool, writer, statement_timeout: settings.statement_timeout }))
    }

    /// A few stored tokens, to check that the key opens their seeds.
    pub async fn sample(&self, limit: usize) -> Result<Vec<Token>, StoreError> {
        self.find(&TokenQuery { limit, ..TokenQuery::default() }).await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs a read with the statement timeout (a hung connection never hangs a caller).
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let work = async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            client.query(&statement, params).await.map_err(db_error)
        };
        tokio::time::timeout(self.statement_timeout, work)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the database did not answer in time".into())))
    }

    async fn change<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Change,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?;
        answer.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the store's writer has stopped".into())))
    }

    /// Hands the entries of one audit chain to `visit` in order, a page at a
    /// time, until it answers false.
    async fn walk_chain(
        &self,
        chain: &str,
        visit: &mut (dyn FnMut(u64, &str) -> Result<bool, StoreError> + Send),
    ) -> Result<(), StoreError> {
        let mut after = 0i64;
        loop {
            let rows = self
                .query(
                    "SELECT seq, body FROM radotp_audit WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT 10000",
                    &[&chain, &after],
                )
                .await?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in &rows {
                after = row.get(0);
                if !visit(after as u64, row.get(1))? {
                    return Ok(());
                }
            }
        }
    }

    fn tokens(rows: Vec<Row>) -> Result<Vec<Token>, StoreError> {
        rows.iter().map(token_from_row).collect()
    }
}

/// The TLS connector, when connections use TLS: `ca_certs` given (then
/// `sslmode=require` unless the URL says otherwise) or `sslmode=require` in
/// the URL (then the system's roots). rustls checks the certificate and
/// that it names the host connected to (libpq's verify-full); there is no
/// fallback to a plain connection once TLS is asked for.
fn tls(
    settings: &PgSettings,
    config: &mut tokio_postgres::Config,
) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, StoreError> {
    use tokio_postgres::config::SslMode;
    let bad = |e: String| StoreError::Unavailable(format!("store.postgres TLS: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    match (&settings.ca_certs, config.get_ssl_mode()) {
        (Some(certs), mode) => {
            if mode != SslMode::Require {
                config.ssl_mode(SslMode::Require);
            }
            for der in certs {
                roots.add(&rustls::Certificate(der.clone())).map_err(|e| bad(e.to_string()))?;
            }
        }
        (None, SslMode::Require) => {
            let system = rustls_native_certs::load_native_certs().map_err(|e| bad(format!("system roots: {e}")))?;
            for cert in system {
                // A root the system holds but rustls cannot read is left out.
                let _ = roots.add(&rustls::Certificate(cert.0));
            }
        }
        (None, _) => return Ok(None),
    }
    let client =
        rustls::ClientConfig::builder().with_safe_defaults().with_root_certificates(roots).with_no_client_auth();
    Ok(Some(tokio_postgres_rustls::MakeRustlsConnect::new(client)))
}

fn pool(settings: &PgSettings) -> Result<Pool, StoreError> {
    let mut config: tokio_postgres::Config =
        settings.url.parse().map_err(|e| StoreError::Unavailable(format!("store.postgres.url: {e}")))?;
    if let Some(password) = &settings.password {
        config.password(password.as_bytes());
    }
    config.connect_timeout(settings.connect_timeout);
    config.application_name("radotpd");
    config.options(format!("-c statement_timeout={}", settings.statement_timeout.as_millis()));
    let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = match tls(settings, &mut config)? {
        Some(connector) => Manager::from_config(config, connector, recycling),
        None => Manager::from_config(config, NoTls, recycling),
    };
    Pool::builder(manager)
        .max_size(settings.pool_size.max(2))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.connect_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.statement_timeout))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot make the connection pool: {e}")))
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn get(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let rows = self.query("SELECT version, body FROM radotp_tokens WHERE serial = $1", &[&serial]).await?;
        rows.first().map(token_from_row).transpose()
    }

    async fn tokens_of(&self, user: &str) -> Result<Vec<Token>, StoreError> {
        let rows =
            self.query("SELECT version, body FROM radotp_tokens WHERE owner = $1 ORDER BY serial", &[&user]).await?;
        Self::tokens(rows)
    }

    async fn find(&self, query: &TokenQuery) -> Result<Vec<Token>, StoreError> {
        let mut params: Params = Vec::new();
        let mut conditions = vec!["TRUE".to_string()];
        let mut add = |params: &mut Params, condition: &str, value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            conditions.push(condition.replace('$', &format!("${}", params.len())));
        };
        if let Some(part) = &query.serial_contains {
            add(&mut params, "strpos(serial, $) > 0", Box::new(part.clone()));
        }
        if let Some(type_id) = &query.type_id {
            add(&mut params, "type_id = $", Box::new(type_id.clone()));
        }
        if let Some(owner) = &query.owner {
            add(&mut params, "owner = $", Box::new(owner.clone()));
        }
        if let Some(after) = &query.after {
            add(&mut params, "serial > $", Box::new(after.clone()));
        }
        if query.unassigned {
            conditions.push("owner IS NULL".into());
        }
        // The state depends on `now`: filtered here, and then the limit too.
        let sql_limit = match (query.state, query.limit) {
            (None, n) if n > 0 => format!(" LIMIT {n}"),
            _ => String::new(),
        };
        let sql = format!(
            "SELECT version, body FROM radotp_tokens WHERE {} ORDER BY serial{sql_limit}",
            conditions.join(" AND ")
        );
        let rows = self.query(&sql, &refs(&params)).await?;
        let limit = if query.limit == 0 { usize::MAX } else { query.limit };
        let mut found = Vec::new();
        for row in &rows {
            let token = token_from_row(row)?;
            if query.matches(&token) {
                found.push(token);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn census(&self, now: u64, lockout_seconds: u64) -> Result<Census, StoreError> {
        let mut census = Census::empty();
        // In pages, so that no single statement outlasts the statement timeout.
        let mut after = String::new();
        loop {
            let rows = self
                .query(
                    "SELECT version, body, serial FROM radotp_tokens WHERE serial > $1 ORDER BY serial LIMIT 5000",
                    &[&after],
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.get(2);
            for row in &rows {
                census.count(&token_from_row(row)?, now, lockout_seconds);
            }
        }
        Ok(census)
    }

    async fn existing(&self, serials: &[String]) -> Result<HashSet<String>, StoreError> {
        let rows = self.query("SELECT serial FROM radotp_tokens WHERE serial = ANY($1)", &[&serials]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn insert(&self, tokens: Vec<Token>, audit: Vec<AuditWrite>) -> Result<(), StoreError> {
        self.change(|reply| Change::Insert { tokens, audit, reply }).await
    }

    async fn swap(&self, token: &Token, audit: Option<AuditWrite>, _commit: Commit) -> Result<Swap, StoreError> {
        let token = Box::new(token.clone());
        self.change(|reply| Change::Swap { token, audit, reply }).await
    }

    async fn remove(&self, serial: &str, expected_version: u64, audit: AuditWrite) -> Result<Swap, StoreError> {
        let serial = serial.to_string();
        self.change(|reply| Change::Remove { serial, expected_version, audit, reply }).await
    }

    async fn record(&self, audit: Vec<AuditWrite>, _commit: Commit) -> Result<(), StoreError> {
        if audit.is_empty() {
            return Ok(());
        }
        self.change(|reply| Change::Record { audit, reply }).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut params: Params = Vec::new();
        let mut conditions = vec!["TRUE".to_string()];
        let mut add = |params: &mut Params, condition: &str, value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            conditions.push(condition.replace('$', &format!("${}", params.len())));
        };
        if let Some(serial) = &query.serial {
            add(&mut params, "serial = $", Box::new(serial.clone()));
        }
        if let Some(user) = &query.user {
            add(&mut params, "(user_name = $ OR prev_owner = $)", Box::new(user.clone()));
        }
        if let Some(since) = query.since {
            add(&mut params, "time >= $", Box::new(i64_of(since)?));
        }
        if let Some(until) = query.until {
            add(&mut params, "time < $", Box::new(i64_of(until)?));
        }
        if let Some(node) = &query.node {
            add(&mut params, "chain = $", Box::new(node.clone()));
        }
        let limit = if query.limit == 0 { String::new() } else { format!(" LIMIT {}", query.limit) };
        let sql = format!(
            "SELECT body FROM radotp_audit WHERE {} ORDER BY time DESC, written DESC, seq DESC{limit}",
            conditions.join(" AND ")
        );
        let rows = self.query(&sql, &refs(&params)).await?;
        rows.iter().map(|r| entry_of(r.get(0))).collect()
    }

    async fn verify_audit(&self) -> Result<Vec<ChainReport>, StoreError> {
        let chains = self.query("SELECT DISTINCT chain FROM radotp_audit ORDER BY chain", &[]).await?;
        let mut reports = Vec::new();
        for chain in chains.iter().map(|r| r.get::<_, String>(0)) {
            let checkpoint = self
                .query("SELECT seq, hash FROM radotp_audit_checkpoints WHERE chain = $1", &[&chain])
                .await?
                .first()
                .map(|r| Checkpoint { seq: r.get::<_, i64>(0) as u64, hash: r.get(1) });
            let mut walk = ChainWalk::after(checkpoint.as_ref());
            self.walk_chain(&chain, &mut |seq, body| Ok(walk.step(seq, body.as_bytes()))).await?;
            reports.push(walk.report);
        }
        if reports.is_empty() {
            reports.push(ChainWalk::default().report);
        }
        Ok(reports)
    }

    async fn put_challenge(&self, challenge: Challenge, now_ms: u64, max_pending: usize) -> Result<bool, StoreError> {
        let count = |rows: Vec<Row>| rows.first().map(|r| r.get::<_, i64>(0) as usize).unwrap_or(0);
        if count(self.query("SELECT count(*) FROM radotp_challenges", &[]).await?) >= max_pending {
            self.query("DELETE FROM radotp_challenges WHERE expires_at_ms <= $1 RETURNING 1", &[&i64_of(now_ms)?])
                .await?;
            if count(self.query("SELECT count(*) FROM radotp_challenges", &[]).await?) >= max_pending {
                return Ok(false);
            }
        }
        let body = serde_json::to_string(&challenge).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.query(
            "INSERT INTO radotp_challenges (state, expires_at_ms, body) VALUES ($1, $2, $3) \
             ON CONFLICT (state) DO UPDATE SET expires_at_ms = EXCLUDED.expires_at_ms, body = EXCLUDED.body RETURNING 1",
            &[&challenge.state, &i64_of(challenge.expires_at_ms)?, &body],
        )
        .await?;
        Ok(true)
    }

    async fn take_challenge(&self, state: &[u8]) -> Result<Option<Challenge>, StoreError> {
        let rows = self.query("DELETE FROM radotp_challenges WHERE state = $1 RETURNING body", &[&state]).await?;
        rows.first()
            .map(|r| serde_json::from_str(r.get(0)).map_err(|e| StoreError::Corrupt(format!("stored challenge: {e}"))))
            .transpose()
    }

    async fn pending_challenges(&self) -> Result<u64, StoreError> {
        let rows = self.query("SELECT count(*) FROM radotp_challenges", &[]).await?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let rows = self
            .query("SELECT NOT EXISTS (SELECT 1 FROM radotp_tokens) AND NOT EXISTS (SELECT 1 FROM radotp_audit)", &[])
            .await?;
        Ok(rows.first().is_some_and(|r| r.get(0)))
    }

    async fn export(&self, sink: &mut dyn ExportSink) -> Result<(), StoreError> {
        let mut after = String::new();
        loop {
            let rows = self
                .query(
                    "SELECT version, body, serial FROM radotp_tokens WHERE serial > $1 \
                     ORDER BY serial LIMIT 5000",
                    &[&after],
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.get(2);
            for row in &rows {
                sink.token(token_from_row(row)?)?;
            }
        }
        let chains = self.query("SELECT DISTINCT chain FROM radotp_audit ORDER BY chain", &[]).await?;
        for chain in chains.iter().map(|r| r.get::<_, String>(0)) {
            self.walk_chain(&chain, &mut |seq, body| sink.audit(seq, body.to_string()).map(|()| true)).await?;
        }
        Ok(())
    }

    async fn restore_audit(&self, entries: Vec<(u64, String)>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.change(|reply| Change::Restore { entries, reply }).await
    }

    /// Retention per node: each chain keeps at most `max_entries` (and
    /// none older than the age), never its newest entry. Each chain's cut
    /// and its new checkpoint are one statement, so a crash leaves either.
    async fn prune_audit(&self, rule: Retention, now: u64) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        if rule.is_unbounded() {
            return Ok(pruned);
        }
        let chains = self.query("SELECT chain, min(seq), max(seq) FROM radotp_audit GROUP BY chain", &[]).await?;
        for row in &chains {
            let (chain, first, last): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
            let mut cut = first - 1;
            if let Some(max) = rule.max_entries {
                cut = cut.max(last - i64_of(max)?);
            }
            if let Some(age) = rule.max_age_seconds {
                let cutoff = i64_of(now.saturating_sub(age))?;
                let kept = self
                    .query("SELECT min(seq) FROM radotp_audit WHERE chain = $1 AND time >= $2", &[&chain, &cutoff])
                    .await?;
                let first_kept: Option<i64> = kept.first().and_then(|r| r.get(0));
                cut = cut.max(first_kept.map_or(last, |s| s - 1));
            }
            let cut = cut.min(last - 1);
            if cut < first {
                continue;
            }
            self.query(
                "WITH gone AS (DELETE FROM radotp_audit WHERE chain = $1 AND seq <= $2 RETURNING seq, body) \
                 INSERT INTO radotp_audit_checkpoints (chain, seq, hash) \
                 SELECT $1, seq, body::json->>'hash' FROM gone ORDER BY seq DESC LIMIT 1 \
                 ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash RETURNING 1",
                &[&chain, &cut],
            )
            .await?;
            pruned.entries += (cut - first + 1) as u64;
            pruned.through = Some(pruned.through.map_or(cut as u64, |t: u64| t.max(cut as u64)));
        }
        Ok(pruned)
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.query("SELECT value FROM radotp_meta WHERE name = $1", &[&name]).await?;
        Ok(rows.first().map(|r| r.get::<_, Vec<u8>>(0)))
    }

    /// Committed on return; every write acknowledged before is committed too
    /// (the writer answers only after its commit).
    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.query(
            "INSERT INTO radotp_meta (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value RETURNING 1",
            &[&name, &value],
        )
        .await?;
        Ok(())
    }

    async fn health(&self) -> StoreHealth {
        let failing = match self.query("SELECT 1", &[]).await {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        StoreHealth { engine: "postgres".into(), bytes: 0, failing, disk: None }
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every acknowledged write is committed already.
        Ok(())
    }
}
