//! `directory`: static users or LDAP / Active Directory, with the checks types cannot express.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::*;

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
    pub group_base_dn: Option<String>,
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
            ("group_base_dn", self.group_base_dn.is_some()),
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
                    group_base_dn: section.group_base_dn,
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
    /// Where a user's groups are searched for authorization rules and
    /// `allowed_groups` (whole subtree); `base_dn` when absent.
    pub group_base_dn: Option<String>,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticUser {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Groups for `authorization.rules` and `radius.clients[].allowed_groups`.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Longest accepted LDAP URL, DN, filter or attribute name, in bytes.
const MAX_LDAP_TEXT: usize = 4096;

impl LdapConfig {
    pub(super) fn validate(&self, problem: &mut impl FnMut(String, String)) {
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
        }
        if let Some(dn) = &self.group_base_dn {
            if let Err(message) = check_dn(dn) {
                problem(format!("{at}.group_base_dn"), message);
            }
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
