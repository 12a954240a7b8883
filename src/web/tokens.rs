//! Devices -> HW tokens: the token list with its filter (SUBMIT), paged by
//! serial, and each token's context menu: UNASSIGN FROM USER (confirmed),
//! assign to a user, RESET TOKEN (only for types that allow it), enable,
//! disable, unlock, and delete (admins only, types that allow it).

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::response::{Redirect, Response};
use serde::Deserialize;

use super::Console;
use super::html::{csrf_field, esc, notice, segment, url};
use super::login::{CsrfOnly, SignedIn};
use crate::domain::DomainError;
use crate::domain::console::ConsoleRole;
use crate::domain::lifecycle::TokenFilter;
use crate::model::token::{TokenState, TokenView};

/// Tokens per page.
pub const PAGE_SIZE: usize = 50;

/// The filter form's fields (all optional; empty means "any").
#[derive(Debug, Default, Deserialize)]
pub struct FilterForm {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    unassigned: Option<String>,
    #[serde(default)]
    after: String,
    /// A message to show (after an action).
    #[serde(default)]
    done: String,
}

fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl FilterForm {
    fn filter(&self) -> Result<TokenFilter, String> {
        let state = match self.state.trim() {
            "" => None,
            "active" => Some(TokenState::Active),
            "disabled" => Some(TokenState::Disabled),
            "locked" => Some(TokenState::Locked),
            other => return Err(format!("{other:?} is not a state (active, disabled, locked)")),
        };
        Ok(TokenFilter {
            serial: some(&self.serial),
            r#type: some(&self.r#type),
            user: some(&self.user),
            state,
            unassigned: self.unassigned.is_some(),
            limit: PAGE_SIZE + 1,
            after: some(&self.after),
        })
    }

    /// The query string of this filter, without the page.
    fn query(&self) -> String {
        let mut q = format!(
            "serial={}&type={}&user={}&state={}",
            url(&self.serial),
            url(&self.r#type),
            url(&self.user),
            url(&self.state)
        );
        if self.unassigned.is_some() {
            q.push_str("&unassigned=on");
        }
        q
    }
}

fn filter_form(console: &Console, form: &FilterForm) -> String {
    let settings = console.service.settings();
    let mut types = String::from("<option value=\"\">any</option>");
    for ty in &settings.token_types {
        let selected = if form.r#type == ty.id { " selected" } else { "" };
        types.push_str(&format!("<option value=\"{}\"{selected}>{}</option>", esc(&ty.id), esc(&ty.label)));
    }
    let mut states = String::from("<option value=\"\">any</option>");
    for state in ["active", "disabled", "locked"] {
        let selected = if form.state == state { " selected" } else { "" };
        states.push_str(&format!("<option value=\"{state}\"{selected}>{state}</option>"));
    }
    let checked = if form.unassigned.is_some() { " checked" } else { "" };
    format!(
        "<form method=\"get\" action=\"/devices/hw-tokens\" class=\"filter\" id=\"filter\">\
<label>Serial <input name=\"serial\" value=\"{}\"></label>\
<label>Type <select name=\"type\">{types}</select></label>\
<label>User <input name=\"user\" value=\"{}\"></label>\
<label>State <select name=\"state\">{states}</select></label>\
<label><span>Unassigned</span><input type=\"checkbox\" name=\"unassigned\"{checked}></label>\
<button type=\"submit\" id=\"submit\">SUBMIT</button></form>",
        esc(&form.serial),
        esc(&form.user)
    )
}

/// The context menu of one token.
fn context_menu(signed: &SignedIn, console: &Console, token: &TokenView) -> String {
    let settings = console.service.settings();
    let ty = settings.token_type(&token.r#type);
    let base = format!("/devices/hw-tokens/{}", segment(&token.serial));
    let id = esc(&token.serial);
    let csrf = csrf_field(&signed.session.csrf);
    let mut items = Vec::new();
    if token.user.is_some() {
        items.push(format!("<a class=\"button\" href=\"{base}/unassign\" id=\"unassign-{id}\">UNASSIGN FROM USER</a>"));
    } else {
        items.push(format!("<a class=\"button\" href=\"{base}/assign\" id=\"assign-{id}\">ASSIGN TO USER</a>"));
    }
    if ty.is_none_or(|t| t.allow_reset) {
        items.push(format!("<a class=\"button\" href=\"{base}/reset\" id=\"reset-{id}\">RESET TOKEN</a>"));
    }
    let post = |action: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{base}/{action}\" class=\"inline\">{csrf}<button type=\"submit\" id=\"{action}-{id}\">{label}</button></form>"
        )
    };
    match token.state {
        TokenState::Active => items.push(post("disable", "DISABLE")),
        TokenState::Disabled => items.push(post("enable", "ENABLE")),
        TokenState::Locked => {
            items.push(post("unlock", "UNLOCK"));
            items.push(post("disable", "DISABLE"));
        }
    }
    if signed.session.role >= ConsoleRole::Admin && ty.is_none_or(|t| t.deletable) {
        items.push(format!("<a class=\"button danger\" href=\"{base}/delete\" id=\"delete-{id}\">DELETE</a>"));
    }
    format!(
        "<details class=\"menu\" id=\"menu-{id}\"><summary title=\"Actions\">&#8942;</summary><div>{}</div></details>",
        items.join("")
    )
}

