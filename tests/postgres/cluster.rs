//! A real PostgreSQL cluster for tests: `initdb` into a temporary directory,
//! `postgres` on a free loopback port with its Unix socket in that directory,
//! run as the unprivileged `postgres` user when the tests run as root (CI
//! does; PostgreSQL refuses to run as root). Debian's `postgresql` package
//! provides the programs (tests/run.sh installs it).
//!
//! The server runs under a small shell that kills it (fast shutdown) when
//! its standard input closes: when the [`Cluster`] is dropped, and also when
//! the test process ends without dropping it (a shared cluster in a static).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    /// Holds the data directory (`data`) and the socket directory.
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    server: Option<(Child, ChildStdin)>,
    /// Removed when the cluster is dropped (never for a shared cluster).
    _temp: Option<tempfile::TempDir>,
}

/// The directory of Debian's PostgreSQL programs (the newest version installed).
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|b| b.join("initdb").exists()).collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is needed for these tests (no /usr/lib/postgresql/*/bin/initdb); install it with: apt-get install postgresql (or run bash tests/run.sh)")
    })
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A command run as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// A new cluster, started; removed when dropped.
    pub fn start() -> Cluster {
        let temp = tempfile::Builder::new().prefix("radotp-pg-").tempdir().expect("temp dir");
        let mut cluster = Cluster::init(temp.path().to_path_buf());
        cluster._temp = Some(temp);
        cluster.launch();
        cluster
    }

    /// A cluster that lives as long as the test process (shared by tests);
    /// its directory is removed when the process ends.
    pub fn start_shared() -> Cluster {
        let dir = tempfile::Builder::new().prefix("radotp-pg-").tempdir().expect("temp dir").keep();
        let mut cluster = Cluster::init(dir);
        cluster.launch_with_cleanup(true);
        cluster
    }

    fn init(dir: PathBuf) -> Cluster {
        let bin = bin_dir();
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir), "chown");
        }
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb.arg("-D").arg(dir.join("data")).args(["--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        initdb.arg("--locale=C");
        run(&mut initdb, "initdb");
        Cluster { dir, port: free_port(), bin, server: None, _temp: None }
    }

    /// A streaming standby of this cluster (`pg_basebackup -R`), started.
    pub fn standby(&self) -> Cluster {
        let temp = tempfile::Builder::new().prefix("radotp-pg-standby-").tempdir().expect("temp dir");
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(temp.path()), "chown");
        }
        let mut backup = as_postgres(&self.bin.join("pg_basebackup"));
        backup.arg("-D").arg(temp.path().join("data")).args([
            "-R",
            "-X",
            "stream",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-p",
            &self.port.to_string(),
        ]);
        // A checkpoint at full speed first: one still spreading its writes
        // (CREATE DATABASE starts one) would hold pg_basebackup for minutes.
        self.sql("postgres", "CHECKPOINT");
        run(&mut backup, "pg_basebackup");
        let mut standby = Cluster {
            dir: temp.path().to_path_buf(),
            port: free_port(),
            bin: self.bin.clone(),
            server: None,
            _temp: Some(temp),
        };
        standby.launch();
        standby
    }

    /// Promotes a standby to primary.
    pub fn promote(&self) {
        let mut promote = as_postgres(&self.bin.join("pg_ctl"));
        promote.arg("promote").arg("-w").arg("-D").arg(self.dir.join("data"));
        run(&mut promote, "pg_ctl promote");
    }

    pub fn launch(&mut self) {
        self.launch_with_cleanup(false);
    }

    fn launch_with_cleanup(&mut self, cleanup: bool) {
        let postgres = self.bin.join("postgres");
        let data = self.dir.join("data");
        let script = format!(
            "{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c max_connections=200 \
             -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on >{dir}/server.log 2>&1 & pid=$!; \
             read _; kill -INT $pid; wait $pid; {clean}",
            postgres = postgres.display(),
            data = data.display(),
            port = self.port,
            dir = self.dir.display(),
            clean = if cleanup { format!("rm -rf {}", self.dir.display()) } else { String::new() },
        );
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", &script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", &script]);
            c
        };
        let mut child = command.stdin(Stdio::piped()).spawn().expect("start postgres");
        let stdin = child.stdin.take().expect("stdin");
        self.server = Some((child, stdin));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start; its log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (fast shutdown) and waits for it.
    pub fn stop(&mut self) {
        if let Some((mut child, mut stdin)) = self.server.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Runs SQL as the superuser in `database`.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .output()
            .expect("psql");
        assert!(out.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Turns TLS on (a certificate for 127.0.0.1 signed by a test CA made
    /// here) and refuses plain TCP connections, then restarts; returns the
    /// CA's PEM file.
    pub fn enable_tls(&mut self) -> PathBuf {
        let tls = self.dir.join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        make_ca(&tls, "ca");
        let openssl = |args: &[&str]| {
            run(Command::new("openssl").args(args).current_dir(&tls), "openssl");
        };
        std::fs::write(tls.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("san");
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&[
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
            "san.ext",
        ]);
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&tls), "chown");
        }
        run(Command::new("chmod").arg("600").arg(tls.join("server.key")), "chmod");
        let data = self.dir.join("data");
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).expect("postgresql.conf");
        conf.push_str(&format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        ));
        std::fs::write(data.join("postgresql.conf"), conf).expect("postgresql.conf");
        let hba = std::fs::read_to_string(data.join("pg_hba.conf")).expect("pg_hba.conf");
        let first = "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n";
        std::fs::write(data.join("pg_hba.conf"), format!("{first}{hba}")).expect("pg_hba.conf");
        self.stop();
        self.launch();
        tls.join("ca.pem")
    }

    /// A new empty database; returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- PostgreSQL log ({}) -----\n{}", self.dir.display(), self.log());
        }
        self.stop();
    }
}

/// A self-signed test CA (`NAME.pem`, `NAME.key`) in `dir`.
pub fn make_ca(dir: &std::path::Path, name: &str) {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    run(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem, "-days", "2"])
            .args(["-subj", &format!("/CN=radotp test {name}")])
            .current_dir(dir),
        "openssl (CA)",
    );
}
