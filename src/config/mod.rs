//! Configuration: the YAML file, its defaults, and its validation.
//!
//! Parsing rejects unknown keys and badly typed values with the key path
//! (`radius.clients[1].address: ...`). [`Config::load`] then checks what
//! types cannot (unique names, secret sources, digits ranges...) and reports
//! every problem at once, each with its path. Paths in the file are taken
//! relative to the working directory of the daemon.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::otp::{MAX_DIGITS, MIN_DIGITS};
use crate::model::token::TokenType;
use crate::secret::Secret;

mod admin;
mod authorization;
mod directory;
mod radius;
mod store;
#[cfg(test)]
mod tests;
mod web;
mod yaml_paths;

pub use admin::*;
pub use authorization::*;
pub use directory::*;
pub use radius::*;
pub use store::*;
pub use web::*;
use yaml_paths::{join_path, strip_yaml_path};

/// Where `radotpd` looks without `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/radotp/radotp.yaml";
/// Where `radotpctl` looks without `--socket` or `RADOTP_SOCKET`.
pub const DEFAULT_SOCKET_PATH: &str = "/run/radotp/admin.sock";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub radius: RadiusConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    pub store: StoreConfig,
    /// This node's name (audit, logs, status), for several nodes on one store.
    #[serde(default)]
    pub node: NodeConfig,
    pub admin: AdminConfig,
    pub directory: DirectoryConfig,
    pub token_types: Vec<TokenType>,
    #[serde(default)]
    pub enroll: EnrollConfig,
    /// Optional Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// How much of the audit log is kept.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Reply attributes from directory groups (`authorization.rules`).
    #[serde(default)]
    pub authorization: AuthorizationConfig,
    /// The web console; off when absent.
    #[serde(default)]
    pub web: Option<WebConfig>,
}

/// `audit`: retention of the audit log. Whichever limit is reached first
/// applies; what remains still verifies (`radotpctl audit verify`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries older than this many days are removed; 0 keeps them by age.
    #[serde(default = "default_audit_retention_days")]
    pub retention_days: u64,
    /// At most this many entries are kept (the newest); 0: no limit by count.
    #[serde(default = "default_audit_max_entries")]
    pub max_entries: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { retention_days: default_audit_retention_days(), max_entries: default_audit_max_entries() }
    }
}

impl AuditConfig {
    pub fn retention(&self) -> crate::model::audit::Retention {
        crate::model::audit::Retention {
            max_age_seconds: (self.retention_days > 0).then(|| self.retention_days.saturating_mul(86_400)),
            max_entries: (self.max_entries > 0).then_some(self.max_entries),
        }
    }
}

fn default_audit_retention_days() -> u64 {
    365
}

fn default_audit_max_entries() -> u64 {
    1_000_000
}

/// `metrics`: the Prometheus text endpoint, off unless `listen` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// TCP address for `GET /metrics`, e.g. `127.0.0.1:9812`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// How enrolled authenticator-app tokens are labelled in their `otpauth://` URI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollConfig {
    /// Shown by authenticator apps as the service name.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Account label; `{user}` and `{serial}` are replaced.
    #[serde(default = "default_account_label")]
    pub account_label: String,
}

impl Default for EnrollConfig {
    fn default() -> Self {
        EnrollConfig { issuer: default_issuer(), account_label: default_account_label() }
    }
}

fn default_issuer() -> String {
    "radotp".into()
}
fn default_account_label() -> String {
    "{user}".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `radotp=debug`; `RUST_LOG` wins.
    #[serde(default)]
    pub level: Option<String>,
}

fn default_true() -> bool {
    true
}
fn default_duplicate_cache_seconds() -> u64 {
    30
}
fn default_duplicate_cache_entries() -> usize {
    65_536
}
fn default_max_in_flight() -> usize {
    1024
}
fn default_receive_buffer_bytes() -> usize {
    4 << 20
}
fn default_max_failures() -> u32 {
    10
}
fn default_hotp_window() -> u64 {
    10
}
fn default_totp_window() -> u64 {
    1
}
fn default_reset_window() -> u64 {
    1000
}
fn default_challenge_timeout_seconds() -> u64 {
    120
}
fn default_challenge_max_attempts() -> u32 {
    3
}
fn default_challenge_prompt() -> String {
    "Enter your one-time password".into()
}
fn default_totp_reset_window() -> u64 {
    240
}
fn default_admin_request_timeout_seconds() -> u64 {
    60
}
fn default_first_use_window() -> u64 {
    100
}
fn default_totp_first_use_window() -> u64 {
    10
}
fn default_cache_mib() -> u64 {
    16
}
fn default_user_filter() -> String {
    "(&(objectClass=inetOrgPerson)(uid={username}))".into()
}
fn default_name_attribute() -> String {
    "uid".into()
}
fn default_display_name_attribute() -> Option<String> {
    Some("cn".into())
}
fn default_email_attribute() -> Option<String> {
    Some("mail".into())
}
/// One problem found in a configuration, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

