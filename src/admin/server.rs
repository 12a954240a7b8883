//! The admin socket: a Unix socket that operators' `radotpctl` talks to.
//!
//! Every connection's peer is identified with SO_PEERCRED and checked against
//! root, the daemon's own uid, `admin.allowed_uids` and `admin.allowed_groups`;
//! a refused peer gets a clear error and an audit entry. Requests are decoded
//! from [`super::wire`] and mapped onto [`Service`] operations; every request
//! is audited with its peer, arguments (never secrets) and result.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::wire::ReloadOutcome;
use super::wire::{
    Command, ErrorKind, MAX_OPERATOR_REQUEST_BYTES, MAX_REQUEST_BYTES, PROTOCOL_VERSION, Reply, Request, Response,
    Role, UserDetails,
};
use crate::audit::{Actor, AuditEvent};
use crate::import::ImportOptions;
use crate::service::{Service, ServiceError, TokenFilter};

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

/// The process on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    pub user: Option<String>,
    /// Primary and supplementary groups of the peer's user.
    pub gids: Vec<u32>,
}

impl Peer {
    fn identify(stream: &UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        let uid = cred.uid();
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten();
        let mut gids = vec![cred.gid()];
        if let Some(user) = &user {
            if let Ok(name) = CString::new(user.name.as_str()) {
                if let Ok(groups) = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(cred.gid())) {
                    gids.extend(groups.iter().map(|g| g.as_raw()));
                }
            }
        }
        Ok(Peer { uid, pid: cred.pid(), user: user.map(|u| u.name), gids })
    }

    fn actor(&self) -> Actor {
        Actor::Admin { uid: self.uid, user: self.user.clone() }
    }
}

/// Connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// Asks the daemon's lifecycle loop to reload; it answers with the outcome.
pub type ReloadRequests = tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<ReloadOutcome>>;

pub struct AdminServer {
    service: Arc<Service>,
    policy: RwLock<AccessPolicy>,
    reload: ReloadRequests,
    /// `admin.request_timeout_seconds`: each request line must arrive within it.
    request_timeout_seconds: AtomicU64,
}

