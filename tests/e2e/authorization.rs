//! Authorization end to end: reply attributes from groups, per-client
//! rules and `allowed_groups`, decoded by `radclient -x` with FreeRADIUS's
//! own dictionaries (an independent check of the tagged and vendor-specific
//! encoding).

use std::process::Command;
use std::time::Duration;

use crate::harness::{Daemon, RFC_CODES, SECRET, pap_input, radclient};

/// alice is in vpn-admins and staff, bob in staff; `fw-1` (127.0.0.2) lets
/// only vpn-admins in; Ruckus comes from Debian's dictionary file.
fn with_rules(config: &mut String) {
    *config = config
        .replace(
            "    - { name: local, address: 127.0.0.1/32, secret: \"testing123\" }\n",
            "    - { name: local, address: 127.0.0.1/32, secret: \"testing123\" }\n    \
             - { name: fw-1, address: 127.0.0.2/32, secret: \"testing123\", allowed_groups: [vpn-admins] }\n  \
             dictionary_files: [/usr/share/freeradius/dictionary.ruckus]\n",
        )
        .replace(
            "    - { name: alice, display_name: \"Alice Archer\", email: alice@example.org }\n",
            "    - { name: alice, display_name: \"Alice Archer\", email: alice@example.org, groups: [vpn-admins, staff] }\n",
        )
        .replace("    - { name: bob, display_name: \"Bob Baker\" }\n", "    - { name: bob, display_name: \"Bob Baker\", groups: [staff] }\n");
    config.push_str(
        r#"authorization:
  rules:
    - name: admins
      groups: ["vpn-admins"]
      clients: ["fw-1"]
      reply:
        - "Filter-Id = admins"
        - "Class = vpn-admins"
        - "Tunnel-Type:1 = VLAN"
        - "Tunnel-Medium-Type:1 = IEEE-802"
        - "Tunnel-Private-Group-Id:1 = 42"
        - "Fortinet-Group-Name = vpn-admins"
        - "Cisco-AVPair = shell:priv-lvl=15"
        - "Ruckus-User-Groups = {user}-admins"
    - name: staff
      groups: ["staff"]
      reply: ["Filter-Id = staff", "Session-Timeout = 28800"]
"#,
    );
}

fn from(source: &str, user: &str, code: &str) -> String {
    format!("{}Packet-Src-IP-Address = {source}\n", pap_input(user, code))
}

