//! RADIUS authentication modes against a real slapd: password+otp (also
//! OpenVPN's SCRV1), challenge with State, realm stripping, required_group,
//! and a directory outage.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use radotp::radius::client::RadiusClient;
use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_CHALLENGE, CODE_ACCESS_REJECT};

use crate::harness::{Daemon, RFC_CODES, RFC_SEED_HEX, SECRET};
use crate::slapd::*;

const OTP_CLIENT: &str = "127.0.0.4";
const CHALLENGE_CLIENT: &str = "127.0.0.3";

/// Clients: 127.0.0.1 password+otp, 127.0.0.3 challenge, 127.0.0.4 otp.
/// Tokens for alice, bob and zoë; with `required_group`, the group (alice,
/// zoë) is switched on afterwards by a reload, as when a user leaves it.
pub(crate) fn daemon_with_modes(slapd: &Slapd, required_group: bool, extra_auth: &str) -> Daemon {
    let directory = format!(
        "directory:\n  kind: ldap\n  urls: [\"{}\"]\n  bind_dn: \"{SERVICE_DN}\"\n  bind_password: \"{SERVICE_PASSWORD}\"\n  \
         base_dn: \"{PEOPLE}\"\n  timeout_ms: 500\n",
        slapd.url()
    );
    let mut daemon = Daemon::start_with(|config| {
        let start = config.find("directory:\n").expect("directory section");
        let end = config.find("token_types:").expect("token_types section");
        config.replace_range(start..end, &directory);
        *config = config.replace(
            "    - { name: local, address: 127.0.0.1/32, secret: \"testing123\" }\n",
            &format!(
                "    - {{ name: local, address: 127.0.0.1/32, secret: \"{SECRET}\", mode: password+otp }}\n    \
                 - {{ name: asa, address: {CHALLENGE_CLIENT}/32, secret: \"{SECRET}\", mode: challenge }}\n    \
                 - {{ name: plain, address: {OTP_CLIENT}/32, secret: \"{SECRET}\", mode: otp }}\n    \
                 - {{ name: asa2, address: 127.0.0.5/32, secret: \"{SECRET}\", mode: challenge }}\n"
            ),
        );
        *config = config.replace("auth:\n", &format!("auth:\n{extra_auth}"));
    });
    daemon.import(&format!(
        "serial,type,seed,user\nA1,hw-hotp,{RFC_SEED_HEX},alice\nB1,hw-hotp,{RFC_SEED_HEX},bob\nZ1,hw-hotp,{RFC_SEED_HEX},{ZOE}\n"
    ));
    if required_group {
        let config = daemon
            .config_text()
            .replace("  timeout_ms: 500\n", &format!("  required_group: \"{VPN_GROUP}\"\n  timeout_ms: 500\n"));
        daemon.rewrite_config(&config);
        daemon.ctl_ok(&["reload"]);
    }
    daemon
}

