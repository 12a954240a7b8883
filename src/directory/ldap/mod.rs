//! `directory.kind: ldap`: users from an LDAP server (OpenLDAP, Active
//! Directory...) through ldap3. See docs/ldap.md for the configuration.
//!
//! # Safety
//! Names and queries are escaped ([`escape_filter_value`], RFC 4515) before
//! they enter a filter, so `*` or `a)(uid=*` match only themselves. Empty
//! and over-long names are refused before any traffic, and so are empty
//! passwords (an empty password would be an "unauthenticated bind", which
//! many servers accept as anonymous). A name matching several entries is
//! [`DirectoryError::Ambiguous`], never the first of them.
//!
//! # Connections
//! Two small pools of at most `pool_size` connections each: one bound as the
//! service account for searches, one for users' password binds (a bind
//! changes who the connection is, so those are never shared with
//! searches). A connection is used by one operation at a time; it goes back
//! to its pool after an answer and is dropped after a transport error or a
//! timeout. An operation that fails on a pooled connection (the server
//! restarted, an idle timeout closed it) is retried once on a new one.
//!
//! New connections try `urls` in order, except that a URL which failed in
//! the last [`DOWN_RETRY`] is tried after the others: a dead primary costs
//! one timeout per [`DOWN_RETRY`], not one per request. Connections to a
//! fallback URL are replaced after [`DOWN_RETRY`] so that the service comes
//! back to the first URL when it returns.
//!
//! # Account state
//! A login look-up ([`UserDirectory::lookup_for_login`]) also reads the
//! entry's account state ([`account_state`]: disabled, locked, expired,
//! password to change) with a base search, and answers
//! [`DirectoryError::AccountUnusable`]. Usable accounts are remembered for
//! [`LOGIN_CACHE_TTL`] (at most [`LOGIN_CACHE_MAX`] names), so a change in
//! the directory counts at login within that time.
//!
//! # Time
//! Each exchange (connecting to one URL with TLS and the service bind, one
//! search, one bind) is bounded by `timeout_ms`; a whole operation, retry
//! and failover included, by `timeout_ms × (number of URLs + 1)`.

pub mod account_state;
mod connections;
mod diagnostics;
mod login_cache;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use tokio::sync::Semaphore;

pub mod groups;

use self::diagnostics::{connection_trouble, describe, describe_result, explain_tls, refuses_anonymous};
use self::groups::AuthzLookup;
use self::login_cache::LoginCache;
pub use self::login_cache::{LOGIN_CACHE_MAX, LOGIN_CACHE_TTL};
use super::{DirectoryError, DirectoryFuture, DirectoryUser, UserDirectory};
use crate::config::{GroupMembership, LdapConfig, read_ca_file};
use crate::secret::Secret;

/// Longest user name or search query accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// How long a URL that failed is tried only after the others, and how long
/// a connection to a fallback URL is kept.
pub const DOWN_RETRY: Duration = Duration::from_secs(30);
/// While every URL has failed lately, at most one new connection (a probe)
/// is tried per this interval; other operations fail at once. A hung server
/// accepts TCP connections and answers nothing: without this, every request
/// would open (and abandon) a connection of its own.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest life of a pooled connection to the first URL.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// The matching rule LDAP_MATCHING_RULE_IN_CHAIN of Active Directory.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// Escapes `value` for the inside of an LDAP filter (RFC 4515 section 3).
///
/// `*`, `(`, `)`, `\` and NUL must be escaped; control characters and every
/// byte of a non-ASCII character are escaped too (as `\xx` of their UTF-8
/// bytes, which servers read back as the same text), so that the filter is
/// plain printable ASCII.
pub fn escape_filter_value(value: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(value.len() + 8);
    for byte in value.bytes() {
        match byte {
            b'*' | b'(' | b')' | b'\\' | 0x00..=0x1f | 0x7f..=0xff => {
                let _ = write!(out, "\\{byte:02x}");
            }
            _ => out.push(char::from(byte)),
        }
    }
    out
}

