//! RADIUS integration as integrators meet it (issue #19): drops that show in
//! the journal at the default log level, NAS attributes behind a proxy,
//! PAM hosts (pam_radius_auth), and a real FreeRADIUS proxy in front.

use std::net::UdpSocket;
use std::time::Duration;

use radotp::radius::packet;

use crate::harness::{Daemon, RFC_CODES, SECRET, pap_input, radclient};

/// The base config at the shipped log level (`info`), not the tests' `debug`.
fn at_default_log_level(config: &mut String) {
    *config = config.replace("log:\n  level: debug\n", "");
}

/// An Access-Request with User-Name and a (garbage) User-Password and no
/// Message-Authenticator, as pam_radius_auth 2.0 and radclient send them.
fn unsigned_access_request(identifier: u8) -> Vec<u8> {
    let mut bytes = vec![packet::CODE_ACCESS_REQUEST, identifier, 0, 0];
    let mut authenticator = [0u8; 16];
    radotp::crypto::random_bytes(&mut authenticator).unwrap();
    bytes.extend_from_slice(&authenticator);
    bytes.extend_from_slice(&[packet::ATTR_USER_NAME, 7]);
    bytes.extend_from_slice(b"alice");
    bytes.extend_from_slice(&[packet::ATTR_USER_PASSWORD, 18]);
    bytes.extend_from_slice(&[0x5a; 16]);
    let length = bytes.len() as u16;
    bytes[2..4].copy_from_slice(&length.to_be_bytes());
    bytes
}

fn warn_lines<'a>(log: &'a str, reason: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains("WARN") && l.contains("RADIUS requests dropped") && l.contains(reason)).collect()
}

