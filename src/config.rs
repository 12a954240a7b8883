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

use crate::model::otp::{MAX_DIGITS, MIN_DIGITS};
use crate::model::token::TokenType;
use crate::secret::Secret;

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
    /// This client's authentication mode, instead of `auth.mode`.
    #[serde(default)]
    pub mode: Option<AuthMode>,
}

/// How a RADIUS request proves who the user is (`auth.mode`, per client `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
pub enum AuthMode {
    /// User-Password is the OTP.
    #[default]
    #[serde(rename = "otp")]
    Otp,
    /// User-Password is the directory password followed by the OTP (or
    /// OpenVPN's `SCRV1:<base64 password>:<base64 otp>`).
    #[serde(rename = "password+otp")]
    PasswordOtp,
    /// User-Password is the directory password; an Access-Challenge asks for the OTP.
    #[serde(rename = "challenge")]
    Challenge,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Otp => "otp",
            AuthMode::PasswordOtp => "password+otp",
            AuthMode::Challenge => "challenge",
        }
    }
}

/// What RADIUS answers while the directory cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryUnavailable {
    /// An Access-Reject (the NAS may fail over to another server on its own).
    #[default]
    Reject,
    /// No answer at all, so the NAS tries its secondary server.
    NoAnswer,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Consecutive failed attempts (wrong OTPs, and wrong directory
    /// passwords unless `count_password_failures` is off) that lock a token.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// Seconds after which a token locked by failures unlocks itself, its
    /// fail count restarting at 0; 0: it stays locked until an operator
    /// unlocks it. Operator `disable` is not affected.
    #[serde(default)]
    pub lockout_seconds: u64,
    /// A wrong directory password (`password+otp`, `challenge`) counts as a
    /// failed attempt on the user's active tokens, like a wrong OTP; the OTP
    /// typed with it is not consumed.
    #[serde(default = "default_true")]
    pub count_password_failures: bool,
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
    /// `otp`, `password+otp` or `challenge` (the last two need an LDAP directory).
    #[serde(default)]
    pub mode: AuthMode,
    /// How long an Access-Challenge's State stays valid, in seconds.
    #[serde(default = "default_challenge_timeout_seconds")]
    pub challenge_timeout_seconds: u64,
    /// OTP attempts one password check buys in challenge mode.
    #[serde(default = "default_challenge_max_attempts")]
    pub challenge_max_attempts: u32,
    /// The Reply-Message of an Access-Challenge.
    #[serde(default = "default_challenge_prompt")]
    pub challenge_prompt: String,
    /// Strip `@realm` and `DOMAIN\` from RADIUS user names.
    #[serde(default)]
    pub strip_realm: bool,
    /// Compare user names without regard to case (names are lowercased).
    #[serde(default)]
    pub case_insensitive_users: bool,
    /// `reject` or `no_answer` while the directory cannot be reached.
    #[serde(default)]
    pub directory_unavailable: DirectoryUnavailable,
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
            lockout_seconds: 0,
            count_password_failures: true,
            hotp_window: default_hotp_window(),
            totp_window: default_totp_window(),
            reset_window: default_reset_window(),
            totp_reset_window: default_totp_reset_window(),
            mode: AuthMode::default(),
            challenge_timeout_seconds: default_challenge_timeout_seconds(),
            challenge_max_attempts: default_challenge_max_attempts(),
            challenge_prompt: default_challenge_prompt(),
            strip_realm: false,
            case_insensitive_users: false,
            directory_unavailable: DirectoryUnavailable::default(),
            first_use_window: default_first_use_window(),
            totp_first_use_window: default_totp_first_use_window(),
        }
    }
}

