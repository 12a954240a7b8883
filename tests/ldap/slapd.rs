//! A real OpenLDAP `slapd` for tests: a temporary directory, a slapd.conf,
//! an mdb database, sample entries, a free loopback port; killed on drop.
//!
//! Reuse from another test crate with
//! `#[path = "../ldap/slapd.rs"] mod slapd;`. Needs Debian's `slapd`
//! (/usr/sbin/slapd), `ldap-utils` (ldapadd) and, for TLS, `openssl`;
//! tests/run.sh installs them. A missing tool is a test failure that says
//! what to install, never a silent pass.
//!
//! The directory ([`BASE`]) holds:
//! - `ou=people`: alice, bob, carol, dave, zoë (inetOrgPerson; password
//!   `NAME-pw`, mail `NAME@example.org` except carol and dave who share
//!   [`SHARED_MAIL`]);
//! - `ou=groups`: `cn=vpn-users` (groupOfNames: alice, zoë) and
//!   `cn=vpn-unique` (groupOfUniqueNames: alice); the memberof overlay keeps
//!   `memberOf` on the users; the ppolicy overlay (no policy) gives
//!   `pwdAccountLockedTime`, which tests may set to lock an account;
//! - `ou=services`: the service account [`SERVICE_DN`] / [`SERVICE_PASSWORD`],
//!   the only one (besides each user for their own entry) allowed to read.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const BASE: &str = "dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
pub const ROOT_PASSWORD: &str = "admin-pw";
pub const SERVICE_DN: &str = "cn=radotp,ou=services,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "service-pw";
pub const VPN_GROUP: &str = "cn=vpn-users,ou=groups,dc=example,dc=org";
pub const VPN_UNIQUE_GROUP: &str = "cn=vpn-unique,ou=groups,dc=example,dc=org";
pub const SHARED_MAIL: &str = "shared@example.org";
/// A user whose name is not ASCII.
pub const ZOE: &str = "zoë";

pub fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

pub fn password_of(uid: &str) -> String {
    format!("{uid}-pw")
}

pub struct Slapd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    /// Port of `ldap://127.0.0.1:PORT` (StartTLS too when TLS is on).
    pub port: u16,
    /// Port of `ldaps://127.0.0.1:PORT` when TLS is on.
    pub tls_port: Option<u16>,
}

impl Slapd {
    /// A plain-LDAP server with the sample entries.
    pub fn start() -> Slapd {
        Slapd::start_inner(false)
    }

    /// The same, with a test CA ([`Slapd::ca_file`]) and a server
    /// certificate for `localhost` and `127.0.0.1`: StartTLS on
    /// [`Slapd::url`], LDAPS on [`Slapd::ldaps_url`].
    pub fn start_with_tls() -> Slapd {
        Slapd::start_inner(true)
    }

