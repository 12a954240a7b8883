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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(web: &str, directory: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "radius: {{ listen: [\"127.0.0.1:1812\"], clients: [] }}\nstore: {{ path: ./db, key_file: ./key }}\n\
             admin: {{ socket: ./admin.sock }}\ndirectory: {directory}\n\
             token_types: [ {{ id: hw, label: HOTP, algorithm: hotp }} ]\n{web}"
        );
        Config::parse(&text)
    }

    const LDAP: &str = "{ kind: ldap, urls: [\"ldap://127.0.0.1\"], base_dn: \"dc=example,dc=org\" }";

    fn problems(web: &str, directory: &str) -> Vec<String> {
        match config(web, directory).and_then(|c| c.validate().map(|()| c)) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(|p| format!("{}: {}", p.path, p.message)).collect(),
        }
    }

    #[test]
    fn the_console_is_off_without_a_web_section() {
        assert!(config("", LDAP).unwrap().web.is_none());
    }

    #[test]
    fn the_web_section_of_the_issue_parses_with_defaults() {
        let cert = tempfile::NamedTempFile::new().unwrap();
        let web = format!(
            "web:\n  listen: 127.0.0.1:8443\n  tls_cert_file: {p}\n  tls_key_file: {p}\n  roles:\n    \
             operator: {{ groups: [\"cn=helpdesk,ou=groups,dc=example,dc=org\"] }}\n    \
             admin:    {{ groups: [\"cn=radius-admins,ou=groups,dc=example,dc=org\"] }}\n",
            p = cert.path().display()
        );
        assert_eq!(problems(&web, LDAP), Vec::<String>::new());
        let web = config(&web, LDAP).unwrap().web.unwrap();
        assert_eq!(web.listen.port(), 8443);
        assert_eq!(web.roles.admin.groups, ["cn=radius-admins,ou=groups,dc=example,dc=org"]);
        assert_eq!((web.idle_timeout_seconds, web.session_lifetime_seconds), (900, 28_800));
        assert_eq!((web.login_max_failures, web.login_window_seconds), (5, 300));
    }

    #[test]
    fn every_problem_of_the_web_section_names_its_key() {
        let web = "web:\n  listen: 127.0.0.1:8443\n  tls_cert_file: /nonexistent.crt\n  tls_key_file: /nonexistent.key\n  \
                   roles: {}\n  idle_timeout_seconds: 5\n  login_max_failures: 0\n";
        let found = problems(web, "{ kind: static, users: [ { name: alice } ] }");
        for key in [
            "web.roles:",
            "web:",
            "web.tls_cert_file:",
            "web.tls_key_file:",
            "web.idle_timeout_seconds:",
            "web.login_max_failures:",
        ] {
            assert!(found.iter().any(|p| p.starts_with(key)), "{key} in {found:?}");
        }
        let err = config(
            "web:\n  listen: 127.0.0.1:8443\n  tls_cert_file: a\n  tls_key_file: b\n  roles: {}\n  port: 1\n",
            LDAP,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("web.port: unknown field"), "{err}");
    }
}
