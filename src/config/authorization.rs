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

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
radius:
  listen: ["127.0.0.1:1812"]
  clients:
    - { name: fw-1, address: 127.0.0.1, secret: "a long random secret", allowed_groups: [admins], nas: [ { identifier: gw, allowed_groups: [staff], allowed_token_types: [hw-hotp] } ] }
store: { path: ./db, key_file: ./key }
admin: { socket: ./admin.sock }
directory: { kind: static, users: [ { name: alice, groups: [admins] } ] }
token_types:
  - { id: hw-hotp, label: "HOTP", algorithm: hotp }
authorization:
  rules:
    - { groups: [admins], clients: [fw-1], reply: ["Filter-Id = admins"] }
"#;

    fn problems(text: &str) -> String {
        let config = Config::parse(text).unwrap();
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn rules_compile_and_nas_rules_override_the_clients_access() {
        let config = Config::parse(BASE).unwrap();
        config.validate().unwrap();
        assert_eq!(config.authorization().unwrap().rules()[0].name, "rules[0]");
        let client = &config.radius_clients().unwrap()[0];
        assert_eq!(client.access_for(None).allowed_groups, Some(vec!["admins".to_string()]));
        let gw = client.access_for(Some("gw"));
        assert_eq!(gw.allowed_groups, Some(vec!["staff".to_string()]));
        assert_eq!(gw.allowed_token_types, Some(vec!["hw-hotp".to_string()]));
    }

    #[test]
    fn unknown_clients_types_and_attributes_name_their_key() {
        let text = BASE.replace("clients: [fw-1]", "clients: [fw-2]");
        assert!(problems(&text).contains("authorization.rules[0].clients[0]: no RADIUS client is called \"fw-2\""));
        let text = BASE.replace("allowed_token_types: [hw-hotp]", "allowed_token_types: [hw-totp]");
        assert!(problems(&text).contains("radius.clients[0].nas[0].allowed_token_types[0]: no token type"));
        let text = BASE.replace("Filter-Id = admins", "Filter-Idd = admins");
        assert!(
            problems(&text).contains("authorization.rules[0].reply[0]: \"Filter-Idd = admins\": unknown attribute")
        );
    }

    #[test]
    fn dictionary_files_are_loaded_or_refused_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dictionary.example");
        std::fs::write(
            &file,
            "VENDOR Example 99999\nBEGIN-VENDOR Example\nATTRIBUTE Example-Role 1 string\nEND-VENDOR Example\n",
        )
        .unwrap();
        let with_file = |path: &std::path::Path, line: &str| {
            BASE.replace("  clients:\n", &format!("  dictionary_files: [{}]\n  clients:\n", path.display()))
                .replace("Filter-Id = admins", line)
        };
        let config = Config::parse(&with_file(&file, "Example-Role = admin")).unwrap();
        config.validate().unwrap();
        let include = dir.path().join("dictionary");
        std::fs::write(&include, "$INCLUDE dictionary.rfc2865\n").unwrap();
        let text = with_file(&include, "Filter-Id = x");
        assert!(problems(&text).contains("radius.dictionary_files[0]: "), "{}", problems(&text));
        assert!(problems(&text).contains("line 1: $INCLUDE is not followed"));
        let missing = dir.path().join("nope");
        assert!(problems(&with_file(&missing, "Filter-Id = x")).contains("radius.dictionary_files[0]: "));
    }
}
