//! What the LDAP engine says about a failure: names of LDAP result codes
//! (Active Directory's among them), which codes make a connection not worth
//! keeping, AD's and Samba's "bind first" refusal, and the likely cause of a
//! certificate name mismatch.

use ldap3::{LdapError, LdapResult};

pub(super) fn describe(e: &LdapError) -> String {
    match e {
        LdapError::Timeout { .. } => "no answer in time".into(),
        LdapError::LdapResult { result } => describe_result(result),
        other => other.to_string(),
    }
}

pub(super) fn describe_result(result: &LdapResult) -> String {
    let name = match result.rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        13 => "confidentialityRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "error",
    };
    if result.text.is_empty() {
        format!("{name} ({})", result.rc)
    } else {
        format!("{name} ({}): {}", result.rc, result.text)
    }
}

/// Whether an operationsError's text is AD's or Samba's "bind first".
pub(super) fn refuses_anonymous(text: &str) -> bool {
    text.starts_with("000004DC") || text.starts_with("00002020")
}

/// Result codes after which a connection is not worth keeping.
pub(super) fn connection_trouble(rc: u32) -> bool {
    matches!(rc, 1 | 2 | 51 | 52 | 80)
}

/// Adds the likely cause to a certificate name mismatch: radotp (rustls)
/// reads only the subjectAltName, never the CN, where OpenSSL-based tools
/// such as `ldapsearch` still fall back to the CN.
pub(super) fn explain_tls(reason: &str, url: &str) -> String {
    if !reason.contains("NotValidForName") {
        return reason.to_string();
    }
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    };
    format!(
        "{reason}: the certificate has no subjectAltName for {host} (a CN is not used; \
         see docs/ldap.md, TLS)"
    )
}
