//! radotpctl: the operator CLI. Each subcommand maps onto one admin request.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use radotp::admin::client::{AdminClient, AdminClientError};
use radotp::admin::wire::{Command, Reply, Response};
use radotp::config::DEFAULT_SOCKET_PATH;
use radotp::domain::lifecycle::TokenFilter;
use radotp::import::ImportFormat;
use radotp::import::{ImportIssue, ImportReport};
use radotp::model::audit::{AuditEntry, AuditQuery};
use radotp::model::token::{TokenState, TokenView};

const EXIT_FAILED: u8 = 1;
const EXIT_UNREACHABLE: u8 = 3;

/// Operator console for radotp: find, import, assign, enroll, reset and audit
/// OTP tokens through the daemon's admin socket.
#[derive(Parser)]
#[command(
    name = "radotpctl",
    version,
    after_help = "Exit status: 0 ok; 1 refused or failed (reason on stderr); 2 usage; 3 daemon unreachable.\n\nExamples:\n  radotpctl token list --unassigned\n  radotpctl token assign HW0001 alice\n  RADOTP_SOCKET=./var/radotp/admin.sock radotpctl status"
)]
struct Cli {
    /// Admin socket of radotpd.
    #[arg(long, global = true, env = "RADOTP_SOCKET", value_name = "PATH", default_value = DEFAULT_SOCKET_PATH)]
    socket: PathBuf,
    /// Print one JSON document on stdout instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Tokens: list, show, import, assign, unassign, enroll, reset, enable, disable, unlock, delete.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Directory users and their tokens.
    #[command(subcommand)]
    User(UserCommand),
    /// Show the newest audit entries, or verify the audit chain.
    #[command(
        after_help = "Examples:\n  radotpctl audit --limit 20\n  radotpctl audit --serial HW0001\n  radotpctl audit verify"
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
enum TokenCommand {
    /// Import tokens from a CSV file or a PSKC (RFC 6030) key container from a token vendor.
    #[command(after_help = "The format is recognised from the content (a PSKC file starts with '<'); --format\n\
overrides. The whole file is checked first: a bad row or key is reported with its line\n\
number (and key Id) and nothing is imported, unless --skip-invalid imports the good ones.\n\
Serials that already exist are skipped and reported.\n\n\
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
Example:\n  radotpctl token reset HW0001 338314 254676")]
    Reset { serial: String, otp1: String, otp2: String },
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
struct ListArgs {
    /// Serial, or part of it.
    #[arg(long)]
    serial: Option<String>,
    /// Token type id.
    #[arg(long = "type", value_name = "TYPE")]
    token_type: Option<String>,
    /// Owner's user name.
    #[arg(long)]
    user: Option<String>,
    #[arg(long, value_enum)]
    state: Option<TokenState>,
    /// Only tokens without an owner.
    #[arg(long)]
    unassigned: bool,
    /// At most this many tokens.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// A directory user and the tokens they own.
    #[command(after_help = "Example:\n  radotpctl user show alice")]
    Show { user: String },
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
struct AuditArgs {
    #[command(subcommand)]
    action: Option<AuditAction>,
    /// Newest entries to show (0: all).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Only entries about this token.
    #[arg(long)]
    serial: Option<String>,
    /// Only entries about this user.
    #[arg(long)]
    user: Option<String>,
    /// Only entries at or after this time: 2026-11-28, 2026-11-28T09:30Z (UTC),
    /// Unix seconds, or a span back from now such as 30m, 12h, 7d.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check the whole hash chain; names the first broken entry.
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("radotpctl: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match &cli.command {
        Top::Completions { shell } => {
            // Into a buffer first: a closed pipe (`| head`) is not worth a panic.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "radotpctl", &mut script);
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            return ExitCode::SUCCESS;
        }
        Top::Man { out_dir } => {
            return match write_man_pages(out_dir) {
                Ok(n) => {
                    println!("wrote {n} man page(s) to {}", out_dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("radotpctl: cannot write man pages: {e}");
                    ExitCode::from(EXIT_FAILED)
                }
            };
        }
        _ => {}
    }
    let command = match build_command(&cli.command) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("radotpctl: {message}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    if let Some(question) = confirmation(&cli.command) {
        if let Err(code) = confirm(&cli.socket, &question).await {
            return code;
        }
    }
    let spinner = import_spinner(&cli);
    let response = call(&cli.socket, command).await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let response = match response {
        Ok(r) => r,
        Err(e @ AdminClientError::Unreachable { .. }) => {
            let hint = if e.to_string().contains("Permission denied") {
                "(this user may not open the socket: ask for a group in admin.allowed_groups or admin.roles)"
            } else {
                "(is radotpd running? use --socket PATH or RADOTP_SOCKET)"
            };
            eprintln!("radotpctl: {e}\n{hint}");
            return ExitCode::from(EXIT_UNREACHABLE);
        }
        Err(e) => {
            eprintln!("radotpctl: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    if let Some(error) = &response.error {
        if cli.json {
            print_json(&response);
        }
        eprintln!("radotpctl: {}", error.message);
        return ExitCode::from(EXIT_FAILED);
    }
    let Some(reply) = response.result else {
        eprintln!("radotpctl: empty response");
        return ExitCode::from(EXIT_FAILED);
    };
    let qr = match &cli.command {
        Top::Token(TokenCommand::Enroll { qr_png, no_qr, .. }) => QrOutput { terminal: !no_qr, png: qr_png.clone() },
        _ => QrOutput::default(),
    };
    if let (Reply::Backup(backup), Top::Backup { file, force }) = (&reply, &cli.command) {
        if let Err(err) = write_backup(backup, file, *force) {
            eprintln!("radotpctl: cannot write {}: {err}", file.display());
            return ExitCode::from(EXIT_FAILED);
        }
    }
    if let (Reply::Enrollment(e), Some(path)) = (&reply, &qr.png) {
        if let Some(uri) = &e.otpauth_uri {
            if let Err(err) = write_qr_png(uri, path) {
                eprintln!("radotpctl: cannot write {}: {err}", path.display());
                return ExitCode::from(EXIT_FAILED);
            }
        }
    }
    if !cli.json {
        if let (Reply::Token(t), Top::Token(command)) = (&reply, &cli.command) {
            match command {
                TokenCommand::Delete { .. } => {
                    println!("token {} deleted", t.serial);
                    return ExitCode::SUCCESS;
                }
                TokenCommand::Enable { .. } | TokenCommand::Disable { .. } | TokenCommand::Unlock { .. } => {
                    println!("token {}: state {}, fail count {}", t.serial, t.state.as_str(), t.fail_count);
                    return ExitCode::SUCCESS;
                }
                _ => {}
            }
        }
    }
    render(&reply, cli.json, &qr)
}

/// On a terminal, a spinner while the daemon imports (which may take a while
/// for large files); nothing otherwise.
fn import_spinner(cli: &Cli) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    let Top::Token(TokenCommand::Import { file, dry_run, .. }) = &cli.command else {
        return None;
    };
    if cli.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        spinner.set_style(style);
    }
    let verb = if *dry_run { "checking" } else { "importing" };
    spinner.set_message(format!("{verb} {}: radotpd is reading, checking and writing the tokens", file.display()));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(spinner)
}

#[derive(Default)]
struct QrOutput {
    terminal: bool,
    png: Option<PathBuf>,
}

/// The question to confirm before a change, for commands that need one.
/// (serial, verb, what follows the token in the question, --yes given)
type Confirmation = (String, &'static str, String, bool);

fn confirmation(top: &Top) -> Option<Confirmation> {
    match top {
        Top::Token(TokenCommand::Unassign { serial, yes }) => Some((serial.clone(), "unassign", String::new(), *yes)),
        Top::Token(TokenCommand::Assign { serial, user, reassign: true, yes }) => {
            Some((serial.clone(), "reassign", format!(" to {user}"), *yes))
        }
        Top::Token(TokenCommand::Delete { serial, yes }) => Some((serial.clone(), "delete", String::new(), *yes)),
        _ => None,
    }
}

/// Asks on the terminal; without a terminal, `--yes` is required.
async fn confirm(socket: &std::path::Path, (serial, action, rest, yes): &Confirmation) -> Result<(), ExitCode> {
    use std::io::{BufRead, IsTerminal, Write};
    if *yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "radotpctl: refusing to {action} token {serial}{rest} without --yes (standard input is not a terminal)"
        );
        return Err(ExitCode::from(EXIT_FAILED));
    }
    let owner = match call(socket, Command::TokenShow { serial: serial.clone() }).await {
        Ok(Response { result: Some(Reply::Token(t)), .. }) => {
            t.user.map(|u| format!(" (owner: {u})")).unwrap_or_default()
        }
        _ => String::new(),
    };
    eprint!("{action} token {serial}{owner}{rest}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        eprintln!("radotpctl: cancelled; nothing changed");
        Err(ExitCode::from(EXIT_FAILED))
    }
}

fn print_enrollment(e: &radotp::domain::enroll::Enrollment, qr: &QrOutput) {
    println!(
        "token {} ({}) enrolled for {}",
        e.token.serial,
        e.token.type_label.as_deref().unwrap_or(&e.token.r#type),
        e.token.user.as_deref().unwrap_or("-")
    );
    if let (Some(uri), Some(secret)) = (&e.otpauth_uri, &e.secret_base32) {
        println!("secret (base32): {secret}");
        println!("key URI:         {uri}");
        if qr.terminal {
            match qrcode::QrCode::new(uri.as_bytes()) {
                Ok(code) => {
                    let image = code
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .dark_color(qrcode::render::unicode::Dense1x2::Light)
                        .light_color(qrcode::render::unicode::Dense1x2::Dark)
                        .build();
                    println!("{image}");
                }
                Err(err) => eprintln!("radotpctl: cannot draw the QR code: {err}"),
            }
        }
        if let Some(path) = &qr.png {
            println!("QR code written to {}", path.display());
        }
        println!("Scan it or type the secret into the app now: it is not shown again.");
    }
}

/// Writes a backup with mode 0600, then syncs it.
fn write_backup(backup: &radotp::domain::backup::Backup, path: &std::path::Path, force: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let file = options.open(path)?;
    // An existing file (--force) keeps its mode on open: make it private too.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let mut writer = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut writer, backup).map_err(std::io::Error::other)?;
    writer.write_all(b"\n")?;
    writer.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Writes the QR code of `text` as a greyscale PNG (8 pixels a module, 4-module margin).
fn write_qr_png(text: &str, path: &std::path::Path) -> Result<(), String> {
    const SCALE: usize = 8;
    const MARGIN: usize = 4;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * MARGIN) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] == qrcode::Color::Dark {
                for dy in 0..SCALE {
                    let row = (y + MARGIN) * SCALE + dy;
                    let start = row * side + (x + MARGIN) * SCALE;
                    pixels[start..start + SCALE].fill(0);
                }
            }
        }
    }
    // The QR code carries the seed: private to the operator, like a backup.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
    }
    .map_err(|e| e.to_string())?;
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

fn write_man_pages(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    fn write(command: clap::Command, name: String, dir: &std::path::Path, count: &mut usize) -> std::io::Result<()> {
        let command = command.name(name.clone());
        let mut buffer = Vec::new();
        clap_mangen::Man::new(command.clone()).render(&mut buffer)?;
        std::fs::write(dir.join(format!("{name}.1")), buffer)?;
        *count += 1;
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            write(sub.clone(), format!("{name}-{}", sub.get_name()), dir, count)?;
        }
        Ok(())
    }
    let mut count = 0;
    let mut command = <Cli as clap::CommandFactory>::command();
    command.build();
    write(command, "radotpctl".into(), dir, &mut count)?;
    Ok(count)
}

