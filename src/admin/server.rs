//! The admin socket: a Unix socket that operators' `radotpctl` talks to.
//!
//! Every connection's peer is identified ([`Peer`]: SO_PEERCRED and the
//! process's own groups) and checked against root, the daemon's own uid,
//! `admin.roles`, `admin.allowed_uids` and `admin.allowed_groups`;
//! a refused peer gets a clear error and an audit entry. Requests are decoded
//! from [`super::wire`] and mapped onto [`Service`] operations, which audit
//! themselves with the peer as actor; this transport audits only what never
//! reaches an operation (a refused role, `ping`, `reload`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use super::peer::Peer;
use super::wire::ReloadOutcome;
use super::wire::{
    Command, ErrorKind, MAX_OPERATOR_REQUEST_BYTES, MAX_REQUEST_BYTES, PROTOCOL_VERSION, Reply, Request, Response,
    Role, UserDetails,
};
use crate::domain::error::ErrorKind as DomainErrorKind;
use crate::domain::{DomainError, Service};
use crate::import::ImportOptions;
use crate::model::audit::{Actor, AuditEvent};

/// Who may talk to the admin socket.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    pub daemon_uid: u32,
    pub admin_uids: Vec<u32>,
    pub admin_gids: Vec<u32>,
    pub operator_uids: Vec<u32>,
    pub operator_gids: Vec<u32>,
}

impl AccessPolicy {
    /// The peer's role, or none when it may not connect at all.
    pub fn role_of(&self, peer: &Peer) -> Option<Role> {
        let member =
            |uids: &[u32], gids: &[u32]| uids.contains(&peer.uid) || peer.gids.iter().any(|g| gids.contains(g));
        if peer.uid == 0 || peer.uid == self.daemon_uid || member(&self.admin_uids, &self.admin_gids) {
            Some(Role::Admin)
        } else if member(&self.operator_uids, &self.operator_gids) {
            Some(Role::Operator)
        } else {
            None
        }
    }
}

/// Connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections one uid may hold at once, so that no role holder can take
/// every slot (and keep them, request after request) from the others.
/// Root and the daemon's own uid are not limited.
pub const MAX_CONNECTIONS_PER_UID: usize = 16;

/// Asks the daemon's lifecycle loop to reload; it answers with the outcome.
pub type ReloadRequests = tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<ReloadOutcome>>;

pub struct AdminServer {
    service: Arc<Service>,
    policy: RwLock<AccessPolicy>,
    reload: ReloadRequests,
    /// `admin.request_timeout_seconds`: each request line must arrive within it.
    request_timeout_seconds: AtomicU64,
    per_uid: crate::limits::PerPeer<u32>,
}

impl AdminServer {
    pub fn new(service: Arc<Service>, policy: AccessPolicy, reload: ReloadRequests, request_timeout: Duration) -> Self {
        AdminServer {
            service,
            policy: RwLock::new(policy),
            reload,
            request_timeout_seconds: AtomicU64::new(request_timeout.as_secs()),
            per_uid: crate::limits::PerPeer::new(MAX_CONNECTIONS_PER_UID),
        }
    }

    pub fn replace_policy(&self, policy: AccessPolicy) {
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    /// Applies to request lines read from now on (on reload).
    pub fn replace_request_timeout(&self, timeout: Duration) {
        self.request_timeout_seconds.store(timeout.as_secs(), Ordering::Relaxed);
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.load(Ordering::Relaxed))
    }

