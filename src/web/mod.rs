//! The Operational console: radotp's helpdesk procedures on an HTTPS page.
//!
//! A transport like [`crate::radius`] and [`crate::admin`]: requests become
//! calls of the same [`Service`] operations, with [`Actor::Web`] (the
//! operator's directory name and source address) so that each operation
//! audits itself. Sign-in is [`Service::console_login`] (password, OTP,
//! role from directory groups); this module keeps the sessions, checks the
//! CSRF token of every form and the role of every action.
//!
//! | file | pages |
//! |---|---|
//! | [`login`] | `/login`, `/logout`, the signed-in extractor |
//! | [`tokens`] | Devices -> HW tokens and each token's context menu |
//! | [`users`] | Users, a user's TOKENS tab, ADD NEW TOKEN |
//! | [`pages`] | Audit, Status, Help |
//! | [`session`] | sessions and sign-in throttling |
//! | [`html`] | escaping, the page frame, security headers |

pub mod html;
pub mod login;
pub mod pages;
pub mod session;
pub mod tokens;
pub mod users;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::WebConfig;
use crate::domain::Service;
use crate::domain::console::ConsoleRoleGroups;
use crate::model::audit::Actor;

/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 256;
/// A TLS handshake or a request head must arrive within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed after this long, busy or idle, so that idle
/// keep-alive connections cannot hold all [`MAX_CONNECTIONS`] slots
/// (browsers reconnect without the user noticing).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{path} holds no {what}")]
    Missing { path: String, what: &'static str },
    #[error("TLS: {0}")]
    Tls(String),
}

/// The console's state, shared by all connections.
pub struct Console {
    pub(crate) service: Arc<Service>,
    pub(crate) roles: ConsoleRoleGroups,
    pub(crate) sessions: session::Sessions,
    pub(crate) throttle: session::Throttle,
}

/// The source address of a connection.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Console {
    pub fn new(service: Arc<Service>, config: &WebConfig) -> Self {
        Console {
            service,
            roles: ConsoleRoleGroups {
                operator: config.roles.operator.groups.clone(),
                admin: config.roles.admin.groups.clone(),
            },
            sessions: session::Sessions::new(config.idle_timeout_seconds, config.session_lifetime_seconds),
            throttle: session::Throttle::new(config.login_max_failures, config.login_window_seconds),
        }
    }

    pub(crate) fn actor(user: &str, peer: PeerAddr) -> Actor {
        Actor::Web { user: user.chars().take(256).collect(), address: peer.0.ip().to_string() }
    }

    /// Serves HTTPS on `listener` until `shutdown`.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: TlsAcceptor, shutdown: CancellationToken) {
        let app = router(self.clone());
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else { break };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "web console: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let app = app.clone().layer(axum::Extension(PeerAddr(peer)));
            let tls = tls.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "web console: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
                tokio::select! {
                    _ = connection => {}
                    _ = tokio::time::sleep(CONNECTION_LIFETIME) => {}
                    _ = shutdown.cancelled() => {}
                }
            });
        }
    }
}

/// The TLS settings of `web.tls_cert_file` and `web.tls_key_file`.
pub fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, WebError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| WebError::File { path: path.display().to_string(), reason: e.to_string() })
    };
    let cert_pem = read(cert_file)?;
    let certs: Vec<rustls::Certificate> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .map_err(|e| WebError::File { path: cert_file.display().to_string(), reason: e.to_string() })?
        .into_iter()
        .map(rustls::Certificate)
        .collect();
    if certs.is_empty() {
        return Err(WebError::Missing { path: cert_file.display().to_string(), what: "PEM certificate" });
    }
    let key_pem = read(key_file)?;
    let key = rustls_pemfile::read_all(&mut key_pem.as_slice())
        .map_err(|e| WebError::File { path: key_file.display().to_string(), reason: e.to_string() })?
        .into_iter()
        .find_map(|item| match item {
            rustls_pemfile::Item::PKCS8Key(key)
            | rustls_pemfile::Item::RSAKey(key)
            | rustls_pemfile::Item::ECKey(key) => Some(rustls::PrivateKey(key)),
            _ => None,
        })
        .ok_or_else(|| WebError::Missing { path: key_file.display().to_string(), what: "PEM private key" })?;
    let mut config = rustls::ServerConfig::builder()
        .with_safe_defaults()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| WebError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/devices/hw-tokens") }))
        .route("/console.css", get(style_sheet))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/devices/hw-tokens", get(tokens::list))
        .route("/devices/hw-tokens/{serial}/unassign", get(tokens::unassign_form).post(tokens::unassign))
        .route("/devices/hw-tokens/{serial}/assign", get(tokens::assign_form).post(tokens::assign))
        .route("/devices/hw-tokens/{serial}/reset", get(tokens::reset_form).post(tokens::reset))
        .route("/devices/hw-tokens/{serial}/delete", get(tokens::delete_form).post(tokens::delete))
        .route("/devices/hw-tokens/{serial}/{action}", post(tokens::change_state))
        .route("/users", get(users::search))
        .route("/users/{name}", get(users::detail))
        .route("/users/{name}/add-token", get(users::add_form).post(users::add))
        .route("/users/{name}/confirm", post(users::confirm))
        .route("/audit", get(pages::audit))
        .route("/status", get(pages::status))
        .route("/help", get(pages::help))
        .fallback(|| async { html::respond(axum::http::StatusCode::NOT_FOUND, html::page(None, "Not found", "")) })
        .layer(middleware::from_fn(with_security_headers))
        .with_state(console)
}

async fn with_security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    html::security_headers(response.headers_mut());
    response
}

async fn style_sheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css"), (header::CACHE_CONTROL, "max-age=3600")], html::STYLE_SHEET).into_response()
}
