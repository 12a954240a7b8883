//! Parsing and validation of whole configuration files.

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
    assert_eq!(config.radius.clients[0].require_message_authenticator, RequireMessageAuthenticator::Always);
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
        .replace("{ name: b, address: 10.0.0.0/8, secret: \"another long secret\" }", "{ name: a, address: 127.0.0.1 }")
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
        MINIMAL.replace("admin: { socket: ./admin.sock }", &format!("admin: {{ socket: ./admin.sock }}\n{settings}"))
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
    let text = MINIMAL.replace("store:", "auth: { failure_decay_seconds: 31536001 }\nstore:");
    assert_eq!(problem_paths(&text), vec!["auth.failure_decay_seconds".to_string()]);
    let text = MINIMAL.replace("store:", "auth: { failure_decay_seconds: 0 }\nstore:");
    assert_eq!(Config::parse(&text).map(|c| c.auth.failure_decay_seconds).ok(), Some(0));
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
        ("  timeout_ms: 700\n", "  timeout_ms: 700\n  attributes: { name: \"u id\" }\n", "directory.attributes.name"),
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
                let real: Vec<_> = e.problems().into_iter().filter(|p| !p.message.contains("No such file")).collect();
                assert!(real.is_empty(), "{}: {real:?}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 1);
}

#[test]
fn open_clients_without_message_authenticator_and_weak_ldap_transport_are_warned_about() {
    let open = MINIMAL.replace("address: 10.0.0.0/8,", "address: 0.0.0.0/0, require_message_authenticator: false,");
    let config = Config::parse(&open).unwrap();
    config.validate().unwrap();
    let paths: Vec<String> = config.warnings().into_iter().map(|w| w.path).collect();
    assert_eq!(paths, ["radius.clients[1].require_message_authenticator"]);
    let v6 = MINIMAL.replace("address: 10.0.0.0/8,", "address: \"::/0\", require_message_authenticator: false,");
    assert_eq!(Config::parse(&v6).unwrap().warnings().len(), 1);
    let required = MINIMAL.replace("address: 10.0.0.0/8,", "address: 0.0.0.0/0,");
    assert!(Config::parse(&required).unwrap().warnings().is_empty(), "required (the default): no warning");

    let weak = LDAP
        .replace("ldap://127.0.0.1:3389", "ldap://ldap1.example.org")
        .replace("timeout_ms: 700", "timeout_ms: 700\n  tls_verify: false");
    let config = Config::parse(&with_directory(&weak)).unwrap();
    config.validate().unwrap();
    let warnings = config.warnings();
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["directory.tls_verify", "directory.urls"], "{warnings:?}");
    assert!(warnings[1].message.contains("ldap://ldap1.example.org"), "{warnings:?}");
}

#[test]
fn a_group_that_does_not_exist_is_refused_under_roles_as_under_allowed_groups() {
    let with_admin = |admin: &str| {
        let text =
            MINIMAL.replace("admin: { socket: ./admin.sock }", &format!("admin:\n  socket: ./admin.sock\n{admin}"));
        match Config::parse(&text).unwrap().validate() {
            Ok(()) => Vec::new(),
            Err(e) => e.problems().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        }
    };
    assert!(with_admin("  roles: { operator: { groups: [root, \"0\"] } }").is_empty());
    let problems = with_admin("  roles: { operator: { groups: [root, radotp-opz] }, admin: { groups: [nogroup-x1] } }");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("admin.roles.operator.groups[1]: no group called \"radotp-opz\""), "{problems:?}");
    assert!(problems[1].starts_with("admin.roles.admin.groups[0]"), "{problems:?}");
    let problems = with_admin("  socket_group: radotp-opz");
    assert!(problems[0].starts_with("admin.socket_group: no group called"), "{problems:?}");
}