/// What "durable" means for an engine that writes to a local disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// The data is on stable storage: it survives a power cut (`fdatasync`).
    #[default]
    Full,
    /// The data is in the operating system's hands: it survives a crash or
    /// kill of radotpd, but a power cut may lose the last moments of writes.
    Process,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub key_file: PathBuf,
    /// Page cache of the embedded store, in MiB.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
    /// What must hold before an Accept leaves: `full` (its counter survives a
    /// power cut: fdatasync) or `process` (it survives a crash of radotpd).
    #[serde(default)]
    pub durability: Durability,
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
    /// Each request line must arrive within this many seconds, or the
    /// connection is closed (a client that stalls holds one of the few slots).
    #[serde(default = "default_admin_request_timeout_seconds")]
    pub request_timeout_seconds: u64,
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
    Static {
        users: Vec<StaticUser>,
    },
    /// An LDAP server (OpenLDAP, Active Directory...); see docs/ldap.md.
    Ldap(Box<LdapConfig>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryKind {
    Static,
    Ldap,
}

/// The `directory` section as written: one flat mapping whose `kind` says
/// which other keys apply. (Flat rather than a serde-tagged enum, which would
/// buffer the content and lose the key path of errors inside it.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySection {
    pub kind: DirectoryKind,
    // kind: static
    #[serde(default)]
    pub users: Option<Vec<StaticUser>>,
    // kind: ldap (see LdapConfig)
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub starttls: Option<bool>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_verify: Option<bool>,
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub bind_password: Option<String>,
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    #[serde(default)]
    pub base_dn: Option<String>,
    #[serde(default)]
    pub user_filter: Option<String>,
    #[serde(default)]
    pub search_filter: Option<String>,
    #[serde(default)]
    pub attributes: Option<LdapAttributes>,
    #[serde(default)]
    pub required_group: Option<String>,
    #[serde(default)]
    pub group_membership: Option<GroupMembership>,
    #[serde(default)]
    pub nested_groups: Option<bool>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub search_limit: Option<usize>,
    #[serde(default)]
    pub pool_size: Option<usize>,
}

