//! `web`: the operational console over HTTPS, off unless the section is
//! present; its roles come from directory groups.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::*;

/// `web`: where the console listens, its certificate, who gets which role,
/// and how long sessions last.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// HTTPS only, e.g. `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub tls_cert_file: PathBuf,
    /// PEM private key (PKCS#8, RSA or EC).
    pub tls_key_file: PathBuf,
    pub roles: WebRoles,
    /// A session unused this long ends.
    #[serde(default = "default_idle_timeout_seconds")]
    pub idle_timeout_seconds: u64,
    /// A session ends this long after sign-in, however busy.
    #[serde(default = "default_session_lifetime_seconds")]
    pub session_lifetime_seconds: u64,
    /// Failed sign-ins allowed per user name and per source address within
    /// `login_window_seconds`; more are refused until the window passes.
    #[serde(default = "default_login_max_failures")]
    pub login_max_failures: u32,
    #[serde(default = "default_login_window_seconds")]
    pub login_window_seconds: u64,
}

/// `web.roles`: directory groups (DNs for LDAP) of each role, tested as
/// `directory.group_membership` says.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebRoles {
    #[serde(default)]
    pub operator: WebRole,
    #[serde(default)]
    pub admin: WebRole,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebRole {
    #[serde(default)]
    pub groups: Vec<String>,
}

fn default_idle_timeout_seconds() -> u64 {
    900
}
fn default_session_lifetime_seconds() -> u64 {
    8 * 3600
}
fn default_login_max_failures() -> u32 {
    5
}
fn default_login_window_seconds() -> u64 {
    300
}

impl WebConfig {
    pub(super) fn validate(&self, directory: &DirectoryConfig, problem: &mut impl FnMut(String, String)) {
        if self.roles.operator.groups.is_empty() && self.roles.admin.groups.is_empty() {
            problem("web.roles".into(), "name at least one group for web.roles.operator or web.roles.admin".into());
        }
        if matches!(directory, DirectoryConfig::Static { .. }) {
            problem(
                "web".into(),
                "the web console needs an LDAP directory (passwords and groups); directory.kind is static".into(),
            );
        }
        for (key, path) in [("web.tls_cert_file", &self.tls_cert_file), ("web.tls_key_file", &self.tls_key_file)] {
            if !path.is_file() {
                problem(key.into(), format!("{} is not a readable file", path.display()));
            }
        }
        if !(60..=86_400).contains(&self.idle_timeout_seconds) {
            problem("web.idle_timeout_seconds".into(), "must be between 60 and 86400".into());
        }
        if !(self.idle_timeout_seconds..=7 * 86_400).contains(&self.session_lifetime_seconds) {
            problem(
                "web.session_lifetime_seconds".into(),
                "must be at least web.idle_timeout_seconds and at most 604800".into(),
            );
        }
        if self.login_max_failures == 0 {
            problem("web.login_max_failures".into(), "must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.login_window_seconds) {
            problem("web.login_window_seconds".into(), "must be between 1 and 86400".into());
        }
    }
}