    fn start_inner(tls: bool) -> Slapd {
        require_tools(tls);
        let dir = tempfile::Builder::new().prefix("radotp-slapd-").tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("db")).expect("db dir");
        if tls {
            make_certificates(dir.path());
        }
        let mut slapd = Slapd { child: None, port: free_port(), tls_port: tls.then(free_port), dir };
        std::fs::write(slapd.path("slapd.conf"), slapd.config(tls)).expect("slapd.conf");
        slapd.launch();
        slapd.load_entries();
        slapd
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port.expect("started without TLS"))
    }

    /// The PEM file of the test CA (TLS only).
    pub fn ca_file(&self) -> PathBuf {
        self.path("ca.pem")
    }

    fn config(&self, tls: bool) -> String {
        let dir = self.dir.path().display();
        let tls_lines = if tls {
            format!(
                "TLSCACertificateFile {dir}/ca.pem\nTLSCertificateFile {dir}/server.pem\nTLSCertificateKeyFile {dir}/server.key\n"
            )
        } else {
            String::new()
        };
        format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload ppolicy
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
{tls_lines}
database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {dir}/db
overlay memberof
overlay ppolicy
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by dn.exact="{SERVICE_DN}" read
    by self read
    by * none
"#
        )
    }

    /// Starts slapd in the foreground on the ports chosen at first start.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "slapd already running");
        let mut urls = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(port) = self.tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{port}/"));
        }
        // slapd writes its pid file once its listeners are bound; one left by
        // a killed slapd must not count.
        let pid_file = self.path("slapd.pid");
        let _ = std::fs::remove_file(&pid_file);
        let log = std::fs::File::create(self.path("slapd.log")).expect("slapd.log");
        let mut child = Command::new(SLAPD)
            .arg("-f")
            .arg(self.path("slapd.conf"))
            .args(["-h", &urls, "-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SLAPD}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(15);
        let ports: Vec<u16> = std::iter::once(self.port).chain(self.tls_port).collect();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("slapd exited at start ({status}); its log:\n{}", self.log());
            }
            let ours = std::fs::read_to_string(&pid_file).is_ok_and(|pid| pid.trim() == child.id().to_string());
            if ours
                && ports.iter().all(|p| {
                    TcpStream::connect_timeout(&([127, 0, 0, 1], *p).into(), Duration::from_millis(200)).is_ok()
                })
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("slapd did not listen on {urls} within 15 s; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Stops slapd (SIGKILL, like a crash); the database stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same ports and database.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// SIGSTOP: connections are accepted by the kernel, nothing answers.
    /// Returns once every thread of slapd is stopped.
    pub fn pause(&self) {
        self.signal("-STOP");
        let pid = self.child.as_ref().expect("slapd not running").id();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stopped =
                std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc").filter_map(Result::ok).all(|task| {
                    let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                    // The state follows the parenthesised command name.
                    stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('T'))
                });
            if stopped {
                return;
            }
            assert!(Instant::now() < deadline, "slapd did not stop after SIGSTOP");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGCONT after [`Slapd::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("slapd not running");
        let status = Command::new("kill").arg(signal).arg(child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("slapd.log")).unwrap_or_default()
    }

    /// Adds LDIF text as the root DN, through ldapadd (so overlays run).
    pub fn add(&self, ldif: &str) {
        let mut child = Command::new("ldapadd")
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("ldapadd is needed ({e}); install it with: apt-get install ldap-utils"));
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapadd failed:\n{}{}\nslapd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn load_entries(&self) {
        let mut ldif = format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n\
             dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
             cn: radotp\nuserPassword: {SERVICE_PASSWORD}\n\n"
        );
        let people = [
            ("alice", "Alice Archer", "alice@example.org"),
            ("bob", "Bob Baker", "bob@example.org"),
            ("carol", "Carol Chen", SHARED_MAIL),
            ("dave", "Dave Dunn", SHARED_MAIL),
            (ZOE, "Zoë Zeller", "zoe@example.org"),
        ];
        for (uid, cn, mail) in people {
            let surname = cn.split(' ').nth(1).unwrap();
            ldif.push_str(&format!(
                "dn{}\nobjectClass: inetOrgPerson\nuid{}\ncn{}\nsn{}\nmail: {mail}\nuserPassword: {}\n\n",
                ldif_value(&user_dn(uid)),
                ldif_value(uid),
                ldif_value(cn),
                ldif_value(surname),
                password_of(uid),
            ));
        }
        ldif.push_str(&format!(
            "dn: {VPN_GROUP}\nobjectClass: groupOfNames\ncn: vpn-users\nmember: {}\nmember{}\n\n\
             dn: {VPN_UNIQUE_GROUP}\nobjectClass: groupOfUniqueNames\ncn: vpn-unique\nuniqueMember: {}\n",
            user_dn("alice"),
            ldif_value(&user_dn(ZOE)),
            user_dn("alice"),
        ));
        self.add(&ldif);
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused slapd ignores nothing but SIGKILL; that is what stop sends.
            self.stop();
        }
        if std::thread::panicking() {
            eprintln!("----- slapd log ({}) -----\n{}", self.dir.path().display(), self.log());
        }
    }
}

/// `: value`, or `:: base64` for values LDIF cannot carry as they are.
fn ldif_value(value: &str) -> String {
    if value.is_ascii() {
        format!(": {value}")
    } else {
        format!(":: {}", data_encoding::BASE64.encode(value.as_bytes()))
    }
}

/// A loopback port that was free a moment ago, and never handed out
/// before in this process (a stopped slapd keeps its port for a restart).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn require_tools(tls: bool) {
    assert!(
        Path::new(SLAPD).exists(),
        "{SLAPD} is missing: these tests need a real OpenLDAP server; install it with \
         `apt-get install slapd ldap-utils` (tests/run.sh does)"
    );
    assert!(
        Path::new("/usr/lib/ldap/back_mdb.so").exists(),
        "/usr/lib/ldap/back_mdb.so is missing: install Debian's slapd package"
    );
    assert!(
        Command::new("ldapadd").arg("-VV").output().is_ok(),
        "ldapadd is missing: install it with `apt-get install ldap-utils`"
    );
    if tls {
        assert!(
            Command::new("openssl").arg("version").output().is_ok(),
            "openssl is missing: install it with `apt-get install openssl`"
        );
    }
}

/// A test CA and a server certificate for localhost / 127.0.0.1, made with
/// the openssl command in `dir`: ca.pem, server.pem, server.key.
pub fn make_certificates(dir: &Path) {
    make_ca(dir, "ca");
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost, IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

/// A self-signed CA: NAME.pem and NAME.key in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=radotp test CA {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed ({e}); install it with: apt-get install openssl"));
    assert!(out.status.success(), "openssl {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}
