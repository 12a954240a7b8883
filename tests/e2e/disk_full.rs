//! A full disk under the store: safe answers while full, the failure shown
//! in status, no change that the disk does not hold, and recovery by itself
//! once there is room again. The store lives on a small ext4 filesystem the
//! test makes and loop-mounts (root only: CI runs as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use radotp::radius::packet::CODE_ACCESS_ACCEPT;

use radotp::model::otp::{HashAlg, hotp_code};

use crate::harness::Daemon;

/// A loop-mounted ext4 filesystem of `mib` MiB, unmounted on drop.
struct SmallDisk {
    mount: PathBuf,
}

impl SmallDisk {
    fn make(dir: &Path, mib: u64) -> Option<SmallDisk> {
        if !nix_is_root() || !Path::new("/dev/loop-control").exists() {
            eprintln!("disk_full: needs root and loop devices to mount a filesystem; test skipped");
            return None;
        }
        let image = dir.join("disk.img");
        let mount = dir.join("disk");
        std::fs::create_dir_all(&mount).unwrap();
        std::fs::File::create(&image).unwrap().set_len(mib << 20).unwrap();
        let mkfs = Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(&image).status().unwrap();
        assert!(mkfs.success(), "mkfs.ext4 failed");
        let mounted = Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mount).status().unwrap();
        assert!(mounted.success(), "mount -o loop failed");
        Some(SmallDisk { mount })
    }

    /// Writes a file until the filesystem is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0xa5u8; 1 << 16];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// The RFC 4226 seed's code for `counter`.
fn code(counter: u64) -> String {
    hotp_code(b"12345678901234567890", counter, 6, HashAlg::Sha1)
}

fn accepted<E>(reply: &Result<u8, E>) -> bool {
    matches!(reply, Ok(code) if *code == CODE_ACCESS_ACCEPT)
}

/// Whether the metrics endpoint shows `line` within a few seconds (the
/// daemon reads the store's health every 2 s).
fn metric_within(daemon: &Daemon, line: &str) -> bool {
    use std::io::{Read, Write};
    let log = daemon.log();
    let Some(address) = log.split("metrics on http://").nth(1).and_then(|rest| rest.split('/').next()) else {
        return false;
    };
    for _ in 0..50 {
        let mut body = String::new();
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
            let _ = stream.read_to_string(&mut body);
        }
        if body.lines().any(|l| l == line) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_answered_safely_shown_in_status_and_healed_without_a_restart() {
    let mut daemon = Daemon::prepare(|_| {});
    let Some(disk) = SmallDisk::make(daemon.dir.path(), 48) else { return };
    let text = daemon
        .config_text()
        .replace(&format!("path: {}/db", daemon.dir.path().display()), &format!("path: {}/db", disk.mount.display()));
    daemon.rewrite_config(&format!("{text}metrics:\n  listen: \"127.0.0.1:0\"\n"));
    daemon.launch();
    daemon.rfc_token("DF-1", "alice");
    let mut client = daemon.client().await;
    client.timeout = Duration::from_millis(1500);
    assert!(accepted(&client.authenticate("alice", &code(0)).await.map(|r| r.code)));

    let filler = disk.fill();
    // sled still has room in the files it already holds: rejected requests
    // (each leaves an audit entry) use it up until a write fails.
    let mut failing = false;
    for round in 0..200 {
        for i in 0..100 {
            let _ = client.authenticate(&format!("nobody-{round}-{i}"), "000000").await;
        }
        if daemon.ctl_json(&["status"])["store"]["failing"].is_string() {
            failing = true;
            break;
        }
    }
    assert!(failing, "the store never reported a failing write on a full disk");
    // While failing: no Accept (its counter cannot be made durable).
    let mut next = 1;
    for _ in 0..3 {
        let reply = client.authenticate("alice", &code(next)).await.map(|r| r.code);
        assert!(!accepted(&reply), "an Accept while the store cannot write");
        next += 1;
    }
    let status = daemon.ctl_json(&["status"]);
    assert!(status["store"]["failing"].is_string(), "status shows the store failing: {status}");
    assert!(metric_within(&daemon, "radotp_store_failing 1"), "the metrics show the store failing");
    assert!(daemon.log().contains("little room left for the store"), "warned before and while full");
    let table = daemon.ctl_ok(&["status"]);
    assert!(table.contains("FAILING"), "the status table says so:\n{table}");
    // A change the disk cannot hold is refused and not shown.
    let disable = daemon.ctl(&["token", "disable", "DF-1"]);
    assert!(!disable.status.success(), "disable on a full disk must fail");
    let shown = daemon.ctl_json(&["token", "show", "DF-1"]);
    assert_eq!(shown["state"], "active", "a refused change is not shown: {shown}");

    // Room again: the daemon heals by itself.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let healed = loop {
        if accepted(&client.authenticate("alice", &code(next)).await.map(|r| r.code)) {
            break freed.elapsed();
        }
        next += 1;
        assert!(freed.elapsed() < Duration::from_secs(30), "no recovery after the disk had room:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("disk full: recovered {healed:?} after room was made");
    // The journal takes writes as soon as there is room; the status is clean
    // once the next checkpoint has written sled too (or the watcher has
    // reopened a store that stays broken).
    let clean = loop {
        let status = daemon.ctl_json(&["status"]);
        if status["store"]["failing"].is_null() {
            break freed.elapsed();
        }
        assert!(freed.elapsed() < Duration::from_secs(30), "status never clean again: {status}\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("disk full: status clean {clean:?} after room was made");
    assert!(metric_within(&daemon, "radotp_store_failing 0"), "the metrics show the store writing again");
    let log = daemon.log();
    assert!(log.contains("the store cannot write"), "{log}");
    let announced = Instant::now();
    while !daemon.log().contains("the store answers and writes again") {
        assert!(announced.elapsed() < Duration::from_secs(10), "no line saying it writes again:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.ctl_ok(&["token", "disable", "DF-1"]);
    assert_eq!(daemon.ctl_json(&["audit", "verify"])["ok"], true);
    daemon.kill();
    drop(disk);
}
