//! `authorization`: reply rules, and `radius.dictionary_files`, checked
//! and compiled into [`Authorization`] at load.
//!
//! Every reply line is parsed against the dictionary (built in, plus the
//! files listed) when the configuration loads: an unknown attribute, a
//! value of the wrong type or a malformed template is a problem naming the
//! key path and the line, not a surprise at the first login.

use serde::Deserialize;

use super::*;
use crate::model::reply::{Authorization, Dictionary, ReplyItem, Rule};

/// `authorization`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// Applied in order; see docs/radius-integration.md.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// `authorization.rules[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in the decision log line; `rules[N]` without it.
    #[serde(default)]
    pub name: Option<String>,
    /// The user is in any of these (static group names, or LDAP group DNs);
    /// absent: every user.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Only for requests from these RADIUS clients (by name); absent: all.
    #[serde(default)]
    pub clients: Vec<String>,
    /// `Attribute[:tag] = value` lines (FreeRADIUS style).
    pub reply: Vec<String>,
}

impl Config {
    /// The dictionary: the built-in one plus `radius.dictionary_files`, in order.
    pub fn dictionary(&self) -> Result<Dictionary, ConfigError> {
        let mut dictionary = Dictionary::builtin();
        let mut problems = Vec::new();
        for (i, path) in self.radius.dictionary_files.iter().enumerate() {
            let at = format!("radius.dictionary_files[{i}]");
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    if let Err(e) = dictionary.load(&text) {
                        problems.push(Problem { path: at, message: format!("{}: {e}", path.display()) });
                    }
                }
                Err(e) => problems.push(Problem { path: at, message: format!("{}: {e}", path.display()) }),
            }
        }
        if problems.is_empty() { Ok(dictionary) } else { Err(ConfigError::Invalid { problems }) }
    }

    /// `authorization.rules`, checked against the dictionary and the client names.
    pub fn authorization(&self) -> Result<Authorization, ConfigError> {
        let dictionary = self.dictionary()?;
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| problems.push(Problem { path, message });
        let mut rules = Vec::new();
        for (i, written) in self.authorization.rules.iter().enumerate() {
            let at = format!("authorization.rules[{i}]");
            for (j, client) in written.clients.iter().enumerate() {
                if !self.radius.clients.iter().any(|c| &c.name == client) {
                    problem(format!("{at}.clients[{j}]"), format!("no RADIUS client is called {client:?}"));
                }
            }
            for (j, group) in written.groups.iter().enumerate() {
                if group.trim().is_empty() {
                    problem(format!("{at}.groups[{j}]"), "must not be empty".into());
                }
            }
            let mut reply = Vec::new();
            for (j, line) in written.reply.iter().enumerate() {
                match ReplyItem::parse(line, &dictionary) {
                    Ok(item) => reply.push(item),
                    Err(message) => problem(format!("{at}.reply[{j}]"), format!("{line:?}: {message}")),
                }
            }
            let name = written.name.clone().unwrap_or_else(|| format!("rules[{i}]"));
            rules.push(Rule { name, groups: written.groups.clone(), clients: written.clients.clone(), reply });
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        Authorization::new(rules).map_err(|message| ConfigError::Invalid {
            problems: vec![Problem { path: "authorization.rules".into(), message }],
        })
    }
}
