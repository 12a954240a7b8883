//! radotp against a real Active Directory domain controller (Samba AD DC,
//! see samba.rs): docs/ldap.md's AD example as written, nested groups,
//! password+otp, account states in every mode, a misspelt group, TLS
//! certificates, letter case, and AD's diagnostics.

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
mod samba;

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Daemon, RFC_CODES, RFC_SEED_HEX, SECRET};
use radotp::config::DirectoryConfig;
use radotp::directory::ldap::LdapDirectory;
use radotp::directory::{DirectoryError, UserDirectory};
use radotp::radius::client::RadiusClient;
use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_CHALLENGE, CODE_ACCESS_REJECT};
use radotp::secret::Secret;
use samba::*;

const OTP_CLIENT: &str = "127.0.0.4";
const CHALLENGE_CLIENT: &str = "127.0.0.3";

/// docs/ldap.md's Active Directory example, as written there.
fn docs_ad_example() -> String {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ldap.md")).expect("docs/ldap.md");
    let section = &docs[docs.find("### Active Directory").expect("AD section")..];
    let start = section.find("```yaml\n").expect("yaml block") + "```yaml\n".len();
    let end = start + section[start..].find("```").expect("end of block");
    section[start..end].to_string()
}

/// The docs' example with the test DC's URL, CA and password file put in.
fn directory_section(dir: &std::path::Path) -> String {
    let dc = dc();
    let password_file = dir.join("ldap.pw");
    std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).expect("ldap.pw");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let example = docs_ad_example();
    let urls = example.lines().find(|l| l.trim_start().starts_with("urls:")).expect("urls line");
    example
        .replace(urls, &format!("  urls: [\"{}\"]", dc.ldaps_url()))
        .replace("/etc/radotp/corp-root-ca.pem", dc.ca_file().to_str().expect("utf-8"))
        .replace("/etc/radotp/ldap.pw", password_file.to_str().expect("utf-8"))
}

/// A daemon with the docs' AD directory; clients 127.0.0.1 password+otp,
/// 127.0.0.3 challenge, 127.0.0.4 otp; a token (RFC seed) for each user
/// in the required group.
fn daemon_with(edit_directory: impl FnOnce(String) -> String) -> Daemon {
    Daemon::start_with(|config| {
        let dir = std::path::PathBuf::from(
            config.lines().find_map(|l| l.trim().strip_prefix("path: ")).expect("store path").trim_end_matches("/db"),
        );
        let directory = edit_directory(directory_section(&dir));
        let start = config.find("directory:\n").expect("directory section");
        let end = config.find("token_types:").expect("token_types section");
        config.replace_range(start..end, &directory);
        *config = config.replace(
            "    - { name: local, address: 127.0.0.1/32, secret: \"testing123\" }\n",
            &format!(
                "    - {{ name: local, address: 127.0.0.1/32, secret: \"{SECRET}\", mode: password+otp }}\n    \
                 - {{ name: asa, address: {CHALLENGE_CLIENT}/32, secret: \"{SECRET}\", mode: challenge }}\n    \
                 - {{ name: plain, address: {OTP_CLIENT}/32, secret: \"{SECRET}\", mode: otp }}\n"
            ),
        );
    })
}

fn import_tokens(daemon: &Daemon, users: &[&str]) {
    let mut csv = "serial,type,seed,user\n".to_string();
    for user in users {
        csv.push_str(&format!("T-{user},hw-hotp,{RFC_SEED_HEX},{user}\n"));
    }
    daemon.import(&csv);
}

async fn client_from(daemon: &Daemon, local: &str) -> RadiusClient {
    RadiusClient::connect_from(local.parse::<IpAddr>().unwrap(), daemon.radius, SECRET.as_bytes()).await.unwrap()
}

/// How many decisions with `reason` the daemon logged for `user`.
fn reasons_logged(daemon: &Daemon, user: &str, reason: &str) -> usize {
    let (user, reason) = (format!("user=\"{user}\""), format!("reason=\"{reason}\""));
    daemon.log().lines().filter(|l| l.contains("RADIUS decision") && l.contains(&user) && l.contains(&reason)).count()
}