fn decision_lines(daemon: &Daemon, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let lines: Vec<String> =
            daemon.log().lines().filter(|l| l.contains("RADIUS decision")).map(str::to_string).collect();
        if lines.len() >= count {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("fewer than {count} decision lines:\n{}", daemon.log());
}

#[test]
fn groups_give_reply_attributes_per_client_decoded_by_radclient() {
    let daemon = Daemon::start_with(with_rules);
    daemon.rfc_token("HW1", "alice");
    daemon.rfc_token("HW2", "bob");
    let server = daemon.radius.to_string();

    let out = radclient(&["-x", &server, "auth", SECRET], &from("127.0.0.2", "alice", RFC_CODES[0]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(stdout.contains("Received Access-Accept"), "{out:?}");
    for attribute in [
        "Filter-Id = \"admins\"",
        "Class = 0x76706e2d61646d696e73",
        "Tunnel-Type:1 = VLAN",
        "Tunnel-Medium-Type:1 = IEEE-802",
        "Tunnel-Private-Group-Id:1 = \"42\"",
        "Fortinet-Group-Name = \"vpn-admins\"",
        "Cisco-AVPair = \"shell:priv-lvl=15\"",
        "Ruckus-User-Groups = \"alice-admins\"",
        "Session-Timeout = 28800",
    ] {
        assert!(stdout.contains(attribute), "{attribute} in {stdout}");
    }
    assert!(!stdout.contains("Filter-Id = \"staff\""), "the first rule gives Filter-Id: {stdout}");

    // Through the other client only the staff rule applies.
    let out = radclient(&["-x", &server, "auth", SECRET], &from("127.0.0.1", "alice", RFC_CODES[1]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Received Access-Accept"), "{out:?}");
    assert!(stdout.contains("Filter-Id = \"staff\"") && stdout.contains("Session-Timeout = 28800"), "{stdout}");
    assert!(!stdout.contains("Tunnel-Type"), "{stdout}");

    // bob is not in fw-1's allowed_groups: rejected before his OTP is checked.
    let out = radclient(&["-x", &server, "auth", SECRET], &from("127.0.0.2", "bob", RFC_CODES[0]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Received Access-Reject"), "{out:?}");
    assert!(!stdout.contains("Filter-Id"), "a Reject carries no rule attributes: {stdout}");
    // ... so the same OTP still works through the other client, and no failure was counted.
    let out = radclient(&["-x", &server, "auth", SECRET], &from("127.0.0.1", "bob", RFC_CODES[0]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received Access-Accept"), "{out:?}");

    let lines = decision_lines(&daemon, 4);
    assert!(lines[0].contains("rules=\"admins,staff\"") || lines[0].contains("rules=admins,staff"), "{}", lines[0]);
    assert!(lines[2].contains("not_allowed_here"), "{}", lines[2]);

    // The operator sees the same without a NAS.
    let shown = daemon.ctl_ok(&["user", "show", "alice", "--client", "fw-1"]);
    eprintln!("{shown}");
    assert!(shown.contains("groups        vpn-admins, staff"), "{shown}");
    assert!(shown.contains("client fw-1 (rules admins, staff):"), "{shown}");
    assert!(
        shown.contains("  Tunnel-Type:1 = VLAN") && shown.contains("  Ruckus-User-Groups = alice-admins"),
        "{shown}"
    );
    assert!(!shown.contains("client local"), "--client shows one client: {shown}");
    let bob = daemon.ctl_ok(&["user", "show", "bob"]);
    assert!(bob.contains("client fw-1: not allowed here"), "{bob}");
    assert!(bob.contains("client local (rules staff):\n  Filter-Id = staff\n  Session-Timeout = 28800"), "{bob}");
    let json = daemon.ctl_json(&["user", "show", "alice", "--client", "local"]);
    assert_eq!(json["user"]["groups"], serde_json::json!(["vpn-admins", "staff"]), "{json}");
    assert_eq!(json["replies"][0]["attributes"], serde_json::json!(["Filter-Id = staff", "Session-Timeout = 28800"]));
    let unknown = daemon.ctl(&["user", "show", "alice", "--client", "nope"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no RADIUS client is called \"nope\""), "{unknown:?}");
}

#[test]
fn reply_rules_with_unknown_attributes_or_bad_values_are_configuration_errors() {
    let daemon = Daemon::prepare(with_rules);
    let path = daemon.dir.path().join("bad.yaml");
    for (line, key, message) in [
        ("Filter-Idd = admins", "authorization.rules[1].reply[0]", "unknown attribute"),
        ("Session-Timeout = eight hours", "authorization.rules[1].reply[0]", "is not a number"),
        ("Tunnel-Type:1 = VLANN", "authorization.rules[1].reply[0]", "VALUE names"),
    ] {
        let config = daemon.config_text().replace("\"Filter-Id = staff\"", &format!("\"{line}\""));
        std::fs::write(&path, config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_radotpd"))
            .arg("--check-config")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{line}: {stderr}");
        assert!(stderr.contains(key) && stderr.contains(message) && stderr.contains(line), "{line}: {stderr}");
    }
}

#[test]
fn allowed_token_types_keep_other_tokens_out_of_a_client() {
    let daemon = Daemon::start_with(|config| {
        with_rules(config);
        *config = config.replace("allowed_groups: [vpn-admins] }", "allowed_token_types: [hw-totp] }");
    });
    daemon.rfc_token("HW1", "alice");
    let server = daemon.radius.to_string();
    let out = radclient(&["-x", &server, "auth", SECRET], &from("127.0.0.2", "alice", RFC_CODES[0]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received Access-Reject"), "{out:?}");
    let out = radclient(&["-x", &server, "auth", SECRET], &from("127.0.0.1", "alice", RFC_CODES[0]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received Access-Accept"), "the code was not used: {out:?}");
    let lines = decision_lines(&daemon, 2);
    assert!(lines[0].contains("not_allowed_here"), "{}", lines[0]);
    let token = daemon.ctl_json(&["token", "show", "HW1"]);
    assert_eq!(token["fail_count"], 0, "{token}");
}
