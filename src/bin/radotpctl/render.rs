//! How replies are shown: tables, single tokens, import reports, audit entries, JSON, and the exit status.

use std::process::ExitCode;

use radotp::admin::wire::Reply;
use radotp::import::{ImportIssue, ImportReport};
use radotp::model::audit::{Actor, AuditEntry};
use radotp::model::token::{TokenState, TokenView};

use super::*;

pub(crate) fn print_enrollment(e: &radotp::domain::enroll::Enrollment, qr: &QrOutput) {
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
pub(crate) fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("radotpctl: cannot print JSON: {e}"),
    }
}

pub(crate) fn render(reply: &Reply, json: bool, qr: &QrOutput) -> ExitCode {
    if json {
        match reply {
            Reply::Tokens(tokens) => print_json(tokens),
            Reply::Token(token) => print_json(token),
            Reply::Import(report) => print_json(report),
            Reply::Assignment(a) => print_json(a),
            Reply::Status(s) => print_json(s),
            Reply::Audit(entries) => print_json(entries),
            Reply::Chain(c) => print_json(c),
            Reply::Pruned(p) => print_json(p),
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
            match &s.store.failing {
                None => println!("store     {}, {} bytes, writing", s.store.engine, s.store_bytes),
                Some(reason) => println!("store     {}, {} bytes, FAILING: {reason}", s.store.engine, s.store_bytes),
            }
        }
        Reply::Audit(entries) => print_audit(entries),
        Reply::Pruned(p) => match p.through {
            Some(through) => println!("audit retention removed {} entries, through entry {through}", p.entries),
            None => println!("audit retention: nothing to remove"),
        },
        Reply::Chain(c) => {
            if c.ok {
                match c.pruned_through {
                    Some(through) => println!(
                        "audit chain verified: {} entries (entries through {through} were removed by retention)",
                        c.entries
                    ),
                    None => println!("audit chain verified: {} entries", c.entries),
                }
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
            println!(
                "groups        {}",
                if u.user.groups.is_empty() { "-".to_string() } else { u.user.groups.join(", ") }
            );
            println!();
            print_token_table(&u.tokens);
            for reply in &u.replies {
                println!();
                if !reply.allowed {
                    println!("client {}: not allowed here (outside its allowed_groups)", reply.client);
                    continue;
                }
                let rules = if reply.rules.is_empty() {
                    "no rule applies".to_string()
                } else {
                    format!("rules {}", reply.rules.join(", "))
                };
                println!("client {} ({rules}):", reply.client);
                for line in &reply.attributes {
                    println!("  {line}");
                }
                for line in &reply.skipped {
                    println!("  left out: {line}");
                }
            }
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
pub(crate) fn exit_for(reply: &Reply) -> ExitCode {
    match reply {
        Reply::Import(r) if r.aborted => ExitCode::from(EXIT_FAILED),
        Reply::Chain(c) if !c.ok => ExitCode::from(EXIT_FAILED),
        Reply::Reload(r) if !r.applied => ExitCode::from(EXIT_FAILED),
        _ => ExitCode::SUCCESS,
    }
}

pub(crate) fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
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

pub(crate) fn print_token_table(tokens: &[TokenView]) {
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
                progress_cell(t),
            ]
        })
        .collect();
    print_table(&["SERIAL", "TYPE", "USER", "STATE", "FAILS", "COUNTER"], &rows);
    println!("{} token(s)", tokens.len());
}

/// The COUNTER column: the counter of an HOTP token; for a TOTP token the
/// time of its last use (UTC) and its stored clock drift, which say more to
/// an operator than a raw time step.
pub(crate) fn progress_cell(t: &TokenView) -> String {
    if let Some(counter) = t.counter {
        return counter.to_string();
    }
    if t.algorithm != radotp::model::token::Algorithm::Totp {
        return "-".into();
    }
    let step_time = t.last_step.flatten().zip(t.period).map(|(step, period)| step.saturating_mul(u64::from(period)));
    let used = match t.last_used_at.or(step_time) {
        Some(at) => format!("used {}", radotp::timefmt::format_utc(at)),
        None => "never used".into(),
    };
    format!("{used}, drift {:+}", t.drift.unwrap_or(0))
}

pub(crate) fn print_token(t: &TokenView) {
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
    if let (Some(s), Some(p)) = (t.last_step.flatten(), t.period) {
        println!("last step     {s} ({})", radotp::timefmt::format_utc(s.saturating_mul(u64::from(p))));
    }
    if t.algorithm == radotp::model::token::Algorithm::Totp {
        println!("clock drift   {:+} step(s)", t.drift.unwrap_or(0));
    }
    println!("created       {}", radotp::timefmt::format_utc(t.created_at));
    println!("last used     {}", t.last_used_at.map(radotp::timefmt::format_utc).unwrap_or_else(|| "never".into()));
}

pub(crate) fn print_import(r: &ImportReport) {
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

pub(crate) fn print_audit(entries: &[AuditEntry]) {
    // NAS and FROM columns only when an entry shown has NAS attributes (a
    // proxy in front, or a NAS that sends them).
    let nas_of = |e: &AuditEntry| match &e.actor {
        Actor::Radius { nas, .. } if !nas.is_empty() => Some(nas.clone()),
        _ => None,
    };
    let with_nas = entries.iter().any(|e| nas_of(e).is_some());
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let mut row = vec![e.seq.to_string(), radotp::timefmt::format_utc(e.time), e.actor.to_string()];
            if with_nas {
                let nas = nas_of(e).unwrap_or_default();
                row.push(nas.nas().unwrap_or("-").to_string());
                row.push(nas.calling_station_id.clone().unwrap_or_else(|| "-".into()));
            }
            row.extend([
                e.operation.clone(),
                e.user.clone().unwrap_or_else(|| "-".into()),
                e.serial.clone().unwrap_or_else(|| "-".into()),
                e.result.clone(),
                e.reason.clone().unwrap_or_default(),
            ]);
            row
        })
        .collect();
    let headers: &[&str] = if with_nas {
        &["SEQ", "TIME", "ACTOR", "NAS", "FROM", "OPERATION", "USER", "SERIAL", "RESULT", "REASON"]
    } else {
        &["SEQ", "TIME", "ACTOR", "OPERATION", "USER", "SERIAL", "RESULT", "REASON"]
    };
    print_table(headers, &rows);
}