impl DirectorySection {
    /// The keys of `kind: ldap` that are set.
    fn ldap_keys_set(&self) -> Vec<&'static str> {
        [
            ("urls", self.urls.is_some()),
            ("starttls", self.starttls.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("tls_verify", self.tls_verify.is_some()),
            ("bind_dn", self.bind_dn.is_some()),
            ("bind_password", self.bind_password.is_some()),
            ("bind_password_file", self.bind_password_file.is_some()),
            ("base_dn", self.base_dn.is_some()),
            ("user_filter", self.user_filter.is_some()),
            ("search_filter", self.search_filter.is_some()),
            ("attributes", self.attributes.is_some()),
            ("required_group", self.required_group.is_some()),
            ("group_membership", self.group_membership.is_some()),
            ("nested_groups", self.nested_groups.is_some()),
            ("timeout_ms", self.timeout_ms.is_some()),
            ("search_limit", self.search_limit.is_some()),
            ("pool_size", self.pool_size.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

impl TryFrom<DirectorySection> for DirectoryConfig {
    type Error = String;

    fn try_from(section: DirectorySection) -> Result<Self, String> {
        match section.kind {
            DirectoryKind::Static => {
                if let Some(key) = section.ldap_keys_set().first() {
                    return Err(format!("the key {key} applies to kind ldap, not static"));
                }
                Ok(DirectoryConfig::Static { users: section.users.unwrap_or_default() })
            }
            DirectoryKind::Ldap => {
                if section.users.is_some() {
                    return Err("the key users applies to kind static, not ldap (users come from the server)".into());
                }
                Ok(DirectoryConfig::Ldap(Box::new(LdapConfig {
                    urls: section.urls.unwrap_or_default(),
                    starttls: section.starttls.unwrap_or(false),
                    ca_file: section.ca_file,
                    tls_verify: section.tls_verify.unwrap_or(true),
                    bind_dn: section.bind_dn,
                    bind_password: section.bind_password,
                    bind_password_file: section.bind_password_file,
                    base_dn: section.base_dn.unwrap_or_default(),
                    user_filter: section.user_filter.unwrap_or_else(default_user_filter),
                    search_filter: section.search_filter,
                    attributes: section.attributes.unwrap_or_default(),
                    required_group: section.required_group,
                    group_membership: section.group_membership.unwrap_or_default(),
                    nested_groups: section.nested_groups.unwrap_or(false),
                    timeout_ms: section.timeout_ms.unwrap_or(DEFAULT_LDAP_TIMEOUT_MS),
                    search_limit: section.search_limit.unwrap_or(DEFAULT_SEARCH_LIMIT),
                    pool_size: section.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
                })))
            }
        }
    }
}

/// `directory.kind: ldap`. Every key is described in docs/ldap.md.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// `ldap://` or `ldaps://` URLs, tried in order.
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS.
    pub starttls: bool,
    /// PEM file of the certificate authorities to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Verify server certificates; `false` is for tests and logs a warning.
    pub tls_verify: bool,
    /// The service account used for searches; anonymous without it.
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched (whole subtree).
    pub base_dn: String,
    /// Finds one user; `{username}` is replaced by the escaped name.
    pub user_filter: String,
    /// Finds users for `user search`; `{query}` is replaced by `*QUERY*`,
    /// escaped. By default: the user filter with `{username}` as `*`, and
    /// the name, display name or e-mail containing the query.
    pub search_filter: Option<String>,
    pub attributes: LdapAttributes,
    /// DN of a group a user must belong to, if any.
    pub required_group: Option<String>,
    /// How membership of `required_group` is tested.
    pub group_membership: GroupMembership,
    /// Follow nested groups with the Active Directory matching rule
    /// LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941).
    pub nested_groups: bool,
    /// Limit of one exchange with a server (connect, bind, search), in ms.
    pub timeout_ms: u64,
    /// Most entries a `user search` returns.
    pub search_limit: usize,
    /// Connections kept open for searches, and as many for password checks.
    pub pool_size: usize,
}

pub const DEFAULT_LDAP_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_SEARCH_LIMIT: usize = 50;
pub const DEFAULT_POOL_SIZE: usize = 4;

/// Which LDAP attributes fill a [`crate::directory::DirectoryUser`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapAttributes {
    #[serde(default = "default_name_attribute")]
    pub name: String,
    #[serde(default = "default_display_name_attribute")]
    pub display_name: Option<String>,
    #[serde(default = "default_email_attribute")]
    pub email: Option<String>,
}

impl Default for LdapAttributes {
    fn default() -> Self {
        LdapAttributes {
            name: default_name_attribute(),
            display_name: default_display_name_attribute(),
            email: default_email_attribute(),
        }
    }
}

/// How `required_group` membership is tested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum GroupMembership {
    /// The group entry lists the user's DN in `member` (groupOfNames, AD groups).
    #[default]
    #[serde(rename = "member")]
    Member,
    /// The group entry lists the user's DN in `uniqueMember` (groupOfUniqueNames).
    #[serde(rename = "uniqueMember")]
    UniqueMember,
    /// The user entry lists the group's DN in `memberOf` (AD, OpenLDAP memberof overlay).
    #[serde(rename = "memberOf")]
    MemberOf,
}

impl GroupMembership {
    pub fn attribute(self) -> &'static str {
        match self {
            GroupMembership::Member => "member",
            GroupMembership::UniqueMember => "uniqueMember",
            GroupMembership::MemberOf => "memberOf",
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
    /// Overrides `auth.mode` for this client.
    pub mode: Option<AuthMode>,
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
        if auth.lockout_seconds > MAX_LOCKOUT_SECONDS {
            problem(
                "auth.lockout_seconds".into(),
                format!(
                    "must be at most {MAX_LOCKOUT_SECONDS} (a year); 0 keeps tokens locked until an operator unlocks them"
                ),
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
        if self.store.cache_mib == 0 {
            problem("store.cache_mib".into(), "must be at least 1".into());
        }
        if self.admin.socket.as_os_str().is_empty() {
            problem("admin.socket".into(), "must not be empty".into());
        }
        if !(1..=3600).contains(&self.admin.request_timeout_seconds) {
            problem("admin.request_timeout_seconds".into(), "must be between 1 and 3600".into());
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
                    mode: client.mode,
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
        }
        warnings
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
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the shared secret is {} byte(s); at least {MIN_SECRET_BYTES} are required and {RECOMMENDED_SECRET_BYTES} or more recommended (RFC 2865 section 3): use a long random one, such as the output of `openssl rand -base64 24`",
                secret.len()
            ));
        }
        if secret.len() > 128 {
            return Err("the shared secret must be at most 128 bytes".into());
        }
        Ok(secret)
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

/// Longest accepted LDAP URL, DN, filter or attribute name, in bytes.
const MAX_LDAP_TEXT: usize = 4096;

impl LdapConfig {
    fn validate(&self, problem: &mut impl FnMut(String, String)) {
        let at = "directory";
        if self.urls.is_empty() {
            problem(format!("{at}.urls"), "at least one ldap:// or ldaps:// URL is needed".into());
        }
        for (i, text) in self.urls.iter().enumerate() {
            if let Err(message) = check_ldap_url(text) {
                problem(format!("{at}.urls[{i}]"), message);
            }
        }
        if self.starttls && !self.urls.iter().any(|u| u.starts_with("ldap://")) {
            problem(format!("{at}.starttls"), "applies to ldap:// URLs only; ldaps:// is TLS from the start".into());
        }
        if let Some(path) = &self.ca_file {
            if let Err(message) = read_ca_file(path) {
                problem(format!("{at}.ca_file"), message);
            }
        }
        if let Err((key, message)) = self.read_bind_password() {
            problem(format!("{at}.{key}"), message);
        }
        if let Some(dn) = &self.bind_dn {
            if let Err(message) = check_dn(dn) {
                problem(format!("{at}.bind_dn"), message);
            }
        }
        if self.base_dn.is_empty() {
            problem(format!("{at}.base_dn"), "kind ldap needs the DN under which users are searched".into());
        } else if let Err(message) = check_dn(&self.base_dn) {
            problem(format!("{at}.base_dn"), message);
        }
        if let Err(message) = check_filter(&self.user_filter, "{username}") {
            problem(format!("{at}.user_filter"), message);
        }
        if let Some(filter) = &self.search_filter {
            if let Err(message) = check_filter(filter, "{query}") {
                problem(format!("{at}.search_filter"), message);
            }
        }
        let attributes = &self.attributes;
        for (key, value) in [
            ("name", Some(&attributes.name)),
            ("display_name", attributes.display_name.as_ref()),
            ("email", attributes.email.as_ref()),
        ] {
            if let Some(Err(message)) = value.map(|v| check_attribute(v)) {
                problem(format!("{at}.attributes.{key}"), message);
            }
        }
        if let Some(group) = &self.required_group {
            if let Err(message) = check_dn(group) {
                problem(format!("{at}.required_group"), message);
            }
        } else if self.nested_groups {
            problem(format!("{at}.nested_groups"), "needs required_group".into());
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            problem(format!("{at}.timeout_ms"), "must be between 1 and 60000".into());
        }
        if !(1..=1000).contains(&self.search_limit) {
            problem(format!("{at}.search_limit"), "must be between 1 and 1000".into());
        }
        if !(1..=64).contains(&self.pool_size) {
            problem(format!("{at}.pool_size"), "must be between 1 and 64".into());
        }
    }

