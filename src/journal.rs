//! Log lines for the systemd journal: under systemd (`JOURNAL_STREAM` set)
//! each line starts with its syslog priority (`<3>` for ERROR, `<4>` WARN,
//! `<6>` INFO, `<7>` DEBUG and TRACE), which journald turns into the entry's
//! priority, so `journalctl -p err` shows radotpd's errors. Formatting only:
//! no I/O of its own.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// True when stderr goes to the journal (systemd sets `JOURNAL_STREAM`).
pub fn under_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

/// The syslog priority journald reads from a `<N>` line prefix.
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// The prefix for a line written outside `tracing` (start-up errors):
/// `"<3>"` under the journal, nothing elsewhere.
pub fn error_prefix() -> &'static str {
    if under_journal() { "<3>" } else { "" }
}

/// Wraps an event format and puts the event's syslog priority first.
pub struct SyslogPrefixed<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for SyslogPrefixed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // journald reads the prefix per line: a message of several lines
        // (a refused reload lists its problems) carries it on each.
        let mut text = String::new();
        self.0.format_event(ctx, Writer::new(&mut text), event)?;
        let prefix = format!("<{}>", syslog_priority(event.metadata().level()));
        for line in text.split_inclusive('\n') {
            writer.write_str(&prefix)?;
            writer.write_str(line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_line_starts_with_its_syslog_priority() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_writer(move || sink.clone())
            .event_format(SyslogPrefixed(
                tracing_subscriber::fmt::format().without_time().with_target(false).with_ansi(false),
            ))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("cannot bind");
            tracing::warn!("reload: listen changed");
            tracing::info!("configuration reloaded");
            tracing::error!("reload refused:\n  auth.max_failures: must be at least 1");
            tracing::debug!("detail");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(
            lines[0].starts_with("<3>") && lines[0].contains("ERROR") && lines[0].ends_with("cannot bind"),
            "{text}"
        );
        assert!(lines[1].starts_with("<4>") && lines[1].contains("WARN"), "{text}");
        assert!(lines[2].starts_with("<6>") && lines[2].contains("INFO"), "{text}");
        assert!(lines[3].starts_with("<3>") && lines[3].ends_with("reload refused:"), "{text}");
        assert_eq!(lines[4], "<3>  auth.max_failures: must be at least 1", "{text}");
        assert!(lines[5].starts_with("<7>"), "{text}");
    }
}
