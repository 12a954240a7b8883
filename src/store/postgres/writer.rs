//! The node's one writer: group commit and the node's audit chain.
//!
//! Every change (a token swap or removal, an insert, audit entries) goes
//! through one task per node. It takes whatever changes are queued, runs
//! them in one transaction (each token change is a single conditional
//! `UPDATE ... WHERE serial = $1 AND version = $2`, so exactly one of any
//! number of concurrent changes of a token wins, on whichever node), seals
//! the audit entries of the changes that won onto this node's chain, and
//! commits once: PostgreSQL's commit carries the whole group, and a change
//! is never acknowledged before its audit entry is committed with it.
//!
//! Only this task appends to the node's chain, so the chain needs no lock in
//! the database. When a transaction fails, the head is read back from the
//! database before the next one (a failed COMMIT may have committed).
//! Token rows are locked in serial order in every group, so groups of two
//! nodes never deadlock.

use deadpool_postgres::Pool;
use deadpool_postgres::Transaction;
use tokio::sync::{mpsc, oneshot};

use super::{db_error, i64_of, token_body, token_from_row};
use crate::model::audit::{AuditEntry, AuditWrite, Chain, split_chains};
use crate::model::token::Token;
use crate::store::{StoreError, Swap};

/// Changes taken into one transaction at most.
const GROUP_LIMIT: usize = 256;
/// How long an import or a restore may take in all.
const BULK_LIMIT: std::time::Duration = std::time::Duration::from_secs(900);

