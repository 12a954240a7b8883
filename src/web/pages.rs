//! Audit (the filters of `radotpctl audit`), Status (counters, store,
//! directory reachability) and Help (the helpdesk procedures, word for word).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::Console;
use super::html::{esc, notice};
use super::login::SignedIn;
use crate::model::audit::AuditQuery;

/// Entries shown when no limit is given.
const DEFAULT_AUDIT_LIMIT: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    nas: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    limit: String,
}

fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn audit_form(form: &AuditForm) -> String {
    let field = |name: &str, label: &str, value: &str| {
        format!("<label>{label} <input name=\"{name}\" value=\"{}\"></label>", esc(value))
    };
    format!(
        "<form method=\"get\" action=\"/audit\" class=\"filter\" id=\"audit-filter\">{}{}{}{}{}{}{}<button type=\"submit\" id=\"submit\">SUBMIT</button></form>",
        field("user", "User", &form.user),
        field("serial", "Serial", &form.serial),
        field("since", "Since (2h, 3d, YYYY-MM-DD)", &form.since),
        field("until", "Until", &form.until),
        field("nas", "NAS", &form.nas),
        field("from", "Calling station", &form.from),
        field("limit", "Limit", &form.limit),
    )
}

pub async fn audit(State(console): State<Arc<Console>>, signed: SignedIn, Query(form): Query<AuditForm>) -> Response {
    let mut body = audit_form(&form);
    let now = console.service.now();
    let time = |text: &str, key: &str| -> Result<Option<u64>, String> {
        match some(text) {
            None => Ok(None),
            Some(t) => {
                crate::timefmt::parse_since(&t, now).map(Some).ok_or_else(|| format!("{key}: {t:?} is not a time"))
            }
        }
    };
    let query = (|| -> Result<AuditQuery, String> {
        let limit = match some(&form.limit) {
            None => DEFAULT_AUDIT_LIMIT,
            Some(n) => n.parse::<usize>().map_err(|_| format!("limit: {n:?} is not a number"))?.clamp(1, 10_000),
        };
        Ok(AuditQuery {
            limit,
            serial: some(&form.serial),
            user: some(&form.user),
            since: time(&form.since, "since")?,
            until: time(&form.until, "until")?,
            node: None,
            nas: some(&form.nas),
            from: some(&form.from),
        })
    })();
    let entries = match query {
        Err(message) => return signed.page("audit", "Audit", &(body + &notice("error", &message))),
        Ok(query) => console.service.audit(&signed.actor(), &query).await,
    };
    match entries {
        Err(e) => body.push_str(&notice("error", &e.to_string())),
        Ok(entries) => {
            body.push_str("<table id=\"audit\"><thead><tr><th>#</th><th>Time (UTC)</th><th>Actor</th><th>Operation</th><th>User</th><th>Serial</th><th>Result</th><th>Reason</th></tr></thead><tbody>");
            for e in entries {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    e.seq,
                    crate::timefmt::format_utc(e.time),
                    esc(&e.actor.to_string()),
                    esc(&e.operation),
                    esc(e.user.as_deref().unwrap_or("")),
                    esc(e.serial.as_deref().unwrap_or("")),
                    esc(&e.result),
                    esc(e.reason.as_deref().unwrap_or(""))
                ));
            }
            body.push_str("</tbody></table>");
        }
    }
    signed.page("audit", "Audit", &body)
}

fn rows(value: &serde_json::Value, prefix: &str, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                rows(value, &name, out);
            }
        }
        other => {
            let text = match other {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
                v => v.to_string(),
            };
            out.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(prefix), esc(&text)));
        }
    }
}

pub async fn status(State(console): State<Arc<Console>>, signed: SignedIn) -> Response {
    let mut body = String::new();
    match console.service.directory_reachability().await {
        Ok(place) => body.push_str(&notice("ok", &format!("Directory reachable: {place}"))),
        Err(e) => body.push_str(&notice("error", &format!("Directory not reachable: {e}"))),
    }
    match console.service.status(&signed.actor()).await {
        Ok(report) => {
            let mut table = String::new();
            rows(&serde_json::to_value(&report).unwrap_or_default(), "", &mut table);
            body.push_str(&format!("<table id=\"status\">{table}</table>"));
        }
        Err(e) => body.push_str(&notice("error", &e.to_string())),
    }
    signed.page("status", "Status", &body)
}

/// The helpdesk procedures, as operators know them.
const HELP: &str = r#"<p>For example, if one user leaves the position to which the HW token belongs as an identity authentication method and is replaced by a new user, the HW tokens can be removed from the existing user and assigned to the new user. The token remains active during the operation. In the case of a HOTP token, it is advisable, if the operator has the space to do so - has the token in their possession - to also reset the token after enrolling the new user - see (1)Unassign token, (2)Enroll new token and (3)Reset token help pages</p>
<h3 id="unassign">1. How to unassign token from user</h3>
<ol><li>Open the Operational console, go to the <a href="/devices/hw-tokens">Devices</a> section and open the HW tokens tab.</li>
<li>Token list will be displayed.</li>
<li>Optionally use filter to find specific token - fill chosen parameters and press SUBMIT button.</li>
<li>Press the UNASSIGN FROM USER button within the chosen token from the context menu [&#8942;] and confirm the unassignment.</li>
<li>Token will be unassigned from the user so the user will no longer be able to use it for own authentication. Unassigned token is prepared for new assignment.</li></ol>
<h3 id="enroll">2. How to enroll new token</h3>
<p>Press the ADD NEW TOKEN button on the TOKENS tab on the detail of the <a href="/users">user</a> and select the token type that can be registered on behalf by operator.</p>
<p>Note: token types names are fully adjustable by administrator, so it could be different from used samples.</p>
<h3 id="reset">3. How to reset token for the user</h3>
<ol><li>Open the Operational console, go to the <a href="/devices/hw-tokens">Devices</a> section and open the HW tokens tab.</li>
<li>Token list will be displayed.</li>
<li>Optionally use filter to find specific token - fill chosen parameters and press SUBMIT button.</li>
<li>Press the RESET TOKEN button within the chosen token from the context menu [&#8942;]. Note: not all token types allow the reset action to be performed (mainly hotp types of tokens).</li>
<li>The token reset form will be opened.</li>
<li>Generate two consecutive one-time passwords (OTP) from Google authenticator or a HW token key, enter them into the form and press RESET button. Note: It is necessary to follow the order of entering both OTPs.</li>
<li>If everything is correct, you will see information about the successful reset.</li></ol>"#;

pub async fn help(signed: SignedIn) -> Response {
    signed.page("help", "Help", HELP)
}
