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

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::directory::DirectoryUser;
use crate::otp::{MAX_DIGITS, MIN_DIGITS};
use crate::secret::Secret;
use crate::token::TokenType;

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusConfig {
    /// UDP addresses to listen on.
    pub listen: Vec<SocketAddr>,
    pub clients: Vec<ClientConfig>,
    /// How long answers stay in the duplicate cache (RFC 5080), in seconds.
    #[serde(default = "default_duplicate_cache_seconds")]
    pub duplicate_cache_seconds: u64,
    /// Most answers kept in the duplicate cache.
    #[serde(default = "default_duplicate_cache_entries")]
    pub duplicate_cache_entries: usize,
    /// Requests processed at once; more are dropped (the NAS retries).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// SO_RCVBUF asked for each UDP socket, in bytes.
    #[serde(default = "default_receive_buffer_bytes")]
    pub receive_buffer_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub name: String,
    #[serde(deserialize_with = "ip_or_cidr")]
    pub address: IpNet,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Consecutive failed OTPs that lock a token.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// HOTP look-ahead: counters accepted past the expected one.
    #[serde(default = "default_hotp_window")]
    pub hotp_window: u64,
    /// TOTP steps accepted either side of now.
    #[serde(default = "default_totp_window")]
    pub totp_window: u64,
    /// Counters searched by the two-OTP reset.
    #[serde(default = "default_reset_window")]
    pub reset_window: u64,
    /// TOTP steps searched either side of now by the two-OTP reset (drift search).
    #[serde(default = "default_totp_reset_window")]
    pub totp_reset_window: u64,
    /// HOTP look-ahead for a token's first OTP (never used so far): a new
    /// hardware token's button may have been pressed before it was handed out.
    #[serde(default = "default_first_use_window")]
    pub first_use_window: u64,
    /// TOTP steps accepted either side of now for a token's first OTP: a new
    /// token's clock may have drifted on the shelf.
    #[serde(default = "default_totp_first_use_window")]
    pub totp_first_use_window: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_failures: default_max_failures(),
            hotp_window: default_hotp_window(),
            totp_window: default_totp_window(),
            reset_window: default_reset_window(),
            totp_reset_window: default_totp_reset_window(),
            first_use_window: default_first_use_window(),
            totp_first_use_window: default_totp_first_use_window(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub key_file: PathBuf,
    /// Page cache of the embedded store, in MiB.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub socket: PathBuf,
    /// Besides root and the daemon's own uid.
    #[serde(default)]
    pub allowed_uids: Vec<u32>,
    /// Group names or numeric gids.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Who gets which role. Peers in `allowed_uids`/`allowed_groups`, root and
    /// the daemon's own uid are admins.
    #[serde(default)]
    pub roles: RolesConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    /// Day-to-day token handling: list, show, assign, reassign, unassign,
    /// enroll, reset, enable, disable, unlock, audit.
    #[serde(default)]
    pub operator: RoleMembers,
    /// Everything, including import and delete.
    #[serde(default)]
    pub admin: RoleMembers,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMembers {
    #[serde(default)]
    pub uids: Vec<u32>,
    /// Group names or numeric gids.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `directory`: where users come from, chosen by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "DirectorySection")]
pub enum DirectoryConfig {
    Static { users: Vec<StaticUser> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryKind {
    Static,
}

/// The `directory` section as written: one flat mapping whose `kind` says
/// which other keys apply. (Flat rather than a serde-tagged enum, which would
/// buffer the content and lose the key path of errors inside it.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySection {
    pub kind: DirectoryKind,
    #[serde(default)]
    pub users: Option<Vec<StaticUser>>,
}

impl TryFrom<DirectorySection> for DirectoryConfig {
    type Error = String;

    fn try_from(section: DirectorySection) -> Result<Self, String> {
        match section.kind {
            DirectoryKind::Static => Ok(DirectoryConfig::Static { users: section.users.unwrap_or_default() }),
        }
    }
}

/// serde_yaml starts some messages with its own (less precise) path; drop it.
fn strip_yaml_path(message: &str) -> String {
    match message.split_once(": ") {
        Some((head, rest)) if looks_like_path(head) && !head.is_empty() => rest.to_string(),
        _ => message.to_string(),
    }
}

fn looks_like_path(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_alphanumeric() || "_.[]-".contains(c))
}

/// Joins the outer path with a path that a nested deserializer put in front of its message.
fn join_path(outer: &str, message: &str) -> (String, String) {
    let outer = if outer == "." { "" } else { outer };
    let (inner, rest) = match message.split_once(": ") {
        Some((head, rest)) if looks_like_path(head) && !head.is_empty() && !head.contains("..") => (head, rest),
        _ => ("", message),
    };
    let path = match (outer, inner) {
        ("", "") => "(top level)".to_string(),
        (o, "") => o.to_string(),
        ("", i) => i.to_string(),
        (o, i) if i.starts_with('[') => format!("{o}{i}"),
        (o, i) => format!("{o}.{i}"),
    };
    (path, rest.to_string())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticUser {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl From<&StaticUser> for DirectoryUser {
    fn from(u: &StaticUser) -> Self {
        DirectoryUser { name: u.name.clone(), display_name: u.display_name.clone(), email: u.email.clone(), dn: None }
    }
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
fn default_totp_reset_window() -> u64 {
    240
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

fn ip_or_cidr<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let text = String::deserialize(d)?;
    parse_ip_or_cidr(&text).map_err(serde::de::Error::custom)
}

fn parse_ip_or_cidr(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(format!("{text:?} has host bits set; did you mean {}?", net.trunc()));
        }
        return Ok(net);
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| format!("{text:?} is neither an IP address nor a CIDR network"))
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

/// A RADIUS client with its secret read.
#[derive(Debug, Clone)]
pub struct RadiusClient {
    pub name: String,
    pub network: IpNet,
    pub secret: Secret,
    pub require_message_authenticator: bool,
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
        if auth.hotp_window > 1000 {
            problem("auth.hotp_window".into(), "must be at most 1000".into());
        }
        if auth.totp_window > 100 {
            problem("auth.totp_window".into(), "must be at most 100".into());
        }
        if !(1..=100_000).contains(&auth.reset_window) {
            problem("auth.reset_window".into(), "must be between 1 and 100000".into());
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
        if self.store.cache_mib == 0 {
            problem("store.cache_mib".into(), "must be at least 1".into());
        }
        if self.admin.socket.as_os_str().is_empty() {
            problem("admin.socket".into(), "must not be empty".into());
        }
        for (i, group) in self.admin.allowed_groups.iter().enumerate() {
            if resolve_group(group).is_none() {
                problem(format!("admin.allowed_groups[{i}]"), format!("no group called {group:?}"));
            }
        }
        match &self.directory {
            DirectoryConfig::Static { users } => {
                let mut names = HashSet::new();
                for (i, user) in users.iter().enumerate() {
                    if !crate::token::valid_user_name(&user.name) {
                        problem(format!("directory.users[{i}].name"), "must be 1 to 256 printable characters".into());
                    } else if !names.insert(user.name.as_str()) {
                        problem(format!("directory.users[{i}].name"), format!("{:?} appears twice", user.name));
                    }
                }
            }
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
        if let Some(level) = &self.log.level {
            if tracing_subscriber::EnvFilter::try_new(level).is_err() {
                problem("log.level".into(), format!("{level:?} is not a log filter"));
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
                }),
                Err(message) => problems.push(Problem { path: format!("radius.clients[{i}].secret"), message }),
            }
        }
        if problems.is_empty() { Ok(clients) } else { Err(ConfigError::Invalid { problems }) }
    }

    pub fn token_type(&self, id: &str) -> Option<&TokenType> {
        self.token_types.iter().find(|t| t.id == id)
    }

    /// Numeric gids of `admin.allowed_groups`.
    pub fn allowed_gids(&self) -> Vec<u32> {
        self.admin.allowed_groups.iter().filter_map(|g| resolve_group(g)).collect()
    }
}

impl ClientConfig {
    fn read_secret(&self) -> Result<Secret, String> {
        let secret = match (&self.secret, &self.secret_file) {
            (Some(_), Some(_)) => return Err("give secret or secret_file, not both".into()),
            (None, None) => return Err("a secret (or secret_file) is required".into()),
            (Some(text), None) => Secret::from(text.as_str()),
            (None, Some(path)) => {
                crate::crypto::check_private(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
                Secret::from(text.trim_end_matches(['\n', '\r']))
            }
        };
        if secret.is_empty() {
            return Err("the shared secret must not be empty".into());
        }
        if secret.len() > 128 {
            return Err("the shared secret must be at most 128 bytes".into());
        }
        Ok(secret)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
radius:
  listen: ["127.0.0.1:1812"]
  clients:
    - { name: a, address: 127.0.0.1, secret: s }
    - { name: b, address: 10.0.0.0/8, secret: s }
store: { path: ./db, key_file: ./key }
admin: { socket: ./admin.sock }
directory: { kind: static, users: [ { name: alice } ] }
token_types:
  - { id: hw-hotp, label: "HOTP", algorithm: hotp }
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let config = Config::parse(MINIMAL).unwrap();
        config.validate().unwrap();
        assert_eq!(config.auth.max_failures, 10);
        assert_eq!(config.auth.hotp_window, 10);
        assert_eq!((config.auth.first_use_window, config.auth.totp_first_use_window), (100, 10));
        assert!(config.radius.clients[0].require_message_authenticator);
        assert_eq!(config.token_types[0].digits, 6);
    }

    #[test]
    fn bad_address_names_its_key_path() {
        let text = MINIMAL.replace("10.0.0.0/8", "10.0.0.300/8");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("radius.clients[1].address: "), "{err}");
    }

    #[test]
    fn unknown_key_names_its_path() {
        let text = MINIMAL.replace("admin: { socket", "admin: { sockett: x, socket");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("admin.sockett: unknown field `sockett`"), "{err}");
        let text = MINIMAL.replace("{ name: alice }", "{ name: alice, mail: x }");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("directory.users[0].mail: unknown field `mail`"), "{err}");
    }

    #[test]
    fn validation_lists_every_problem() {
        let text = MINIMAL
            .replace("{ name: b, address: 10.0.0.0/8, secret: s }", "{ name: a, address: 127.0.0.1 }")
            .replace("algorithm: hotp }", "algorithm: hotp, digits: 9 }");
        let config = Config::parse(&text).unwrap();
        let problems: Vec<String> = config.validate().unwrap_err().problems().iter().map(|p| p.path.clone()).collect();
        assert!(problems.contains(&"radius.clients[1].name".to_string()), "{problems:?}");
        assert!(problems.contains(&"radius.clients[1].secret".to_string()), "{problems:?}");
        assert!(problems.contains(&"radius.clients[1].address".to_string()), "{problems:?}");
        assert!(problems.contains(&"token_types[0].digits".to_string()), "{problems:?}");
    }

    #[test]
    fn host_bits_in_cidr_are_refused() {
        assert!(parse_ip_or_cidr("10.0.0.1/8").is_err());
        assert!(parse_ip_or_cidr("::1").is_ok());
        assert!(parse_ip_or_cidr("fd00::/8").is_ok());
    }

    #[test]
    fn shipped_configs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let config = Config::parse(&std::fs::read_to_string(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                // Secret files of production samples do not exist here; check the rest.
                if let Err(e) = config.validate() {
                    let real: Vec<_> =
                        e.problems().into_iter().filter(|p| !p.message.contains("No such file")).collect();
                    assert!(real.is_empty(), "{}: {real:?}", path.display());
                }
                seen += 1;
            }
        }
        assert!(seen >= 1);
    }
}