async fn call(socket: &std::path::Path, command: Command) -> Result<Response, AdminClientError> {
    let mut client = AdminClient::connect(socket).await?;
    client.call(command).await
}

fn build_command(top: &Top) -> Result<Command, String> {
    Ok(match top {
        Top::Ping => Command::Ping,
        Top::Status => Command::Status,
        Top::Token(TokenCommand::Import {
            file,
            format,
            psk_file,
            password_file,
            token_type,
            skip_invalid,
            dry_run,
        }) => Command::TokenImport {
            content: read_import_file(file)?,
            skip_invalid: *skip_invalid,
            dry_run: *dry_run,
            format: *format,
            psk_hex: psk_file.as_deref().map(|path| read_secret_file(path, "key")).transpose()?,
            password: password_file.as_deref().map(|path| read_secret_file(path, "password")).transpose()?,
            token_type: token_type.clone(),
        },
        Top::Token(TokenCommand::List(args)) => Command::TokenList(TokenFilter {
            serial: args.serial.clone(),
            r#type: args.token_type.clone(),
            user: args.user.clone(),
            state: args.state,
            unassigned: args.unassigned,
            limit: args.limit.unwrap_or(0),
            after: None,
        }),
        Top::Token(TokenCommand::Show { serial }) => Command::TokenShow { serial: serial.clone() },
        Top::Token(TokenCommand::Assign { serial, user, reassign, .. }) => {
            Command::TokenAssign { serial: serial.clone(), user: user.clone(), reassign: *reassign }
        }
        Top::Token(TokenCommand::Unassign { serial, .. }) => Command::TokenUnassign { serial: serial.clone() },
        Top::Token(TokenCommand::Enroll { user, token_type, serial, .. }) => {
            Command::TokenEnroll { user: user.clone(), r#type: token_type.clone(), serial: serial.clone() }
        }
        Top::Token(TokenCommand::Reset { serial, otp1, otp2 }) => {
            Command::TokenReset { serial: serial.clone(), otp1: otp1.clone(), otp2: otp2.clone() }
        }
        Top::Token(TokenCommand::Enable { serial }) => Command::TokenEnable { serial: serial.clone() },
        Top::Token(TokenCommand::Disable { serial }) => Command::TokenDisable { serial: serial.clone() },
        Top::Token(TokenCommand::Unlock { serial }) => Command::TokenUnlock { serial: serial.clone() },
        Top::Token(TokenCommand::Delete { serial, .. }) => Command::TokenDelete { serial: serial.clone() },
        Top::Types => Command::Types,
        Top::Reload => Command::Reload,
        Top::Backup { .. } => Command::Backup,
        Top::Completions { .. } | Top::Man { .. } => return Err("handled locally".into()),
        Top::User(UserCommand::Show { user }) => Command::UserShow { user: user.clone() },
        Top::User(UserCommand::Search { query, limit }) => Command::UserSearch { query: query.clone(), limit: *limit },
        Top::Audit(args) => match args.action {
            Some(AuditAction::Verify) => Command::AuditVerify,
            None => Command::Audit(AuditQuery {
                limit: args.limit,
                serial: args.serial.clone(),
                user: args.user.clone(),
                since: match &args.since {
                    None => None,
                    Some(text) => Some(radotp::timefmt::parse_since(text, unix_now()).ok_or_else(|| {
                        format!("--since {text:?}: use 2026-11-28, 2026-11-28T09:30Z, Unix seconds, or 30m / 12h / 7d")
                    })?),
                },
                ..AuditQuery::default()
            }),
        },
    })
}

/// Reads an import file, refusing one larger than the daemon accepts. The
/// text (for CSV, seeds in clear) is wiped from memory when dropped.
fn read_import_file(file: &std::path::Path) -> Result<zeroize::Zeroizing<String>, String> {
    use std::io::Read;
    let limit = radotp::import::MAX_IMPORT_BYTES;
    let too_large = || format!("{} is larger than {} MiB: split it", file.display(), limit >> 20);
    let mut content = zeroize::Zeroizing::new(String::new());
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_string(&mut content)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
    } else {
        let handle = std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        match handle.metadata() {
            Ok(m) if m.is_file() && m.len() > limit as u64 => return Err(too_large()),
            // Room for the whole file at once: no copy is left behind by a growing buffer.
            Ok(m) if m.is_file() => content.reserve_exact(m.len() as usize + 1),
            _ => {}
        }
        handle.take(limit as u64 + 1).read_to_string(&mut content).map_err(|e| {
            format!("cannot read {}: {e} (import files are text: UTF-8 CSV or PSKC XML)", file.display())
        })?;
    }
    if content.len() > limit {
        return Err(too_large());
    }
    Ok(content)
}