    /// The service account's password: `None` for an anonymous service.
    /// An error names the key it concerns.
    pub fn read_bind_password(&self) -> Result<Option<Secret>, (&'static str, String)> {
        let password = match (&self.bind_password, &self.bind_password_file) {
            (Some(_), Some(_)) => {
                return Err(("bind_password", "give bind_password or bind_password_file, not both".into()));
            }
            (None, None) => None,
            (Some(text), None) => Some(Secret::from(text.as_str())),
            (None, Some(path)) => {
                let read = crate::crypto::check_private(path)
                    .and_then(|()| std::fs::read_to_string(path).map_err(|e| e.to_string()))
                    .map_err(|e| ("bind_password_file", format!("{}: {e}", path.display())))?;
                Some(Secret::from(read.trim_end_matches(['\n', '\r'])))
            }
        };
        let key = if self.bind_password_file.is_some() { "bind_password_file" } else { "bind_password" };
        match (&self.bind_dn, password) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err((key, "is set but bind_dn is not".into())),
            (Some(_), None) => Err((
                "bind_dn",
                "needs bind_password or bind_password_file (leave bind_dn out for anonymous searches)".into(),
            )),
            // An empty password would be an "unauthenticated bind": anonymous in disguise.
            (Some(_), Some(p)) if p.is_empty() => Err((key, "must not be empty".into())),
            (Some(_), Some(p)) if std::str::from_utf8(p.expose()).is_err() => Err((key, "must be UTF-8".into())),
            (Some(_), Some(p)) => Ok(Some(p)),
        }
    }