async fn client_from(daemon: &Daemon, local: &str) -> RadiusClient {
    RadiusClient::connect_from(local.parse::<IpAddr>().unwrap(), daemon.radius, SECRET.as_bytes()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn password_plus_otp_checks_both() {
    let slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, true, "");
    let mut client = daemon.client().await;
    let pw = password_of("alice");
    assert_eq!(client.authenticate("alice", &format!("{pw}{}", RFC_CODES[0])).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // A wrong password does not burn the OTP typed with it.
    assert_eq!(client.authenticate("alice", &format!("wrong{}", RFC_CODES[1])).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(client.authenticate("alice", RFC_CODES[1]).await.unwrap().code, CODE_ACCESS_REJECT, "empty password");
    assert_eq!(client.authenticate("alice", &format!("{pw}000000")).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(client.authenticate("alice", &format!("{pw}{}", RFC_CODES[1])).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(
        client.authenticate("alice", &format!("{pw}{}", RFC_CODES[1])).await.unwrap().code,
        CODE_ACCESS_REJECT,
        "replay"
    );
    // OpenVPN's static challenge form.
    let b64 = |s: &str| data_encoding::BASE64.encode(s.as_bytes());
    let scrv1 = format!("SCRV1:{}:{}", b64(&pw), b64(RFC_CODES[2]));
    assert_eq!(client.authenticate("alice", &scrv1).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let scrv1 = format!("SCRV1:{}:{}", b64("nope"), b64(RFC_CODES[3]));
    assert_eq!(client.authenticate("alice", &scrv1).await.unwrap().code, CODE_ACCESS_REJECT);
    // Outside required_group: rejected with the right password and OTP.
    let bob = format!("{}{}", password_of("bob"), RFC_CODES[0]);
    assert_eq!(client.authenticate("bob", &bob).await.unwrap().code, CODE_ACCESS_REJECT);
    // Injection in the user name finds nobody.
    assert_eq!(client.authenticate("*", &format!("{pw}{}", RFC_CODES[3])).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(
        client.authenticate("alice)(uid=*", &format!("{pw}{}", RFC_CODES[3])).await.unwrap().code,
        CODE_ACCESS_REJECT
    );
    let reasons = daemon.ctl_json(&["status"])["radius"]["reject_reasons"].clone();
    assert!(reasons["wrong_password"].as_u64().unwrap() >= 2, "{reasons}");
    assert!(reasons["not_in_group"].as_u64().unwrap() >= 1, "{reasons}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_directory_passwords_count_towards_the_lockout_in_both_password_modes() {
    // The harness has auth.max_failures: 5.
    let slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, false, "");
    let token = |serial: &str| daemon.ctl_json(&["token", "show", serial]);
    let mut client = daemon.client().await;
    let pw = password_of("alice");
    let code = |otp: &str, password: &str| format!("{password}{otp}");

    // password+otp: a wrong password counts, the OTP typed with it stays unused.
    for _ in 0..2 {
        let reply = client.authenticate("alice", &code(RFC_CODES[0], "wrong")).await.unwrap();
        assert_eq!(reply.code, CODE_ACCESS_REJECT);
    }
    assert_eq!((token("A1")["fail_count"].as_u64(), token("A1")["counter"].as_u64()), (Some(2), Some(0)));
    let reply = client.authenticate("alice", &code(RFC_CODES[0], &pw)).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_ACCEPT, "the OTP was not burnt");
    assert_eq!(token("A1")["fail_count"], 2, "a success does not reset the count");

    // One unused HOTP code no longer buys unlimited password guesses.
    for _ in 0..5 {
        let reply = client.authenticate("alice", &code(RFC_CODES[1], "guess")).await.unwrap();
        assert_eq!(reply.code, CODE_ACCESS_REJECT);
    }
    assert_eq!(token("A1")["state"], "locked");
    let reply = client.authenticate("alice", &code(RFC_CODES[1], &pw)).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_REJECT, "locked: even the right password and code");
    assert_eq!(token("B1")["fail_count"], 0, "another user's token is not touched");

    // challenge: wrong passwords were never counted before; now they lock too.
    let mut asa = client_from(&daemon, CHALLENGE_CLIENT).await;
    for _ in 0..5 {
        assert_eq!(asa.authenticate("bob", "wrong").await.unwrap().code, CODE_ACCESS_REJECT);
    }
    assert_eq!(token("B1")["state"], "locked");
    let reply = asa.authenticate("bob", &password_of("bob")).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_REJECT, "no challenge for a user whose tokens are all locked");
    let reasons = daemon.ctl_json(&["status"])["radius"]["reject_reasons"].clone();
    // alice: 2, then 3 more to the lock (the Accept between did not reset her
    // count); bob: 5. Password guesses at a locked user never reach the directory.
    assert_eq!(reasons["wrong_password"].as_u64(), Some(10), "{reasons}");

    // An operator unlock restores both, and the OTP refused while locked still works.
    daemon.ctl_ok(&["token", "unlock", "A1"]);
    let reply = client.authenticate("alice", &code(RFC_CODES[1], &pw)).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread")]
async fn count_password_failures_false_leaves_the_fail_count_alone() {
    let slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, false, "  count_password_failures: false\n");
    let mut client = daemon.client().await;
    let mut asa = client_from(&daemon, CHALLENGE_CLIENT).await;
    for _ in 0..6 {
        let reply = client.authenticate("alice", &format!("wrong{}", RFC_CODES[0])).await.unwrap();
        assert_eq!(reply.code, CODE_ACCESS_REJECT);
        assert_eq!(asa.authenticate("bob", "wrong").await.unwrap().code, CODE_ACCESS_REJECT);
    }
    for serial in ["A1", "B1"] {
        let token = daemon.ctl_json(&["token", "show", serial]);
        assert_eq!((token["state"].as_str(), token["fail_count"].as_u64()), (Some("active"), Some(0)), "{token}");
    }
    let reply = client.authenticate("alice", &format!("{}{}", password_of("alice"), RFC_CODES[0])).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread")]
async fn otp_mode_also_enforces_required_group() {
    let slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, true, "");
    let mut client = client_from(&daemon, OTP_CLIENT).await;
    assert_eq!(client.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(client.authenticate("bob", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ppolicy_locked_account_is_refused_in_every_mode() {
    let slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, false, "");
    slapd.add(&format!(
        "dn: {}\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
        user_dn("bob")
    ));
    let mut plain = client_from(&daemon, OTP_CLIENT).await;
    assert_eq!(plain.authenticate("bob", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT);
    let mut inline = daemon.client().await;
    let reply = inline.authenticate("bob", &format!("{}{}", password_of("bob"), RFC_CODES[0])).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_REJECT);
    let mut asa = client_from(&daemon, CHALLENGE_CLIENT).await;
    assert_eq!(asa.authenticate("bob", &password_of("bob")).await.unwrap().code, CODE_ACCESS_REJECT);
    assert_eq!(plain.authenticate("alice", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT, "not locked");
    let reasons = daemon.ctl_json(&["status"])["radius"]["reject_reasons"].clone();
    assert_eq!(reasons["account_disabled"].as_u64(), Some(3), "{reasons}");
    let audit = daemon.ctl_ok(&["audit", "--user", "bob", "--json"]);
    assert!(audit.contains("directory account locked"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn challenge_flow_and_its_states() {
    let slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, true, "  challenge_timeout_seconds: 2\n  challenge_max_attempts: 2\n");
    let mut asa = client_from(&daemon, CHALLENGE_CLIENT).await;
    let pw = password_of("alice");
    // Wrong password: no challenge.
    assert_eq!(asa.authenticate("alice", "wrong").await.unwrap().code, CODE_ACCESS_REJECT);
    let challenge = asa.authenticate("alice", &pw).await.unwrap();
    assert_eq!(challenge.code, CODE_ACCESS_CHALLENGE);
    assert_eq!(challenge.reply_message.as_deref(), Some("Enter your one-time password"));
    let state = challenge.state.clone().expect("State");
    assert!(state.len() >= 16);
    assert_eq!(asa.respond("alice", RFC_CODES[0], &state).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // Reused State.
    assert_eq!(asa.respond("alice", RFC_CODES[1], &state).await.unwrap().code, CODE_ACCESS_REJECT);
    // Foreign State: another user, then another client.
    let state = asa.authenticate("alice", &pw).await.unwrap().state.unwrap();
    assert_eq!(asa.respond(ZOE, RFC_CODES[1], &state).await.unwrap().code, CODE_ACCESS_REJECT);
    let state = asa.authenticate("alice", &pw).await.unwrap().state.unwrap();
    let mut other = client_from(&daemon, "127.0.0.5").await; // another challenge-mode client
    assert_eq!(other.respond("alice", RFC_CODES[1], &state).await.unwrap().code, CODE_ACCESS_REJECT);
    // Limited attempts: a wrong OTP gets one more challenge, then a reject.
    let state = asa.authenticate("alice", &pw).await.unwrap().state.unwrap();
    let again = asa.respond("alice", "000000", &state).await.unwrap();
    assert_eq!(again.code, CODE_ACCESS_CHALLENGE);
    assert_eq!(asa.respond("alice", "000000", &again.state.unwrap()).await.unwrap().code, CODE_ACCESS_REJECT);
    // Expired State.
    let state = asa.authenticate("alice", &pw).await.unwrap().state.unwrap();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(asa.respond("alice", RFC_CODES[1], &state).await.unwrap().code, CODE_ACCESS_REJECT);
    // The OTP was never consumed by the refused answers.
    let state = asa.authenticate("alice", &pw).await.unwrap().state.unwrap();
    assert_eq!(asa.respond("alice", RFC_CODES[1], &state).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert!(daemon.ctl_json(&["status"])["radius"]["reject_reasons"]["bad_state"].as_u64().unwrap() >= 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn realm_stripping_and_case() {
    let slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, false, "  strip_realm: true\n  case_insensitive_users: true\n");
    let mut client = daemon.client().await;
    let pw = password_of("alice");
    assert_eq!(
        client.authenticate("Alice@example.org", &format!("{pw}{}", RFC_CODES[0])).await.unwrap().code,
        CODE_ACCESS_ACCEPT
    );
    assert_eq!(
        client.authenticate("EXAMPLE\\alice", &format!("{pw}{}", RFC_CODES[1])).await.unwrap().code,
        CODE_ACCESS_ACCEPT
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_belong_to_the_directory_spelling_of_the_name() {
    let slapd = Slapd::start();
    // No case folding configured: LDAP matches uid without regard to case,
    // and the tokens are found under the directory's own spelling.
    let daemon = daemon_with_modes(&slapd, false, "");
    let mut client = daemon.client().await;
    let pw = password_of("alice");
    assert_eq!(client.authenticate("ALICE", &format!("{pw}{}", RFC_CODES[0])).await.unwrap().code, CODE_ACCESS_ACCEPT);
    let mut asa = client_from(&daemon, CHALLENGE_CLIENT).await;
    let state = asa.authenticate("Alice", &pw).await.unwrap().state.expect("challenge");
    assert_eq!(asa.respond("Alice", RFC_CODES[1], &state).await.unwrap().code, CODE_ACCESS_ACCEPT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_outage_rejects_quickly_in_every_mode_and_recovers() {
    let mut slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, false, "");
    let mut inline = daemon.client().await;
    let mut plain = client_from(&daemon, OTP_CLIENT).await;
    let pw = password_of("alice");
    slapd.stop();
    let started = Instant::now();
    let reply = inline.authenticate("alice", &format!("{pw}{}", RFC_CODES[0])).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_REJECT);
    assert!(started.elapsed() < Duration::from_millis(1500), "answered within the timeout: {:?}", started.elapsed());
    // otp mode too checks the account at each login, so it follows the
    // outage policy (here: reject), and the OTP is not used up.
    assert_eq!(plain.authenticate(ZOE, RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT);
    slapd.launch();
    let mut accepted = false;
    for _ in 0..20 {
        if inline.authenticate("alice", &format!("{pw}{}", RFC_CODES[0])).await.unwrap().code == CODE_ACCESS_ACCEPT {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(accepted, "recovered after the directory came back");
    let reasons = daemon.ctl_json(&["status"])["radius"]["reject_reasons"].clone();
    assert!(reasons["directory_unavailable"].as_u64().unwrap() >= 1, "{reasons}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_while_the_directory_is_down_when_configured() {
    let mut slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, false, "  directory_unavailable: no_answer\n");
    let mut client = daemon.client().await;
    client.timeout = Duration::from_millis(1500);
    slapd.stop();
    let reply = client.authenticate("alice", &format!("{}{}", password_of("alice"), RFC_CODES[0])).await;
    assert!(reply.is_err(), "no answer, so the NAS tries its secondary server: {reply:?}");
    assert!(daemon.ctl_json(&["status"])["radius"]["drops"]["directory_unavailable"].as_u64().unwrap() >= 1);
}

#[test]
fn password_modes_need_an_ldap_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::harness::base_config(dir.path()).replace("auth:\n", "auth:\n  mode: challenge\n");
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_radotpd"))
        .args(["--check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.mode: challenge checks directory passwords"));
}

/// Issue #14, item 5: password guesses reach the directory only with a code
/// a usable token would take, and at most 10 times a minute per user.
#[tokio::test(flavor = "multi_thread")]
async fn password_guesses_do_not_reach_the_directory_without_a_usable_code_and_are_throttled() {
    let slapd = Slapd::start();
    let daemon = daemon_with_modes(&slapd, false, "  count_password_failures: false\n");
    let mut client = daemon.client().await;
    let reasons = || daemon.ctl_json(&["status"])["radius"]["reject_reasons"].clone();
    let b64 = |s: &str| data_encoding::BASE64.encode(s.as_bytes());
    // SCRV1 with a wrong code: refused for the code; the password is never tried.
    for _ in 0..3 {
        let guess = format!("SCRV1:{}:{}", b64("guess"), b64("000000"));
        assert_eq!(client.authenticate("alice", &guess).await.unwrap().code, CODE_ACCESS_REJECT);
    }
    let seen = reasons();
    assert_eq!((seen["wrong_otp"].as_u64(), seen["wrong_password"].as_u64()), (Some(3), None), "{seen}");

    // Challenge step 1 for a user whose tokens are all disabled: no bind.
    daemon.ctl_ok(&["token", "disable", "Z1"]);
    let mut asa = client_from(&daemon, CHALLENGE_CLIENT).await;
    for _ in 0..3 {
        assert_eq!(asa.authenticate(ZOE, "guess").await.unwrap().code, CODE_ACCESS_REJECT);
    }
    assert_eq!(reasons()["no_usable_token"].as_u64(), Some(3));
    assert_eq!(reasons()["wrong_password"].as_u64(), None, "the directory was not asked");

    // Binds per user: 10 a minute; then refused without asking the directory,
    // even for the right password; other users are not affected. (Counted
    // per clock minute: start well inside one.)
    let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 60;
    if second > 45 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
    for _ in 0..10 {
        assert_eq!(asa.authenticate("bob", "guess").await.unwrap().code, CODE_ACCESS_REJECT);
    }
    let reply = asa.authenticate("bob", &password_of("bob")).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_REJECT);
    let seen = reasons();
    assert_eq!((seen["wrong_password"].as_u64(), seen["directory_throttled"].as_u64()), (Some(10), Some(1)), "{seen}");
    assert_eq!(asa.authenticate("alice", &password_of("alice")).await.unwrap().code, CODE_ACCESS_CHALLENGE);
}