/// Reads the pre-shared key (hex) or password of an encrypted PSKC file.
/// The line ending at its end is not part of it.
fn read_secret_file(path: &std::path::Path, what: &str) -> Result<radotp::secret::Secret, String> {
    if let Err(problem) = radotp::crypto::check_private(path) {
        if !problem.starts_with("cannot read") {
            eprintln!("radotpctl: warning: {} ({what} file): {problem}", path.display());
        }
    }
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?);
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("{} ({what} file) is not UTF-8 text", path.display()))?;
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(text);
    if text.is_empty() {
        return Err(format!("{} ({what} file) is empty", path.display()));
    }
    Ok(radotp::secret::Secret::from(text))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("radotpctl: cannot print JSON: {e}"),
    }
}

fn render(reply: &Reply, json: bool, qr: &QrOutput) -> ExitCode {
    if json {
        match reply {
            Reply::Tokens(tokens) => print_json(tokens),
            Reply::Token(token) => print_json(token),
            Reply::Import(report) => print_json(report),
            Reply::Assignment(a) => print_json(a),
            Reply::Status(s) => print_json(s),
            Reply::Audit(entries) => print_json(entries),
            Reply::Chain(c) => print_json(c),
            Reply::User(u) => print_json(u),
            Reply::Users(u) => print_json(u),
            Reply::Enrollment(e) => print_json(e),
            Reply::Reset(r) => print_json(r),
            Reply::Types(t) => print_json(t),
            Reply::Reload(r) => print_json(r),
            Reply::Backup(b) => print_json(&serde_json::json!({
                "tokens": b.snapshot.tokens.len(),
                "audit_entries": b.snapshot.audit.len(),
                "created_at": b.created_at,
            })),
            Reply::Pong { daemon_version } => print_json(&serde_json::json!({ "daemon_version": daemon_version })),
        }
        return exit_for(reply);
    }
    match reply {
        Reply::Pong { daemon_version } => println!("radotpd {daemon_version} is answering"),
        Reply::Enrollment(e) => print_enrollment(e, qr),
        Reply::Reset(r) => match r.token.algorithm {
            radotp::model::token::Algorithm::Hotp => println!(
                "token {} reset: counter moved forward by {} to {}; fail count cleared; state {}",
                r.token.serial,
                r.counter_moved_by,
                r.token.counter.unwrap_or(0),
                r.token.state.as_str()
            ),
            radotp::model::token::Algorithm::Totp => println!(
                "token {} reset: clock drift {} step(s) stored; fail count cleared; state {}",
                r.token.serial,
                r.drift_steps,
                r.token.state.as_str()
            ),
        },
        Reply::Backup(b) => {
            println!("backup written: {} token(s), {} audit entries", b.snapshot.tokens.len(), b.snapshot.audit.len())
        }
        Reply::Reload(r) => {
            if r.applied {
                println!("configuration reloaded");
            } else {
                eprintln!("reload refused; the running configuration stays in force:");
            }
            for line in &r.problems {
                eprintln!("  {line}");
            }
            for line in r.restart_needed.iter().chain(&r.warnings) {
                println!("  note: {line}");
            }
        }
        Reply::Types(types) => {
            let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
            let rows: Vec<Vec<String>> = types
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.label.clone(),
                        format!(
                            "{} {} {}d{}",
                            t.algorithm.as_str(),
                            t.hash.as_str(),
                            t.digits,
                            if t.algorithm == radotp::model::token::Algorithm::Totp {
                                format!(" {}s", t.period)
                            } else {
                                String::new()
                            }
                        ),
                        yes_no(t.operator_enroll),
                        yes_no(t.generate_secret),
                        yes_no(t.allow_reset),
                        yes_no(t.deletable),
                    ]
                })
                .collect();
            print_table(&["ID", "LABEL", "OTP", "ENROLL", "GENERATED", "RESET", "DELETABLE"], &rows);
        }
        Reply::Tokens(tokens) => print_token_table(tokens),
        Reply::Token(token) => print_token(token),
        Reply::Import(report) => print_import(report),
        Reply::Assignment(a) => match &a.previous_owner {
            Some(old) => match &a.token.user {
                Some(new) => println!("token {} moved from {old} to {new}", a.token.serial),
                None => {
                    println!("token {} unassigned from {old}; it is active and ready for a new owner", a.token.serial)
                }
            },
            None => println!("token {} assigned to {}", a.token.serial, a.token.user.as_deref().unwrap_or("-")),
        },
        Reply::Status(s) => {
            println!("radotpd {}  up {}s", s.version, s.uptime_seconds);
            let states: Vec<String> = s.tokens_by_state.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!("tokens    {} ({}; unassigned {})", s.tokens_total, states.join(", "), s.tokens_unassigned);
            println!(
                "radius    requests {}  accepts {}  rejects {}  challenges {}  status-server {}  retransmissions {}",
                s.radius.requests,
                s.radius.accepts,
                s.radius.rejects,
                s.radius.challenges,
                s.radius.status_server,
                s.radius.retransmissions_answered
            );
            let drops: Vec<String> =
                s.radius.drops.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k} {v}")).collect();
            println!("drops     {}", if drops.is_empty() { "none".to_string() } else { drops.join(", ") });
            println!("store     {} bytes", s.store_bytes);
        }
        Reply::Audit(entries) => print_audit(entries),
        Reply::Chain(c) => {
            if c.ok {
                println!("audit chain verified: {} entries", c.entries);
            } else {
                println!(
                    "audit chain BROKEN at entry {}: {}",
                    c.first_broken.unwrap_or(0),
                    c.problem.as_deref().unwrap_or("unknown problem")
                );
            }
        }
        Reply::User(u) => {
            println!("user          {}", u.user.name);
            println!("display name  {}", u.user.display_name.as_deref().unwrap_or("-"));
            println!("e-mail        {}", u.user.email.as_deref().unwrap_or("-"));
            if let Some(dn) = &u.user.dn {
                println!("dn            {dn}");
            }
            println!();
            print_token_table(&u.tokens);
        }
        Reply::Users(users) => {
            let rows: Vec<Vec<String>> =
                users.iter().map(|u| vec![u.name.clone(), opt(&u.display_name), opt(&u.email)]).collect();
            if rows.is_empty() {
                println!("no users");
            } else {
                print_table(&["USER", "NAME", "E-MAIL"], &rows);
            }
        }
    }
    exit_for(reply)
}