    /// True when a URL sends passwords in clear to another machine.
    pub fn cleartext_urls(&self) -> Vec<&str> {
        self.urls
            .iter()
            .filter(|u| {
                let Ok(url) = url::Url::parse(u) else { return false };
                // ldap:// is not a "special" scheme for the url crate: IPv4
                // addresses come back as domain names.
                let loopback = match url.host() {
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(name)) => {
                        name.eq_ignore_ascii_case("localhost")
                            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
                    }
                    None => true,
                };
                url.scheme() == "ldap" && !self.starttls && !loopback
            })
            .map(String::as_str)
            .collect()
    }
}

fn check_ldap_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "ldap" | "ldaps") {
        return Err(format!("{text:?}: use ldap:// or ldaps://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} names no host"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?}: give scheme, host and port only (base_dn and user_filter are separate keys)"));
    }
    Ok(())
}

fn check_dn(dn: &str) -> Result<(), String> {
    if dn.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if dn.len() > MAX_LDAP_TEXT || dn.chars().any(char::is_control) {
        return Err(format!("{dn:?} is not a usable DN"));
    }
    if !dn.contains('=') {
        return Err(format!("{dn:?} is not a DN (attribute=value,...)"));
    }
    Ok(())
}

fn check_filter(filter: &str, placeholder: &str) -> Result<(), String> {
    if !filter.contains(placeholder) {
        return Err(format!("must contain {placeholder}"));
    }
    if filter.len() > MAX_LDAP_TEXT {
        return Err("is too long".into());
    }
    let sample = filter.replace(placeholder, if placeholder == "{query}" { "*x*" } else { "x" });
    if !sample.starts_with('(') || ldap3::parse_filter(&sample).is_err() {
        return Err(format!("{filter:?} is not an LDAP filter (RFC 4515), with parentheses"));
    }
    Ok(())
}

fn check_attribute(name: &str) -> Result<(), String> {
    let ok = name.len() <= 256
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b';');
    if ok { Ok(()) } else { Err(format!("{name:?} is not an attribute name")) }
}

