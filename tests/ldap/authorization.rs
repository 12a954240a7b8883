//! Authorization against a real slapd (issue #16): LDAP groups found by the
//! `member` rule (one search under `group_base_dn`) and by `memberOf` (read
//! with the entry) give reply attributes, decoded by `radclient -x`; a
//! template takes a directory attribute; `allowed_groups` rejects the others.

use crate::harness::{Daemon, RFC_CODES, SECRET, pap_input, radclient};
use crate::modes::daemon_with_modes;
use crate::slapd::*;

/// The client `plain` (127.0.0.4, mode otp) lets only vpn-users in.
fn with_rules(daemon: &mut Daemon, membership: &str) {
    let config = daemon
        .config_text()
        .replace(
            "  timeout_ms: 500\n",
            &format!("  group_base_dn: \"ou=groups,{BASE}\"\n  group_membership: {membership}\n  timeout_ms: 500\n"),
        )
        .replace("mode: otp }", &format!("mode: otp, allowed_groups: [\"{VPN_GROUP}\"] }}"));
    let config = format!(
        "{config}authorization:\n  rules:\n    - name: vpn\n      groups: [\"{}\"]\n      \
         reply: [\"Filter-Id = vpn\", \"Fortinet-Group-Name = {{ldap:mail}}\"]\n",
        VPN_GROUP.to_uppercase()
    );
    daemon.rewrite_config(&config);
    daemon.ctl_ok(&["reload"]);
}

fn login(daemon: &Daemon, user: &str, code: &str) -> String {
    let input = format!("{}Packet-Src-IP-Address = 127.0.0.4\n", pap_input(user, code));
    let out = radclient(&["-x", &daemon.radius.to_string(), "auth", SECRET], &input);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ldap_groups_by_member_give_reply_attributes_and_gate_the_client() {
    let slapd = Slapd::start();
    let mut daemon = daemon_with_modes(&slapd, false, "");
    with_rules(&mut daemon, "member");
    let alice = login(&daemon, "alice", RFC_CODES[0]);
    assert!(alice.contains("Received Access-Accept"), "{alice}");
    assert!(alice.contains("Filter-Id = \"vpn\""), "DNs compare without case: {alice}");
    assert!(alice.contains("Fortinet-Group-Name = \"alice@example.org\""), "{alice}");
    let bob = login(&daemon, "bob", RFC_CODES[0]);
    assert!(bob.contains("Received Access-Reject"), "bob is not in vpn-users: {bob}");
    let rejected = |log: &str| log.lines().any(|l| l.contains("not_allowed_here") && l.contains("RADIUS decision"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !rejected(&daemon.log()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(rejected(&daemon.log()), "{}", daemon.log());

    // password+otp (client local): the entry looked up for the rules serves the password check too.
    let both = format!("{}{}", password_of("alice"), RFC_CODES[1]);
    let out = radclient(&["-x", &daemon.radius.to_string(), "auth", SECRET], &pap_input("alice", &both));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Received Access-Accept") && stdout.contains("Filter-Id = \"vpn\""), "{stdout}");
}

#[test]
fn ldap_groups_by_member_of_come_with_the_entry() {
    let slapd = Slapd::start();
    let mut daemon = daemon_with_modes(&slapd, false, "");
    with_rules(&mut daemon, "memberOf");
    let zoe = login(&daemon, ZOE, RFC_CODES[0]);
    assert!(zoe.contains("Received Access-Accept") && zoe.contains("Filter-Id = \"vpn\""), "{zoe}");
    let bob = login(&daemon, "bob", RFC_CODES[0]);
    assert!(bob.contains("Received Access-Reject"), "{bob}");
}
