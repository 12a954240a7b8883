//! Filter escaping, name checks and URL handling of the LDAP engine (no server needed).

use super::*;

#[test]
fn escapes_the_rfc4515_specials() {
    assert_eq!(escape_filter_value("*"), "\\2a");
    assert_eq!(escape_filter_value("("), "\\28");
    assert_eq!(escape_filter_value(")"), "\\29");
    assert_eq!(escape_filter_value("\\"), "\\5c");
    assert_eq!(escape_filter_value("\0"), "\\00");
    assert_eq!(escape_filter_value("a)(uid=*"), "a\\29\\28uid=\\2a");
    assert_eq!(escape_filter_value("alice)(|(uid=*"), "alice\\29\\28|\\28uid=\\2a");
}

#[test]
fn plain_names_pass_unchanged() {
    assert_eq!(escape_filter_value("alice"), "alice");
    assert_eq!(escape_filter_value("j.doe-2@example.org"), "j.doe-2@example.org");
    assert_eq!(escape_filter_value("a b=c,d&|!~<>"), "a b=c,d&|!~<>");
    assert_eq!(escape_filter_value(""), "");
}

#[test]
fn non_ascii_and_controls_are_escaped_as_utf8_bytes() {
    assert_eq!(escape_filter_value("zoë"), "zo\\c3\\ab");
    assert_eq!(escape_filter_value("日"), "\\e6\\97\\a5");
    assert_eq!(escape_filter_value("a\nb\x7f"), "a\\0ab\\7f");
    // The result is always printable ASCII.
    let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
    assert!(escape_filter_value(&all).bytes().all(|b| (0x20..0x7f).contains(&b)));
}

#[test]
fn escaped_values_parse_as_one_assertion() {
    for hostile in ["*", "a)(uid=*", "alice)(|(uid=*", "\\", "\0", "x*y", "((", "))"] {
        let filter = format!("(uid={})", escape_filter_value(hostile));
        assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
    }
    // Unescaped, the same input would change the filter's structure.
    assert!(ldap3::parse_filter("(uid=a)(uid=*)").is_err());
}

fn directory(extra: &str) -> LdapDirectory {
    let text = format!("kind: ldap\nurls: [\"ldap://127.0.0.1:1\"]\nbase_dn: \"dc=example,dc=org\"\n{extra}");
    let config: crate::config::DirectoryConfig = serde_yaml::from_str(&text).unwrap();
    let crate::config::DirectoryConfig::Ldap(ldap) = config else { panic!("not ldap") };
    LdapDirectory::new(&ldap).unwrap()
}

#[test]
fn filters_are_built_from_escaped_input() {
    let d = directory("");
    assert_eq!(d.user_filter_for("a)(uid=*"), "(&(objectClass=inetOrgPerson)(uid=a\\29\\28uid=\\2a))");
    assert_eq!(
        d.search_filter_for("b*"),
        "(&(&(objectClass=inetOrgPerson)(uid=*))(|(uid=*b\\2a*)(cn=*b\\2a*)(mail=*b\\2a*)))"
    );
    assert!(d.search_filter_for("").contains("(uid=*)(cn=*)(mail=*)"));
    // A name containing the placeholder is not expanded again.
    assert_eq!(d.user_filter_for("{username}"), "(&(objectClass=inetOrgPerson)(uid={username}))");
}

#[test]
fn member_of_groups_fold_into_the_search_filter() {
    let d =
        directory("required_group: \"cn=vpn,dc=example,dc=org\"\ngroup_membership: memberOf\nnested_groups: true\n");
    assert!(
        d.search_filter_for("x").ends_with("(memberOf:1.2.840.113556.1.4.1941:=cn=vpn,dc=example,dc=org))"),
        "{}",
        d.search_filter_for("x")
    );
}

#[tokio::test]
async fn bad_names_and_empty_passwords_are_refused_without_traffic() {
    // Port 1 refuses connections: an answer other than BadName/false
    // would mean the directory tried to talk.
    let d = directory("");
    assert!(matches!(d.lookup("").await, Err(DirectoryError::BadName(_))));
    let long = "a".repeat(MAX_NAME_BYTES + 1);
    assert!(matches!(d.lookup(&long).await, Err(DirectoryError::BadName(_))));
    let user = DirectoryUser {
        name: "alice".into(),
        display_name: None,
        email: None,
        dn: Some("uid=alice,dc=example,dc=org".into()),
        ..Default::default()
    };
    assert!(!d.check_password(&user, &Secret::from("")).await.unwrap());
    assert!(matches!(d.lookup("alice").await, Err(DirectoryError::Unavailable(_))));
}