/// The DER certificates of a PEM file of certificate authorities.
pub fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs =
        rustls_pemfile::certs(&mut std::io::BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
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
    - { name: a, address: 127.0.0.1, secret: "a long random secret" }
    - { name: b, address: 10.0.0.0/8, secret: "another long secret" }
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
        assert_eq!(config.auth.lockout_seconds, 0, "locked until an operator unlocks, as before");
        assert!(config.auth.count_password_failures);
        assert!(config.radius.clients[0].require_message_authenticator);
        assert_eq!(config.token_types[0].digits, 6);
        assert_eq!(config.admin.request_timeout_seconds, 60);
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
            .replace(
                "{ name: b, address: 10.0.0.0/8, secret: \"another long secret\" }",
                "{ name: a, address: 127.0.0.1 }",
            )
            .replace("algorithm: hotp }", "algorithm: hotp, digits: 9 }");
        let config = Config::parse(&text).unwrap();
        let problems: Vec<String> = config.validate().unwrap_err().problems().iter().map(|p| p.path.clone()).collect();
        assert!(problems.contains(&"radius.clients[1].name".to_string()), "{problems:?}");
        assert!(problems.contains(&"radius.clients[1].secret".to_string()), "{problems:?}");
        assert!(problems.contains(&"radius.clients[1].address".to_string()), "{problems:?}");
        assert!(problems.contains(&"token_types[0].digits".to_string()), "{problems:?}");
    }

    /// The documented bounds of the lockout and window settings, and of the
    /// admin request timeout: the limit passes, one past it is refused by key.
    #[test]
    fn window_failure_and_timeout_limits_are_enforced_at_their_bounds() {
        let with = |settings: &str| {
            MINIMAL
                .replace("admin: { socket: ./admin.sock }", &format!("admin: {{ socket: ./admin.sock }}\n{settings}"))
        };
        let problems = |settings: &str| -> Vec<String> {
            let config = Config::parse(&with(settings)).unwrap();
            config.validate().err().map(|e| e.problems().into_iter().map(|p| p.path).collect()).unwrap_or_default()
        };
        let at_the_limits = "auth: { hotp_window: 1000, totp_window: 100, first_use_window: 10000, \
                             totp_first_use_window: 1000, max_failures: 1 }";
        assert_eq!(problems(at_the_limits), Vec::<String>::new());
        let past_the_limits = "auth: { hotp_window: 1001, totp_window: 101, first_use_window: 10001, \
                               totp_first_use_window: 1001, max_failures: 0 }";
        let mut found = problems(past_the_limits);
        found.sort();
        assert_eq!(
            found,
            [
                "auth.first_use_window",
                "auth.hotp_window",
                "auth.max_failures",
                "auth.totp_first_use_window",
                "auth.totp_window"
            ]
        );
        let timeout = |seconds: u64| -> Vec<String> {
            let text = MINIMAL.replace(
                "admin: { socket: ./admin.sock }",
                &format!("admin: {{ socket: ./admin.sock, request_timeout_seconds: {seconds} }}"),
            );
            let config = Config::parse(&text).unwrap();
            assert_eq!(config.admin.request_timeout_seconds, seconds);
            config.validate().err().map(|e| e.problems().into_iter().map(|p| p.path).collect()).unwrap_or_default()
        };
        assert!(timeout(1).is_empty() && timeout(3600).is_empty());
        assert_eq!(timeout(0), ["admin.request_timeout_seconds"]);
        assert_eq!(timeout(3601), ["admin.request_timeout_seconds"]);
    }

    #[test]
    fn lockout_and_password_failure_keys() {
        let text = MINIMAL.replace("store:", "auth: { lockout_seconds: 900, count_password_failures: false }\nstore:");
        let config = Config::parse(&text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.auth.lockout_seconds, 900);
        assert!(!config.auth.count_password_failures);
        let text = MINIMAL.replace("store:", "auth: { lockout_seconds: 31536001 }\nstore:");
        assert_eq!(problem_paths(&text), vec!["auth.lockout_seconds".to_string()]);
    }

    #[test]
    fn short_shared_secrets_are_refused_and_short_ones_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let with_secret = |secret: &str| MINIMAL.replace("\"a long random secret\"", &format!("{secret:?}"));
        let config = Config::parse(&with_secret("1234567")).unwrap();
        let problems = config.validate().unwrap_err().problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "radius.clients[0].secret");
        assert!(problems[0].message.contains("7 byte(s); at least 8"), "{}", problems[0].message);
        assert!(!problems[0].message.contains("1234567"), "the secret itself is never shown");
        assert_eq!(problem_paths(&with_secret("x")), vec!["radius.clients[0].secret".to_string()]);
        // 8 bytes pass, with a warning (radclient's default, testing123, is 10).
        for short in ["12345678", "testing123", "fifteen bytes!!"] {
            let config = Config::parse(&with_secret(short)).unwrap();
            config.validate().unwrap();
            let warnings = config.warnings();
            assert_eq!(warnings.len(), 1, "{short}: {warnings:?}");
            assert_eq!(warnings[0].path, "radius.clients[0].secret");
            assert!(!warnings[0].message.contains(short), "the secret itself is never shown");
        }
        let config = Config::parse(&with_secret("sixteen bytes!!!")).unwrap();
        config.validate().unwrap();
        assert!(config.warnings().is_empty());
        // The same rules for a secret file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vpn.secret");
        std::fs::write(&file, "short\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = MINIMAL.replace("secret: \"a long random secret\"", &format!("secret_file: {}", file.display()));
        assert_eq!(problem_paths(&text), vec!["radius.clients[0].secret_file".to_string()]);
        std::fs::write(&file, "testing123\n").unwrap();
        let config = Config::parse(&text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.warnings()[0].path, "radius.clients[0].secret_file");
        assert_eq!(config.radius_clients().unwrap()[0].secret.expose(), b"testing123");
    }

    #[test]
    fn host_bits_in_cidr_are_refused() {
        assert!(parse_ip_or_cidr("10.0.0.1/8").is_err());
        assert!(parse_ip_or_cidr("::1").is_ok());
        assert!(parse_ip_or_cidr("fd00::/8").is_ok());
    }

    const LDAP: &str = r#"directory:
  kind: ldap
  urls: ["ldap://127.0.0.1:3389", "ldaps://ldap2.example.org"]
  bind_dn: "cn=radotp,ou=services,dc=example,dc=org"
  bind_password: "secret"
  base_dn: "ou=people,dc=example,dc=org"
  required_group: "cn=vpn-users,ou=groups,dc=example,dc=org"
  timeout_ms: 700
