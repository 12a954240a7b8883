//! The command line: subcommands, flags and their help texts (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use radotp::config::DEFAULT_SOCKET_PATH;
use radotp::import::ImportFormat;
use radotp::model::token::TokenState;

/// Operator console for radotp: find, import, assign, enroll, reset and audit
/// OTP tokens through the daemon's admin socket.
#[derive(Parser)]
#[command(
    name = "radotpctl",
    version,
    after_help = "Exit status: 0 ok; 1 refused or failed (reason on stderr); 2 usage; 3 daemon unreachable.\n\nExamples:\n  radotpctl token list --unassigned\n  radotpctl token assign HW0001 alice\n  RADOTP_SOCKET=./var/radotp/admin.sock radotpctl status"
)]
pub(crate) struct Cli {
    /// Admin socket of radotpd.
    #[arg(long, global = true, env = "RADOTP_SOCKET", value_name = "PATH", default_value = DEFAULT_SOCKET_PATH)]
    pub(crate) socket: PathBuf,
    /// Print one JSON document on stdout instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Top,
}

#[derive(Subcommand)]
pub(crate) enum Top {
    /// Tokens: list, show, import, assign, unassign, enroll, reset, enable, disable, unlock, delete.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Directory users and their tokens.
    #[command(subcommand)]
    User(UserCommand),
    /// Show the newest audit entries, or verify the audit chain.
    #[command(
        after_help = "Examples:\n  radotpctl audit --limit 20\n  radotpctl audit --serial HW0001\n  radotpctl audit --nas vpn-gw-1 --from 203.0.113.7\n  radotpctl audit verify"
    )]
    Audit(AuditArgs),
    /// Daemon version, uptime, token counts and RADIUS counters.
    #[command(after_help = "Example:\n  radotpctl status --json")]
    Status,
    /// Check that the daemon answers.
    #[command(after_help = "Example:\n  radotpctl ping")]
    Ping,
    /// Write a consistent backup (tokens with sealed seeds, and the audit chain) to FILE.
    #[command(after_help = "RADIUS keeps serving while the backup is taken. The file is created with mode 0600.\n\
Seeds stay encrypted under the master key: back up store.key_file separately and keep the\n\
two apart. Restore with: radotpd --restore FILE --config PATH (daemon stopped).\n\n\
Example:\n  radotpctl backup /var/backups/radotp-$(date +%F).json")]
    Backup {
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Re-read the daemon's configuration (as SIGHUP does) and print the outcome.
    #[command(
        after_help = "A bad configuration is refused with its problems listed; the running one stays.\n\nExample:\n  radotpctl reload"
    )]
    Reload,
    /// The token types the administrator defined, with their rules.
    #[command(after_help = "Example:\n  radotpctl types")]
    Types,
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  radotpctl completions bash > /etc/bash_completion.d/radotpctl")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (radotpctl.1 and one per subcommand) into a directory.
    #[command(after_help = "Example:\n  radotpctl man --out-dir /usr/local/share/man/man1")]
    Man {
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Import tokens from a CSV file or a PSKC (RFC 6030) key container from a token vendor.
    #[command(after_help = "The format is recognised from the content (a PSKC file starts with '<'); --format\n\
overrides. The whole file is checked first: a bad row or key is reported with its line\n\
number (and key Id) and nothing is imported, unless --skip-invalid imports the good ones.\n\
Serials that already exist are skipped and reported; a serial twice in one file is invalid.\n\n\
CSV columns: serial,type,seed or seed_base32[,digits,period,counter,hash,user].\n\
PSKC: HOTP and TOTP keys, plain or encrypted (AES-CBC) under a pre-shared key\n\
(--psk-file: a file holding the key in hex) or a password (--password-file, PBKDF2);\n\
the MAC of every encrypted secret is checked. Serials come from DeviceInfo/SerialNo (else\n\
the key Id); without --type each key gets the first configured type of its algorithm.\n\n\
Examples:\n  radotpctl token import tokens.csv\n  radotpctl token import vendor.pskc --dry-run\n\
  radotpctl token import vendor.pskc --psk-file transport.key --type hw-hotp\n\
  radotpctl token import vendor.pskc --password-file pw.txt\n\n\
tokens.csv:\n  serial,type,seed\n  HW0001,hw-hotp,3132333435363738393031323334353637383930")]
    Import {
        /// The CSV or PSKC file ("-" reads standard input).
        file: PathBuf,
        /// Read the file as this format instead of recognising it.
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// PSKC encrypted with a pre-shared key: a file holding the key in hex.
        #[arg(long, value_name = "KEYFILE", conflicts_with = "password_file")]
        psk_file: Option<PathBuf>,
        /// PSKC whose key is derived from a password (PBKDF2): a file holding the password.
        #[arg(long, value_name = "PWFILE")]
        password_file: Option<PathBuf>,
        /// Token type of the imported tokens (see `radotpctl types`); CSV: of rows without one.
        #[arg(long = "type", value_name = "TYPE")]
        token_type: Option<String>,
        /// Import the valid rows even when some are invalid.
        #[arg(long)]
        skip_invalid: bool,
        /// Check the file and report, without importing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// List tokens, optionally filtered.
    #[command(
        after_help = "Examples:\n  radotpctl token list --user alice\n  radotpctl token list --unassigned --type hw-hotp\n  radotpctl token list --state locked --json"
    )]
    List(ListArgs),
    /// Show one token (never its seed).
    #[command(after_help = "Example:\n  radotpctl token show HW0001")]
    Show { serial: String },
    /// Give a token to a directory user.
    #[command(after_help = "Refused when the token belongs to someone else, unless --reassign, which moves it\n\
