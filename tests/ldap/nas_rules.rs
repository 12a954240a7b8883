//! Per-NAS settings behind a proxy (issue #19): a client entry's `nas`
//! rules choose the mode of the requests that carry a given NAS-Identifier.

use crate::harness::{RFC_CODES, SECRET, pap_input, radclient};
use crate::modes::daemon_with_modes;
use crate::slapd::*;

fn received(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_nas_rule_chooses_the_mode_of_requests_passed_on_by_a_proxy() {
    let slapd = Slapd::start();
    let mut daemon = daemon_with_modes(&slapd, false, "");
    // The client at 127.0.0.1 (password+otp) stands for a proxy; behind it,
    // the NAS vpn-gw-1 is to use challenge mode.
    let config = daemon
        .config_text()
        .replace("mode: password+otp }", "mode: password+otp, nas: [ { identifier: vpn-gw-1, mode: challenge } ] }");
    assert_ne!(config, daemon.config_text());
    daemon.rewrite_config(&config);
    daemon.ctl_ok(&["reload"]);
    let server = daemon.radius.to_string();
    let password = password_of("alice");

    let from_gateway = format!("{}NAS-Identifier = \"vpn-gw-1\"\n", pap_input("alice", &password));
    let out = radclient(&["-x", &server, "auth", SECRET], &from_gateway);
    assert!(received(&out).contains("Received Access-Challenge"), "challenge mode for vpn-gw-1:\n{out:?}");

    let both = format!("{password}{}", RFC_CODES[0]);
    let from_other = format!("{}NAS-Identifier = \"wifi-ctrl\"\n", pap_input("alice", &both));
    let out = radclient(&["-x", &server, "auth", SECRET], &from_other);
    assert!(received(&out).contains("Received Access-Accept"), "the client's password+otp for another NAS:\n{out:?}");

    // The decision line is written just after the reply leaves.
    let logged = |log: &str| log.lines().any(|l| l.contains("result=\"challenge\"") && l.contains("nas=\"vpn-gw-1\""));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !logged(&daemon.log()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(logged(&daemon.log()), "{}", daemon.log());
}