/// The LDAP user directory. Cheap to build: nothing connects until the
/// first operation.
pub struct LdapDirectory {
    urls: Vec<String>,
    connect_settings: LdapConnSettings,
    service_bind: Option<(String, Secret)>,
    base_dn: String,
    user_filter: String,
    search_filter: String,
    name_attribute: String,
    display_name_attribute: Option<String>,
    email_attribute: Option<String>,
    required_group: Option<String>,
    membership: GroupMembership,
    nested_groups: bool,
    /// Where [`groups`] searches a user's groups.
    group_base_dn: String,
    timeout: Duration,
    search_limit: usize,
    /// When each URL last failed, if it has not worked since.
    down_since: Mutex<Vec<Option<Instant>>>,
    /// When the last probe started, while every URL is down.
    last_probe: Mutex<Option<Instant>>,
    searches: Pool,
    binds: Pool,
    opened: AtomicU64,
    /// Groups and template attributes read at look-up ([`groups`]).
    authz: AuthzLookup,
    login_cache: LoginCache,
}

struct Pool {
    service_bound: bool,
    capacity: usize,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

struct Connection {
    ldap: Ldap,
    url: usize,
    opened: Instant,
}

/// How an operation on a connection ended badly.
enum Failure {
    /// The server answered; the connection is fine.
    Answer(DirectoryError),
    /// The connection is unusable (closed, reset, server busy).
    Broken(String),
}

impl From<LdapError> for Failure {
    fn from(e: LdapError) -> Self {
        Failure::Broken(describe(&e))
    }
}

type Attempt<T> = Result<T, Failure>;

impl LdapDirectory {
    /// Builds the directory from a validated configuration; reads the bind
    /// password and CA files. (`tls_verify: false` and passwords sent in
    /// clear are warned about by [`crate::config::Config::warnings`].)
    pub fn new(config: &LdapConfig) -> Result<LdapDirectory, String> {
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let mut connect_settings = LdapConnSettings::new().set_conn_timeout(timeout).set_starttls(config.starttls);
        // Its warning, as that of cleartext URLs, is one of
        // `Config::warnings`, logged at start and shown by --check-config and reload.
        if !config.tls_verify {
            connect_settings = connect_settings.set_no_tls_verify(true);
        } else if let Some(path) = &config.ca_file {
            let mut roots = rustls::RootCertStore::empty();
            for der in read_ca_file(path)? {
                roots.add(&rustls::Certificate(der)).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            let tls = rustls::ClientConfig::builder()
                .with_safe_defaults()
                .with_root_certificates(roots)
                .with_no_client_auth();
            connect_settings = connect_settings.set_config(Arc::new(tls));
        }
        let service_bind = config
            .read_bind_password()
            .map_err(|(key, e)| format!("directory.{key}: {e}"))?
            .map(|password| (config.bind_dn.clone().unwrap_or_default(), password));
        let attrs = &config.attributes;
        let search_filter = match &config.search_filter {
            Some(filter) => filter.clone(),
            None => {
                let mut any = format!("({}={{query}})", attrs.name);
                for attr in [&attrs.display_name, &attrs.email].into_iter().flatten() {
                    any.push_str(&format!("({attr}={{query}})"));
                }
                format!("(&{}(|{any}))", config.user_filter.replace("{username}", "*"))
            }
        };
        let pool = |service_bound| Pool {
            service_bound,
            capacity: config.pool_size.max(1),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(config.pool_size.max(1)),
        };
        Ok(LdapDirectory {
            urls: config.urls.clone(),
            connect_settings,
            service_bind,
            base_dn: config.base_dn.clone(),
            user_filter: config.user_filter.clone(),
            search_filter,
            name_attribute: attrs.name.clone(),
            display_name_attribute: attrs.display_name.clone(),
            email_attribute: attrs.email.clone(),
            required_group: config.required_group.clone(),
            membership: config.group_membership,
            nested_groups: config.nested_groups,
            group_base_dn: config.group_base_dn.clone().unwrap_or_else(|| config.base_dn.clone()),
            timeout,
            search_limit: config.search_limit,
            down_since: Mutex::new(vec![None; config.urls.len()]),
            last_probe: Mutex::new(None),
            searches: pool(true),
            binds: pool(false),
            opened: AtomicU64::new(0),
            authz: AuthzLookup::default(),
            login_cache: LoginCache::default(),
        })
    }

    /// Makes look-ups read the user's groups (`want_groups`) and the
    /// directory attributes reply templates use.
    pub fn with_authorization(mut self, want_groups: bool, attributes: Vec<String>) -> Self {
        self.authz = AuthzLookup::new(want_groups, attributes);
        self
    }

    /// Connections opened so far (searches and binds): a measure of reuse.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// The filter that finds `name` (escaped), as sent to the server.
    pub fn user_filter_for(&self, name: &str) -> String {
        self.user_filter.replace("{username}", &escape_filter_value(name))
    }

    /// The filter that finds users matching `query` (escaped), as sent.
    pub fn search_filter_for(&self, query: &str) -> String {
        let pattern = if query.is_empty() { "*".to_string() } else { format!("*{}*", escape_filter_value(query)) };
        let filter = self.search_filter.replace("{query}", &pattern);
        match (&self.required_group, self.membership) {
            (Some(group), GroupMembership::MemberOf) => {
                format!("(&{filter}({}={}))", self.membership_attribute(), escape_filter_value(group))
            }
            _ => filter,
        }
    }

    /// `memberOf`, or `memberOf:1.2.840.113556.1.4.1941:` for nested groups.
    fn membership_attribute(&self) -> String {
        if self.nested_groups {
            format!("{}:{IN_CHAIN}:", self.membership.attribute())
        } else {
            self.membership.attribute().to_string()
        }
    }

    fn deadline(&self) -> Duration {
        self.timeout * (self.urls.len() as u32 + 1)
    }

    fn attributes(&self) -> Vec<String> {
        let mut attrs = vec![self.name_attribute.clone()];
        attrs.extend(self.display_name_attribute.iter().cloned());
        attrs.extend(self.email_attribute.iter().cloned());
        attrs.extend(self.authz.attributes.iter().cloned());
        if self.authz.want_groups && groups::groups_in_entry(self.membership, self.nested_groups) {
            attrs.push(self.membership.attribute().to_string());
        }
        attrs
    }

    /// Fills in the user's groups and template attributes, when wanted:
    /// from the entry, the cache, or one search.
    async fn read_authz(&self, ldap: &mut Ldap, entry: &SearchEntry, user: &mut DirectoryUser) -> Attempt<()> {
        for name in &self.authz.attributes {
            if let Some(value) = groups::values(entry, name).first() {
                user.attributes.insert(name.clone(), value.clone());
            }
        }
        if !self.authz.want_groups {
            return Ok(());
        }
        if groups::groups_in_entry(self.membership, self.nested_groups) {
            user.groups = groups::values(entry, self.membership.attribute()).to_vec();
            return Ok(());
        }
        if let Some(cached) = self.authz.cached(&entry.dn) {
            user.groups = cached;
            return Ok(());
        }
        let filter = groups::groups_filter(self.membership, self.nested_groups, &entry.dn);
        let none = vec!["1.1".to_string()];
        let found = self.search_entries(ldap, &self.group_base_dn, Scope::Subtree, &filter, none, 1000).await?;
        user.groups = found.unwrap_or_default().into_iter().map(|e| e.dn).collect();
        self.authz.remember(&entry.dn, &user.groups);
        Ok(())
    }

    /// The server's own time limit is a second more than `timeout_ms`
    /// rounded up: servers count whole seconds from the clock's second
    /// (Samba answered a 1 s limit with `timeLimitExceeded` after 10 ms when
    /// the second turned), and the client's timeout is the one that counts.
    fn search_options(&self, size_limit: usize) -> SearchOptions {
        let seconds = self.timeout.as_secs_f64().ceil().max(1.0) as i32 + 1;
        SearchOptions::new().sizelimit(size_limit.min(i32::MAX as usize) as i32).timelimit(seconds)
    }
    /// Entries of a search that must succeed (sizeLimitExceeded is fine).
    async fn search_entries(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
        size_limit: usize,
    ) -> Attempt<Option<Vec<SearchEntry>>> {
        let ldap3::SearchResult(entries, result) = ldap
            .with_search_options(self.search_options(size_limit))
            .with_timeout(self.timeout)
            .search(base, scope, filter, attrs)
            .await?;
        match result.rc {
            0 | 4 => Ok(Some(entries.into_iter().map(SearchEntry::construct).collect())),
            32 => Ok(None),
            // Active Directory (000004DC) or Samba (00002020) refusing an
            // anonymous search: a configuration error, not a server to avoid.
            1 if refuses_anonymous(&result.text) => Err(Failure::Answer(DirectoryError::Unavailable(format!(
                "search under {base} refused: {} (the server refuses anonymous searches: set directory.bind_dn)",
                describe_result(&result)
            )))),
            rc if connection_trouble(rc) => Err(Failure::Broken(describe_result(&result))),
            _ => Err(Failure::Answer(DirectoryError::Unavailable(format!(
                "search under {base} refused: {}",
                describe_result(&result)
            )))),
        }
    }

    /// Whether the entry `user_dn` is in the required group, on `ldap`.
    async fn member_check(&self, ldap: &mut Ldap, user_dn: &str) -> Attempt<bool> {
        let Some(group) = &self.required_group else {
            return Ok(true);
        };
        self.group_check(ldap, user_dn, group).await
    }

    /// Whether the entry `user_dn` is in `group`, on `ldap`.
    async fn group_check(&self, ldap: &mut Ldap, user_dn: &str, group: &str) -> Attempt<bool> {
        let none = vec!["1.1".to_string()];
        match self.membership {
            GroupMembership::Member | GroupMembership::UniqueMember => {
                let filter = format!("({}={})", self.membership_attribute(), escape_filter_value(user_dn));
                match self.search_entries(ldap, group, Scope::Base, &filter, none, 1).await? {
                    Some(entries) => Ok(!entries.is_empty()),
                    None => Err(Failure::Answer(DirectoryError::Unavailable(format!("group {group} does not exist")))),
                }
            }
            GroupMembership::MemberOf => {
                let filter = format!("({}={})", self.membership_attribute(), escape_filter_value(group));
                let found = self.search_entries(ldap, user_dn, Scope::Base, &filter, none, 1).await?;
                if found.is_some_and(|entries| !entries.is_empty()) {
                    return Ok(true);
                }
                // Not a member: of an existing group? (A misspelt group
                // would otherwise refuse everyone in silence.)
                self.group_exists(ldap).await?;
                Ok(false)
            }
        }
    }

    /// `Ok` when `required_group` (if any) exists and can be read; an
    /// answered error naming it otherwise.
    async fn group_exists(&self, ldap: &mut Ldap) -> Attempt<()> {
        let Some(group) = &self.required_group else {
            return Ok(());
        };
        let none = vec!["1.1".to_string()];
        match self.search_entries(ldap, group, Scope::Base, "(objectClass=*)", none, 1).await? {
            Some(entries) if !entries.is_empty() => Ok(()),
            _ => Err(Failure::Answer(DirectoryError::Unavailable(format!("required_group {group} does not exist")))),
        }
    }

    /// The state of the account at `dn` (a base search: Active Directory
    /// builds `msDS-User-Account-Control-Computed` only for those).
    async fn account_check(&self, ldap: &mut Ldap, dn: &str) -> Attempt<Option<account_state::Unusable>> {
        let attrs = account_state::STATE_ATTRIBUTES.iter().map(|a| a.to_string()).collect();
        let entries =
            self.search_entries(ldap, dn, Scope::Base, "(objectClass=*)", attrs, 1).await?.unwrap_or_default();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Ok(entries.first().and_then(|entry| account_state::unusable(&entry.attrs, now)))
    }

    fn user_of(&self, entry: &SearchEntry, wanted: Option<&str>) -> Option<DirectoryUser> {
        let values = |attr: &str| {
            entry
                .attrs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(attr))
                .map(|(_, values)| values.as_slice())
                .unwrap_or_default()
        };
        let first = |attr: &Option<String>| attr.as_deref().and_then(|a| values(a).first().cloned());
        let names = values(&self.name_attribute);
        let name = wanted
            .and_then(|w| names.iter().find(|n| n.eq_ignore_ascii_case(w)))
            .or(names.first())
            .cloned()
            .or_else(|| wanted.map(str::to_string))?;
        Some(DirectoryUser {
            name,
            display_name: first(&self.display_name_attribute),
            email: first(&self.email_attribute),
            dn: Some(entry.dn.clone()),
            ..DirectoryUser::default()
        })
    }