impl ConfigError {
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Read { reason, .. } => vec![Problem { path: String::new(), message: reason.clone() }],
            ConfigError::Invalid { problems } => problems.clone(),
        }
    }
}
impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        let config = Config::parse(&text)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses YAML text; errors name the key path.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            let message = strip_yaml_path(&err.into_inner().to_string());
            let (path, message) = join_path(&path, &message);
            ConfigError::Invalid { problems: vec![Problem { path, message }] }
        })
    }

    /// Checks what the types cannot; reports every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| problems.push(Problem { path, message });

        if self.radius.listen.is_empty() {
            problem("radius.listen".into(), "at least one address is needed".into());
        }
        for (i, j) in self.radius.overlapping_listeners() {
            let (a, b) = (self.radius.listen[i], self.radius.listen[j]);
            problem(
                format!("radius.listen[{j}]"),
                format!("{b} overlaps radius.listen[{i}] ({a}): both cannot be bound"),
            );
        }
        if self.radius.max_in_flight == 0 {
            problem("radius.max_in_flight".into(), "must be at least 1".into());
        }
        if !(1..=300).contains(&self.radius.duplicate_cache_seconds) {
            problem("radius.duplicate_cache_seconds".into(), "must be between 1 and 300".into());
        }
        let mut client_names = HashSet::new();
        for (i, client) in self.radius.clients.iter().enumerate() {
            let at = format!("radius.clients[{i}]");
            if client.name.trim().is_empty() {
                problem(format!("{at}.name"), "must not be empty".into());
            } else if !client_names.insert(client.name.as_str()) {
                problem(format!("{at}.name"), format!("{:?} is used by another client", client.name));
            }
            if let Err(message) = client.read_secret() {
                let key = if client.secret_file.is_some() { "secret_file" } else { "secret" };
                problem(format!("{at}.{key}"), message);
            }
            let mut identifiers = HashSet::new();
            for (j, rule) in client.nas.iter().enumerate() {
                if rule.identifier.is_empty() || rule.identifier.len() > 253 {
                    problem(format!("{at}.nas[{j}].identifier"), "must be 1 to 253 bytes".into());
                } else if !identifiers.insert(rule.identifier.as_str()) {
                    problem(format!("{at}.nas[{j}].identifier"), format!("{:?} appears twice", rule.identifier));
                }
            }
        }
        for (i, client) in self.radius.clients.iter().enumerate() {
            for (j, other) in self.radius.clients.iter().enumerate().skip(i + 1) {
                if client.address == other.address {
                    problem(
                        format!("radius.clients[{j}].address"),
                        format!("{} is also the address of radius.clients[{i}]", other.address),
                    );
                }
            }
        }
        let auth = &self.auth;
        if auth.max_failures == 0 {
            problem("auth.max_failures".into(), "must be at least 1".into());
        }
        if auth.lockout_seconds > MAX_LOCKOUT_SECONDS {
            problem(
                "auth.lockout_seconds".into(),
                format!(
                    "must be at most {MAX_LOCKOUT_SECONDS} (a year); 0 keeps tokens locked until an operator unlocks them"
                ),
            );
        }
        if auth.failure_decay_seconds > MAX_LOCKOUT_SECONDS {
            problem(
                "auth.failure_decay_seconds".into(),
                format!("must be at most {MAX_LOCKOUT_SECONDS} (a year); 0 never forgets a failure"),
            );
        }
        if auth.hotp_window > 1000 {
            problem("auth.hotp_window".into(), "must be at most 1000".into());
        }
        if auth.totp_window > 100 {
            problem("auth.totp_window".into(), "must be at most 100".into());
        }
        if !(1..=100_000).contains(&auth.reset_window) {
            problem("auth.reset_window".into(), "must be between 1 and 100000".into());
        }
        let needs_passwords = |mode: AuthMode| mode != AuthMode::Otp;
        if matches!(self.directory, DirectoryConfig::Static { .. }) {
            if needs_passwords(auth.mode) {
                problem(
                    "auth.mode".into(),
                    format!("{} checks directory passwords: it needs directory.kind: ldap", auth.mode.as_str()),
                );
            }
            for (i, client) in self.radius.clients.iter().enumerate() {
                if let Some(mode) = client.mode.filter(|m| needs_passwords(*m)) {
                    problem(
                        format!("radius.clients[{i}].mode"),
                        format!("{} checks directory passwords: it needs directory.kind: ldap", mode.as_str()),
                    );
                }
                for (j, rule) in client.nas.iter().enumerate() {
                    if let Some(mode) = rule.mode.filter(|m| needs_passwords(*m)) {
                        problem(
                            format!("radius.clients[{i}].nas[{j}].mode"),
                            format!("{} checks directory passwords: it needs directory.kind: ldap", mode.as_str()),
                        );
                    }
                }
            }
        }
        if !(1..=3600).contains(&auth.challenge_timeout_seconds) {
            problem("auth.challenge_timeout_seconds".into(), "must be between 1 and 3600".into());
        }
        if !(1..=10).contains(&auth.challenge_max_attempts) {
            problem("auth.challenge_max_attempts".into(), "must be between 1 and 10".into());
        }
        if auth.challenge_prompt.is_empty() || auth.challenge_prompt.len() > 253 {
            problem("auth.challenge_prompt".into(), "must be 1 to 253 bytes".into());
        }
        if !(1..=10_000).contains(&auth.totp_reset_window) {
            problem("auth.totp_reset_window".into(), "must be between 1 and 10000".into());
        }
        if auth.first_use_window > 10_000 {
            problem("auth.first_use_window".into(), "must be at most 10000".into());
        }
        if auth.totp_first_use_window > 1000 {
            problem("auth.totp_first_use_window".into(), "must be at most 1000".into());
        }
        if !(10..=60_000).contains(&self.store.checkpoint_ms) {
            problem("store.checkpoint_ms".into(), "must be between 10 and 60000".into());
        }
        if self.store.cache_mib == 0 {
            problem("store.cache_mib".into(), "must be at least 1".into());
        }
        match (self.store.kind, &self.store.postgres) {
            (StoreKind::Sled, _) if self.store.path.as_os_str().is_empty() => {
                problem("store.path".into(), "is required with store.kind sled".into());
            }
            (StoreKind::Postgres, None) => {
                problem("store.postgres".into(), "is required with store.kind postgres".into());
            }
            (StoreKind::Postgres, Some(pg)) => {
                if let Err(e) = pg.url.parse::<tokio_postgres::Config>() {
                    problem("store.postgres.url".into(), format!("not a PostgreSQL URL: {e}"));
                }
                if let Err(message) = pg.read_password() {
                    problem("store.postgres.password_file".into(), message);
                }
                if !(1..=1000).contains(&pg.pool_size) {
                    problem("store.postgres.pool_size".into(), "must be between 1 and 1000".into());
                }
                if !(100..=60_000).contains(&pg.connect_timeout_ms) {
                    problem("store.postgres.connect_timeout_ms".into(), "must be between 100 and 60000".into());
                }
                if !(100..=60_000).contains(&pg.statement_timeout_ms) {
                    problem("store.postgres.statement_timeout_ms".into(), "must be between 100 and 60000".into());
                }
            }
            _ => {}
        }
        if let Some(name) = &self.node.name {
            if name.is_empty()
                || name.len() > 64
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                problem("node.name".into(), "must be 1 to 64 letters, digits, '-', '_' or '.'".into());
            }
        }
        if self.admin.socket.as_os_str().is_empty() {
            problem("admin.socket".into(), "must not be empty".into());
        }
        if !(1..=3600).contains(&self.admin.request_timeout_seconds) {
            problem("admin.request_timeout_seconds".into(), "must be between 1 and 3600".into());
        }
        // A group that does not exist gives nobody access: a typo, refused
        // wherever it is written.
        let roles = &self.admin.roles;
        let group_lists = [
            ("admin.allowed_groups", &self.admin.allowed_groups),
            ("admin.roles.operator.groups", &roles.operator.groups),
            ("admin.roles.admin.groups", &roles.admin.groups),
        ];
        for (key, groups) in group_lists {
            for (i, group) in groups.iter().enumerate() {
                if resolve_group(group).is_none() {
                    problem(format!("{key}[{i}]"), format!("no group called {group:?}"));
                }
            }
        }
        if let Some(group) = self.admin.socket_group.as_deref().filter(|g| resolve_group(g).is_none()) {
            problem("admin.socket_group".into(), format!("no group called {group:?}"));
        }
        let mode = self.admin.socket_mode;
        if mode.0 & 0o007 != 0 {
            problem(
                "admin.socket_mode".into(),
                format!("{mode} lets every local user open the socket; give access by group (admin.socket_group)"),
            );
        } else if mode.0 & 0o600 != 0o600 {
            problem("admin.socket_mode".into(), format!("{mode} must let the daemon's user read and write (0600)"));
        }
        match &self.directory {
            DirectoryConfig::Static { users } => {
                let mut names = HashSet::new();
                for (i, user) in users.iter().enumerate() {
                    if !crate::model::token::valid_user_name(&user.name) {
                        problem(format!("directory.users[{i}].name"), "must be 1 to 256 printable characters".into());
                    } else if !names.insert(user.name.as_str()) {
                        problem(format!("directory.users[{i}].name"), format!("{:?} appears twice", user.name));
                    }
                }
            }
            DirectoryConfig::Ldap(ldap) => ldap.validate(&mut problem),
        }
        if self.token_types.is_empty() {
            problem("token_types".into(), "define at least one token type".into());
        }
        let mut type_ids = HashSet::new();
        for (i, ty) in self.token_types.iter().enumerate() {
            let at = format!("token_types[{i}]");
            if ty.id.is_empty() || !ty.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                problem(format!("{at}.id"), "use letters, digits, '-' and '_'".into());
            } else if !type_ids.insert(ty.id.as_str()) {
                problem(format!("{at}.id"), format!("{:?} is defined twice", ty.id));
            }
            if !(MIN_DIGITS..=MAX_DIGITS).contains(&ty.digits) {
                problem(format!("{at}.digits"), format!("must be {MIN_DIGITS} to {MAX_DIGITS}"));
            }
            if !(1..=3600).contains(&ty.period) {
                problem(format!("{at}.period"), "must be 1 to 3600 seconds".into());
            }
        }
        if self.enroll.issuer.is_empty() || self.enroll.issuer.contains(':') {
            problem("enroll.issuer".into(), "must be non-empty and without ':'".into());
        }
        if self.enroll.account_label.is_empty() {
            problem("enroll.account_label".into(), "must not be empty".into());
        }
        if let Some(web) = &self.web {
            web.validate(&self.directory, &mut problem);
        }
        if let Some(level) = &self.log.level {
            if tracing_subscriber::EnvFilter::try_new(level).is_err() {
                problem("log.level".into(), format!("{level:?} is not a log filter"));
            }
        }
        for (i, client) in self.radius.clients.iter().enumerate() {
            let policies = std::iter::once((format!("radius.clients[{i}]"), &client.allowed_token_types)).chain(
                client
                    .nas
                    .iter()
                    .enumerate()
                    .map(|(j, n)| (format!("radius.clients[{i}].nas[{j}]"), &n.allowed_token_types)),
            );
            for (at, types) in policies {
                for (k, id) in types.iter().flatten().enumerate() {
                    if self.token_type(id).is_none() {
                        problem(format!("{at}.allowed_token_types[{k}]"), format!("no token type is called {id:?}"));
                    }
                }
            }
        }
        match self.authorization() {
            Err(e) => {
                for p in e.problems() {
                    problem(p.path, p.message);
                }
            }
            Ok(authorization) => {
                if let DirectoryConfig::Ldap(ldap) = &self.directory {
                    let groups_used =
                        authorization.needs_directory()
                            || self.radius.clients.iter().any(|c| {
                                c.allowed_groups.is_some() || c.nas.iter().any(|n| n.allowed_groups.is_some())
                            });
                    if ldap.nested_groups && ldap.required_group.is_none() && !groups_used {
                        problem(
                            "directory.nested_groups".into(),
                            "needs required_group, or groups in authorization.rules or radius.clients[].allowed_groups"
                                .into(),
                        );
                    }
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { problems }) }
    }

    /// The clients with their secrets read from the file or the files they name.
    pub fn radius_clients(&self) -> Result<Vec<RadiusClient>, ConfigError> {
        let mut clients = Vec::new();
        let mut problems = Vec::new();
        for (i, client) in self.radius.clients.iter().enumerate() {
            match client.read_secret() {
                Ok(secret) => clients.push(RadiusClient {
                    name: client.name.clone(),
                    network: client.address,
                    secret,
                    require_message_authenticator: client.require_message_authenticator,
                    mode: client.mode,
                    nas: client.nas.clone(),
                    access: client.access(),
                }),
                Err(message) => {
                    let key = if client.secret_file.is_some() { "secret_file" } else { "secret" };
                    problems.push(Problem { path: format!("radius.clients[{i}].{key}"), message })
                }
            }
        }
        if problems.is_empty() { Ok(clients) } else { Err(ConfigError::Invalid { problems }) }
    }

    /// What is accepted but weak: shared secrets shorter than
    /// [`RECOMMENDED_SECRET_BYTES`]. Logged at start and reload; never the secret itself.
    pub fn warnings(&self) -> Vec<Problem> {
        let mut warnings = Vec::new();
        for (i, client) in self.radius.clients.iter().enumerate() {
            if let Ok(secret) = client.read_secret() {
                if secret.len() < RECOMMENDED_SECRET_BYTES {
                    let key = if client.secret_file.is_some() { "secret_file" } else { "secret" };
                    warnings.push(Problem {
                        path: format!("radius.clients[{i}].{key}"),
                        message: format!(
                            "the shared secret of client {:?} is only {} bytes; RFC 2865 section 3 recommends at least {RECOMMENDED_SECRET_BYTES}, and a short secret lets whoever captures a request guess it offline (and then read the passwords)",
                            client.name,
                            secret.len()
                        ),
                    });
                }
            }
            if client.address.prefix_len() == 0
                && client.require_message_authenticator != radius::RequireMessageAuthenticator::Always
            {
                warnings.push(Problem {
                    path: format!("radius.clients[{i}].require_message_authenticator"),
                    message: format!(
                        "client {:?} is every address ({}) and does not always require Message-Authenticator: requests from anywhere without one are open to BlastRADIUS-style forgeries; set it to true, or narrow the address",
                        client.name, client.address
                    ),
                });
            }
        }
        // The same warnings the daemon logs at start, so that --check-config
        // and a reload's reply show them too.
        if let DirectoryConfig::Ldap(ldap) = &self.directory {
            if !ldap.tls_verify {
                warnings.push(Problem {
                    path: "directory.tls_verify".into(),
                    message: "false: LDAP server certificates are NOT verified; anyone between radotp and the directory can read bind passwords".into(),
                });
            }
            for url in ldap.cleartext_urls() {
                warnings.push(Problem {
                    path: "directory.urls".into(),
                    message: format!("{url} is neither ldaps:// nor StartTLS: passwords cross the network in clear"),
                });
            }
        }
        warnings
    }

    pub fn token_type(&self, id: &str) -> Option<&TokenType> {
        self.token_types.iter().find(|t| t.id == id)
    }

    /// The gid of `admin.socket_group`, if one is set (and exists).
    pub fn socket_gid(&self) -> Option<u32> {
        self.admin.socket_group.as_deref().and_then(resolve_group)
    }

    /// Numeric gids of `admin.allowed_groups`.
    pub fn allowed_gids(&self) -> Vec<u32> {
        self.admin.allowed_groups.iter().filter_map(|g| resolve_group(g)).collect()
    }
}
/// Longest `auth.lockout_seconds`: a year (a larger value is more likely a unit mistake).
pub const MAX_LOCKOUT_SECONDS: u64 = 365 * 86_400;

/// Shortest RADIUS shared secret accepted. A captured request with
/// Message-Authenticator is an offline test for guesses of the secret, and
/// the secret hides the passwords: a short one gives them away.
pub const MIN_SECRET_BYTES: usize = 8;
/// Shorter secrets are accepted with a warning (RFC 2865 section 3 asks for at least 16 octets).
pub const RECOMMENDED_SECRET_BYTES: usize = 16;
/// Numeric gids of group names (or numbers); unknown names are left out.
pub fn resolve_groups(groups: &[String]) -> Vec<u32> {
    groups.iter().filter_map(|g| resolve_group(g)).collect()
}

fn resolve_group(group: &str) -> Option<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Some(gid);
    }
    nix::unistd::Group::from_name(group).ok().flatten().map(|g| g.gid.as_raw())
}
