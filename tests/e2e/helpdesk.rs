//! The non-root operator path: a fresh group and account made for the test,
//! `admin.socket_group` and a role, then the whole hand-over (unassign from
//! the leaver, enroll for the newcomer, two-OTP reset) run as that account.
//! Needs root (groupadd, useradd, setpriv), as the test suite has in CI.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output, Stdio};

use radotp::radius::packet::CODE_ACCESS_ACCEPT;

use crate::harness::{Daemon, RFC_CODES, RFC_SEED_HEX, rand_suffix};

/// A group and a user in it, removed again when dropped.
struct Account {
    user: String,
    group: String,
    uid: u32,
}

impl Account {
    fn create() -> Account {
        assert!(nix::unistd::geteuid().is_root(), "this test creates a group and a user: run it as root");
        let tag = format!("{:x}", rand_suffix() & 0xff_ffff);
        let group = format!("rotpops{tag}");
        let user = format!("rotphd{tag}");
        run("groupadd", &[&group]);
        // Made first, so that a failure below still removes what exists.
        let mut account = Account { user: user.clone(), group: group.clone(), uid: 0 };
        run("useradd", &["-M", "-N", "-g", &group, "-s", "/usr/sbin/nologin", &user]);
        account.uid = nix::unistd::User::from_name(&user).unwrap().expect("the new user").uid.as_raw();
        account
    }

    /// radotpctl as this account, with its groups (setpriv --init-groups).
    fn ctl(&self, daemon: &Daemon, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([&format!("--reuid={}", self.uid), &format!("--regid={}", self.group), "--init-groups"])
            .arg(env!("CARGO_BIN_EXE_radotpctl"))
            .arg("--socket")
            .arg(&daemon.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("setpriv (util-linux)")
    }

    fn ctl_ok(&self, daemon: &Daemon, args: &[&str]) -> String {
        let out = self.ctl(daemon, args);
        assert!(out.status.success(), "radotpctl {args:?} as {}: {}", self.user, text(&out.stderr));
        text(&out.stdout)
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.user).stderr(Stdio::null()).status();
        let _ = Command::new("groupdel").arg(&self.group).stderr(Stdio::null()).status();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out.stderr));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_helpdesk_account_with_a_role_and_the_socket_group_does_the_whole_hand_over() {
    let account = Account::create();
    let with_role = |config: &mut String| {
        *config = config.replace(
            "operator: { uids: [65533] }",
            &format!("operator: {{ uids: [65533], groups: [{}] }}", account.group),
        )
    };
    let mut daemon = Daemon::start_with(with_role);
    // The daemon's directory stands for /run/radotp: others may pass through it.
    std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    daemon.import(&format!("serial,type,seed,user\nHW1001,hw-hotp,{s},alice\nHW1002,hw-hotp,{s},\n", s = RFC_SEED_HEX));

    // A role alone does not open the socket: the hint says why and what to set.
    let out = account.ctl(&daemon, &["ping"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let hint = text(&out.stderr);
    assert!(hint.contains("Permission denied"), "{hint}");
    assert!(hint.contains("srw-rw---- owner root group root (mode 0660)"), "{hint}");
    assert!(hint.contains("is not in group root") && hint.contains("admin.socket_group"), "{hint}");
    // The socket's group is what is missing (the account has a role): the
    // hint names the group to join, not roles.
    assert!(hint.contains("usermod -aG root "), "{hint}");
    assert!(!hint.contains("admin.roles"), "{hint}");

    // A misspelt group under admin.roles is refused by a reload, as under allowed_groups.
    let good = daemon.config_text();
    daemon.rewrite_config(&good.replace(&format!("groups: [{}]", account.group), "groups: [radotp-opz-typo]"));
    let out = daemon.ctl(&["reload"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("admin.roles.operator.groups[0]: no group called"), "{said}");
    daemon.rewrite_config(&good);

    // admin.socket_group, applied by a reload (the socket is not recreated).
    let config = daemon.config_text().replace("  socket: ", &format!("  socket_group: {}\n  socket: ", account.group));
    daemon.rewrite_config(&config);
    daemon.ctl_ok(&["reload"]);
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(meta.gid())).unwrap().unwrap().name,
        account.group
    );
    assert!(account.ctl_ok(&daemon, &["ping"]).contains("radotpd"));

    // The hand-over, as the helpdesk account.
    let out = account.ctl_ok(&daemon, &["token", "unassign", "HW1001", "--yes"]);
    assert!(out.contains("unassigned from alice"), "{out}");
    let out = account.ctl_ok(&daemon, &["token", "enroll", "bob", "--type", "hw-hotp", "--serial", "HW1002"]);
    assert!(out.contains("HW1002") && out.contains("bob"), "{out}");
    let out = account.ctl_ok(&daemon, &["token", "reset", "HW1002", RFC_CODES[4], RFC_CODES[5]]);
    assert!(out.contains("token HW1002 reset"), "{out}");
    let mut client = daemon.client().await;
    assert_eq!(client.authenticate("bob", RFC_CODES[6]).await.unwrap().code, CODE_ACCESS_ACCEPT);
    // Operators may not import or delete; the audit names the account.
    let out = account.ctl(&daemon, &["token", "delete", "HW1001", "--yes"]);
    assert!(text(&out.stderr).contains("needs the admin role"), "{}", text(&out.stderr));
    let audit = daemon.ctl_json(&["audit", "--serial", "HW1002", "--limit", "0"]);
    let by_account = audit.as_array().unwrap().iter().filter(|e| e.to_string().contains(&account.user)).count();
    assert!(by_account >= 2, "enroll and reset are audited with the account's name: {audit}");

    // At the next start the socket is made with the group again.
    daemon.terminate();
    daemon.launch();
    assert!(account.ctl_ok(&daemon, &["ping"]).contains("radotpd"));
}