"#;

    fn with_directory(section: &str) -> String {
        let start = MINIMAL.find("directory:").unwrap();
        let end = MINIMAL.find("token_types:").unwrap();
        format!("{}{section}{}", &MINIMAL[..start], &MINIMAL[end..])
    }

    fn problem_paths(text: &str) -> Vec<String> {
        match Config::parse(text) {
            Err(e) => e.problems().into_iter().map(|p| p.path).collect(),
            Ok(config) => {
                config.validate().err().map(|e| e.problems().into_iter().map(|p| p.path).collect()).unwrap_or_default()
            }
        }
    }

    #[test]
    fn ldap_directory_gets_defaults() {
        let config = Config::parse(&with_directory(LDAP)).unwrap();
        config.validate().unwrap();
        let DirectoryConfig::Ldap(ldap) = &config.directory else { panic!("not ldap") };
        assert_eq!(ldap.urls.len(), 2);
        assert!(ldap.tls_verify && !ldap.starttls);
        assert_eq!(ldap.timeout_ms, 700);
        assert_eq!(ldap.search_limit, DEFAULT_SEARCH_LIMIT);
        assert_eq!(ldap.attributes.name, "uid");
        assert_eq!(ldap.group_membership, GroupMembership::Member);
        assert_eq!(ldap.user_filter, "(&(objectClass=inetOrgPerson)(uid={username}))");
        assert_eq!(ldap.cleartext_urls(), Vec::<&str>::new());
    }

    #[test]
    fn ldap_keys_are_checked_with_their_paths() {
        let cases = [
            (
                "  urls: [\"ldap://127.0.0.1:3389\", \"ldaps://ldap2.example.org\"]\n",
                "  urls: [\"http://x\"]\n",
                "directory.urls[0]",
            ),
            ("  urls: [\"ldap://127.0.0.1:3389\", \"ldaps://ldap2.example.org\"]\n", "", "directory.urls"),
            ("  base_dn: \"ou=people,dc=example,dc=org\"\n", "", "directory.base_dn"),
            ("  base_dn: \"ou=people,dc=example,dc=org\"\n", "  base_dn: \"people\"\n", "directory.base_dn"),
            ("  timeout_ms: 700\n", "  timeout_ms: 0\n", "directory.timeout_ms"),
            ("  timeout_ms: 700\n", "  timeout_ms: 700\n  user_filter: \"(uid=alice)\"\n", "directory.user_filter"),
            ("  timeout_ms: 700\n", "  timeout_ms: 700\n  user_filter: \"uid={username}\"\n", "directory.user_filter"),
            ("  timeout_ms: 700\n", "  timeout_ms: 700\n  search_filter: \"(cn=x)\"\n", "directory.search_filter"),
            (
                "  timeout_ms: 700\n",
                "  timeout_ms: 700\n  attributes: { name: \"u id\" }\n",
                "directory.attributes.name",
            ),
            ("  timeout_ms: 700\n", "  timeout_ms: 700\n  attributes: { nam: uid }\n", "directory.attributes.nam"),
            ("  timeout_ms: 700\n", "  timeout_ms: 700\n  group_membership: members\n", "directory.group_membership"),
            ("  timeout_ms: 700\n", "  timeout_ms: 700\n  searchlimit: 3\n", "directory.searchlimit"),
            ("  timeout_ms: 700\n", "  timeout_ms: 700\n  search_limit: 0\n", "directory.search_limit"),
            ("  timeout_ms: 700\n", "  timeout_ms: 700\n  ca_file: /nonexistent/ca.pem\n", "directory.ca_file"),
            ("  bind_password: \"secret\"\n", "", "directory.bind_dn"),
            ("  bind_password: \"secret\"\n", "  bind_password: \"\"\n", "directory.bind_password"),
            (
                "  bind_password: \"secret\"\n",
                "  bind_password: \"secret\"\n  bind_password_file: /x\n",
                "directory.bind_password",
            ),
        ];
        for (from, to, path) in cases {
            assert!(LDAP.contains(from), "{from}");
            let text = with_directory(&LDAP.replace(from, to));
            let paths = problem_paths(&text);
            assert!(
                paths.contains(&path.to_string()),
                "{to:?}: expected {path}, got {paths:?} {:?}",
                Config::parse(&text).err().map(|e| e.to_string())
            );
        }
        // Keys of kind ldap are refused with kind static.
        let text = MINIMAL.replace("kind: static,", "kind: static, base_dn: \"dc=x\",");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("directory: the key base_dn applies to kind ldap"), "{err}");
        let err = Config::parse(&with_directory(&format!("{LDAP}  users: []\n"))).unwrap_err().to_string();
        assert!(err.starts_with("directory: the key users applies to kind static"), "{err}");
    }

    #[test]
    fn ldap_bind_password_file_and_cleartext_urls() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ldap.pw");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let section = LDAP
            .replace("bind_password: \"secret\"", &format!("bind_password_file: {}", file.display()))
            .replace("ldap://127.0.0.1:3389", "ldap://ldap1.example.org");
        let config = Config::parse(&with_directory(&section)).unwrap();
        config.validate().unwrap();
        let DirectoryConfig::Ldap(ldap) = &config.directory else { panic!("not ldap") };
        let password = ldap.read_bind_password().unwrap().unwrap();
        assert_eq!(password.expose(), b"from-file");
        assert_eq!(ldap.cleartext_urls(), vec!["ldap://ldap1.example.org"]);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let paths = problem_paths(&with_directory(&section));
        assert_eq!(paths, vec!["directory.bind_password_file".to_string()]);
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