in one atomic step (its counter is kept) after confirmation.\n\n\
Examples:\n  radotpctl token assign HW0001 alice\n  radotpctl token assign HW0001 bob --reassign --yes")]
    Assign {
        serial: String,
        user: String,
        /// Move a token that belongs to another user (atomically).
        #[arg(long)]
        reassign: bool,
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Take a token from its owner; it stays active and ready for a new owner.
    #[command(after_help = "The token keeps its seed and counter; its fail count is cleared. The old owner can no\n\
longer authenticate with it.\n\nExample:\n  radotpctl token unassign HW0001 --yes")]
    Unassign {
        serial: String,
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Enroll a token for a user ("ADD NEW TOKEN").
    #[command(after_help = "Hardware types: --serial names an unassigned token of that type from stock.\n\
Authenticator-app types (generate_secret): a new token with a fresh secret is created; its\n\
otpauth:// URI is printed and drawn as a QR code. The secret is shown this once only.\n\n\
Examples:\n  radotpctl token enroll alice --type hw-hotp --serial HW0002\n  radotpctl token enroll alice --type app-totp --qr-png alice.png")]
    Enroll {
        user: String,
        /// Token type id (see `radotpctl types`).
        #[arg(long = "type", value_name = "TYPE")]
        token_type: String,
        /// Hardware types: the serial of the token from stock.
        #[arg(long)]
        serial: Option<String>,
        /// Also write the QR code as a PNG image.
        #[arg(long, value_name = "FILE")]
        qr_png: Option<PathBuf>,
        /// Do not draw the QR code in the terminal.
        #[arg(long)]
        no_qr: bool,
    },
    /// Re-synchronise a token with two consecutive OTPs, oldest first.
    #[command(after_help = "HOTP: OTP1 must be the code for some counter c and OTP2 for c+1, with c within\n\
auth.reset_window of the current counter; the counter then moves past OTP2, the fail count\n\
is cleared and a lock lifted (a disabled token stays disabled). TOTP types that allow it learn the token's clock drift.\n\n\
Without OTP1 and OTP2 on a terminal, radotpctl asks for the first code, then the second, so\n\
that the codes stay out of the shell history and the process list.\n\n\
Examples:\n  radotpctl token reset HW0001\n  radotpctl token reset HW0001 338314 254676")]
    Reset {
        serial: String,
        /// The first (older) code; asked for on a terminal when omitted.
        otp1: Option<String>,
        /// The next code, shown after OTP1; asked for on a terminal when omitted.
        otp2: Option<String>,
    },
    /// Enable a disabled token (also clears its fail count).
    #[command(after_help = "Example:\n  radotpctl token enable HW0001")]
    Enable { serial: String },
    /// Disable a token: it rejects every OTP until enabled.
    #[command(after_help = "Example:\n  radotpctl token disable HW0001")]
    Disable { serial: String },
    /// Unlock a token locked by failed OTPs.
    #[command(after_help = "Example:\n  radotpctl token unlock HW0001")]
    Unlock { serial: String },
    /// Delete a token for good (admin role; refused for types with deletable: false).
    #[command(after_help = "Example:\n  radotpctl token delete HW0001 --yes")]
    Delete {
        serial: String,
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Args)]
pub(crate) struct ListArgs {
    /// Serial, or part of it.
    #[arg(long)]
    pub(crate) serial: Option<String>,
    /// Token type id.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) token_type: Option<String>,
    /// Owner's user name.
    #[arg(long)]
    pub(crate) user: Option<String>,
    #[arg(long, value_enum)]
    pub(crate) state: Option<TokenState>,
    /// Only tokens without an owner.
    #[arg(long)]
    pub(crate) unassigned: bool,
    /// At most this many tokens.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// A directory user, their groups, the tokens they own, and the reply
    /// attributes a login through each RADIUS client would get.
    #[command(after_help = "Examples:\n  radotpctl user show alice\n  radotpctl user show alice --client fw-1")]
    Show {
        user: String,
        /// Only the reply a login through this RADIUS client (by name) would get.
        #[arg(long)]
        client: Option<String>,
    },
    /// Find directory users by name, display name or e-mail.
    #[command(after_help = "Example:\n  radotpctl user search ali")]
    Search {
        query: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    pub(crate) action: Option<AuditAction>,
    /// Newest entries to show (0: all).
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
    /// Only entries about this token.
    #[arg(long)]
    pub(crate) serial: Option<String>,
    /// Only entries about this user.
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Only entries at or after this time: 2026-11-28, 2026-11-28T09:30Z (UTC),
    /// Unix seconds, or a span back from now such as 30m, 12h, 7d.
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Only RADIUS entries about this NAS: its NAS-Identifier or
    /// NAS-IP-Address (as a proxy passes them on), or a client entry's name.
    #[arg(long, value_name = "NAS")]
    pub(crate) nas: Option<String>,
    /// Only RADIUS entries whose caller (Calling-Station-Id, e.g. the VPN
    /// client's address) is this.
    #[arg(long, value_name = "CALLER")]
    pub(crate) from: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum AuditAction {
    /// Check the whole hash chain; names the first broken entry.
    Verify,
    /// Apply retention (audit.retention_days, audit.max_entries) now; radotpd does every 10 seconds.
    Prune,
}