    async fn lookup_user(&self, name: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.find_user(name, false).await
    }

    /// A look-up for a login: the account's state is checked too, and a
    /// usable account is remembered for [`LOGIN_CACHE_TTL`].
    async fn lookup_login(&self, name: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        if let Some(user) = self.login_cache.get(name) {
            return Ok(Some(user));
        }
        let found = self.find_user(name, true).await?;
        if let Some(user) = &found {
            self.login_cache.put(name, user);
        }
        Ok(found)
    }

    async fn find_user(&self, name: &str, check_state: bool) -> Result<Option<DirectoryUser>, DirectoryError> {
        check_name(name)?;
        let filter = self.user_filter_for(name);
        let found = self
            .with_connection(&self.searches, |mut ldap| {
                let filter = filter.clone();
                async move {
                    let entries = self
                        .search_entries(&mut ldap, &self.base_dn, Scope::Subtree, &filter, self.attributes(), 2)
                        .await?
                        .ok_or_else(|| {
                            Failure::Answer(DirectoryError::Unavailable(format!(
                                "base_dn {} does not exist",
                                self.base_dn
                            )))
                        })?;
                    let entry = match entries.as_slice() {
                        [] => return Ok(None),
                        [entry] => entry,
                        _ => return Err(Failure::Answer(DirectoryError::Ambiguous(name.to_string()))),
                    };
                    let mut user = self.user_of(entry, Some(name));
                    let member = self.member_check(&mut ldap, &entry.dn).await?;
                    if let (Some(user), true) = (user.as_mut(), member) {
                        self.read_authz(&mut ldap, entry, user).await?;
                    }
                    let state =
                        if check_state && member { self.account_check(&mut ldap, &entry.dn).await? } else { None };
                    Ok(user.map(|u| (u, member, state)))
                }
            })
            .await?;
        match found {
            None => Ok(None),
            Some((user, false, _)) => Err(DirectoryError::NotInGroup(user.name)),
            Some((user, true, Some(why))) => Err(DirectoryError::AccountUnusable(user.name, why.as_str().to_string())),
            Some((user, true, None)) => Ok(Some(user)),
        }
    }

