//! A real Active Directory domain controller for tests: Debian's `samba`,
//! provisioned into a temporary directory (`samba-tool domain provision`,
//! `--dns-backend=NONE`) and run in the foreground (`samba -i`) inside a
//! network namespace of its own, so that it listens on the standard ports
//! (389, 636) without touching the host's. A veth pair joins the namespace
//! to the host: the DC is at [`Dc::ip`].
//!
//! One DC per test binary ([`dc`]); the tests share it and each uses its
//! own users. A watcher started with the DC stops it, deletes the
//! namespace and the directory once the test process has exited (even
//! after a panic). Needs root (for `ip netns`), `samba`,
//! `samba-vfs-modules`, `openssl`, `iproute2`; tests/run.sh installs them.
//! A missing tool is a test failure that says what to install.
//!
//! The domain is the one of docs/ldap.md's Active Directory example,
//! `corp.example.com` (NetBIOS `CORP`):
//! - `OU=Staff`: alice (in `VPN Team`, itself in `VPN Staff`, itself in
//!   `VPN Users`: three levels), carol (directly in `VPN Users`), bob (in
//!   no group); dora (disabled), mike (must change password at next
//!   logon), eve (account expired), lou and lena (to be locked by tests),
//!   all four in `VPN Team`. Passwords: [`password_of`].
//! - `OU=Service Accounts`: `svc-radotp` ([`SERVICE_DN`], [`SERVICE_PASSWORD`]).
//! - `OU=Groups`: `VPN Users` ([`VPN_GROUP`]), `VPN Staff`, `VPN Team`.
//! - Account lockout after [`LOCKOUT_THRESHOLD`] wrong passwords.
//!
//! The certificate is signed by a test CA ([`Dc::ca_file`]) and names the
//! DC's address and `dc1.corp.example.com` in its subjectAltName.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const REALM: &str = "corp.example.com";
pub const BASE: &str = "DC=corp,DC=example,DC=com";
pub const STAFF: &str = "OU=Staff,DC=corp,DC=example,DC=com";
pub const SERVICE_DN: &str = "CN=svc-radotp,OU=Service Accounts,DC=corp,DC=example,DC=com";
pub const SERVICE_UPN: &str = "svc-radotp@corp.example.com";
pub const SERVICE_PASSWORD: &str = "Svc-radotp-2026!";
pub const VPN_GROUP: &str = "CN=VPN Users,OU=Groups,DC=corp,DC=example,DC=com";
pub const ADMIN_PASSWORD: &str = "Admin-pw-2026!";
pub const LOCKOUT_THRESHOLD: u32 = 3;

/// Users of `OU=Staff` and the group they are put in.
const USERS: [(&str, Option<&str>); 8] = [
    ("alice", Some("VPN Team")),
    ("carol", Some("VPN Users")),
    ("bob", None),
    ("dora", Some("VPN Team")),
    ("mike", Some("VPN Team")),
    ("eve", Some("VPN Team")),
    ("lou", Some("VPN Team")),
    ("lena", Some("VPN Team")),
];

pub fn password_of(user: &str) -> String {
    format!("{user}-Pw-2026!")
}

pub fn user_dn(user: &str) -> String {
    format!("CN={user},{STAFF}")
}

pub struct Dc {
    pub dir: PathBuf,
    /// The DC's address (in its namespace, reachable from the host).
    pub ip: String,
    /// Seconds the provisioning took (samba-tool domain provision).
    pub provision_seconds: f64,
    /// Seconds from nothing to a DC answering with its users.
    pub ready_seconds: f64,
}

static DC: OnceLock<Dc> = OnceLock::new();

/// The DC of this test binary, provisioned at first use.
pub fn dc() -> &'static Dc {
    DC.get_or_init(Dc::provision)
}

/// The DC, or `None` (and a line saying why) when the tests run as a user
/// who cannot make network namespaces. Under tests/run.sh
/// (`RADOTP_REQUIRE_LOGS` set, as in CI) that is a failure, not a skip.
pub fn dc_or_skip() -> Option<&'static Dc> {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    if !root {
        assert!(
            std::env::var_os("RADOTP_REQUIRE_LOGS").is_none(),
            "tests/ad need root (ip netns add); run tests/run.sh as root"
        );
        eprintln!("skipped: tests/ad need root to make a network namespace for the Samba DC");
        return None;
    }
    Some(dc())
}

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install {package} (tests/run.sh does: apt-get install {package})"
    );
}