#[cfg(test)]
mod tests {
    use radotp::model::otp::HashAlg;
    use radotp::model::token::{Algorithm, TokenState, TokenView};

    use super::progress_cell;

    fn view(algorithm: Algorithm) -> TokenView {
        TokenView {
            serial: "T1".into(),
            r#type: "hw-totp".into(),
            type_label: None,
            algorithm,
            digits: 6,
            hash: HashAlg::Sha1,
            period: Some(30),
            user: None,
            display_name: None,
            user_dn: None,
            state: TokenState::Active,
            fail_count: 0,
            counter: None,
            last_step: Some(None),
            drift: Some(0),
            created_at: 0,
            last_used_at: None,
            locked_at: None,
            unlocks_at: None,
        }
    }

    #[test]
    fn a_totp_token_shows_its_last_use_and_drift_not_a_raw_step() {
        let mut t = view(Algorithm::Totp);
        assert_eq!(progress_cell(&t), "never used, drift +0");
        t.last_step = Some(Some(59_874_256));
        t.drift = Some(-1);
        t.last_used_at = Some(1_796_227_690);
        let cell = progress_cell(&t);
        assert_eq!(cell, format!("used {}, drift -1", radotp::timefmt::format_utc(1_796_227_690)));
        assert!(!cell.contains("59874256"), "{cell}");
    }

    #[test]
    fn an_hotp_token_shows_its_counter() {
        let mut t = view(Algorithm::Hotp);
        t.counter = Some(7);
        t.last_step = None;
        assert_eq!(progress_cell(&t), "7");
    }
}
