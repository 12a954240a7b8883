//! Starts the real `radotpd` in a temporary directory on port 0 and drives it.
//! On failure (a panicking test) the daemon's log is printed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use radotp::radius::client::RadiusClient;

pub const SECRET: &str = "testing123";
/// RFC 4226 test seed "12345678901234567890".
pub const RFC_SEED_HEX: &str = "3132333435363738393031323334353637383930";
/// Its HOTP codes for counters 0..
pub const RFC_CODES: [&str; 10] =
    ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];

pub fn base_config(dir: &Path) -> String {
    format!(
        r#"radius:
  listen: ["127.0.0.1:0"]
  clients:
    - {{ name: local, address: 127.0.0.1/32, secret: "{SECRET}" }}
  duplicate_cache_seconds: 30
auth:
  max_failures: 5
  hotp_window: 10
  totp_window: 1
store:
  path: {dir}/db
  key_file: {dir}/master.key
admin:
  socket: {dir}/admin.sock
  roles:
    operator: {{ uids: [65533] }}
directory:
  kind: static
  users:
    - {{ name: alice, display_name: "Alice Archer", email: alice@example.org }}
    - {{ name: bob, display_name: "Bob Baker" }}
    - {{ name: carol }}
token_types:
  - {{ id: hw-hotp, label: "Hardware token (HOTP)", algorithm: hotp, digits: 6, hash: sha1 }}
  - {{ id: hw-totp, label: "Hardware token (TOTP)", algorithm: totp, digits: 6, period: 30, hash: sha1 }}
  - {{ id: app-totp, label: "Authenticator app", algorithm: totp, digits: 6, period: 30, generate_secret: true }}
  - {{ id: app-hotp, label: "Authenticator app (HOTP)", algorithm: hotp, generate_secret: true }}
  - {{ id: vendor-fixed, label: "Vendor token (no reset)", algorithm: hotp, allow_reset: false, deletable: false }}
  - {{ id: legacy, label: "Legacy token", algorithm: hotp, operator_enroll: false }}
enroll:
  issuer: "Example VPN"
  account_label: "{{user}}@example.org"
log:
  level: debug
"#,
        dir = dir.display()
    )
}

pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub radius: SocketAddr,
    pub socket: PathBuf,
    log: Arc<Mutex<String>>,
    config: String,
    env: Vec<(String, String)>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(|_| {})
    }

    /// Starts with the base config edited by `edit`.
    pub fn start_with(edit: impl FnOnce(&mut String)) -> Daemon {
        let mut daemon = Daemon::prepare(edit);
        daemon.launch();
        daemon
    }

    /// A daemon set up but not started (to add environment first).
    pub fn prepare(edit: impl FnOnce(&mut String)) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = base_config(dir.path());
        edit(&mut config);
        Daemon {
            child: None,
            socket: dir.path().join("admin.sock"),
            dir,
            radius: "127.0.0.1:0".parse().unwrap(),
            log: Arc::new(Mutex::new(String::new())),
            config,
            env: Vec::new(),
        }
    }

    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn config_text(&self) -> String {
        self.config.clone()
    }

    /// Rewrites the configuration file (for reload tests); takes effect at reload or restart.
    pub fn rewrite_config(&mut self, text: &str) {
        self.config = text.to_string();
        self.write_config();
    }

    /// Writes the config file, keeping the listen port once it is known.
    fn write_config(&self) {
        let config = if self.radius.port() != 0 {
            self.config.replace("127.0.0.1:0", &self.radius.to_string())
        } else {
            self.config.clone()
        };
        std::fs::write(self.config_path(), config).expect("write config");
    }

    pub fn child_pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal (by name, e.g. "HUP") to the daemon.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().unwrap();
        assert!(status.success());
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("radotp.yaml")
    }

    /// (Re)starts the process on the same directory and store. The listen
    /// port is kept across restarts once known.
    pub fn launch(&mut self) {
        self.write_config();
        let mut child = Command::new(env!("CARGO_BIN_EXE_radotpd"))
            .arg("--config")
            .arg(self.config_path())
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start radotpd");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut radius = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening for RADIUS on ").nth(1) {
                    radius = addr.trim().parse::<SocketAddr>().ok();
                }
                if line.contains("radotpd ready") {
                    if let (Some(tx), Some(addr)) = (tx.take(), radius) {
                        let _ = tx.send(addr);
                    }
                }
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => self.radius = addr,
            Err(_) => {
                let _ = child.kill();
                panic!("radotpd did not become ready; its log:\n{}", self.log());
            }
        }
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Stops with SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops with SIGTERM and returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Runs radotpctl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_radotpctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run radotpctl")
    }

    /// Lets every local user reach the admin socket file (directory 0755,
    /// socket 0666), so that the daemon's own peer check is what decides.
    pub fn open_socket_to_all_users(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    }

    /// Runs radotpctl as `uid` (group `uid`, no other groups) through
    /// `setpriv`, which needs root; see [`Daemon::open_socket_to_all_users`].
    pub fn ctl_as(&self, uid: u32, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_radotpctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("setpriv (util-linux)")
    }

    /// Runs radotpctl and insists on success; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "radotpctl {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ctl_ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("radotpctl {args:?} printed no JSON ({e}):\n{text}"))
    }

    /// Imports CSV text through radotpctl.
    pub fn import(&self, csv: &str) -> String {
        let path = self.dir.path().join(format!("import-{}.csv", rand_suffix()));
        std::fs::write(&path, csv).unwrap();
        self.ctl_ok(&["token", "import", path.to_str().unwrap()])
    }

    /// Imports the RFC 4226 seed as `serial` and assigns it to `user`.
    pub fn rfc_token(&self, serial: &str, user: &str) {
        self.import(&format!("serial,type,seed,user\n{serial},hw-hotp,{RFC_SEED_HEX},{user}\n"));
    }

    pub async fn client(&self) -> RadiusClient {
        RadiusClient::connect(self.radius, SECRET.as_bytes()).await.expect("client socket")
    }
}

pub fn rand_suffix() -> u64 {
    let mut b = [0u8; 8];
    radotp::crypto::random_bytes(&mut b).unwrap();
    u64::from_le_bytes(b)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.terminate();
        // Kept for the log scan (tests/log_scan.rs), which checks that no seed or OTP was logged.
        let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("daemon-logs");
        if std::fs::create_dir_all(&logs).is_ok() {
            let _ = std::fs::write(logs.join(format!("e2e-{}.log", rand_suffix())), self.log());
        }
        if std::thread::panicking() {
            eprintln!("----- radotpd log ({}) -----\n{}", self.dir.path().display(), self.log());
        }
    }
}

/// Runs radclient (Debian freeradius-utils) with `input` on stdin.
pub fn radclient(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("radclient")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("radclient is needed for this test ({e}); install it with: apt-get install freeradius-utils")
        });
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn pap_input(user: &str, password: &str) -> String {
    format!("User-Name = \"{user}\"\nUser-Password = \"{password}\"\nMessage-Authenticator = 0x00\n")
}
