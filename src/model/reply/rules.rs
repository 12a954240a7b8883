//! Reply rules and how they combine.
//!
//! Every rule whose `groups` (any of them) and `clients` (if given) match
//! applies, in the order written. An attribute (with its tag) that an
//! earlier applying rule already gave is not given again by a later one, so
//! put specific rules first; one rule may give an attribute several times
//! (several `Cisco-AVPair` or `Class` lines). A rule without `groups`
//! applies to every user.

use super::item::{ReplyItem, UserValues};

/// Room for reply attributes in an Access-Accept: 4096 bytes less the
/// header (20) and Message-Authenticator (18).
pub const MAX_REPLY_BYTES: usize = 4096 - 20 - 18;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `name`, or `rules[N]`: what the decision log line shows.
    pub name: String,
    /// Group names (static) or DNs (LDAP), compared without regard to ASCII case.
    pub groups: Vec<String>,
    /// RADIUS client names; empty: every client.
    pub clients: Vec<String>,
    pub reply: Vec<ReplyItem>,
}

impl Rule {
    pub fn applies(&self, client: &str, user_groups: &[String]) -> bool {
        let group_ok = self.groups.is_empty() || self.groups.iter().any(|g| in_groups(g, user_groups));
        let client_ok = self.clients.is_empty() || self.clients.iter().any(|c| c == client);
        group_ok && client_ok
    }
}

/// Whether `group` is among `user_groups` (ASCII case ignored, as LDAP DNs are compared).
pub fn in_groups(group: &str, user_groups: &[String]) -> bool {
    user_groups.iter().any(|g| g.eq_ignore_ascii_case(group))
}

/// The rules of `authorization.rules`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorization {
    rules: Vec<Rule>,
}

/// The attributes of one Access-Accept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Each attribute's bytes, in order.
    pub attributes: Vec<Vec<u8>>,
    /// The lines given (values filled in).
    pub lines: Vec<String>,
    /// Names of the rules that applied.
    pub rules: Vec<String>,
    /// Lines left out (a template that did not fit), with the reason.
    pub skipped: Vec<String>,
}

impl Authorization {
    /// Refuses a rule set whose attributes could pass the packet size.
    pub fn new(rules: Vec<Rule>) -> Result<Authorization, String> {
        let worst: usize = rules.iter().flat_map(|r| &r.reply).map(ReplyItem::max_len).sum();
        if worst > MAX_REPLY_BYTES {
            return Err(format!(
                "if every rule applied, the reply attributes would take {worst} bytes; an Access-Accept has room for {MAX_REPLY_BYTES}"
            ));
        }
        Ok(Authorization { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule depends on the user's groups or directory attributes
    /// (the domain then looks the user up before answering).
    pub fn needs_directory(&self) -> bool {
        self.rules.iter().any(|r| !r.groups.is_empty() || r.reply.iter().any(|i| !i.directory_attributes().is_empty()))
    }

    /// Directory attributes the templates read.
    pub fn directory_attributes(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.rules.iter().flat_map(|r| &r.reply).flat_map(|i| i.directory_attributes()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The reply for `user`, in `user_groups`, logging in through `client`.
    pub fn reply_for(&self, client: &str, user_groups: &[String], user: &dyn UserValues) -> Reply {
        let mut reply = Reply::default();
        let mut given: Vec<(String, Option<u8>)> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.applies(client, user_groups)) {
            let earlier = given.clone();
            let mut used = false;
            for item in &rule.reply {
                if earlier.contains(&item.key()) {
                    continue;
                }
                match item.render(user) {
                    Ok((bytes, line)) => {
                        reply.attributes.push(bytes);
                        reply.lines.push(line);
                        given.push(item.key());
                        used = true;
                    }
                    Err(reason) => reply.skipped.push(format!("{}: {reason}", item.text)),
                }
            }
            if used || rule.reply.is_empty() {
                reply.rules.push(rule.name.clone());
            }
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::reply::Dictionary;

    struct Bob;
    impl UserValues for Bob {
        fn name(&self) -> &str {
            "bob"
        }
        fn attribute(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn rule(name: &str, groups: &[&str], clients: &[&str], lines: &[&str]) -> Rule {
        let d = Dictionary::builtin();
        Rule {
            name: name.into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            clients: clients.iter().map(|s| s.to_string()).collect(),
            reply: lines.iter().map(|l| ReplyItem::parse(l, &d).unwrap()).collect(),
        }
    }

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matching_rules_apply_in_order_and_the_first_gives_a_repeated_attribute() {
        let authz = Authorization::new(vec![
            rule("admins", &["vpn-admins"], &["fw-1"], &["Filter-Id = admins", "Class = a", "Class = b"]),
            rule("staff", &["staff"], &[], &["Filter-Id = staff", "Session-Timeout = 28800"]),
            rule("everyone", &[], &[], &["Acct-Interim-Interval = 600"]),
        ])
        .unwrap();
        let both = authz.reply_for("fw-1", &groups(&["VPN-Admins", "staff"]), &Bob);
        assert_eq!(both.rules, ["admins", "staff", "everyone"]);
        assert_eq!(
            both.lines,
            ["Filter-Id = admins", "Class = a", "Class = b", "Session-Timeout = 28800", "Acct-Interim-Interval = 600"]
        );
        let elsewhere = authz.reply_for("switch", &groups(&["vpn-admins", "staff"]), &Bob);
        assert_eq!(elsewhere.rules, ["staff", "everyone"]);
        assert_eq!(authz.reply_for("fw-1", &[], &Bob).rules, ["everyone"]);
        assert!(!authz.needs_directory() || authz.rules().len() == 3);
    }

    #[test]
    fn a_rule_set_that_could_pass_the_packet_size_is_refused() {
        let long = format!("Filter-Id = {}", "x".repeat(200));
        let lines: Vec<&str> = std::iter::repeat_n(long.as_str(), 21).collect();
        assert!(Authorization::new(vec![rule("big", &[], &[], &lines)]).unwrap_err().contains("room for 4058"));
        let fits: Vec<&str> = std::iter::repeat_n(long.as_str(), 19).collect();
        assert!(Authorization::new(vec![rule("ok", &[], &[], &fits)]).is_ok());
    }
}