/// Runs a command, panicking with its output when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Dc {
    // The watcher and samba outlive this call on purpose: the watcher
    // stops samba after the test process has exited.
    #[allow(clippy::zombie_processes)]
    fn provision() -> Dc {
        let started = Instant::now();
        require("/usr/bin/samba-tool", "samba");
        require("/usr/sbin/samba", "samba");
        require("/usr/bin/openssl", "openssl");
        require("/usr/sbin/ip", "iproute2");
        let pid = std::process::id();
        let dir = tempfile::Builder::new().prefix("radotp-ad-").tempdir().expect("temp dir").keep();
        let netns = format!("radotp-ad-{pid}");
        let (host_if, dc_if) = (format!("radad{pid}h"), format!("radad{pid}n"));
        let (a, b) = ((pid / 64) % 256, (pid % 64) * 4);
        let (host_ip, ip) = (format!("10.213.{a}.{}", b + 1), format!("10.213.{a}.{}", b + 2));

        // The watcher first: whatever happens next, it cleans up after us.
        let cleanup = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             [ -f {dir}/samba.pid ] && kill $(cat {dir}/samba.pid) 2>/dev/null; sleep 1; \
             pkill -KILL -F {dir}/samba.pid 2>/dev/null; \
             ip netns pids {netns} 2>/dev/null | xargs -r kill -KILL; \
             ip link del {host_if} 2>/dev/null; ip netns del {netns} 2>/dev/null; rm -rf {dir}",
            dir = dir.display()
        );
        Command::new("setsid")
            .args(["sh", "-c", &cleanup])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cleanup watcher");

        run("ip", &["netns", "add", &netns]);
        run("ip", &["link", "add", &host_if, "type", "veth", "peer", "name", &dc_if, "netns", &netns]);
        run("ip", &["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        run("ip", &["link", "set", &host_if, "up"]);
        run("ip", &["netns", "exec", &netns, "ip", "link", "set", "lo", "up"]);
        run("ip", &["netns", "exec", &netns, "ip", "addr", "add", &format!("{ip}/30"), "dev", &dc_if]);
        run("ip", &["netns", "exec", &netns, "ip", "link", "set", &dc_if, "up"]);

        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        make_certificates(&tls, &ip);

        let target = dir.join("dc");
        let provision_started = Instant::now();
        run(
            "samba-tool",
            &[
                "domain",
                "provision",
                "--use-rfc2307",
                &format!("--realm={}", REALM.to_uppercase()),
                "--domain=CORP",
                "--server-role=dc",
                "--dns-backend=NONE",
                "--host-name=dc1",
                &format!("--adminpass={ADMIN_PASSWORD}"),
                &format!("--targetdir={}", target.display()),
                &format!("--option=interfaces={ip}"),
                "--option=bind interfaces only=yes",
            ],
        );
        let provision_seconds = provision_started.elapsed().as_secs_f64();
        let smb_conf = target.join("etc/smb.conf");
        let conf = std::fs::read_to_string(&smb_conf).expect("smb.conf");
        let d = target.display();
        let extra = format!(
            "[global]\n\tserver services = ldap\n\tlog file = {d}/log.samba\n\tpid directory = {d}\n\t\
             ntp signd socket directory = {d}/ntp\n\twinbindd socket directory = {d}/wb\n\t\
             tls enabled = yes\n\ttls keyfile = {t}/dc.key\n\ttls certfile = {t}/dc.pem\n\ttls cafile = \n",
            t = tls.display()
        );
        let conf: String = conf
            .lines()
            .filter(|line| !line.trim_start().starts_with("server services"))
            .map(|line| format!("{line}\n"))
            .collect::<String>()
            .replacen("[global]\n", &extra, 1);
        std::fs::write(&smb_conf, conf).expect("write smb.conf");

        let dc = Dc { dir: dir.clone(), ip, provision_seconds, ready_seconds: 0.0 };
        dc.populate(&target);
        let log = std::fs::File::create(dir.join("samba.out")).expect("samba.out");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns, "samba", "-i", "-s"])
            .arg(&smb_conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start samba");
        std::fs::write(dir.join("samba.pid"), child.id().to_string()).expect("samba.pid");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&format!("{}:636", dc.ip).parse().expect("addr"), Duration::from_millis(200))
            .is_err()
        {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("samba exited at start ({status}):\n{}", dc.log());
            }
            assert!(Instant::now() < deadline, "samba did not listen within 60 s:\n{}", dc.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        Dc { ready_seconds: started.elapsed().as_secs_f64(), ..dc }
    }

    /// Users, groups, the service account and the lockout policy, written
    /// to the database before the DC starts.
    fn populate(&self, target: &Path) {
        let sam = target.join("private/sam.ldb");
        let conf = target.join("etc/smb.conf");
        let sam = sam.to_str().expect("utf-8 path");
        let conf = conf.to_str().expect("utf-8 path");
        let tool = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["-H", sam, "-s", conf]);
            run("samba-tool", &all);
        };
        for ou in ["OU=Staff", "OU=Groups", "OU=Service Accounts"] {
            tool(&["ou", "create", &format!("{ou},{BASE}")]);
        }
        for group in ["VPN Users", "VPN Staff", "VPN Team"] {
            tool(&["group", "add", group, "--groupou=OU=Groups"]);
        }
        tool(&["group", "addmembers", "VPN Users", "VPN Staff"]);
        tool(&["group", "addmembers", "VPN Staff", "VPN Team"]);
        tool(&["user", "create", "svc-radotp", SERVICE_PASSWORD, "--userou=OU=Service Accounts"]);
        for (user, group) in USERS {
            let password = password_of(user);
            let mail = format!("--mail-address={user}@{REALM}");
            let mut args = vec!["user", "create", user, &password, "--userou=OU=Staff", &mail];
            if user == "mike" {
                args.push("--must-change-at-next-login");
            }
            tool(&args);
            if let Some(group) = group {
                tool(&["group", "addmembers", group, user]);
            }
        }
        tool(&["user", "disable", "dora"]);
        tool(&["user", "setexpiry", "eve", "--days=0"]);
        tool(&["domain", "passwordsettings", "set", &format!("--account-lockout-threshold={LOCKOUT_THRESHOLD}")]);
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://{}", self.ip)
    }

    pub fn ldap_url(&self) -> String {
        format!("ldap://{}", self.ip)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// A certificate naming `dc1.corp.example.com` in its CN only, as
    /// Samba's self-made one does, signed by the same CA; and its key.
    pub fn cn_only_certificate(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("tls/cn-only.pem"), self.dir.join("tls/cn-only.key"))
    }

    pub fn log(&self) -> String {
        let out = std::fs::read_to_string(self.dir.join("samba.out")).unwrap_or_default();
        let log = std::fs::read_to_string(self.dir.join("dc/log.samba")).unwrap_or_default();
        format!("{out}\n{log}")
    }
}