impl AdminServer {
    pub fn new(service: Arc<Service>, policy: AccessPolicy, reload: ReloadRequests, request_timeout: Duration) -> Self {
        AdminServer {
            service,
            policy: RwLock::new(policy),
            reload,
            request_timeout_seconds: AtomicU64::new(request_timeout.as_secs()),
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
        let Some(role) = policy.role_of(&peer) else {
            tracing::warn!(
                uid = peer.uid,
                user = peer.user.as_deref().unwrap_or("-"),
                pid = peer.pid.unwrap_or(0),
                "admin peer refused"
            );
            self.service.record(
                &peer.actor(),
                AuditEvent {
                    operation: "admin.connect".into(),
                    result: "refused".into(),
                    reason: Some("peer not allowed".into()),
                    ..AuditEvent::default()
                },
            );
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
        let details = audit_details(&command);
        let (mut user, mut serial) = subject(&command);
        let response = if role < command.required_role() {
            Response::failure(
                ErrorKind::Forbidden,
                format!(
                    "{operation} needs the admin role; {} has the operator role",
                    peer.user.as_deref().unwrap_or("this peer")
                ),
            )
        } else {
            match self.execute(command).await {
                Ok(reply) => Response::success(reply),
                Err(e) => Response::failure(error_kind(&e), e.to_string()),
            }
        };
        let (result, reason) = match (&response.error, &response.result) {
            (None, Some(Reply::Reload(r))) if !r.applied => ("refused".to_string(), Some(r.problems.join("; "))),
            (None, _) => ("ok".to_string(), None),
            (Some(e), _) => (
                serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                Some(e.message.clone()),
            ),
        };
        let details = match (&response.result, details) {
            (Some(Reply::Import(report)), serde_json::Value::Object(mut map)) => {
                map.insert("imported".into(), report.imported.into());
                map.insert("skipped".into(), report.skipped.len().into());
                map.insert("invalid".into(), report.invalid.len().into());
                map.insert("format".into(), report.format.clone().into());
                serde_json::Value::Object(map)
            }
            (Some(Reply::Assignment(a)), serde_json::Value::Null) => serde_json::json!({
                "previous_owner": a.previous_owner,
                "new_owner": a.token.user,
            }),
            (Some(Reply::Enrollment(e)), serde_json::Value::Object(mut map)) => {
                map.insert("serial".into(), e.token.serial.clone().into());
                serde_json::Value::Object(map)
            }
            (Some(Reply::Backup(b)), _) => serde_json::json!({
                "tokens": b.snapshot.tokens.len(),
                "audit_entries": b.snapshot.audit.len(),
            }),
            (Some(Reply::Reset(r)), _) => serde_json::json!({
                "counter_moved_by": r.counter_moved_by,
                "drift_steps": r.drift_steps,
            }),
            (Some(Reply::Assignment(a)), serde_json::Value::Object(mut map)) => {
                map.insert("previous_owner".into(), a.previous_owner.clone().into());
                map.insert("new_owner".into(), a.token.user.clone().into());
                serde_json::Value::Object(map)
            }
            (_, d) => d,
        };
        // Name the token and its owner even when the request named only one of them.
        match &response.result {
            Some(Reply::Token(t)) => {
                user = user.or_else(|| t.user.clone());
                serial = serial.or_else(|| Some(t.serial.clone()));
            }
            Some(Reply::Reset(r)) => user = user.or_else(|| r.token.user.clone()),
            Some(Reply::Enrollment(e)) => serial = serial.or_else(|| Some(e.token.serial.clone())),
            Some(Reply::Assignment(a)) => user = user.or_else(|| a.previous_owner.clone()),
            _ => {}
        }
        tracing::info!(operation, peer_uid = peer.uid, peer = peer.user.as_deref().unwrap_or("-"), %result, "admin request");
        self.service
            .record(&peer.actor(), AuditEvent { operation: operation.into(), user, serial, details, result, reason });
        response
    }

    async fn execute(&self, command: Command) -> Result<Reply, ServiceError> {
        let service = self.service.clone();
        Ok(match command {
            Command::Ping => Reply::Pong { daemon_version: env!("CARGO_PKG_VERSION").into() },
            Command::Status => Reply::Status(blocking(move || service.status()).await?),
            Command::TokenImport { content, skip_invalid, dry_run, format, psk_hex, password, token_type } => {
                let options =
                    ImportOptions::from_request(format, psk_hex.as_ref(), password.as_ref(), token_type.as_deref())?;
                Reply::Import(self.service.import(content, options, skip_invalid, dry_run).await?)
            }
            Command::TokenList(filter) => Reply::Tokens(blocking(move || service.list(&filter)).await?),
            Command::TokenShow { serial } => Reply::Token(self.service.show(&serial)?),
            Command::TokenAssign { serial, user, reassign } => {
                Reply::Assignment(self.service.assign(&serial, &user, reassign).await?)
            }
            Command::TokenUnassign { serial } => Reply::Assignment(self.service.unassign(&serial).await?),
            Command::TokenEnroll { user, r#type, serial } => {
                Reply::Enrollment(self.service.enroll(&user, &r#type, serial.as_deref()).await?)
            }
            Command::TokenReset { serial, otp1, otp2 } => {
                Reply::Reset(self.service.reset(&serial, &otp1, &otp2).await?)
            }
            Command::TokenEnable { serial } => Reply::Token(self.service.set_disabled(&serial, false).await?),
            Command::TokenDisable { serial } => Reply::Token(self.service.set_disabled(&serial, true).await?),
            Command::TokenUnlock { serial } => Reply::Token(self.service.unlock(&serial).await?),
            Command::TokenDelete { serial } => Reply::Token(self.service.delete(&serial).await?),
            Command::Types => Reply::Types(self.service.token_types()),
            Command::Backup => Reply::Backup(Box::new(blocking(move || service.backup()).await?)),
            Command::Reload => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let unavailable = || ServiceError::Invalid("the daemon is shutting down".into());
                self.reload.send(tx).await.map_err(|_| unavailable())?;
                Reply::Reload(rx.await.map_err(|_| unavailable())?)
            }
            Command::UserShow { user } => {
                let entry = self.service.directory_user(&user).await?;
                let filter = TokenFilter { user: Some(entry.name.clone()), ..TokenFilter::default() };
                let tokens = self.service.list(&filter)?;
                Reply::User(UserDetails { user: entry, tokens })
            }
            Command::UserSearch { query, limit } => Reply::Users(self.service.search_users(&query, limit).await?),
            Command::Audit(query) => Reply::Audit(blocking(move || service.audit(&query)).await?),
            Command::AuditVerify => Reply::Chain(blocking(move || service.audit_verify()).await?),
        })
    }
}

/// Runs a store scan off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ServiceError::Invalid(format!("internal error: {e}"))))
}

async fn write_response(writer: &mut tokio::net::unix::OwnedWriteHalf, response: &Response) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    writer.write_all(&bytes).await?;
    writer.flush().await
}

fn error_kind(error: &ServiceError) -> ErrorKind {
    match error {
        ServiceError::NoSuchToken(_) | ServiceError::NoSuchUser(_) => ErrorKind::NotFound,
        ServiceError::Refused(_) => ErrorKind::Refused,
        ServiceError::Invalid(_) => ErrorKind::Invalid,
        ServiceError::Directory(crate::directory::DirectoryError::Unavailable(_)) => ErrorKind::Unavailable,
        ServiceError::Directory(crate::directory::DirectoryError::NotInGroup(_)) => ErrorKind::NotFound,
        ServiceError::Directory(_) => ErrorKind::Invalid,
        ServiceError::Store(_) | ServiceError::Crypto(_) => ErrorKind::Internal,
    }
}

/// The arguments of a request as the audit log keeps them: never file
/// contents, keys or passwords.
fn audit_details(command: &Command) -> serde_json::Value {
    match command {
        Command::TokenImport { content, skip_invalid, dry_run, format: _, psk_hex, password, token_type } => {
            let decryption = match (psk_hex, password) {
                (Some(_), _) => Some("pre-shared key"),
                (None, Some(_)) => Some("password"),
                (None, None) => None,
            };
            serde_json::json!({
                "bytes": content.len(),
                "skip_invalid": skip_invalid,
                "dry_run": dry_run,
                "type": token_type,
                "decryption": decryption,
            })
        }
        Command::TokenAssign { reassign, .. } => serde_json::json!({ "reassign": reassign }),
        Command::TokenEnroll { r#type, .. } => serde_json::json!({ "type": r#type }),
        Command::TokenList(filter) => serde_json::to_value(filter).unwrap_or_default(),
        Command::UserSearch { query, limit } => {
            serde_json::json!({ "query": query, "limit": limit })
        }
        Command::Audit(query) => serde_json::to_value(query).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

/// The user and token a request concerns, for audit filters.
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
        Command::UserShow { user } => (Some(user.clone()), None),
        _ => (None, None),
    }
}
