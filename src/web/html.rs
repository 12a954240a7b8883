//! The console's HTML: escaping, the page frame with its navigation, the
//! style sheet, and the security headers every answer carries.
//!
//! Pages are rendered on the server as plain HTML forms; there is no script
//! at all, so the Content-Security-Policy forbids every script.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::console::ConsoleRole;

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a query-string value.
pub fn url(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Escapes one path segment (a serial or a user name in a link): all but
/// letters, digits and `-._~` as `%XX` (a space must not become `+` here).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers of every answer: no script, no framing, HTTPS only, nothing cached.
pub fn security_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

/// Who is signed in, for the page frame.
pub struct Frame<'a> {
    pub user: &'a str,
    pub role: ConsoleRole,
    pub csrf: &'a str,
    /// `devices`, `users`, `audit`, `status`, `help`.
    pub section: &'a str,
}

/// A whole page: header, navigation, and `body`.
pub fn page(frame: Option<&Frame<'_>>, title: &str, body: &str) -> String {
    let nav = match frame {
        Some(f) => {
            let item = |id: &str, href: &str, label: &str| {
                let current = if f.section == id { " aria-current=\"page\" class=\"current\"" } else { "" };
                format!("<a href=\"{href}\"{current}>{label}</a>")
            };
            format!(
                "<nav>{}{}{}{}{}<span class=\"who\">{} ({})</span><form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"logout\">Log out</button></form></nav>",
                item("devices", "/devices/hw-tokens", "Devices"),
                item("users", "/users", "Users"),
                item("audit", "/audit", "Audit"),
                item("status", "/status", "Status"),
                item("help", "/help", "Help"),
                esc(f.user),
                f.role.as_str(),
                esc(f.csrf),
            )
        }
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{} - radotp Operational console</title><link rel=\"stylesheet\" href=\"/console.css\"></head><body><header><h1><a href=\"/\">Operational console</a></h1>{nav}</header><main><h2>{}</h2>\n{body}\n</main></body></html>\n",
        esc(title),
        esc(title)
    )
}

/// A page as a response with `status`.
pub fn respond(status: StatusCode, html: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// A message box: `kind` is `ok` or `error`.
pub fn notice(kind: &str, text: &str) -> String {
    format!("<p class=\"notice {kind}\" role=\"status\" id=\"notice\">{}</p>", esc(text))
}

/// A hidden CSRF field.
pub fn csrf_field(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(csrf))
}

pub const STYLE_SHEET: &str = r#"body{font-family:sans-serif;margin:0;color:#222}
header{background:#1d3557;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;align-items:center;gap:1em}
header h1{font-size:1.2em;margin:0}header a{color:#fff}
nav{display:flex;gap:1em;align-items:center;flex-wrap:wrap}nav a.current{font-weight:bold;text-decoration:underline}
nav .who{margin-left:2em;font-size:.9em}
main{padding:1em}
.tabs{display:flex;gap:.5em;border-bottom:2px solid #1d3557;margin-bottom:1em}
.tabs a{padding:.3em .8em;border:1px solid #1d3557;border-bottom:none;text-decoration:none;color:#1d3557}
.tabs a.current{background:#1d3557;color:#fff}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
form.filter{display:flex;flex-wrap:wrap;gap:.8em;align-items:end;margin-bottom:1em}
form.filter label,form.stack label{display:flex;flex-direction:column;font-size:.9em}
form.stack{display:flex;flex-direction:column;gap:.6em;max-width:24em}
form.inline{display:inline;margin:0}
button,.button{background:#1d3557;color:#fff;border:0;padding:.35em .8em;cursor:pointer;text-decoration:none;display:inline-block;font-size:.9em}
button.danger,.button.danger{background:#a4161a}
details.menu summary{cursor:pointer;list-style:none;padding:0 .5em;border:1px solid #999}
details.menu[open] div{display:flex;flex-direction:column;gap:.3em;padding:.3em;border:1px solid #999;background:#f6f6f6;position:absolute}
.notice{padding:.5em;border:1px solid}.notice.ok{background:#e6f4ea;border-color:#2b8a3e}.notice.error{background:#fdecea;border-color:#a4161a}
code.uri{word-break:break-all}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html_and_paths() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(segment("a b/zoë?"), "a%20b%2Fzo%C3%AB%3F");
        assert_eq!(url("a b&c"), "a+b%26c");
    }
}