/// Whether the daemon logged (within 5 s: its log is read by a thread)
/// `count` decisions with `reason` for `user`.
fn logged_reasons(daemon: &Daemon, user: &str, reason: &str, count: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while reasons_logged(daemon, user, reason) < count {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reasons_logged(daemon, user, reason) == count
}

fn logged_reason(daemon: &Daemon, user: &str, reason: &str) -> bool {
    logged_reasons(daemon, user, reason, 1)
}

/// Waits up to 10 s for `text` to appear `count` times in the daemon's log.
fn wait_for_log(daemon: &Daemon, text: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.log().matches(text).count() < count {
        assert!(Instant::now() < deadline, "{text:?} not logged {count} time(s):\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn directory_from(section: &str) -> LdapDirectory {
    let config: DirectoryConfig =
        serde_yaml::from_str(section).unwrap_or_else(|e| panic!("bad test section ({e}):\n{section}"));
    let DirectoryConfig::Ldap(ldap) = config else { panic!("not an ldap section") };
    LdapDirectory::new(&ldap).unwrap()
}

/// A `directory:` section's content (no `directory:` line) for `url`.
fn library_section(url: &str, bind: Option<&str>, extra: &str) -> String {
    let bind = bind.map(|dn| format!("bind_dn: '{dn}'\nbind_password: \"{SERVICE_PASSWORD}\"\n")).unwrap_or_default();
    format!(
        "kind: ldap\nurls: [\"{url}\"]\nca_file: {}\n{bind}base_dn: \"{STAFF}\"\n\
         user_filter: \"(&(objectClass=user)(sAMAccountName={{username}}))\"\nattributes: {{ name: sAMAccountName }}\n\
         timeout_ms: 2000\n{extra}",
        dc().ca_file().display()
    )
}

#[test]
fn the_domain_controller_is_provisioned() {
    let Some(dc) = dc_or_skip() else { return };
    eprintln!(
        "samba-tool domain provision: {:.1} s; DC answering with its users after {:.1} s",
        dc.provision_seconds, dc.ready_seconds
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_docs_example_with_nested_groups_and_password_plus_otp() {
    if dc_or_skip().is_none() {
        return;
    }
    let daemon = daemon_with(|d| d);
    import_tokens(&daemon, &["alice", "carol"]);
    let mut client = daemon.client().await;
    // alice is in VPN Users through two groups (three levels).
    let alice = password_of("alice");
    assert_eq!(
        client.authenticate("alice", &format!("{alice}{}", RFC_CODES[0])).await.unwrap().code,
        CODE_ACCESS_ACCEPT
    );
    let carol = password_of("carol");
    assert_eq!(
        client.authenticate("carol", &format!("{carol}{}", RFC_CODES[0])).await.unwrap().code,
        CODE_ACCESS_ACCEPT
    );
    // A wrong AD password; the OTP typed with it is not used up.
    assert_eq!(
        client.authenticate("alice", &format!("Wrong-1{}", RFC_CODES[1])).await.unwrap().code,
        CODE_ACCESS_REJECT
    );
    assert!(logged_reason(&daemon, "alice", "wrong_password"));
    assert_eq!(
        client.authenticate("alice", &format!("{alice}{}", RFC_CODES[1])).await.unwrap().code,
        CODE_ACCESS_ACCEPT
    );
    // Replay.
    assert_eq!(
        client.authenticate("alice", &format!("{alice}{}", RFC_CODES[1])).await.unwrap().code,
        CODE_ACCESS_REJECT
    );
    // bob is in no group.
    let bob = password_of("bob");
    assert_eq!(client.authenticate("bob", &format!("{bob}{}", RFC_CODES[0])).await.unwrap().code, CODE_ACCESS_REJECT);
    assert!(logged_reason(&daemon, "bob", "not_in_group"));
    // otp mode asks the directory too.
    let mut plain = client_from(&daemon, OTP_CLIENT).await;
    assert_eq!(plain.authenticate("alice", RFC_CODES[2]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    assert_eq!(plain.authenticate("bob", RFC_CODES[2]).await.unwrap().code, CODE_ACCESS_REJECT);
    // user search shows only group members, display data from AD.
    let found = daemon.ctl_json(&["user", "search", ""]).to_string();
    assert!(found.contains("alice") && found.contains("carol") && !found.contains("\"bob\""), "{found}");
    assert!(found.contains("alice@corp.example.com"), "{found}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_accounts_are_refused_in_every_mode() {
    if dc_or_skip().is_none() {
        return;
    }
    let daemon = daemon_with(|d| d);
    import_tokens(&daemon, &["dora", "mike", "eve", "lou"]);
    let mut inline = daemon.client().await;
    // lou locks his AD account with wrong passwords typed at the NAS.
    for (i, code) in RFC_CODES.iter().take(LOCKOUT_THRESHOLD as usize).enumerate() {
        let reply = inline.authenticate("lou", &format!("Wrong-{i}{code}")).await.unwrap();
        assert_eq!(reply.code, CODE_ACCESS_REJECT);
    }
    let mut plain = client_from(&daemon, OTP_CLIENT).await;
    let mut asa = client_from(&daemon, CHALLENGE_CLIENT).await;
    for (user, why) in [("dora", "disabled"), ("mike", "must change password"), ("eve", "expired"), ("lou", "locked")] {
        let password = password_of(user);
        assert_eq!(plain.authenticate(user, RFC_CODES[5]).await.unwrap().code, CODE_ACCESS_REJECT, "{user} otp");
        let reply = inline.authenticate(user, &format!("{password}{}", RFC_CODES[5])).await.unwrap();
        assert_eq!(reply.code, CODE_ACCESS_REJECT, "{user} password+otp");
        assert_eq!(asa.authenticate(user, &password).await.unwrap().code, CODE_ACCESS_REJECT, "{user} challenge");
        assert!(
            logged_reasons(&daemon, user, "account_disabled", 3),
            "{user}: one account_disabled per mode:\n{}",
            daemon.log()
        );
        let audit = daemon.ctl_ok(&["audit", "--user", user, "--json"]);
        assert!(audit.contains(&format!("directory account {why}")), "{user}: {audit}");
    }
    let reasons = daemon.ctl_json(&["status"])["radius"]["reject_reasons"].clone();
    assert_eq!(reasons["account_disabled"].as_u64(), Some(12), "{reasons}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelt_member_of_group_is_reported_at_start_reload_and_login() {
    if dc_or_skip().is_none() {
        return;
    }
    let typo = VPN_GROUP.replace("VPN Users", "VPN Userz");
    let mut daemon = daemon_with(|d| d.replace(VPN_GROUP, &typo));
    let message = format!("required_group {typo} does not exist");
    wait_for_log(&daemon, &message, 1);
    import_tokens(&daemon, &[]);
    // A login says the group is missing: not `not_in_group` for everyone.
    let mut plain = client_from(&daemon, OTP_CLIENT).await;
    assert_eq!(plain.authenticate("carol", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_REJECT);
    assert!(logged_reason(&daemon, "carol", "directory_unavailable"), "{}", daemon.log());
    assert_eq!(reasons_logged(&daemon, "carol", "not_in_group"), 0);
    // Corrected by a reload; then misspelt again by another.
    let good = daemon.config_text().replace(&typo, VPN_GROUP);
    daemon.rewrite_config(&good);
    daemon.ctl_ok(&["reload"]);
    wait_for_log(&daemon, "user directory reachable", 1);
    daemon.rewrite_config(&good.replace(VPN_GROUP, &typo));
    daemon.ctl_ok(&["reload"]);
    wait_for_log(&daemon, &message, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_without_subject_alt_name_is_refused_with_its_reason() {
    let Some(dc) = dc_or_skip() else { return };
    let (cert, key) = dc.cn_only_certificate();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept", &format!("127.0.0.1:{port}"), "-cert"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let directory = directory_from(&library_section(&format!("ldaps://127.0.0.1:{port}"), Some(SERVICE_DN), ""));
    let error = directory.probe().await.expect_err("a CN-only certificate is refused").to_string();
    let _ = server.kill();
    let _ = server.wait();
    assert!(error.contains("NotValidForName"), "{error}");
    assert!(error.contains("the certificate has no subjectAltName for 127.0.0.1"), "{error}");
    assert!(error.contains("a CN is not used"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn letter_case_is_the_same_in_every_mode() {
    if dc_or_skip().is_none() {
        return;
    }
    let daemon = daemon_with(|d| d);
    import_tokens(&daemon, &["alice"]);
    let password = password_of("alice");
    let mut plain = client_from(&daemon, OTP_CLIENT).await;
    assert_eq!(plain.authenticate("ALICE", RFC_CODES[0]).await.unwrap().code, CODE_ACCESS_ACCEPT, "otp");
    let mut inline = daemon.client().await;
    let reply = inline.authenticate("Alice", &format!("{password}{}", RFC_CODES[1])).await.unwrap();
    assert_eq!(reply.code, CODE_ACCESS_ACCEPT, "password+otp");
    let mut asa = client_from(&daemon, CHALLENGE_CLIENT).await;
    let challenge = asa.authenticate("aLiCe", &password).await.unwrap();
    assert_eq!(challenge.code, CODE_ACCESS_CHALLENGE);
    let state = challenge.state.expect("State");
    assert_eq!(asa.respond("aLiCe", RFC_CODES[2], &state).await.unwrap().code, CODE_ACCESS_ACCEPT, "challenge");
    // One token, one counter: a code used in one mode is gone in the others.
    assert_eq!(plain.authenticate("alice", RFC_CODES[2]).await.unwrap().code, CODE_ACCESS_REJECT);
}

#[tokio::test(flavor = "multi_thread")]
async fn active_directory_diagnostics() {
    let Some(dc) = dc_or_skip() else { return };
    // A simple bind in clear: AD (and Samba) want TLS or signing.
    let clear = directory_from(&library_section(&dc.ldap_url(), Some(SERVICE_DN), ""));
    let error = clear.probe().await.expect_err("clear-text bind refused").to_string();
    assert!(error.contains("strongerAuthRequired (8)"), "{error}");
    // The same over StartTLS works.
    let starttls = directory_from(&library_section(&dc.ldap_url(), Some(SERVICE_DN), "starttls: true\n"));
    starttls.probe().await.unwrap();
    // The service account as a UPN and as DOMAIN\user.
    for name in [SERVICE_UPN, "CORP\\svc-radotp"] {
        let directory = directory_from(&library_section(&dc.ldaps_url(), Some(name), ""));
        let place = directory.probe().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(place, dc.ldaps_url());
        assert!(directory.lookup("alice").await.unwrap().is_some());
    }
    // Anonymous: refused as a configuration error, not marked as an outage.
    let anonymous = directory_from(&library_section(&dc.ldaps_url(), None, ""));
    let error = anonymous.lookup("alice").await.expect_err("anonymous search refused");
    let DirectoryError::Unavailable(text) = &error else { panic!("{error:?}") };
    assert!(text.contains("set directory.bind_dn"), "{text}");
    // A wrong password is a refused bind (no error), whatever the reason AD gives.
    let directory = directory_from(&library_section(&dc.ldaps_url(), Some(SERVICE_DN), ""));
    let alice = directory.lookup("alice").await.unwrap().expect("alice");
    assert!(!directory.check_password(&alice, &Secret::new(b"Wrong-pw-1".to_vec())).await.unwrap());
    assert!(directory.check_password(&alice, &Secret::new(password_of("alice").into_bytes())).await.unwrap());
}