    async fn search_users(&self, query: &str, limit: usize) -> Result<Vec<DirectoryUser>, DirectoryError> {
        if query.len() > MAX_NAME_BYTES {
            return Err(DirectoryError::BadName(query.to_string()));
        }
        let limit = limit.clamp(1, self.search_limit);
        let filter = self.search_filter_for(query);
        let per_entry_check = self.required_group.is_some() && self.membership != GroupMembership::MemberOf;
        let mut users = self
            .with_connection(&self.searches, |mut ldap| {
                let filter = filter.clone();
                async move {
                    let entries = self
                        .search_entries(&mut ldap, &self.base_dn, Scope::Subtree, &filter, self.attributes(), limit)
                        .await?
                        .unwrap_or_default();
                    let mut users = Vec::new();
                    for entry in entries.iter().take(limit) {
                        if per_entry_check && !self.member_check(&mut ldap, &entry.dn).await? {
                            continue;
                        }
                        users.extend(self.user_of(entry, None));
                    }
                    Ok(users)
                }
            })
            .await?;
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    /// Whether `password` binds as `user` (found by a look-up here).
    /// An empty password is refused before any traffic.
    pub async fn check_password(&self, user: &DirectoryUser, password: &Secret) -> Result<bool, DirectoryError> {
        if password.is_empty() {
            return Ok(false);
        }
        let dn = user_dn(user)?;
        let Ok(password) = std::str::from_utf8(password.expose()) else {
            tracing::debug!(user = %user.name, "password is not UTF-8; refused without a bind");
            return Ok(false);
        };
        self.with_connection(&self.binds, |mut ldap| async move {
            let result = ldap.with_timeout(self.timeout).simple_bind(dn, password).await?;
            match result.rc {
                0 => Ok(true),
                rc if connection_trouble(rc) => Err(Failure::Broken(describe_result(&result))),
                _ => {
                    tracing::debug!(dn, "LDAP bind refused: {}", describe_result(&result));
                    // The refusal may come from a new account state (AD
                    // locks an account after wrong passwords): read it again
                    // at the next login.
                    self.login_cache.forget_dn(dn);
                    Ok(false)
                }
            }
        })
        .await
    }

    /// Whether `user` belongs to `required_group` (true when none is set).
    pub async fn in_required_group(&self, user: &DirectoryUser) -> Result<bool, DirectoryError> {
        if self.required_group.is_none() {
            return Ok(true);
        }
        let dn = user_dn(user)?;
        self.with_connection(&self.searches, |mut ldap| async move { self.member_check(&mut ldap, dn).await }).await
    }

    /// Whether `user` is in `group` (roles of the web console).
    pub async fn in_group(&self, user: &DirectoryUser, group: &str) -> Result<bool, DirectoryError> {
        let dn = user_dn(user)?;
        self.with_connection(&self.searches, |mut ldap| async move { self.group_check(&mut ldap, dn, group).await })
            .await
    }

    /// Connects (service bind included) and reads the base DN entry.
    pub async fn probe(&self) -> Result<String, DirectoryError> {
        let url = self
            .with_connection(&self.searches, |mut ldap| async move {
                let none = vec!["1.1".to_string()];
                match self.search_entries(&mut ldap, &self.base_dn, Scope::Base, "(objectClass=*)", none, 1).await? {
                    Some(_) => self.group_exists(&mut ldap).await,
                    None => Err(Failure::Answer(DirectoryError::Unavailable(format!(
                        "base_dn {} does not exist",
                        self.base_dn
                    )))),
                }
            })
            .await
            .map(|()| self.current_url())?;
        Ok(url)
    }

    /// The URL of a pooled search connection, or the first URL.
    fn current_url(&self) -> String {
        let idle = self.searches.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.last().map(|c| self.urls[c.url].clone()).unwrap_or_else(|| self.urls[0].clone())
    }
}

fn check_name(name: &str) -> Result<(), DirectoryError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(DirectoryError::BadName(name.to_string()));
    }
    Ok(())
}

