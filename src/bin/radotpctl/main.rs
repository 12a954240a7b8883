//! radotpctl: the operator CLI. Each subcommand maps onto one admin request.

use std::process::ExitCode;

use clap::Parser;
use radotp::admin::client::{AdminClient, AdminClientError};
use radotp::admin::wire::{Command, Reply, Response};
use radotp::domain::lifecycle::TokenFilter;
use radotp::model::audit::AuditQuery;

mod access;
mod cli;
mod files;
mod render;

use access::permission_hint;
use cli::*;
use files::*;
use render::*;

const EXIT_FAILED: u8 = 1;
const EXIT_UNREACHABLE: u8 = 3;

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
                permission_hint(&cli.socket)
            } else {
                "(is radotpd running? use --socket PATH or RADOTP_SOCKET)".to_string()
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
            let (otp1, otp2) = reset_codes(serial, otp1.as_deref(), otp2.as_deref())?;
            Command::TokenReset { serial: serial.clone(), otp1, otp2 }
        }
        Top::Token(TokenCommand::Enable { serial }) => Command::TokenEnable { serial: serial.clone() },
        Top::Token(TokenCommand::Disable { serial }) => Command::TokenDisable { serial: serial.clone() },
        Top::Token(TokenCommand::Unlock { serial }) => Command::TokenUnlock { serial: serial.clone() },
        Top::Token(TokenCommand::Delete { serial, .. }) => Command::TokenDelete { serial: serial.clone() },
        Top::Types => Command::Types,
        Top::Reload => Command::Reload,
        Top::Backup { .. } => Command::Backup,
        Top::Completions { .. } | Top::Man { .. } => return Err("handled locally".into()),
        Top::User(UserCommand::Show { user, client }) => {
            Command::UserShow { user: user.clone(), client: client.clone() }
        }
        Top::User(UserCommand::Search { query, limit }) => Command::UserSearch { query: query.clone(), limit: *limit },
        Top::Audit(args) => match args.action {
            Some(AuditAction::Verify) => Command::AuditVerify,
            Some(AuditAction::Prune) => Command::AuditPrune,
            None => Command::Audit(AuditQuery {
                limit: args.limit,
                serial: args.serial.clone(),
                user: args.user.clone(),
                nas: args.nas.clone(),
                from: args.from.clone(),
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

/// The two codes of a reset: as given, or asked for on the terminal (first
/// the older, then the next), which keeps them out of history and `ps`.
fn reset_codes(serial: &str, otp1: Option<&str>, otp2: Option<&str>) -> Result<(String, String), String> {
    use std::io::IsTerminal;
    if let (Some(first), Some(second)) = (otp1, otp2) {
        return Ok((first.to_string(), second.to_string()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "give OTP1 and OTP2 (radotpctl token reset {serial} OTP1 OTP2), or run on a terminal to be asked for them"
        ));
    }
    let mut input = std::io::stdin().lock();
    let mut prompts = std::io::stderr();
    ask_reset_codes(serial, otp1, &mut input, &mut prompts)
}

/// Asks for the codes not given, in the order the token shows them.
fn ask_reset_codes(
    serial: &str,
    otp1: Option<&str>,
    input: &mut impl std::io::BufRead,
    prompts: &mut impl std::io::Write,
) -> Result<(String, String), String> {
    let mut ask = |question: String| -> Result<String, String> {
        let _ = write!(prompts, "{question}");
        let _ = prompts.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => Err("no code given; nothing changed".to_string()),
            Ok(_) if line.trim().is_empty() => Err("no code given; nothing changed".to_string()),
            Ok(_) => Ok(line.trim().to_string()),
        }
    };
    let first = match otp1 {
        Some(code) => code.to_string(),
        None => ask(format!("first code shown by token {serial} (OTP1): "))?,
    };
    let second = ask(format!("next code shown by token {serial} (OTP2): "))?;
    Ok((first, second))
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

async fn call(socket: &std::path::Path, command: Command) -> Result<Response, AdminClientError> {
    let mut client = AdminClient::connect(socket).await?;
    client.call(command).await
}

#[cfg(test)]
mod tests {
    use super::ask_reset_codes;

    #[test]
    fn reset_codes_are_asked_first_then_second() {
        let mut input = std::io::Cursor::new("338314\n 254676 \n");
        let mut prompts = Vec::new();
        let codes = ask_reset_codes("HW1", None, &mut input, &mut prompts).unwrap();
        assert_eq!(codes, ("338314".to_string(), "254676".to_string()));
        let prompts = String::from_utf8(prompts).unwrap();
        let first = prompts.find("(OTP1)").unwrap();
        assert!(prompts[first..].contains("(OTP2)"), "{prompts}");
    }

    #[test]
    fn a_given_first_code_asks_only_the_second_and_an_empty_answer_stops() {
        let mut prompts = Vec::new();
        let codes = ask_reset_codes("HW1", Some("338314"), &mut std::io::Cursor::new("254676\n"), &mut prompts);
        assert_eq!(codes.unwrap().1, "254676");
        assert!(!String::from_utf8(prompts).unwrap().contains("OTP1"));
        let none = ask_reset_codes("HW1", None, &mut std::io::Cursor::new("\n"), &mut Vec::new());
        assert!(none.unwrap_err().contains("nothing changed"));
    }
}
