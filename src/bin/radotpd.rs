//! radotpd: the radotp daemon. Thin: flags -> config -> daemon::run -> exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// jemalloc instead of glibc malloc with `--features jemalloc`: see
/// docs/performance.md (CPU per request, RSS).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use radotp::config::DEFAULT_CONFIG_PATH;
use radotp::daemon::{self, EXIT_CONFIG};

/// One-time-password authentication server: answers RADIUS Access-Requests
/// by checking HOTP/TOTP codes against the token store, and serves the
/// operators' admin socket.
#[derive(Parser)]
#[command(
    name = "radotpd",
    version,
    after_help = "Examples:\n  radotpd --config conf/radotp.yaml\n  radotpd --check-config --config /etc/radotp/radotp.yaml"
)]
struct Flags {
    /// Configuration file (YAML).
    #[arg(long, short = 'c', value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Validate the configuration, print every problem with its key path, and exit (0 ok, 78 invalid).
    #[arg(long)]
    check_config: bool,
    /// Restore a backup (from `radotpctl backup`) into the configured store, which must be
    /// empty, then exit. Stop the daemon first.
    #[arg(long, value_name = "FILE", conflicts_with = "check_config")]
    restore: Option<PathBuf>,
    /// With --restore: restore a backup even when its MAC does not verify, it has none (made
    /// before backups were signed), or its audit chain is broken. The restore is audited
    /// with what was overridden.
    #[arg(long, requires = "restore")]
    force: bool,
    /// Print this manual page (roff, section 8) and exit; the Debian package
    /// installs it as radotpd(8).
    #[arg(long, hide = true)]
    man: bool,
}

fn print_man_page() -> ExitCode {
    use clap::CommandFactory;
    let page = clap_mangen::Man::new(Flags::command()).section("8");
    match page.render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("radotpd: cannot write the manual page: {e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| level.and_then(|l| EnvFilter::try_new(l).ok()))
        .unwrap_or_else(|| EnvFilter::new("info"));
    // sled's own debug output is about its log segments, not about radotp;
    // tokio-postgres's shows statement parameters (sealed seeds, audit entries).
    let mut filter = filter;
    for quiet in ["sled=info", "tokio_postgres=info"] {
        filter = match quiet.parse() {
            Ok(directive) if std::env::var_os("RUST_LOG").is_none() => filter.add_directive(directive),
            _ => filter,
        };
    }
    // Under systemd the journal adds its own timestamps, and reads each
    // line's priority from its `<N>` prefix.
    if radotp::journal::under_journal() {
        let format = tracing_subscriber::fmt::format().without_time().with_target(false).with_ansi(false);
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(radotp::journal::SyslogPrefixed(format))
            .init();
    } else {
        let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(colour)
            .init();
    }
}

/// A runtime for the short jobs done before (or instead of) serving.
fn block_on<T>(job: impl std::future::Future<Output = T>) -> Result<T, std::io::Error> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?.block_on(job))
}

fn main() -> ExitCode {
    // Whatever radotpd creates (store files, sled's later snapshots, a
    // restored store) is its own user's only; the admin socket's mode is set
    // explicitly after it is bound.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let flags = Flags::parse();
    if flags.man {
        return print_man_page();
    }
    if flags.check_config {
        let checked = daemon::check_config(&flags.config).and_then(|c| {
            block_on(daemon::check_stored_types(&c)).unwrap_or_else(|e| {
                Err(radotp::config::ConfigError::Invalid {
                    problems: vec![radotp::config::Problem { path: "store.path".into(), message: e.to_string() }],
                })
            })
        });
        return match checked {
            Ok(stored) => {
                // Accepted but weak (short shared secrets): say so, still exit 0.
                if let Ok(config) = radotp::config::Config::load(&flags.config) {
                    for warning in config.warnings() {
                        eprintln!("{}: warning: {warning}", flags.config.display());
                    }
                }
                match stored {
                    Some(n) => {
                        println!("{}: configuration is valid ({n} stored tokens checked)", flags.config.display())
                    }
                    None => println!("{}: configuration is valid", flags.config.display()),
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                for problem in e.problems() {
                    eprintln!("{}{}: {problem}", radotp::journal::error_prefix(), flags.config.display());
                }
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }
    let config = match daemon::check_config(&flags.config) {
        Ok(config) => config,
        Err(e) => {
            let prefix = radotp::journal::error_prefix();
            eprintln!("{prefix}radotpd: invalid configuration {}:", flags.config.display());
            for problem in e.problems() {
                eprintln!("{prefix}  {problem}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(config.log.level.as_deref());
    if let Some(file) = &flags.restore {
        let restored = block_on(daemon::restore(&config, file, flags.force))
            .unwrap_or_else(|e| Err(daemon::DaemonError::Startup { context: "runtime".into(), reason: e.to_string() }));
        return match restored {
            Ok(report) => {
                for problem in &report.overridden {
                    eprintln!("radotpd: warning: restored despite (--force): {problem}");
                }
                println!(
                    "restored {} token(s) and {} audit entries into {}",
                    report.tokens,
                    report.audit_entries,
                    config.store.path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("radotpd: restore failed: {e}");
                ExitCode::from(1)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}radotpd: cannot start the async runtime: {e}", radotp::journal::error_prefix());
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(daemon::run(flags.config, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("radotpd cannot run: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