/// A test CA, the DC's certificate (subjectAltName: IP and DNS name) and a
/// CN-only certificate, in `dir`.
fn make_certificates(dir: &Path, ip: &str) {
    let p = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_string();
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=radotp test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
    );
    std::fs::write(dir.join("san.ext"), format!("subjectAltName=IP:{ip},DNS:dc1.{REALM}\n")).expect("san.ext");
    // Any extension makes a version 3 certificate (rustls refuses version 1).
    std::fs::write(dir.join("cn-only.ext"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n")
        .expect("cn-only.ext");
    for (name, ext) in [("dc", "san.ext"), ("cn-only", "cn-only.ext")] {
        run(
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN=dc1.{REALM}"),
                "-keyout",
                &p(&format!("{name}.key")),
                "-out",
                &p(&format!("{name}.csr")),
            ],
        );
        let mut args = vec![
            "x509".to_string(),
            "-req".into(),
            "-days".into(),
            "2".into(),
            "-in".into(),
            p(&format!("{name}.csr")),
            "-CA".into(),
            p("ca.pem"),
            "-CAkey".into(),
            p("ca.key"),
            "-CAcreateserial".into(),
            "-out".into(),
            p(&format!("{name}.pem")),
        ];
        args.extend(["-extfile".to_string(), p(ext)]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("openssl", &args);
    }
    use std::os::unix::fs::PermissionsExt;
    for key in ["dc.key", "cn-only.key"] {
        std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(0o600)).expect("chmod key");
    }
}