#[test]
fn the_socket_mode_is_octal_defaults_to_0660_and_gives_others_nothing() {
    let parse = |admin: &str| {
        let text =
            MINIMAL.replace("admin: { socket: ./admin.sock }", &format!("admin:\n  socket: ./admin.sock\n{admin}"));
        Config::parse(&text)
    };
    let config = parse("").unwrap();
    assert_eq!((config.admin.socket_mode, config.admin.socket_group.clone()), (SocketMode(0o660), None));
    assert_eq!(config.admin.socket_mode.to_string(), "0660");
    for written in ["  socket_mode: \"0640\"", "  socket_mode: 0640", "  socket_mode: 640", "  socket_mode: \"0o640\""]
    {
        assert_eq!(parse(written).unwrap().admin.socket_mode, SocketMode(0o640), "{written}");
    }
    let err = parse("  socket_mode: \"0980\"").unwrap_err().to_string();
    assert!(err.starts_with("admin.socket_mode: "), "{err}");
    let config = parse("  socket_mode: \"0666\"").unwrap();
    let problems = config.validate().unwrap_err().problems().iter().map(|p| p.to_string()).collect::<Vec<_>>();
    assert!(problems[0].starts_with("admin.socket_mode: 0666 lets every local user"), "{problems:?}");
    let config = parse("  socket_mode: \"0060\"").unwrap();
    assert!(config.validate().is_err());
}

#[test]
fn nas_rules_choose_the_mode_of_requests_passed_on_by_a_proxy() {
    let proxy = "{ name: proxy, address: 10.0.0.0/8, secret: \"another long secret\", mode: password+otp, \
                 nas: [ { identifier: vpn-gw-1, mode: challenge }, { identifier: wifi } ] }";
    let text = with_directory(LDAP).replace("{ name: b, address: 10.0.0.0/8, secret: \"another long secret\" }", proxy);
    let config = Config::parse(&text).unwrap();
    config.validate().unwrap();
    let clients = config.radius_clients().unwrap();
    let proxy = clients.iter().find(|c| c.name == "proxy").unwrap();
    assert_eq!(proxy.mode_for(Some("vpn-gw-1")), Some(AuthMode::Challenge));
    assert_eq!(proxy.mode_for(Some("wifi")), Some(AuthMode::PasswordOtp), "a rule without mode keeps the client's");
    assert_eq!(proxy.mode_for(Some("other")), Some(AuthMode::PasswordOtp));
    assert_eq!(proxy.mode_for(None), Some(AuthMode::PasswordOtp));

    let twice = text.replace("{ identifier: wifi }", "{ identifier: vpn-gw-1 }");
    assert_eq!(problem_paths(&twice), vec!["radius.clients[1].nas[1].identifier".to_string()]);
    let empty = text.replace("{ identifier: wifi }", "{ identifier: \"\" }");
    assert_eq!(problem_paths(&empty), vec!["radius.clients[1].nas[1].identifier".to_string()]);
    let unknown = text.replace("{ identifier: wifi }", "{ identifier: wifi, policy: x }");
    assert!(problem_paths(&unknown)[0].starts_with("radius.clients[1].nas[1].policy"), "{:?}", problem_paths(&unknown));
    let static_dir = MINIMAL.replace(
        "{ name: b, address: 10.0.0.0/8, secret: \"another long secret\" }",
        "{ name: b, address: 10.0.0.0/8, secret: \"another long secret\", nas: [ { identifier: x, mode: challenge } ] }",
    );
    assert_eq!(problem_paths(&static_dir), vec!["radius.clients[1].nas[0].mode".to_string()]);
}

#[test]
fn require_message_authenticator_is_true_false_or_auto() {
    let with = |value: &str| {
        MINIMAL.replace(
            "{ name: a, address: 127.0.0.1, secret: \"a long random secret\" }",
            &format!("{{ name: a, address: 127.0.0.1, secret: \"a long random secret\", require_message_authenticator: {value} }}"),
        )
    };
    for (value, expected) in [
        ("true", RequireMessageAuthenticator::Always),
        ("false", RequireMessageAuthenticator::Never),
        ("auto", RequireMessageAuthenticator::Auto),
    ] {
        let config = Config::parse(&with(value)).unwrap();
        assert_eq!(config.radius.clients[0].require_message_authenticator, expected, "{value}");
    }
    let err = Config::parse(&with("sometimes")).unwrap_err().to_string();
    assert!(err.starts_with("radius.clients[0].require_message_authenticator: expected true, false or auto"), "{err}");
}

