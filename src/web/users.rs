//! Users: directory search, a user's detail with the TOKENS tab, and
//! ADD NEW TOKEN: only the types operators may register on a user's behalf;
//! a hardware token is taken from stock by serial, an app token shows its QR
//! code and `otpauth://` URI once and asks for a first code from the app.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;

use super::Console;
use super::html::{csrf_field, esc, notice, segment};
use super::login::SignedIn;
use super::tokens::token_table;
use crate::domain::Decision;

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub async fn search(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Query(query): Query<SearchQuery>,
) -> Response {
    let mut body = format!(
        "<form method=\"get\" action=\"/users\" class=\"filter\" id=\"user-search\"><label>Name, display name or e-mail <input name=\"q\" value=\"{}\"></label><button type=\"submit\" id=\"search\">SUBMIT</button></form>",
        esc(&query.q)
    );
    let q = query.q.trim();
    if !q.is_empty() {
        match console.service.search_users(&signed.actor(), q, 100).await {
            Err(e) => body.push_str(&notice("error", &e.to_string())),
            Ok(users) if users.is_empty() => body.push_str("<p id=\"empty\">No user matches.</p>"),
            Ok(users) => {
                body.push_str("<table id=\"users\"><tr><th>User</th><th>Name</th><th>E-mail</th></tr>");
                for user in users {
                    body.push_str(&format!(
                        "<tr><td><a href=\"/users/{}\" id=\"user-{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                        segment(&user.name),
                        esc(&user.name),
                        esc(&user.name),
                        esc(user.display_name.as_deref().unwrap_or("")),
                        esc(user.email.as_deref().unwrap_or(""))
                    ));
                }
                body.push_str("</table>");
            }
        }
    }
    signed.page("users", "Users", &body)
}

fn user_tabs(name: &str) -> String {
    format!(
        "<div class=\"tabs\"><a href=\"/users/{}\" class=\"current\" id=\"tab-tokens\">TOKENS</a></div>",
        segment(name)
    )
}

pub async fn detail(State(console): State<Arc<Console>>, signed: SignedIn, Path(name): Path<String>) -> Response {
    detail_page(&console, &signed, &name, "").await
}

async fn detail_page(console: &Console, signed: &SignedIn, name: &str, message: &str) -> Response {
    let entry = match console.service.directory_user(name).await {
        Ok(entry) => entry,
        Err(e) => return signed.page("users", "User", &notice("error", &e.to_string())),
    };
    let mut body = format!(
        "<p class=\"user\" id=\"user-detail\"><strong>{}</strong> {} {}</p>{}{message}",
        esc(&entry.name),
        esc(entry.display_name.as_deref().unwrap_or("")),
        esc(entry.email.as_deref().unwrap_or("")),
        user_tabs(&entry.name)
    );
    body.push_str(&format!(
        "<p><a class=\"button\" href=\"/users/{}/add-token\" id=\"add-new-token\">ADD NEW TOKEN</a></p>",
        segment(&entry.name)
    ));
    match console.service.tokens_of(&entry.name).await {
        Ok(tokens) if tokens.is_empty() => body.push_str("<p id=\"empty\">This user has no token.</p>"),
        Ok(tokens) => body.push_str(&token_table(signed, console, &tokens)),
        Err(e) => body.push_str(&notice("error", &e.to_string())),
    }
    signed.page("users", &format!("User {}", entry.name), &body)
}

pub async fn add_form(State(console): State<Arc<Console>>, signed: SignedIn, Path(name): Path<String>) -> Response {
    let settings = console.service.settings();
    let mut body = user_tabs(&name);
    body.push_str("<p>Select the token type to register on behalf of the user:</p>");
    let enrollable: Vec<_> = settings.token_types.iter().filter(|t| t.operator_enroll).collect();
    if enrollable.is_empty() {
        body.push_str(&notice("error", "The administrator lets operators register no token type."));
    }
    for ty in enrollable {
        let serial = if ty.generate_secret {
            "<p>A new secret is generated; the user scans its QR code with the authenticator app.</p>".to_string()
        } else {
            format!(
                "<label>Serial of a token in stock <input name=\"serial\" required id=\"serial-{}\"></label>",
                esc(&ty.id)
            )
        };
        body.push_str(&format!(
            "<form method=\"post\" class=\"stack\" id=\"enroll-{}\"><h3>{}</h3>{}<input type=\"hidden\" name=\"type\" value=\"{}\">{serial}<button type=\"submit\" id=\"enroll-{}-submit\">ADD NEW TOKEN</button></form>",
            esc(&ty.id),
            esc(&ty.label),
            csrf_field(&signed.session.csrf),
            esc(&ty.id),
            esc(&ty.id)
        ));
    }
    signed.page("users", &format!("ADD NEW TOKEN for {name}"), &body)
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    serial: String,
}

pub async fn add(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path(name): Path<String>,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    let serial = form.serial.trim();
    let serial = (!serial.is_empty()).then_some(serial);
    let enrollment = match console.service.enroll(&signed.actor(), &name, form.r#type.trim(), serial).await {
        Ok(enrollment) => enrollment,
        Err(e) => {
            let message = notice("error", &format!("No token was added: {e}."));
            return detail_page(&console, &signed, &name, &message).await;
        }
    };
    let serial = enrollment.token.serial.clone();
    let Some(uri) = enrollment.otpauth_uri else {
        let message = notice("ok", &format!("Token {serial} was added to {name}."));
        return detail_page(&console, &signed, &name, &message).await;
    };
    // Shown this once: the page holds the secret and must not be cached.
    let body = format!(
        "{}<p>Scan this code with the authenticator app. It is shown only now.</p>{}\
<p><code class=\"uri\" id=\"otpauth-uri\">{}</code></p>\
<form method=\"post\" action=\"/users/{}/confirm\" class=\"stack\" id=\"confirm-form\">{}<input type=\"hidden\" name=\"serial\" value=\"{}\">\
<label>First code from the app <input name=\"otp\" inputmode=\"numeric\" autocomplete=\"off\" required></label><button type=\"submit\" id=\"confirm\">CONFIRM</button></form>",
        notice("ok", &format!("Token {serial} was created for {name}.")),
        qr_svg(&uri),
        esc(&uri),
        segment(&name),
        csrf_field(&signed.session.csrf),
        esc(&serial)
    );
    let mut response = signed.page("users", "ADD NEW TOKEN", &body);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    otp: String,
}

/// Checks the first code of a new app token with the same OTP check as
/// RADIUS (the code is spent).
pub async fn confirm(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path(name): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    let message = match console.service.authenticate(&signed.actor(), &name, form.otp.trim()).await {
        Ok(Decision::Accept { serial }) if serial == form.serial => {
            notice("ok", &format!("The app works: token {serial} is enrolled and confirmed."))
        }
        Ok(_) => notice(
            "error",
            &format!(
                "That code was not accepted for token {}; check the app's clock and try again from the token's menu, or delete the token.",
                form.serial
            ),
        ),
        Err(e) => notice("error", &e.to_string()),
    };
    detail_page(&console, &signed, &name, &message).await
}

/// The QR code of `text` as inline SVG (no script, no outside resource).
fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return notice("error", "The URI is too long for a QR code; type the URI into the app instead.");
    };
    let width = code.width();
    let quiet = 4;
    let size = width + 2 * quiet;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            path.push_str(&format!("M{},{}h1v1h-1z", i % width + quiet, i / width + quiet));
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"qr\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>",
        size * 6,
        size * 6
    )
}