/// Replies that report a refusal inside a success still fail the command.
fn exit_for(reply: &Reply) -> ExitCode {
    match reply {
        Reply::Import(r) if r.aborted => ExitCode::from(EXIT_FAILED),
        Reply::Chain(c) if !c.ok => ExitCode::from(EXIT_FAILED),
        Reply::Reload(r) if !r.applied => ExitCode::from(EXIT_FAILED),
        _ => ExitCode::SUCCESS,
    }
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn print_token_table(tokens: &[TokenView]) {
    if tokens.is_empty() {
        println!("no tokens");
        return;
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.serial.clone(),
                t.type_label.clone().unwrap_or_else(|| t.r#type.clone()),
                t.user.clone().unwrap_or_else(|| "-".into()),
                t.state.as_str().into(),
                t.fail_count.to_string(),
                t.counter
                    .map(|c| c.to_string())
                    .or(t.last_step.flatten().map(|s| format!("step {s}")))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(&["SERIAL", "TYPE", "USER", "STATE", "FAILS", "COUNTER"], &rows);
    println!("{} token(s)", tokens.len());
}

fn print_token(t: &TokenView) {
    println!("serial        {}", t.serial);
    println!("type          {} ({})", t.type_label.as_deref().unwrap_or(&t.r#type), t.r#type);
    println!("algorithm     {} {} digits {}", t.algorithm.as_str(), t.hash.as_str(), t.digits);
    if let Some(p) = t.period {
        println!("period        {p}s");
    }
    match &t.user {
        Some(u) => {
            println!("user          {u}{}", t.display_name.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())
        }
        None => println!("user          - (unassigned)"),
    }
    println!("state         {}", t.state.as_str());
    if t.state == TokenState::Locked {
        let since = t.locked_at.map(|at| format!("since {}, ", radotp::timefmt::format_utc(at))).unwrap_or_default();
        match t.unlocks_at {
            Some(at) => println!("locked        {since}unlocks by itself at {}", radotp::timefmt::format_utc(at)),
            None => println!("locked        {since}until an operator unlocks it (radotpctl token unlock {})", t.serial),
        }
    }
    println!("fail count    {}", t.fail_count);
    if let Some(c) = t.counter {
        println!("counter       {c}");
    }
    if let Some(s) = t.last_step.flatten() {
        println!("last step     {s}");
    }
    if let Some(d) = t.drift.filter(|d| *d != 0) {
        println!("clock drift   {d} step(s)");
    }
    println!("created       {}", radotp::timefmt::format_utc(t.created_at));
    println!("last used     {}", t.last_used_at.map(radotp::timefmt::format_utc).unwrap_or_else(|| "never".into()));
}

fn print_import(r: &ImportReport) {
    // "line 12" for CSV rows; "line 12 (key Id K1)" for PSKC keys whose Id is not the serial.
    let place = |issue: &ImportIssue| match &issue.key_id {
        Some(id) if issue.serial.as_ref() != Some(id) => format!("line {} (key Id {id})", issue.line),
        _ => format!("line {}", issue.line),
    };
    for issue in &r.invalid {
        eprintln!(
            "{}: {}{}",
            place(issue),
            issue.serial.as_ref().map(|s| format!("{s}: ")).unwrap_or_default(),
            issue.reason
        );
    }
    for issue in &r.skipped {
        eprintln!("{}: skipped {}: {}", place(issue), issue.serial.as_deref().unwrap_or("-"), issue.reason);
    }
    if r.aborted {
        let unit = if r.format.as_deref() == Some("pskc") { "key(s)" } else { "row(s)" };
        eprintln!(
            "nothing imported: {} invalid {unit}, {} valid; fix them or use --skip-invalid",
            r.invalid.len(),
            r.valid
        );
    }
    for note in &r.notes {
        println!("note: {note}");
    }
    let verb = if r.dry_run { "would import" } else { "imported" };
    let imported = if r.dry_run { r.valid } else { r.imported };
    println!("{verb} {imported}, skipped {}, invalid {}", r.skipped.len(), r.invalid.len());
}

fn print_audit(entries: &[AuditEntry]) {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                radotp::timefmt::format_utc(e.time),
                e.actor.to_string(),
                e.operation.clone(),
                e.user.clone().unwrap_or_else(|| "-".into()),
                e.serial.clone().unwrap_or_else(|| "-".into()),
                e.result.clone(),
                e.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["SEQ", "TIME", "ACTOR", "OPERATION", "USER", "SERIAL", "RESULT", "REASON"], &rows);
}