#[test]
fn postgres_store_node_name_and_store_unavailable_keys() {
    use crate::config::{StoreKind, StoreUnavailable};
    let config = Config::parse(MINIMAL).unwrap();
    assert_eq!((config.store.kind, config.auth.store_unavailable), (StoreKind::Sled, StoreUnavailable::Reject));
    assert_eq!(config.node.name, None);
    let shared = MINIMAL.replace(
        "store: { path: ./db, key_file: ./key }",
        "node: { name: radius-a }\nauth: { store_unavailable: no_answer }\nstore:\n  kind: postgres\n  key_file: ./key\n  postgres:\n    url: \"postgresql://radotp@db1:5432,db2:5432/radotp?target_session_attrs=read-write\"\n    pool_size: 8\n",
    );
    let config = Config::parse(&shared).unwrap();
    config.validate().unwrap();
    assert_eq!(config.store.kind, StoreKind::Postgres);
    assert_eq!(config.node.name_or_host(), "radius-a");
    assert_eq!(config.auth.store_unavailable, StoreUnavailable::NoAnswer);
    let pg = config.store.postgres.as_ref().unwrap();
    assert_eq!((pg.pool_size, pg.connect_timeout_ms, pg.statement_timeout_ms), (8, 2000, 2000));
    // Each engine needs its own section; bad values name their key.
    let missing =
        MINIMAL.replace("store: { path: ./db, key_file: ./key }", "store: { kind: postgres, key_file: ./key }");
    assert_eq!(problem_paths(&missing), vec!["store.postgres".to_string()]);
    let no_path = MINIMAL.replace("store: { path: ./db, key_file: ./key }", "store: { key_file: ./key }");
    assert_eq!(problem_paths(&no_path), vec!["store.path".to_string()]);
    let bad =
        shared.replace("pool_size: 8", "pool_size: 0\n    connect_timeout_ms: 5\n    password_file: /nonexistent/pw");
    assert_eq!(
        problem_paths(&bad),
        ["store.postgres.password_file", "store.postgres.pool_size", "store.postgres.connect_timeout_ms"]
            .map(String::from)
    );
    assert_eq!(problem_paths(&shared.replace("radius-a", "a b")), vec!["node.name".to_string()]);
    assert_eq!(problem_paths(&shared.replace("no_answer", "maybe")), vec!["auth.store_unavailable".to_string()]);
}

#[test]
fn active_directory_bind_names_are_accepted() {
    let dn = "  bind_dn: \"cn=radotp,ou=services,dc=example,dc=org\"\n";
    for name in ["svc-radotp@example.test", "EXAMPLE\\\\svc-radotp"] {
        let text = with_directory(&LDAP.replace(dn, &format!("  bind_dn: \"{name}\"\n")));
        assert_eq!(problem_paths(&text), Vec::<String>::new(), "{name}");
    }
    for bad in ["svc-radotp", "@example.test", "EXAMPLE\\\\", "svc radotp@example.test"] {
        let text = with_directory(&LDAP.replace(dn, &format!("  bind_dn: \"{bad}\"\n")));
        assert!(problem_paths(&text).contains(&"directory.bind_dn".to_string()), "{bad}");
    }
}

#[test]
fn dual_stack_listeners_do_not_overlap() {
    let text = MINIMAL.replace(
        r#"listen: ["127.0.0.1:1812"]"#,
        r#"listen: ["0.0.0.0:1812", "[::]:1812", "127.0.0.1:0", "127.0.0.1:0"]"#,
    );
    let config = Config::parse(&text).unwrap();
    config.validate().unwrap();
}

#[test]
fn overlapping_listeners_are_refused_by_key_path() {
    let text = MINIMAL.replace(
        r#"listen: ["127.0.0.1:1812"]"#,
        r#"listen: ["0.0.0.0:1812", "10.0.0.1:1812", "[::1]:1812", "[::1]:1812"]"#,
    );
    let err = Config::parse(&text).unwrap().validate().unwrap_err().to_string();
    assert!(err.contains("radius.listen[1]: 10.0.0.1:1812 overlaps radius.listen[0] (0.0.0.0:1812)"), "{err}");
    assert!(err.contains("radius.listen[3]: [::1]:1812 overlaps radius.listen[2]"), "{err}");
}
