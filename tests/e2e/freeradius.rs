//! A real FreeRADIUS (Debian's `freeradius` package) as a proxy in front of
//! radotpd, from a configuration tree of its own in a temporary directory
//! (never /etc/freeradius), as bench/compare-freeradius.sh runs it. The
//! configuration is the one docs/radius-integration.md shows.

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FREERADIUS: &str = "/usr/sbin/freeradius";

/// How the proxy is set up.
pub struct ProxySetup<'a> {
    /// Where radotpd listens.
    pub home_server: SocketAddr,
    /// The address FreeRADIUS sends its proxied requests from (radotpd's client entry for it).
    pub source: &'a str,
    /// The secret between FreeRADIUS and radotpd.
    pub home_secret: &'a str,
    /// The secret between the NAS (127.0.0.1) and FreeRADIUS.
    pub nas_secret: &'a str,
}

pub struct FreeRadiusProxy {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub listen: SocketAddr,
}

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("local address").port()
}

/// The configuration tree's radiusd.conf: a listener for the NAS, every
/// request proxied to radotpd's home server pool (realm `radotp`), with
/// Status-Server checks and Message-Authenticator both ways.
pub fn radiusd_conf(dir: &Path, port: u16, setup: &ProxySetup<'_>) -> String {
    let ProxySetup { home_server, source, home_secret, nas_secret } = setup;
    let (home_ip, home_port) = (home_server.ip(), home_server.port());
    let dir = dir.display();
    format!(
        r#"# FreeRADIUS 3.2 as a proxy in front of radotpd (tests/e2e/freeradius.rs).
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${{exec_prefix}}/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = ${{logdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
run_dir = {dir}/run
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
proxy_requests = yes

log {{
    destination = stdout
    colourise = no
    auth = yes
}}

security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}

# The NAS (a VPN gateway) talks to FreeRADIUS.
client vpn-gw {{
    ipaddr = 127.0.0.1
    secret = {nas_secret}
    require_message_authenticator = yes
}}

# radotpd, the home server.
home_server radotp {{
    type = auth
    ipaddr = {home_ip}
    port = {home_port}
    src_ipaddr = {source}
    secret = {home_secret}
    # radotpd answers in milliseconds; an OTP check that waits on LDAP in
    # the password modes may take longer: leave room, under the NAS's timeout.
    response_window = 5
    zombie_period = 20
    revive_interval = 30
    status_check = status-server
    check_interval = 10
    check_timeout = 4
    num_answers_to_alive = 3
    max_outstanding = 65536
}}

home_server_pool radotp_pool {{
    type = fail-over
    home_server = radotp
}}

realm radotp {{
    auth_pool = radotp_pool
    nostrip
}}

modules {{
}}

instantiate {{
}}

server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {port}
    }}
    authorize {{
        # Every request goes to radotpd, whatever its User-Name.
        update control {{
            &Proxy-To-Realm := "radotp"
        }}
    }}
    authenticate {{
    }}
    pre-proxy {{
        # Sign what goes to radotpd (radotpd requires it by default; it
        # drops a Proxy-State without it in any case).
        update proxy-request {{
            &Message-Authenticator := 0x00
        }}
    }}
    post-proxy {{
    }}
    # FreeRADIUS 3.2.1 signs its own replies only when asked to (3.2.5 and
    # later do by default).
    post-auth {{
        update reply {{
            &Message-Authenticator := 0x00
        }}
        Post-Auth-Type REJECT {{
            update reply {{
                &Message-Authenticator := 0x00
            }}
        }}
    }}
}}
"#
    )
}

impl FreeRadiusProxy {
    /// Writes the tree, checks it with `freeradius -C`, starts it in the
    /// foreground and waits for "Ready to process requests".
    pub fn start(setup: &ProxySetup<'_>) -> FreeRadiusProxy {
        assert!(
            Path::new(FREERADIUS).exists(),
            "FreeRADIUS is needed for this test; install it with: apt-get install freeradius (tests/run.sh does, without starting its service)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["log", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let port = free_udp_port();
        std::fs::write(dir.path().join("radiusd.conf"), radiusd_conf(dir.path(), port, setup)).unwrap();
        let check = Command::new(FREERADIUS).args(["-C", "-X", "-d"]).arg(dir.path()).output().expect("freeradius -C");
        assert!(
            check.status.success(),
            "freeradius -C refused the configuration:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let log = dir.path().join("freeradius.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(FREERADIUS)
            .args(["-f", "-l", "stdout", "-d"])
            .arg(dir.path())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start freeradius");
        let mut proxy = FreeRadiusProxy { child: Some(child), dir, listen: SocketAddr::from(([127, 0, 0, 1], port)) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !proxy.log().contains("Ready to process requests") {
            if Instant::now() > deadline {
                panic!("FreeRADIUS did not become ready; its log:\n{}", proxy.log());
            }
            if let Some(Ok(Some(status))) = proxy.child.as_mut().map(|c| c.try_wait()) {
                panic!("FreeRADIUS exited ({status}); its log:\n{}", proxy.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("freeradius.log")
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for FreeRadiusProxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- FreeRADIUS log ({}) -----\n{}", self.dir.path().display(), self.log());
        }
    }
}
