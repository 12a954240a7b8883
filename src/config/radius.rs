//! `radius` and `auth`: where radotpd listens, which clients it answers and how it checks them.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use super::*;

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
    /// FreeRADIUS-format dictionaries for reply attributes beyond the
    /// built-in ones, loaded in order.
    #[serde(default)]
    pub dictionary_files: Vec<PathBuf>,
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
    /// `true`, `false` or `auto`.
    #[serde(default)]
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// This client's authentication mode, instead of `auth.mode`.
    #[serde(default)]
    pub mode: Option<AuthMode>,
    /// Settings for requests this client (a proxy) passes on from the NAS
    /// named by their NAS-Identifier.
    #[serde(default)]
    pub nas: Vec<NasRule>,
    /// Only users in one of these groups log in through this client; the
    /// others get Access-Reject `not_allowed_here` before any OTP is checked.
    #[serde(default)]
    pub allowed_groups: Option<Vec<String>>,
    /// Only tokens of these types authenticate through this client.
    #[serde(default)]
    pub allowed_token_types: Option<Vec<String>>,
}

/// Settings for the requests of one NAS behind a proxy, matched by the
/// request's NAS-Identifier (`radius.clients[].nas[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NasRule {
    /// The NAS-Identifier, exactly as the NAS sends it.
    pub identifier: String,
    /// The authentication mode for this NAS's requests, instead of the client's.
    #[serde(default)]
    pub mode: Option<AuthMode>,
    /// Instead of the client's `allowed_groups`, for this NAS's requests.
    #[serde(default)]
    pub allowed_groups: Option<Vec<String>>,
    /// Instead of the client's `allowed_token_types`, for this NAS's requests.
    #[serde(default)]
    pub allowed_token_types: Option<Vec<String>>,
}

/// Who may log in through a client (or one NAS behind it); `None`: anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAccess {
    pub allowed_groups: Option<Vec<String>>,
    pub allowed_token_types: Option<Vec<String>>,
}

/// Whether a client's Access-Requests must carry Message-Authenticator
/// (`radius.clients[].require_message_authenticator`: `true`, `false`, `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequireMessageAuthenticator {
    /// Always (`true`, the default).
    #[default]
    Always,
    /// Never (`false`): for a NAS that cannot send it, such as pam_radius_auth 2.0.
    Never,
    /// From each source address of the client, once that address has sent
    /// one (`auto`, as FreeRADIUS 3.2.5+): learned in memory, forgotten at restart.
    Auto,
}

impl<'de> Deserialize<'de> for RequireMessageAuthenticator {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Flag(bool),
            Word(String),
        }
        match Written::deserialize(d) {
            Ok(Written::Flag(true)) => Ok(RequireMessageAuthenticator::Always),
            Ok(Written::Flag(false)) => Ok(RequireMessageAuthenticator::Never),
            Ok(Written::Word(word)) if word == "auto" => Ok(RequireMessageAuthenticator::Auto),
            _ => Err(serde::de::Error::custom("expected true, false or auto")),
        }
    }
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

/// What RADIUS answers while the token store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreUnavailable {
    /// An Access-Reject (as a single node always did).
    #[default]
    Reject,
    /// No answer at all, so the NAS tries its next server.
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
    /// The fail count forgets one failure per this many seconds since the
    /// last one; an accepted code does not reset it. 0: never forgotten
    /// (only an unlock clears the count).
    #[serde(default = "default_failure_decay_seconds")]
    pub failure_decay_seconds: u64,
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
    /// `reject` or `no_answer` while the token store cannot be reached.
    #[serde(default)]
    pub store_unavailable: StoreUnavailable,
    /// HOTP look-ahead for a token's first OTP (never used so far): a new
    /// hardware token's button may have been pressed before it was handed out.
    #[serde(default = "default_first_use_window")]
    pub first_use_window: u64,
    /// TOTP steps accepted either side of now for a token's first OTP: a new
    /// token's clock may have drifted on the shelf.
    #[serde(default = "default_totp_first_use_window")]
    pub totp_first_use_window: u64,
}

/// Six hours: a patient attacker gets 4 guesses a day per user on top of
/// `max_failures - 1`, while a user's typos are forgotten within a day or two.
fn default_failure_decay_seconds() -> u64 {
    21600
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_failures: default_max_failures(),
            lockout_seconds: 0,
            failure_decay_seconds: default_failure_decay_seconds(),
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
            store_unavailable: StoreUnavailable::default(),
            first_use_window: default_first_use_window(),
            totp_first_use_window: default_totp_first_use_window(),
        }
    }
}

/// What "durable" means for an engine that writes to a local disk.
fn ip_or_cidr<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let text = String::deserialize(d)?;
    parse_ip_or_cidr(&text).map_err(serde::de::Error::custom)
}

pub(super) fn parse_ip_or_cidr(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(format!("{text:?} has host bits set; did you mean {}?", net.trunc()));
        }
        return Ok(net);
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| format!("{text:?} is neither an IP address nor a CIDR network"))
}

/// A RADIUS client with its secret read.
#[derive(Debug, Clone)]
pub struct RadiusClient {
    pub name: String,
    pub network: IpNet,
    pub secret: Secret,
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// Overrides `auth.mode` for this client.
    pub mode: Option<AuthMode>,
    /// Per-NAS settings for requests passed on by this client (a proxy).
    pub nas: Vec<NasRule>,
    /// `allowed_groups` and `allowed_token_types` of the client itself.
    pub access: ClientAccess,
}

impl RadiusConfig {
    /// Pairs of `listen` entries (by index) that cannot both be bound: the
    /// same port and family, and the same address or one of them the
    /// wildcard. IPv6 listeners are bound IPv6-only, so `0.0.0.0:1812` and
    /// `[::]:1812` do not overlap. Port 0 (any free port) never overlaps.
    pub fn overlapping_listeners(&self) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for (i, a) in self.listen.iter().enumerate() {
            for (j, b) in self.listen.iter().enumerate().skip(i + 1) {
                if listeners_overlap(a, b) {
                    pairs.push((i, j));
                }
            }
        }
        pairs
    }
}

fn listeners_overlap(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

impl RadiusClient {
    /// The mode of a request from this client that carries `nas_identifier`:
    /// its NAS rule's, else the client's (`None`: `auth.mode`).
    pub fn mode_for(&self, nas_identifier: Option<&str>) -> Option<AuthMode> {
        let rule = nas_identifier.and_then(|id| self.nas.iter().find(|rule| rule.identifier == id));
        rule.and_then(|rule| rule.mode).or(self.mode)
    }

    /// Who may log in with a request from this client that carries
    /// `nas_identifier`: each of the NAS rule's settings, else the client's.
    pub fn access_for(&self, nas_identifier: Option<&str>) -> ClientAccess {
        let rule = nas_identifier.and_then(|id| self.nas.iter().find(|rule| rule.identifier == id));
        ClientAccess {
            allowed_groups: rule.and_then(|r| r.allowed_groups.clone()).or_else(|| self.access.allowed_groups.clone()),
            allowed_token_types: rule
                .and_then(|r| r.allowed_token_types.clone())
                .or_else(|| self.access.allowed_token_types.clone()),
        }
    }
}

impl ClientConfig {
    pub fn access(&self) -> ClientAccess {
        ClientAccess {
            allowed_groups: self.allowed_groups.clone(),
            allowed_token_types: self.allowed_token_types.clone(),
        }
    }

    pub(super) fn read_secret(&self) -> Result<Secret, String> {
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
