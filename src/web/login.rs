//! `/login` (fields `username`, `password`, `otp`), `/logout`, and
//! [`SignedIn`]: the session of a request, its role and CSRF check.
//!
//! The sign-in form carries its own CSRF token, matched against the
//! `__Host-radotp-login` cookie; failures are counted per user name and per
//! source address ([`super::session::Throttle`]) and audited with both.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html::{self, Frame};
use super::session::{LOGIN_COOKIE, SESSION_COOKIE, Session, random_token, same_token};
use super::{Console, PeerAddr};
use crate::domain::console::{ConsoleRole, LoginRefusal};
use crate::model::audit::{Actor, AuditEvent};
use crate::secret::Secret;

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let text = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

/// A request with a live session.
pub struct SignedIn {
    pub id: String,
    pub session: Session,
    pub peer: PeerAddr,
}

impl SignedIn {
    pub fn actor(&self) -> Actor {
        Console::actor(&self.session.user, self.peer)
    }

    pub fn frame<'a>(&'a self, section: &'a str) -> Frame<'a> {
        Frame { user: &self.session.user, role: self.session.role, csrf: &self.session.csrf, section }
    }

    /// A page of this session's frame.
    pub fn page(&self, section: &str, title: &str, body: &str) -> Response {
        html::respond(StatusCode::OK, html::page(Some(&self.frame(section)), title, body))
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Response> {
        if same_token(sent, &self.session.csrf) {
            return Ok(());
        }
        Err(html::respond(
            StatusCode::FORBIDDEN,
            html::page(
                Some(&self.frame("")),
                "Refused",
                &html::notice("error", "This form did not come from this session (missing or wrong CSRF token)."),
            ),
        ))
    }

    /// Refuses an action that needs the admin role.
    pub fn require_admin(&self) -> Result<(), Response> {
        if self.session.role >= ConsoleRole::Admin {
            return Ok(());
        }
        Err(html::respond(
            StatusCode::FORBIDDEN,
            html::page(Some(&self.frame("")), "Refused", &html::notice("error", "Only administrators may do this.")),
        ))
    }
}

impl FromRequestParts<Arc<Console>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Self, Response> {
        let peer = parts.extensions.get::<PeerAddr>().copied();
        let id = cookie(&parts.headers, SESSION_COOKIE);
        let now = console.service.now();
        match (peer, id) {
            (Some(peer), Some(id)) => match console.sessions.touch(&id, now) {
                Some(session) => Ok(SignedIn { id, session, peer }),
                None => Err(Redirect::to("/login").into_response()),
            },
            _ => Err(Redirect::to("/login").into_response()),
        }
    }
}

fn no_randomness() -> Response {
    tracing::error!("the system gives no random bytes: no web console session can be made");
    html::respond(
        StatusCode::SERVICE_UNAVAILABLE,
        html::page(None, "Unavailable", &html::notice("error", "The console cannot sign anyone in now.")),
    )
}

fn login_page(status: StatusCode, message: Option<&str>) -> Response {
    let Ok(token) = random_token() else { return no_randomness() };
    let notice = message.map(|m| html::notice("error", m)).unwrap_or_default();
    let body = format!(
        "{notice}<form method=\"post\" action=\"/login\" class=\"stack\" id=\"login\">{}\
<label>User name <input name=\"username\" autocomplete=\"username\" required autofocus></label>\
<label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
<label>One-time password from your token <input name=\"otp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required></label>\
<button type=\"submit\" id=\"sign-in\">Sign in</button></form>",
        html::csrf_field(&token)
    );
    let mut response = html::respond(status, html::page(None, "Sign in", &body));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, Some(3600)));
    response
}

pub async fn form() -> Response {
    login_page(StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    otp: String,
}

pub async fn submit(
    State(console): State<Arc<Console>>,
    Extension(peer): Extension<PeerAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let user = form.username.trim().to_string();
    let actor = Console::actor(&user, peer);
    let now = console.service.now();
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(&form.csrf, &expected) {
        audit_refusal(&console, &actor, &user, "csrf").await;
        return login_page(StatusCode::FORBIDDEN, Some("The sign-in form expired; please try again."));
    }
    if console.throttle.blocked(&user, peer.0.ip(), now) {
        audit_refusal(&console, &actor, &user, "throttled").await;
        return login_page(StatusCode::TOO_MANY_REQUESTS, Some("Too many failed sign-ins; try again later."));
    }
    let password = Secret::new(form.password.into_bytes());
    let outcome = console.service.console_login(&actor, &user, &password, form.otp.trim(), &console.roles).await;
    let refusal = match outcome {
        Ok(Ok(login)) => {
            console.throttle.succeeded(&user);
            let Ok(id) = console.sessions.open(login.user, login.role, now) else { return no_randomness() };
            let mut response = Redirect::to("/devices/hw-tokens").into_response();
            response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, None));
            response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", Some(0)));
            return response;
        }
        Ok(Err(refusal)) => refusal,
        Err(e) => {
            tracing::warn!(error = %e, "web console sign-in failed");
            LoginRefusal::DirectoryUnavailable
        }
    };
    let message = match refusal {
        LoginRefusal::WrongCredentials => {
            console.throttle.failed(&user, peer.0.ip(), now);
            "Wrong user name, password or one-time password."
        }
        LoginRefusal::NoRole => {
            console.throttle.failed(&user, peer.0.ip(), now);
            "You have no role in the Operational console; ask an administrator."
        }
        LoginRefusal::DirectoryUnavailable => "The directory does not answer; try again later.",
    };
    login_page(StatusCode::UNAUTHORIZED, Some(message))
}

async fn audit_refusal(console: &Console, actor: &Actor, user: &str, reason: &str) {
    let event = AuditEvent {
        operation: "web.login".into(),
        user: Some(user.chars().take(256).collect()),
        serial: None,
        details: serde_json::Value::Null,
        result: "reject".into(),
        reason: Some(reason.into()),
    };
    console.service.record(actor, event).await;
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(State(console): State<Arc<Console>>, signed: SignedIn, Form(form): Form<CsrfOnly>) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    console.sessions.close(&signed.id);
    let event = AuditEvent {
        operation: "web.logout".into(),
        user: Some(signed.session.user.clone()),
        serial: None,
        details: serde_json::Value::Null,
        result: "ok".into(),
        reason: None,
    };
    console.service.record(&signed.actor(), event).await;
    let mut response = login_page(StatusCode::OK, None);
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    response
}
