//! radotpd with `directory.kind: ldap`, driven through radotpctl.

use crate::harness::{Daemon, RFC_SEED_HEX};
use crate::slapd::*;

/// The e2e base configuration with its directory section replaced.
fn ldap_daemon(slapd: &Slapd) -> Daemon {
    let section = format!(
        "directory:\n  kind: ldap\n  urls: [\"{}\"]\n  bind_dn: \"{SERVICE_DN}\"\n  bind_password: \"{SERVICE_PASSWORD}\"\n  \
         base_dn: \"{PEOPLE}\"\n  required_group: \"{VPN_GROUP}\"\n  timeout_ms: 500\n",
        slapd.url()
    );
    Daemon::start_with(|config| {
        let start = config.find("directory:\n").expect("directory section");
        let end = config.find("token_types:").expect("token_types section");
        config.replace_range(start..end, &section);
    })
}

#[test]
fn radotpd_takes_its_users_from_ldap() {
    let mut slapd = Slapd::start();
    let daemon = ldap_daemon(&slapd);

    let user = daemon.ctl_json(&["user", "show", "alice"]);
    assert_eq!(user["user"]["name"], "alice");
    assert_eq!(user["user"]["display_name"], "Alice Archer");
    assert_eq!(user["user"]["dn"], user_dn("alice"));

    // Outside the required group: a "not found" with its reason.
    let out = daemon.ctl(&["user", "show", "bob"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not in the required group"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let found = daemon.ctl_json(&["user", "search", "example.org"]);
    let names: Vec<&str> = found.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", ZOE]);
    assert_eq!(daemon.ctl_json(&["user", "search", "*"]), serde_json::json!([]));

    // Import: unknown, outside the group and ambiguous users are row errors.
    let report =
        daemon.import(&format!("serial,type,seed,user\nL1,hw-hotp,{RFC_SEED_HEX},alice\nL2,hw-hotp,{RFC_SEED_HEX},\n"));
    assert!(report.contains("imported 2, skipped 0, invalid 0"), "{report}");
    assert_eq!(daemon.ctl_json(&["token", "show", "L1"])["user"], "alice");
    let path = daemon.dir.path().join("bad.csv");
    std::fs::write(&path, format!("serial,type,seed,user\nL3,hw-hotp,{RFC_SEED_HEX},bob\n")).unwrap();
    let out = daemon.ctl(&["token", "import", path.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("not in the required group"), "{text}");

    daemon.ctl_ok(&["token", "assign", "L2", ZOE]);
    assert_eq!(daemon.ctl_json(&["token", "show", "L2"])["user"], ZOE);

    // The directory down: the admin request fails, the daemon stays up.
    slapd.stop();
    let out = daemon.ctl(&["user", "show", "alice"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("directory unavailable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    slapd.launch();
    assert_eq!(daemon.ctl_json(&["user", "show", "alice"])["user"]["name"], "alice");
    assert!(daemon.log().contains("user directory reachable"), "{}", daemon.log());
}