pub enum Change {
    Swap {
        token: Box<Token>,
        audit: Option<AuditWrite>,
        reply: oneshot::Sender<Result<Swap, StoreError>>,
    },
    Remove {
        serial: String,
        expected_version: u64,
        audit: AuditWrite,
        reply: oneshot::Sender<Result<Swap, StoreError>>,
    },
    Record {
        audit: Vec<AuditWrite>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Insert {
        tokens: Vec<Token>,
        audit: Vec<AuditWrite>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Restore {
        entries: Vec<(u64, String)>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl Change {
    /// The serial whose row the change locks (none: audit only).
    fn serial(&self) -> Option<&str> {
        match self {
            Change::Swap { token, .. } => Some(&token.serial),
            Change::Remove { serial, .. } => Some(serial),
            _ => None,
        }
    }

    /// Inserts and restores run alone: their errors concern the whole batch.
    fn runs_alone(&self) -> bool {
        matches!(self, Change::Insert { .. } | Change::Restore { .. })
    }

    fn fail(self, error: StoreError) {
        match self {
            Change::Swap { reply, .. } | Change::Remove { reply, .. } => drop(reply.send(Err(error))),
            Change::Record { reply, .. } | Change::Insert { reply, .. } | Change::Restore { reply, .. } => {
                drop(reply.send(Err(error)))
            }
        }
    }
}

/// What a change came to inside the transaction, answered after the commit.
/// Short-lived, one per change of a group: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Swap(Swap),
    Done,
}

impl Change {
    fn answer(self, outcome: Outcome) {
        match (self, outcome) {
            (Change::Swap { reply, .. } | Change::Remove { reply, .. }, Outcome::Swap(swap)) => {
                drop(reply.send(Ok(swap)))
            }
            (Change::Record { reply, .. } | Change::Insert { reply, .. } | Change::Restore { reply, .. }, _) => {
                drop(reply.send(Ok(())))
            }
            (change, Outcome::Done) => change.fail(StoreError::Corrupt("a token change came to no outcome".into())),
        }
    }
}

pub struct Writer {
    pool: Pool,
    /// The chain key of this node in `radotp_audit.chain`.
    key: String,
    chain: Chain,
    /// The head must be read from the database before the next write.
    stale: bool,
    statement_timeout: std::time::Duration,
}

impl Writer {
    pub fn spawn(pool: Pool, node: Option<String>, statement_timeout: std::time::Duration) -> mpsc::Sender<Change> {
        let (tx, rx) = mpsc::channel(4096);
        let key = node.clone().unwrap_or_default();
        let writer = Writer { pool, key, chain: Chain { node, ..Chain::default() }, stale: true, statement_timeout };
        tokio::spawn(writer.run(rx));
        tx
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Change>) {
        while let Some(first) = rx.recv().await {
            let mut group = vec![first];
            while group.len() < GROUP_LIMIT {
                match rx.try_recv() {
                    Ok(change) => group.push(change),
                    Err(_) => break,
                }
            }
            let (alone, mut together): (Vec<Change>, Vec<Change>) = group.into_iter().partition(Change::runs_alone);
            // Rows locked in serial order; audit-only changes last.
            together.sort_by(|a, b| match (a.serial(), b.serial()) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
            if !together.is_empty() {
                self.commit_group(together).await;
            }
            for change in alone {
                self.commit_group(vec![change]).await;
            }
        }
    }

    /// Commits `group` in one transaction; when that fails and the group has
    /// several changes, each is tried alone so that one bad change fails
    /// only itself.
    async fn commit_group(&mut self, group: Vec<Change>) {
        let mut chain = self.chain.clone();
        // An import or a restore may take many statements, each bounded by the statement timeout.
        let limit = if group.iter().any(Change::runs_alone) { BULK_LIMIT } else { self.statement_timeout * 2 };
        let attempt = tokio::time::timeout(limit, self.transact(&group, &mut chain)).await;
        let result =
            attempt.unwrap_or_else(|_| Err(StoreError::Unavailable("the database did not answer in time".into())));
        match result {
            Ok(outcomes) => {
                self.chain = chain;
                for (change, outcome) in group.into_iter().zip(outcomes) {
                    change.answer(outcome);
                }
            }
            Err(error) => {
                self.stale = true;
                if group.len() == 1 || matches!(error, StoreError::Unavailable(_)) {
                    group.into_iter().for_each(|change| change.fail(error.clone()));
                } else {
                    for change in group {
                        Box::pin(self.commit_group(vec![change])).await;
                    }
                }
            }
        }
    }

    /// Runs the group's statements and commits; the changes are answered by
    /// the caller once this returns Ok. Moves `chain` along the entries written.
    async fn transact(&mut self, group: &[Change], chain: &mut Chain) -> Result<Vec<Outcome>, StoreError> {
        let mut client = self.pool.get().await.map_err(super::pool_error)?;
        if self.stale {
            *chain = read_head(&**client, &self.key, chain.node.clone()).await?;
        }
        let tx = client.transaction().await.map_err(db_error)?;
        let mut rows = AuditRows::default();
        // The token swaps of the group (the Accepts and fail counts) take
        // three statements together, however many they are.
        let swaps: Vec<&Token> = group
            .iter()
            .filter_map(|change| match change {
                Change::Swap { token, .. } => Some(&**token),
                _ => None,
            })
            .collect();
        let mut swapped = swap_all(&tx, &swaps).await?.into_iter();
        let mut outcomes = Vec::with_capacity(group.len());
        for change in group {
            let outcome = match change {
                Change::Swap { audit, .. } => {
                    let swap = swapped.next().ok_or_else(|| StoreError::Corrupt("a swap went missing".into()))?;
                    if let (Swap::Swapped(_), Some(write)) = (&swap, audit) {
                        rows.seal(chain, &self.key, write.clone())?;
                    }
                    Outcome::Swap(swap)
                }
                other => apply(&tx, other, chain, &self.key, &mut rows).await?,
            };
            outcomes.push(outcome);
        }
        rows.insert(&tx).await?;
        tx.commit().await.map_err(db_error)?;
        self.stale = false;
        Ok(outcomes)
    }
}

/// Applies one change inside `tx`.
async fn apply(
    tx: &Transaction<'_>,
    change: &Change,
    chain: &mut Chain,
    key: &str,
    rows: &mut AuditRows,
) -> Result<Outcome, StoreError> {
    match change {
        Change::Swap { token, audit, .. } => {
            let swap = swap_all(tx, &[&**token]).await?.pop().unwrap_or(Swap::NotFound);
            if let (Swap::Swapped(_), Some(write)) = (&swap, audit) {
                rows.seal(chain, key, write.clone())?;
            }
            Ok(Outcome::Swap(swap))
        }
        Change::Remove { serial, expected_version, audit, .. } => {
            let removed = tx
                .query_opt(
                    "DELETE FROM radotp_tokens WHERE serial = $1 AND version = $2 RETURNING version, body",
                    &[serial, &i64_of(*expected_version)?],
                )
                .await
                .map_err(db_error)?;
            let swap = match removed {
                Some(row) => {
                    rows.seal(chain, key, audit.clone())?;
                    Swap::Swapped(token_from_row(&row)?)
                }
                None => current(tx, serial).await?,
            };
            Ok(Outcome::Swap(swap))
        }
        Change::Record { audit, .. } => {
            for write in audit {
                rows.seal(chain, key, write.clone())?;
            }
            Ok(Outcome::Done)
        }
        Change::Insert { tokens, audit, .. } => {
            insert_tokens(tx, tokens).await?;
            for write in audit {
                rows.seal(chain, key, write.clone())?;
            }
            Ok(Outcome::Done)
        }
        Change::Restore { entries, .. } => {
            // A backup carries its chains one after the other, each from 1.
            // A chain is kept under the name of the node that wrote its
            // newest entry; that of a node without a name (a single sled
            // node) becomes this node's chain, which goes on from it.
            for chain_records in split_chains(entries.clone()) {
                let mut parsed = Vec::with_capacity(chain_records.len());
                for (seq, text) in chain_records {
                    let entry: AuditEntry = serde_json::from_str(&text)
                        .map_err(|e| StoreError::Corrupt(format!("audit entry {seq}: {e}")))?;
                    parsed.push((seq, entry, text));
                }
                let chain_key =
                    parsed.last().and_then(|(_, entry, _)| entry.node.clone()).unwrap_or_else(|| key.to_string());
                // A chain pruned by retention starts at the checkpoint its first entry implies.
                if let Some((seq, entry, _)) = parsed.first().filter(|(seq, _, _)| *seq > 1) {
                    tx.execute(
                        "INSERT INTO radotp_audit_checkpoints (chain, seq, hash) VALUES ($1, $2, $3) \
                         ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
                        &[&chain_key, &i64_of(seq - 1)?, &entry.prev_hash],
                    )
                    .await
                    .map_err(db_error)?;
                }
                for (seq, entry, text) in parsed {
                    rows.push(chain_key.clone(), seq, &entry, text)?;
                }
            }
            rows.insert(tx).await?;
            let head = read_head(&**tx, key, chain.node.clone()).await?;
            *chain = head;
            Ok(Outcome::Done)
        }
    }
}

/// Compare-and-swap of several tokens in three statements: their rows
/// locked in serial order (so that the groups of two nodes never deadlock),
/// one conditional `UPDATE ... WHERE version = expected` for them all, and
/// the current tokens of those that lost. Of two swaps of one token in one
/// group, the first is tried and the second loses.
async fn swap_all(tx: &Transaction<'_>, tokens: &[&Token]) -> Result<Vec<Swap>, StoreError> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let mut bodies = Vec::with_capacity(tokens.len());
    let mut versions = Vec::with_capacity(tokens.len());
    for token in tokens {
        bodies.push(token_body(token)?);
        versions.push(i64_of(token.version)?);
    }
    let serials: Vec<&str> = tokens.iter().map(|t| t.serial.as_str()).collect();
    let owners: Vec<Option<&str>> = tokens.iter().map(|t| t.owner_name()).collect();
    let types: Vec<&str> = tokens.iter().map(|t| t.type_id.as_str()).collect();
    let ordinals: Vec<i32> = (0..tokens.len() as i32).collect();
    let lock = tx
        .prepare_cached("SELECT 1 FROM radotp_tokens WHERE serial = ANY($1) ORDER BY serial FOR UPDATE")
        .await
        .map_err(db_error)?;
    tx.query(&lock, &[&serials]).await.map_err(db_error)?;
    let update = tx
        .prepare_cached(
            "UPDATE radotp_tokens t SET body = u.body, owner = u.owner, type_id = u.type_id, version = t.version + 1 \
             FROM (SELECT DISTINCT ON (serial) * \
                   FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int4[]) \
                        AS n(serial, version, body, owner, type_id, ord) \
                   ORDER BY serial, ord) u \
             WHERE t.serial = u.serial AND t.version = u.version RETURNING u.ord, t.version",
        )
        .await
        .map_err(db_error)?;
    let won = tx.query(&update, &[&serials, &versions, &bodies, &owners, &types, &ordinals]).await.map_err(db_error)?;
    let mut results: Vec<Option<Swap>> = vec![None; tokens.len()];
    for row in &won {
        let ordinal = row.get::<_, i32>(0) as usize;
        let mut stored =
            tokens.get(ordinal).map(|t| (*t).clone()).ok_or_else(|| StoreError::Corrupt("bad ordinal".into()))?;
        stored.version = row.get::<_, i64>(1) as u64;
        results[ordinal] = Some(Swap::Swapped(stored));
    }
    let lost: Vec<&str> =
        results.iter().zip(&serials).filter(|(result, _)| result.is_none()).map(|(_, serial)| *serial).collect();
    if !lost.is_empty() {
        let current = tx
            .prepare_cached("SELECT version, body FROM radotp_tokens WHERE serial = ANY($1)")
            .await
            .map_err(db_error)?;
        let rows = tx.query(&current, &[&lost]).await.map_err(db_error)?;
        let mut found = std::collections::HashMap::new();
        for row in &rows {
            let token = token_from_row(row)?;
            found.insert(token.serial.clone(), token);
        }
        for (result, serial) in results.iter_mut().zip(&serials) {
            if result.is_none() {
                *result = Some(match found.get(*serial) {
                    Some(token) => Swap::Conflict(token.clone()),
                    None => Swap::NotFound,
                });
            }
        }
    }
    Ok(results.into_iter().map(|r| r.unwrap_or(Swap::NotFound)).collect())
}

/// The stored token after a lost compare-and-swap.
async fn current(tx: &Transaction<'_>, serial: &str) -> Result<Swap, StoreError> {
    let row = tx
        .query_opt("SELECT version, body FROM radotp_tokens WHERE serial = $1", &[&serial])
        .await
        .map_err(db_error)?;
    Ok(match row {
        Some(row) => Swap::Conflict(token_from_row(&row)?),
        None => Swap::NotFound,
    })
}

async fn insert_tokens(tx: &Transaction<'_>, tokens: &[Token]) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(tokens.len());
    for token in tokens {
        if !seen.insert(token.serial.as_str()) {
            return Err(StoreError::Exists(token.serial.clone()));
        }
    }
    let serials: Vec<&str> = tokens.iter().map(|t| t.serial.as_str()).collect();
    let taken = tx
        .query("SELECT serial FROM radotp_tokens WHERE serial = ANY($1) ORDER BY serial", &[&serials])
        .await
        .map_err(db_error)?;
    if !taken.is_empty() {
        let taken: std::collections::HashSet<String> = taken.iter().map(|r| r.get(0)).collect();
        let first = tokens.iter().find(|t| taken.contains(&t.serial)).map(|t| t.serial.clone()).unwrap_or_default();
        return Err(StoreError::Exists(first));
    }
    for chunk in tokens.chunks(1000) {
        let mut bodies = Vec::with_capacity(chunk.len());
        for token in chunk {
            bodies.push(token_body(token)?);
        }
        let serials: Vec<&str> = chunk.iter().map(|t| t.serial.as_str()).collect();
        let types: Vec<&str> = chunk.iter().map(|t| t.type_id.as_str()).collect();
        let owners: Vec<Option<&str>> = chunk.iter().map(|t| t.owner_name()).collect();
        tx.execute(
            "INSERT INTO radotp_tokens (serial, type_id, owner, version, body) \
             SELECT s, t, o, 1, b FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u(s, t, o, b)",
            &[&serials, &types, &owners, &bodies],
        )
        .await
        .map_err(|e| match e.code() {
            Some(code) if *code == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
                StoreError::Exists(chunk.first().map(|t| t.serial.clone()).unwrap_or_default())
            }
            _ => db_error(e),
        })?;
    }
    Ok(())
}

/// The head of the chain `key`: its newest stored entry.
pub async fn read_head(
    client: &impl tokio_postgres::GenericClient,
    key: &str,
    node: Option<String>,
) -> Result<Chain, StoreError> {
    let row = client
        .query_opt("SELECT seq, body FROM radotp_audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1", &[&key])
        .await
        .map_err(db_error)?;
    match row {
        None => Ok(Chain { node, seq: 0, hash: String::new() }),
        Some(row) => {
            let seq: i64 = row.get(0);
            let body: String = row.get(1);
            Chain::after_stored(node, seq as u64, body.as_bytes()).map_err(StoreError::Corrupt)
        }
    }
}

/// Audit rows of one transaction, written with one statement.
#[derive(Default)]
struct AuditRows {
    chains: Vec<String>,
    seqs: Vec<i64>,
    times: Vec<i64>,
    serials: Vec<Option<String>>,
    users: Vec<Option<String>>,
    previous_owners: Vec<Option<String>>,
    bodies: Vec<String>,
}

impl AuditRows {
    fn seal(&mut self, chain: &mut Chain, key: &str, write: AuditWrite) -> Result<(), StoreError> {
        let (seq, bytes) = chain.seal(write).map_err(StoreError::Corrupt)?;
        let text = String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("audit entry is not UTF-8".into()))?;
        let entry: AuditEntry =
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("audit entry {seq}: {e}")))?;
        self.push(key.to_string(), seq, &entry, text)
    }

    fn push(&mut self, chain: String, seq: u64, entry: &AuditEntry, text: String) -> Result<(), StoreError> {
        self.chains.push(chain);
        self.seqs.push(i64_of(seq)?);
        self.times.push(i64_of(entry.time)?);
        self.serials.push(entry.serial.clone());
        self.users.push(entry.user.clone());
        self.previous_owners.push(entry.details.get("previous_owner").and_then(|v| v.as_str()).map(str::to_string));
        self.bodies.push(text);
        Ok(())
    }

    async fn insert(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.chains.is_empty() {
            return Ok(());
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO radotp_audit (chain, seq, time, serial, user_name, prev_owner, body) \
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[])",
            )
            .await
            .map_err(db_error)?;
        tx.execute(
            &insert,
            &[&self.chains, &self.seqs, &self.times, &self.serials, &self.users, &self.previous_owners, &self.bodies],
        )
        .await
        .map_err(db_error)?;
        *self = AuditRows::default();
        Ok(())
    }
}