/// Waits until `log` holds `wanted` warn lines for `reason` (the daemon
/// writes them from its receive loop, a moment after the datagrams leave).
fn wait_for_warnings(daemon: &Daemon, reason: &str, wanted: usize) {
    for _ in 0..100 {
        if warn_lines(&daemon.log(), reason).len() >= wanted {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon's log once `ready` holds for it (its lines are written just
/// after the reply leaves, so a peer may be done before they are): waits up
/// to 10 seconds, then returns the log as it is.
fn log_when(daemon: &Daemon, ready: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        let log = daemon.log();
        if ready(&log) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.log()
}

fn decisions(log: &str) -> usize {
    log.lines().filter(|l| l.contains("RADIUS decision")).count()
}

#[test]
fn drops_are_warned_once_per_client_and_reason_at_the_default_log_level() {
    let daemon = Daemon::start_with(at_default_log_level);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A flood of unsigned requests from the client (its entry requires Message-Authenticator).
    for n in 0..200u32 {
        socket.send_to(&unsigned_access_request(n as u8), daemon.radius).unwrap();
    }
    // Requests signed with another secret.
    for n in 0..50u8 {
        let bytes = packet::build_access_request(n, b"not-the-secret", "alice", b"123456", None).unwrap();
        socket.send_to(&bytes, daemon.radius).unwrap();
    }
    // Requests from an address no client entry covers.
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    for n in 0..50u8 {
        let bytes = packet::build_access_request(n, SECRET.as_bytes(), "alice", b"123456", None).unwrap();
        stranger.send_to(&bytes, daemon.radius).unwrap();
    }
    wait_for_warnings(&daemon, "unknown_client", 1);
    // The loop screens datagrams in order; a moment more for the last ones.
    std::thread::sleep(Duration::from_millis(500));
    let log = daemon.log();
    eprintln!("{}", log.lines().filter(|l| l.contains("RADIUS requests dropped")).collect::<Vec<_>>().join("\n"));
    let missing = warn_lines(&log, "missing_message_authenticator");
    assert_eq!(missing.len(), 1, "one warn line for 200 unsigned requests:\n{log}");
    assert!(missing[0].contains("client=local") && missing[0].contains("dropped=1"), "{}", missing[0]);
    assert!(
        missing[0].contains("require_message_authenticator: false or auto"),
        "the line says what to do: {}",
        missing[0]
    );
    let bad = warn_lines(&log, "bad_message_authenticator");
    assert_eq!(bad.len(), 1, "one warn line for 50 requests with another secret:\n{log}");
    assert!(bad[0].contains("shared secrets differ"), "{}", bad[0]);
    let unknown = warn_lines(&log, "unknown_client");
    assert_eq!(unknown.len(), 1, "one warn line for 50 requests from an unknown address:\n{log}");
    assert!(unknown[0].contains("127.0.0.2"), "the line names the address: {}", unknown[0]);
    // The drops are all counted in the metrics all the same.
    let status = daemon.ctl_json(&["status"]);
    let drops = &status["radius"]["drops"];
    assert_eq!(drops["missing_message_authenticator"], 200, "{status}");
    assert_eq!(drops["bad_message_authenticator"], 50, "{status}");
    assert_eq!(drops["unknown_client"], 50, "{status}");
}

#[test]
fn nas_attributes_are_in_the_decision_line_and_the_audit_and_filter_it() {
    let daemon = Daemon::start_with(at_default_log_level);
    daemon.rfc_token("HW1", "alice");
    let server = daemon.radius.to_string();
    let nas = "NAS-Identifier = \"vpn-gw-1\"\nNAS-IP-Address = 192.0.2.10\nNAS-Port-Type = Virtual\n\
               Called-Station-Id = \"198.51.100.1\"\nCalling-Station-Id = \"203.0.113.7\"\n";
    let input = format!("{}{nas}", pap_input("alice", RFC_CODES[0]));
    let out = radclient(&["-x", &server, "auth", SECRET], &input);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Access-Accept"), "{out:?}");
    // A request without NAS attributes, from the same client.
    let out = radclient(&["-x", &server, "auth", SECRET], &pap_input("alice", "000000"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Access-Reject"), "{out:?}");

    let log = log_when(&daemon, |log| decisions(log) >= 2);
    let line = log.lines().find(|l| l.contains("RADIUS decision") && l.contains("accept")).expect("decision line");
    for field in [
        "nas=\"vpn-gw-1\"",
        "nas_ip=\"192.0.2.10\"",
        "port_type=\"Virtual\"",
        "called=\"198.51.100.1\"",
        "calling=\"203.0.113.7\"",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }

    let audit = daemon.ctl_json(&["audit", "--nas", "vpn-gw-1"]);
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    let actor = &entries[0]["actor"];
    assert_eq!(actor["client"], "local");
    assert_eq!(actor["nas"]["nas_identifier"], "vpn-gw-1");
    assert_eq!(actor["nas"]["nas_ip_address"], "192.0.2.10");
    assert_eq!(actor["nas"]["nas_port_type"], "Virtual");
    assert_eq!(actor["nas"]["called_station_id"], "198.51.100.1");
    assert_eq!(actor["nas"]["calling_station_id"], "203.0.113.7");
    assert_eq!(entries[0]["result"], "accept");
    assert_eq!(daemon.ctl_json(&["audit", "--nas", "192.0.2.10"]).as_array().unwrap().len(), 1);
    assert_eq!(daemon.ctl_json(&["audit", "--from", "203.0.113.7"]).as_array().unwrap().len(), 1);
    assert_eq!(daemon.ctl_json(&["audit", "--from", "203.0.113.8"]).as_array().unwrap().len(), 0);
    assert_eq!(daemon.ctl_json(&["audit", "--nas", "local"]).as_array().unwrap().len(), 2, "the client's name counts");

    let table = daemon.ctl_ok(&["audit", "--user", "alice", "--limit", "2"]);
    eprintln!("{table}");
    let header = table.lines().next().unwrap();
    assert!(header.contains("NAS") && header.contains("FROM"), "{table}");
    let accepted = table.lines().find(|l| l.contains("accept")).unwrap();
    assert!(accepted.contains("vpn-gw-1") && accepted.contains("203.0.113.7"), "{table}");
    assert_eq!(daemon.ctl_json(&["audit", "verify"])["ok"], true);
}

const PAM_SECRET: &str = "pam-host-secret-0123456789";

/// The recipe of docs/radius-integration.md: the PAM host's requests leave
/// from an address of their own (pam_radius_auth's source-address column),
/// which has a client entry of its own that does not require
/// Message-Authenticator until that address sends one (`auto`).
fn with_pam_client(config: &mut String) {
    at_default_log_level(config);
    *config = config.replace(
        "    - { name: local, address: 127.0.0.1/32, secret: \"testing123\" }\n",
        &format!(
            "    - {{ name: local, address: 127.0.0.1/32, secret: \"testing123\" }}\n    \
             - {{ name: pam-host, address: 127.0.0.2/32, secret: \"{PAM_SECRET}\", require_message_authenticator: auto }}\n"
        ),
    );
}

/// Whether pam_radius_auth.so is in a PAM module directory (`/usr/lib/<triplet>/security`, ...).
fn pam_radius_installed() -> bool {
    ["/lib", "/usr/lib"].iter().any(|lib| {
        std::path::Path::new(lib).join("security/pam_radius_auth.so").exists()
            || std::fs::read_dir(lib)
                .is_ok_and(|dirs| dirs.flatten().any(|d| d.path().join("security/pam_radius_auth.so").exists()))
    })
}

/// A PAM service file in /etc/pam.d that uses pam_radius_auth with its own
/// server file; both are removed when dropped.
struct PamService {
    name: String,
    service_file: std::path::PathBuf,
    servers_file: std::path::PathBuf,
}

impl PamService {
    /// `server_line`: the line of pam_radius_auth's server file
    /// (`server[:port] secret [timeout [source_ip]]`).
    fn new(dir: &std::path::Path, server_line: &str) -> PamService {
        use std::os::unix::fs::PermissionsExt;
        assert!(
            std::path::Path::new("/usr/bin/pamtester").exists() && pam_radius_installed(),
            "pamtester and pam_radius_auth are needed for this test; install them with: apt-get install pamtester libpam-radius-auth (tests/run.sh does)"
        );
        let name = format!("radotp-e2e-{}", crate::harness::rand_suffix());
        let servers_file = dir.join(format!("{name}.conf"));
        std::fs::write(&servers_file, format!("{server_line}\n")).unwrap();
        std::fs::set_permissions(&servers_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let service_file = std::path::Path::new("/etc/pam.d").join(&name);
        std::fs::write(
            &service_file,
            format!(
                "# written by radotp's tests/e2e/integrators.rs; removed when the test ends\n\
                 auth    required  pam_radius_auth.so conf={}\n\
                 account required  pam_permit.so\n",
                servers_file.display()
            ),
        )
        .unwrap_or_else(|e| panic!("cannot write {} (this test needs root): {e}", service_file.display()));
        PamService { name, service_file, servers_file }
    }

    /// Runs `pamtester SERVICE USER authenticate` with `password` typed at the prompt.
    fn authenticate(&self, user: &str, password: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new("pamtester")
            // rhost: what sshd sets, the SSH client's address.
            .args(["-v", "-I", "rhost=198.51.100.23", &self.name, user, "authenticate"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("pamtester");
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.service_file);
        let _ = std::fs::remove_file(&self.servers_file);
    }
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn pamtester_through_pam_radius_auth_with_the_documented_recipe() {
    let daemon = Daemon::start_with(with_pam_client);
    daemon.rfc_token("HW1", "alice");
    let port = daemon.radius.port();

    // The recipe: source address 127.0.0.2, the pam-host entry's secret.
    let pam = PamService::new(daemon.dir.path(), &format!("127.0.0.1:{port} {PAM_SECRET} 3 127.0.0.2"));
    let out = pam.authenticate("alice", RFC_CODES[0]);
    eprintln!("{}", text(&out));
    assert!(out.status.success(), "pamtester with the recipe:\n{}\n{}", text(&out), daemon.log());
    assert!(text(&out).contains("successfully authenticated"), "{}", text(&out));
    let out = pam.authenticate("alice", RFC_CODES[0]);
    assert!(!out.status.success(), "the same code a second time is refused: {}", text(&out));
    let log = log_when(&daemon, |log| decisions(log) >= 2);
    let accepted = log.lines().find(|l| l.contains("RADIUS decision") && l.contains("accept")).expect("decision");
    assert!(accepted.contains("client=pam-host") && accepted.contains("source=127.0.0.2"), "{accepted}");
    assert!(accepted.contains("calling=\"198.51.100.23\"") && accepted.contains("port_type=\"Virtual\""), "{accepted}");
    eprintln!("{}", log.lines().filter(|l| l.contains("RADIUS")).collect::<Vec<_>>().join("\n"));
    let replay = log.lines().find(|l| l.contains("RADIUS decision") && l.contains("replay")).expect("replay");
    assert!(replay.contains("client=pam-host"), "{replay}");

    // Without it: the host's requests come from 127.0.0.1, whose entry
    // requires Message-Authenticator; pam_radius_auth 2.0 sends none, so
    // they are dropped, and the warning says so at the default log level.
    drop(pam);
    let plain = PamService::new(daemon.dir.path(), &format!("127.0.0.1:{port} {SECRET} 3"));
    let out = plain.authenticate("alice", RFC_CODES[1]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Authentication service cannot retrieve authentication info"), "{}", text(&out));
    let log = log_when(&daemon, |log| !warn_lines(log, "missing_message_authenticator").is_empty());
    let warning = warn_lines(&log, "missing_message_authenticator");
    assert_eq!(warning.len(), 1, "{log}");
    assert!(warning[0].contains("client=local"), "{}", warning[0]);
    drop(plain);

    // `auto`: once the PAM host's address has sent a Message-Authenticator
    // (say, after an upgrade to a pam_radius_auth that signs), unsigned
    // requests from it are dropped.
    let mut signing = radotp::radius::client::RadiusClient::connect_from(
        "127.0.0.2".parse().unwrap(),
        daemon.radius,
        PAM_SECRET.as_bytes(),
    )
    .await
    .unwrap();
    let reply = signing.authenticate("alice", RFC_CODES[1]).await.unwrap();
    assert_eq!(reply.code, packet::CODE_ACCESS_ACCEPT);
    let pam = PamService::new(daemon.dir.path(), &format!("127.0.0.1:{port} {PAM_SECRET} 3 127.0.0.2"));
    let out = pam.authenticate("alice", RFC_CODES[2]);
    assert!(!out.status.success(), "unsigned after signed is dropped: {}", text(&out));
    let log = log_when(&daemon, |log| {
        warn_lines(log, "missing_message_authenticator").iter().any(|l| l.contains("client=pam-host"))
    });
    assert!(log.contains("now required from this address"), "{log}");
    eprintln!("{}", log.lines().filter(|l| l.contains("pam-host")).collect::<Vec<_>>().join("\n"));
    let warning = warn_lines(&log, "missing_message_authenticator");
    assert!(warning.iter().any(|l| l.contains("client=pam-host")), "{log}");
}

const HOME_SECRET: &str = "freeradius-to-radotp-secret-42";
const GATEWAY_SECRET: &str = "gateway-to-freeradius-secret-7";

/// One client entry for the proxy (FreeRADIUS sends from 127.0.0.3), with a
/// NAS rule for the gateway behind it.
fn with_proxy_client(config: &mut String) {
    at_default_log_level(config);
    *config = config.replace(
        "    - { name: local, address: 127.0.0.1/32, secret: \"testing123\" }\n",
        &format!(
            "    - {{ name: local, address: 127.0.0.1/32, secret: \"testing123\" }}\n    \
             - {{ name: freeradius-proxy, address: 127.0.0.3/32, secret: \"{HOME_SECRET}\", \
             nas: [ {{ identifier: vpn-gw-1, mode: otp }} ] }}\n"
        ),
    );
}

/// What the VPN gateway sends to FreeRADIUS: the login, and where it comes from.
fn gateway_request(user: &str, code: &str) -> String {
    format!(
        "{}NAS-Identifier = \"vpn-gw-1\"\nNAS-IP-Address = 192.0.2.10\nNAS-Port-Type = Virtual\n\
         Called-Station-Id = \"198.51.100.1\"\nCalling-Station-Id = \"203.0.113.7\"\n",
        pap_input(user, code)
    )
}

#[test]
fn behind_a_freeradius_proxy_the_audit_names_the_real_nas_and_the_caller() {
    let daemon = Daemon::start_with(with_proxy_client);
    daemon.rfc_token("HW1", "alice");
    let proxy = crate::freeradius::FreeRadiusProxy::start(&crate::freeradius::ProxySetup {
        home_server: daemon.radius,
        source: "127.0.0.3",
        home_secret: HOME_SECRET,
        nas_secret: GATEWAY_SECRET,
    });
    let server = proxy.listen.to_string();
    let ask = |code: &str| {
        let out =
            radclient(&["-x", "-r", "1", "-t", "8", &server, "auth", GATEWAY_SECRET], &gateway_request("alice", code));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let accepted = ask(RFC_CODES[0]);
    assert!(accepted.contains("Received Access-Accept"), "through FreeRADIUS:\n{accepted}\n{}", proxy.log());
    let replayed = ask(RFC_CODES[0]);
    assert!(replayed.contains("Received Access-Reject"), "a code once only, through the proxy too:\n{replayed}");
    let wrong = ask("000000");
    assert!(wrong.contains("Received Access-Reject"), "{wrong}");

    let log = log_when(&daemon, |log| decisions(log) >= 3);
    let decisions: Vec<&str> = log.lines().filter(|l| l.contains("RADIUS decision")).collect();
    eprintln!("{}", decisions.join("\n"));
    assert_eq!(decisions.len(), 3, "{log}");
    for line in &decisions {
        assert!(line.contains("client=freeradius-proxy") && line.contains("source=127.0.0.3"), "{line}");
        assert!(line.contains("nas=\"vpn-gw-1\"") && line.contains("calling=\"203.0.113.7\""), "{line}");
    }
    assert!(warn_lines(&log, "").is_empty(), "nothing dropped on the way:\n{log}");

    let table = daemon.ctl_ok(&["audit", "--nas", "vpn-gw-1", "--from", "203.0.113.7"]);
    eprintln!("{table}");
    let entries = daemon.ctl_json(&["audit", "--nas", "vpn-gw-1", "--from", "203.0.113.7"]);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{entries:?}");
    let accept = entries.iter().find(|e| e["result"] == "accept").expect("the accept");
    assert_eq!(accept["actor"]["client"], "freeradius-proxy");
    assert_eq!(accept["actor"]["address"], "127.0.0.3");
    assert_eq!(accept["actor"]["nas"]["nas_identifier"], "vpn-gw-1");
    assert_eq!(accept["actor"]["nas"]["nas_ip_address"], "192.0.2.10");
    assert_eq!(accept["actor"]["nas"]["calling_station_id"], "203.0.113.7");
    assert!(entries.iter().any(|e| e["reason"] == "replay"), "{entries:?}");
    assert_eq!(daemon.ctl_json(&["audit", "--nas", "freeradius-proxy"]).as_array().unwrap().len(), 3);
}