    pub async fn serve(self: Arc<Self>, listener: UnixListener, shutdown: CancellationToken, tasks: TaskTracker) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin socket accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!("too many admin connections; refusing one");
                continue;
            };
            let server = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let _slot = slot;
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = server.connection(stream) => {}
                }
            });
        }
    }

    async fn connection(&self, stream: UnixStream) {
        let peer = match Peer::identify(&stream) {
            Ok(peer) => peer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot identify admin peer; closing");
                return;
            }
        };
        let (read_half, mut write_half) = stream.into_split();
        let policy = self.policy.read().unwrap_or_else(|p| p.into_inner()).clone();
        // Root and the daemon's own user own the daemon anyway; everyone else
        // gets a share of the slots.
        let exempt = peer.uid == 0 || peer.uid == policy.daemon_uid;
        let uid_slot = if exempt { None } else { self.per_uid.try_acquire(peer.uid) };
        if !exempt && uid_slot.is_none() {
            tracing::warn!(
                uid = peer.uid,
                "uid {} holds {MAX_CONNECTIONS_PER_UID} admin connections already; refusing one",
                peer.uid
            );
            let response = Response::failure(
                ErrorKind::Unavailable,
                format!(
                    "uid {} has {MAX_CONNECTIONS_PER_UID} connections to the admin socket open already; close one and try again",
                    peer.uid
                ),
            );
            let _ = write_response(&mut write_half, &response).await;
            return;
        }
        let Some(role) = policy.role_of(&peer) else {
            tracing::warn!(
                uid = peer.uid,
                user = peer.user.as_deref().unwrap_or("-"),
                pid = peer.pid.unwrap_or(0),
                "admin peer refused"
            );
            self.service
                .record(
                    &peer.actor(),
                    AuditEvent {
                        operation: "admin.connect".into(),
                        result: "refused".into(),
                        reason: Some("peer not allowed".into()),
                        ..AuditEvent::default()
                    },
                )
                .await;
            let who = peer.user.clone().unwrap_or_else(|| format!("uid {}", peer.uid));
            let response = Response::failure(
                ErrorKind::Forbidden,
                format!(
                    "{who} may not use the radotp admin socket (see admin.roles, admin.allowed_uids and admin.allowed_groups)"
                ),
            );
            let _ = write_response(&mut write_half, &response).await;
            return;
        };
        let mut reader = BufReader::new(read_half);
        // Only admins import, so only they may send large requests.
        let max_request = if role >= Role::Admin { MAX_REQUEST_BYTES } else { MAX_OPERATOR_REQUEST_BYTES };
        loop {
            let mut line = Vec::new();
            let mut limited = (&mut reader).take(max_request as u64 + 1);
            match tokio::time::timeout(self.request_timeout(), limited.read_until(b'\n', &mut line)).await {
                Err(_) => {
                    tracing::debug!(uid = peer.uid, "admin request not received in time; closing the connection");
                    return; // too slow: drop the connection
                }
                Ok(Err(_)) | Ok(Ok(0)) => return,
                Ok(Ok(_)) => {}
            }
            if line.len() > max_request {
                let response = Response::failure(
                    ErrorKind::BadRequest,
                    format!("request larger than {max_request} bytes (for the {role:?} role)"),
                );
                let _ = write_response(&mut write_half, &response).await;
                return;
            }
            let response = self.handle_line(&peer, role, line).await;
            if write_response(&mut write_half, &response).await.is_err() {
                return;
            }
        }
    }

    async fn handle_line(&self, peer: &Peer, role: Role, mut line: Vec<u8>) -> Response {
        let parsed = serde_json::from_slice::<Request>(&line);
        // The line may hold an import's key or password, and is large: wipe and free it now.
        if matches!(&parsed, Ok(Request { command: Command::TokenImport { .. }, .. })) {
            zeroize::Zeroize::zeroize(&mut line);
        }
        drop(line);
        let request = match parsed {
            Ok(r) => r,
            Err(e) => {
                return Response::failure(ErrorKind::BadRequest, format!("cannot parse request: {e}"));
            }
        };
        if request.version != PROTOCOL_VERSION {
            return Response::failure(
                ErrorKind::BadRequest,
                format!("protocol version {} is not supported; this daemon speaks {PROTOCOL_VERSION}", request.version),
            );
        }
        let command = request.command;
        let operation = command.name();
        let actor = peer.actor();
        let response = if role < command.required_role() {
            let response = Response::failure(
                ErrorKind::Forbidden,
                format!(
                    "{operation} needs the admin role; {} has the operator role",
                    peer.user.as_deref().unwrap_or("this peer")
                ),
            );
            let (user, serial) = subject(&command);
            let event = AuditEvent {
                operation: operation.into(),
                user,
                serial,
                result: "forbidden".into(),
                reason: response.error.as_ref().map(|e| e.message.clone()),
                ..AuditEvent::default()
            };
            self.service.record(&actor, event).await;
            response
        } else {
            match self.execute(&actor, command).await {
                Ok(reply) => Response::success(reply),
                Err(e) => Response::failure(error_kind(&e), self.explain(&e).await),
            }
        };
        let result = match (&response.error, &response.result) {
            (None, Some(Reply::Reload(r))) if !r.applied => "refused".to_string(),
            (None, _) => "ok".to_string(),
            (Some(e), _) => {
                serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            }
        };
        tracing::info!(operation, peer_uid = peer.uid, peer = peer.user.as_deref().unwrap_or("-"), %result, "admin request");
        response
    }

    /// The error's message, with the serials the operator may have meant
    /// when a serial does not exist (serials are case-sensitive).
    async fn explain(&self, error: &DomainError) -> String {
        let DomainError::NoSuchToken(serial) = error else {
            return error.to_string();
        };
        match self.service.similar_serials(serial).await {
            Ok(close) if !close.is_empty() => format!("{error}; did you mean {}?", close.join(", ")),
            _ => error.to_string(),
        }
    }

    async fn execute(&self, actor: &Actor, command: Command) -> Result<Reply, DomainError> {
        let service = &self.service;
        Ok(match command {
            Command::Ping => {
                let event = AuditEvent { operation: "ping".into(), result: "ok".into(), ..AuditEvent::default() };
                service.record(actor, event).await;
                Reply::Pong { daemon_version: env!("CARGO_PKG_VERSION").into() }
            }
            Command::Status => Reply::Status(service.status(actor).await?),
            Command::TokenImport { content, skip_invalid, dry_run, format, psk_hex, password, token_type } => {
                let options =
                    ImportOptions::from_request(format, psk_hex.as_ref(), password.as_ref(), token_type.as_deref())?;
                Reply::Import(service.import(actor, content, options, skip_invalid, dry_run).await?)
            }
            Command::TokenList(filter) => Reply::Tokens(service.list(actor, &filter).await?),
            Command::TokenShow { serial } => Reply::Token(service.show(actor, &serial).await?),
            Command::TokenAssign { serial, user, reassign } => {
                Reply::Assignment(service.assign(actor, &serial, &user, reassign).await?)
            }
            Command::TokenUnassign { serial } => Reply::Assignment(service.unassign(actor, &serial).await?),
            Command::TokenEnroll { user, r#type, serial } => {
                Reply::Enrollment(service.enroll(actor, &user, &r#type, serial.as_deref()).await?)
            }
            Command::TokenReset { serial, otp1, otp2 } => {
                Reply::Reset(service.reset(actor, &serial, &otp1, &otp2).await?)
            }
            Command::TokenEnable { serial } => Reply::Token(service.set_disabled(actor, &serial, false).await?),
            Command::TokenDisable { serial } => Reply::Token(service.set_disabled(actor, &serial, true).await?),
            Command::TokenUnlock { serial } => Reply::Token(service.unlock(actor, &serial).await?),
            Command::TokenDelete { serial } => Reply::Token(service.delete(actor, &serial).await?),
            Command::Types => Reply::Types(service.token_types(actor).await),
            Command::Backup => Reply::Backup(Box::new(service.backup(actor).await?)),
            Command::Reload => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let unavailable = || DomainError::Unavailable("the daemon is shutting down".into());
                self.reload.send(tx).await.map_err(|_| unavailable())?;
                let outcome = rx.await.map_err(|_| unavailable())?;
                let event = AuditEvent {
                    operation: "reload".into(),
                    result: if outcome.applied { "ok" } else { "refused" }.into(),
                    reason: (!outcome.applied).then(|| outcome.problems.join("; ")),
                    ..AuditEvent::default()
                };
                service.record(actor, event).await;
                Reply::Reload(outcome)
            }
            Command::UserShow { user, client } => {
                let found = service.directory_user(&user).await;
                let result = match found {
                    Ok(entry) => match service.preview_replies(&entry, client.as_deref()) {
                        Ok(replies) => service.tokens_of(&entry.name).await.map(|tokens| UserDetails {
                            user: entry,
                            tokens,
                            replies,
                        }),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                service
                    .audit_read(actor, "user.show", Some(user.clone()), None, serde_json::Value::Null, &result)
                    .await;
                Reply::User(result?)
            }
            Command::UserSearch { query, limit } => Reply::Users(service.search_users(actor, &query, limit).await?),
            Command::Audit(query) => Reply::Audit(service.audit(actor, &query).await?),
            Command::AuditVerify => Reply::Chain(service.audit_verify(actor).await?),
            Command::AuditPrune => Reply::Pruned(service.prune_audit(actor).await?),
        })
    }
}

async fn write_response(writer: &mut tokio::net::unix::OwnedWriteHalf, response: &Response) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    writer.write_all(&bytes).await?;
    writer.flush().await
}

fn error_kind(error: &DomainError) -> ErrorKind {
    match error.kind() {
        DomainErrorKind::NotFound => ErrorKind::NotFound,
        DomainErrorKind::Refused => ErrorKind::Refused,
        DomainErrorKind::Invalid => ErrorKind::Invalid,
        DomainErrorKind::Unavailable | DomainErrorKind::Conflict => ErrorKind::Unavailable,
        DomainErrorKind::Internal => ErrorKind::Internal,
    }
}

/// The user and token a request concerns, for the audit entry of a refused role.
fn subject(command: &Command) -> (Option<String>, Option<String>) {
    match command {
        Command::TokenShow { serial }
        | Command::TokenUnassign { serial }
        | Command::TokenReset { serial, .. }
        | Command::TokenEnable { serial }
        | Command::TokenDisable { serial }
        | Command::TokenUnlock { serial }
        | Command::TokenDelete { serial } => (None, Some(serial.clone())),
        Command::TokenEnroll { user, serial, .. } => (Some(user.clone()), serial.clone()),
        Command::TokenAssign { serial, user, .. } => (Some(user.clone()), Some(serial.clone())),
        Command::UserShow { user, .. } => (Some(user.clone()), None),
        _ => (None, None),
    }
}