fn user_dn(user: &DirectoryUser) -> Result<&str, DirectoryError> {
    user.dn
        .as_deref()
        .filter(|dn| !dn.is_empty())
        .ok_or_else(|| DirectoryError::Unsupported(format!("user {} has no LDAP DN", user.name)))
}

impl UserDirectory for LdapDirectory {
    fn lookup<'a>(&'a self, name: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        Box::pin(self.lookup_user(name))
    }

    fn lookup_for_login<'a>(&'a self, name: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        Box::pin(self.lookup_login(name))
    }

    fn search<'a>(&'a self, query: &'a str, limit: usize) -> DirectoryFuture<'a, Vec<DirectoryUser>> {
        Box::pin(self.search_users(query, limit))
    }

    fn check_password<'a>(&'a self, user: &'a DirectoryUser, password: &'a Secret) -> DirectoryFuture<'a, bool> {
        Box::pin(LdapDirectory::check_password(self, user, password))
    }

    fn in_required_group<'a>(&'a self, user: &'a DirectoryUser) -> DirectoryFuture<'a, bool> {
        Box::pin(LdapDirectory::in_required_group(self, user))
    }

    fn in_group<'a>(&'a self, user: &'a DirectoryUser, group: &'a str) -> DirectoryFuture<'a, bool> {
        Box::pin(LdapDirectory::in_group(self, user, group))
    }

    fn probe(&self) -> DirectoryFuture<'_, String> {
        Box::pin(LdapDirectory::probe(self))
    }
}

#[cfg(test)]
mod tests;