fn token_rows(signed: &SignedIn, console: &Console, tokens: &[TokenView]) -> String {
    let mut rows = String::new();
    for token in tokens {
        let user = match &token.user {
            Some(user) => format!("<a href=\"/users/{}\">{}</a>", segment(user), esc(user)),
            None => "<em>unassigned</em>".into(),
        };
        rows.push_str(&format!(
            "<tr id=\"token-{}\"><td>{}</td><td>{}</td><td>{user}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&token.serial),
            esc(&token.serial),
            esc(token.type_label.as_deref().unwrap_or(&token.r#type)),
            token.state.as_str(),
            token.fail_count,
            context_menu(signed, console, token)
        ));
    }
    format!(
        "<table id=\"tokens\"><thead><tr><th>Serial</th><th>Type</th><th>User</th><th>State</th><th>Failures</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

/// The list of the user's tokens with their menus (the user's TOKENS tab).
pub fn token_table(signed: &SignedIn, console: &Console, tokens: &[TokenView]) -> String {
    token_rows(signed, console, tokens)
}

fn tabs() -> &'static str {
    "<div class=\"tabs\"><a href=\"/devices/hw-tokens\" class=\"current\" id=\"tab-hw-tokens\">HW tokens</a></div>"
}

pub async fn list(State(console): State<Arc<Console>>, signed: SignedIn, Query(form): Query<FilterForm>) -> Response {
    let mut body = String::from(tabs());
    if let Some(done) = some(&form.done) {
        body.push_str(&notice("ok", &done));
    }
    body.push_str(&filter_form(&console, &form));
    match form.filter() {
        Err(message) => body.push_str(&notice("error", &message)),
        Ok(filter) => match console.service.list(&signed.actor(), &filter).await {
            Err(e) => body.push_str(&notice("error", &e.to_string())),
            Ok(mut tokens) => {
                let more = tokens.len() > PAGE_SIZE;
                tokens.truncate(PAGE_SIZE);
                if tokens.is_empty() {
                    body.push_str("<p id=\"empty\">No token matches.</p>");
                } else {
                    body.push_str(&token_rows(&signed, &console, &tokens));
                }
                let mut pages = String::from("<p class=\"pages\">");
                if form.after.trim().is_empty() {
                    pages.push_str("First page");
                } else {
                    pages.push_str(&format!("<a href=\"/devices/hw-tokens?{}\">First page</a>", form.query()));
                }
                if let (true, Some(last)) = (more, tokens.last()) {
                    pages.push_str(&format!(
                        " · <a href=\"/devices/hw-tokens?{}&after={}\" id=\"next\">Next page</a>",
                        form.query(),
                        url(&last.serial)
                    ));
                }
                pages.push_str("</p>");
                body.push_str(&pages);
            }
        },
    }
    signed.page("devices", "Devices", &body)
}

fn back_to_list(message: &str) -> Response {
    axum::response::IntoResponse::into_response(Redirect::to(&format!("/devices/hw-tokens?done={}", url(message))))
}

fn failed(signed: &SignedIn, title: &str, error: &DomainError) -> Response {
    signed.page(
        "devices",
        title,
        &format!("{}<p><a href=\"/devices/hw-tokens\">Back to HW tokens</a></p>", notice("error", &error.to_string())),
    )
}

pub async fn unassign_form(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path(serial): Path<String>,
) -> Response {
    let token = match console.service.show(&signed.actor(), &serial).await {
        Ok(token) => token,
        Err(e) => return failed(&signed, "UNASSIGN FROM USER", &e),
    };
    let Some(user) = token.user.as_deref() else {
        return signed.page(
            "devices",
            "UNASSIGN FROM USER",
            &notice("error", &format!("Token {serial} is not assigned to anyone.")),
        );
    };
    let body = format!(
        "<p id=\"confirm-text\">Unassign token <strong>{}</strong> from user <strong>{}</strong>? The user will no longer be able to use it; the token stays active and is ready for a new assignment.</p>\
<form method=\"post\" class=\"inline\">{}<button type=\"submit\" id=\"confirm\">Confirm</button></form> <a href=\"/devices/hw-tokens\" id=\"cancel\">Cancel</a>",
        esc(&serial),
        esc(user),
        csrf_field(&signed.session.csrf)
    );
    signed.page("devices", "UNASSIGN FROM USER", &body)
}

pub async fn unassign(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path(serial): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    match console.service.unassign(&signed.actor(), &serial).await {
        Ok(done) => back_to_list(&format!(
            "Token {serial} was unassigned from {}.",
            done.previous_owner.as_deref().unwrap_or("its user")
        )),
        Err(e) => failed(&signed, "UNASSIGN FROM USER", &e),
    }
}

#[derive(Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    q: String,
}

pub async fn assign_form(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path(serial): Path<String>,
    Query(query): Query<UserQuery>,
) -> Response {
    let mut body = format!(
        "<form method=\"get\" class=\"filter\"><label>Search the directory <input name=\"q\" value=\"{}\"></label><button type=\"submit\" id=\"search\">SEARCH</button></form>",
        esc(&query.q)
    );
    if let Some(q) = some(&query.q) {
        match console.service.search_users(&signed.actor(), &q, 50).await {
            Err(e) => body.push_str(&notice("error", &e.to_string())),
            Ok(users) if users.is_empty() => body.push_str("<p>No user matches.</p>"),
            Ok(users) => {
                body.push_str("<table id=\"users\"><tr><th>User</th><th>Name</th><th></th></tr>");
                for user in users {
                    body.push_str(&format!(
                        "<tr><td>{}</td><td>{}</td><td><form method=\"post\" class=\"inline\">{}<input type=\"hidden\" name=\"user\" value=\"{}\"><button type=\"submit\" id=\"assign-to-{}\">ASSIGN</button></form></td></tr>",
                        esc(&user.name),
                        esc(user.display_name.as_deref().unwrap_or("")),
                        csrf_field(&signed.session.csrf),
                        esc(&user.name),
                        esc(&user.name)
                    ));
                }
                body.push_str("</table>");
            }
        }
    }
    signed.page("devices", &format!("Assign token {serial} to a user"), &body)
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
}

pub async fn assign(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path(serial): Path<String>,
    Form(form): Form<AssignForm>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    match console.service.assign(&signed.actor(), &serial, form.user.trim(), false).await {
        Ok(_) => back_to_list(&format!("Token {serial} was assigned to {}.", form.user.trim())),
        Err(e) => failed(&signed, "Assign", &e),
    }
}

fn reset_page(signed: &SignedIn, serial: &str, message: &str) -> Response {
    let body = format!(
        "{message}<form method=\"post\" class=\"stack\" id=\"reset-form\">{}\
<p>Generate two consecutive one-time passwords on token <strong>{}</strong> and enter them in order.</p>\
<label>First OTP <input name=\"first_otp\" inputmode=\"numeric\" autocomplete=\"off\" required></label>\
<label>Second OTP <input name=\"second_otp\" inputmode=\"numeric\" autocomplete=\"off\" required></label>\
<button type=\"submit\" id=\"reset\">RESET</button></form><p><a href=\"/devices/hw-tokens\">Back to HW tokens</a></p>",
        csrf_field(&signed.session.csrf),
        esc(serial)
    );
    signed.page("devices", "RESET TOKEN", &body)
}

pub async fn reset_form(signed: SignedIn, Path(serial): Path<String>) -> Response {
    reset_page(&signed, &serial, "")
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    first_otp: String,
    #[serde(default)]
    second_otp: String,
}

pub async fn reset(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path(serial): Path<String>,
    Form(form): Form<ResetForm>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    let result = console.service.reset(&signed.actor(), &serial, form.first_otp.trim(), form.second_otp.trim()).await;
    let message = match result {
        Ok(done) => {
            let moved = match done.token.algorithm {
                crate::model::token::Algorithm::Hotp => format!("the counter moved by {}", done.counter_moved_by),
                crate::model::token::Algorithm::Totp => format!("clock drift {} step(s)", done.drift_steps),
            };
            notice("ok", &format!("Token {serial} was reset successfully: {moved}."))
        }
        Err(e) => notice("error", &format!("Token {serial} was not reset: {e}.")),
    };
    reset_page(&signed, &serial, &message)
}

pub async fn change_state(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path((serial, action)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    let actor = signed.actor();
    let result = match action.as_str() {
        "enable" => console.service.set_disabled(&actor, &serial, false).await,
        "disable" => console.service.set_disabled(&actor, &serial, true).await,
        "unlock" => console.service.unlock(&actor, &serial).await,
        _ => return signed.page("devices", "Not found", &notice("error", "There is no such action.")),
    };
    match result {
        Ok(token) => back_to_list(&format!("Token {serial} is now {}.", token.state.as_str())),
        Err(e) => failed(&signed, "Token", &e),
    }
}

pub async fn delete_form(signed: SignedIn, Path(serial): Path<String>) -> Response {
    if let Err(refused) = signed.require_admin() {
        return refused;
    }
    let body = format!(
        "<p>Delete token <strong>{}</strong> for good? Its seed is destroyed; it cannot be assigned again.</p>\
<form method=\"post\" class=\"inline\">{}<button type=\"submit\" class=\"danger\" id=\"confirm\">Delete</button></form> <a href=\"/devices/hw-tokens\">Cancel</a>",
        esc(&serial),
        csrf_field(&signed.session.csrf)
    );
    signed.page("devices", "DELETE", &body)
}

pub async fn delete(
    State(console): State<Arc<Console>>,
    signed: SignedIn,
    Path(serial): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf).and_then(|()| signed.require_admin()) {
        return refused;
    }
    match console.service.delete(&signed.actor(), &serial).await {
        Ok(_) => back_to_list(&format!("Token {serial} was deleted.")),
        Err(e) => failed(&signed, "DELETE", &e),
    }
}
