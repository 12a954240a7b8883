//! radotp-bench: a RADIUS load generator for radotpd (and, in password mode,
//! for any PAP RADIUS server such as FreeRADIUS).
//!
//! It sends PAP Access-Requests carrying Message-Authenticator to a server on
//! loopback, keeping `--concurrency` requests in flight (closed loop: a
//! worker sends its next request as soon as its previous one is answered or
//! timed out). Every reply is checked with the library's
//! [`verify_reply`] (identifier, Response Authenticator, Message-Authenticator
//! first and valid). Nothing is ever retransmitted: a request without a reply
//! within `--timeout-ms` is a timeout.
//!
//! Modes:
//! - `hotp`: each request carries a fresh valid HOTP code of one user's token
//!   (the generator tracks counters; at most one request per user is in
//!   flight, so codes arrive in order). `--wrong-share` sends that share of
//!   codes that match no counter in the server's window: those are expected
//!   rejects, not errors.
//! - `totp`: the current TOTP code of the user's token. A TOTP code is
//!   accepted once per time step per token, so after the first accept of a
//!   step every further request for that token in the same step is an
//!   (expected) replay reject: this mode is mostly rejects by design.
//! - `password`: `user,password` lines sent as they are (to compare with a
//!   password server such as FreeRADIUS).
//!
//! `gen-tokens` writes a deterministic token set: the CSV for
//! `radotpctl token import`, the matching tokens file for this generator, and
//! the users as a YAML snippet for a static directory.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use radotp::model::otp::{self, HashAlg};
use radotp::radius::packet::{CODE_ACCESS_ACCEPT, CODE_ACCESS_REJECT, build_access_request, verify_reply};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// RADIUS load generator for radotpd: PAP Access-Requests with
/// Message-Authenticator, N in flight, every reply verified.
#[derive(Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  radotp-bench gen-tokens --count 100000 --assigned 10000 --out-import import.csv --out-bench bench.csv --out-users users.yaml\n  radotp-bench --mode hotp --tokens bench.csv --save-tokens bench.csv --concurrency 64 --duration 10\n  radotp-bench --mode hotp --tokens bench.csv --wrong-share 1.0 --count 10000 --json\n  radotp-bench --mode password --users users.csv --server 127.0.0.1:1812 --secret testing123"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Top>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Top {
    /// Write a deterministic token set: import CSV, bench tokens file, directory users.
    GenTokens(GenArgs),
    /// Answer Access-Requests with an Access-Accept and nothing else: the
    /// no-work ceiling of this machine for the comparison (checks the
    /// request's Message-Authenticator and signs the reply with radotp's own
    /// packet code; no OTP, no store, no audit).
    Ceiling(CeilingArgs),
    /// Print reports saved with --json (one per line, in files) as a Markdown table.
    Table {
        /// Files holding JSON reports, one per line.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Hotp,
    Totp,
    Password,
}

#[derive(Args)]
struct RunArgs {
    /// RADIUS server address.
    #[arg(long, default_value = "127.0.0.1:1812")]
    server: SocketAddr,
    /// Shared secret.
    #[arg(long, default_value = "testing123", env = "RADOTP_BENCH_SECRET")]
    secret: String,
    #[arg(long, value_enum, default_value_t = Mode::Hotp)]
    mode: Mode,
    /// Tokens file (hotp, totp): CSV lines user,serial,seed_hex,counter.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Write the tokens file back with the counters reached, for the next run.
    #[arg(long, value_name = "FILE")]
    save_tokens: Option<PathBuf>,
    /// Users file (password): CSV lines user,password.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Requests in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Run this many seconds (default 10 unless --count is given).
    #[arg(long, value_name = "SECS", conflicts_with = "count")]
    duration: Option<f64>,
    /// Send this many requests, then stop.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// A request without reply after this long is a timeout (never retransmitted).
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Share of requests that carry a wrong OTP (or password); they should be rejected.
    #[arg(long, default_value_t = 0.0)]
    wrong_share: f64,
    /// Requests in flight per UDP socket (identifiers 0..255 per socket).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=128))]
    per_socket: u16,
    /// OTP digits of the tokens.
    #[arg(long, default_value_t = 6)]
    digits: u8,
    /// TOTP period in seconds.
    #[arg(long, default_value_t = 30)]
    period: u32,
    /// The server's HOTP look-ahead (auth.hotp_window): wrong codes avoid it.
    #[arg(long, default_value_t = 10)]
    hotp_window: u64,
    /// Threads of the generator's runtime (1: a single thread, leaving the rest to the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the generator's random choices (which requests are wrong).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A label copied into the report.
    #[arg(long)]
    label: Option<String>,
    /// Print the report as one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct GenArgs {
    /// Tokens to generate.
    #[arg(long)]
    count: usize,
    /// How many of them are assigned, one each, to users PREFIX00001... (default: all).
    #[arg(long)]
    assigned: Option<usize>,
    /// Prefix of the user names.
    #[arg(long, default_value = "u")]
    users_prefix: String,
    /// Prefix of the serials.
    #[arg(long, default_value = "BENCH")]
    serial_prefix: String,
    /// Token type id (a `token_types` id of the server: hw-hotp or hw-totp).
    #[arg(long = "type", default_value = "hw-hotp")]
    token_type: String,
    /// CSV for `radotpctl token import` (serial,type,seed,user).
    #[arg(long, value_name = "FILE")]
    out_import: PathBuf,
    /// Tokens file for this generator (user,serial,seed_hex,counter), assigned tokens only.
    #[arg(long, value_name = "FILE")]
    out_bench: PathBuf,
    /// YAML snippet of the users for `directory.users` (lines `    - { name: u00001 }`).
    #[arg(long, value_name = "FILE")]
    out_users: Option<PathBuf>,
}

#[derive(Args)]
struct CeilingArgs {
    /// Address to answer on.
    #[arg(long, default_value = "127.0.0.1:18130")]
    listen: SocketAddr,
    /// Shared secret of every client.
    #[arg(long, default_value = "testing123", env = "RADOTP_BENCH_SECRET")]
    secret: String,
    /// Threads receiving and answering on the one socket (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// The no-work responder: blocking receive, check, sign, send, on every thread.
fn serve_ceiling(args: &CeilingArgs) -> Result<()> {
    use radotp::radius::packet::{self, ReplyAttributes};
    let socket = std::net::UdpSocket::bind(args.listen).with_context(|| format!("bind {}", args.listen))?;
    println!("ceiling responder on {}", socket.local_addr()?);
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut handles = Vec::new();
    for _ in 0..threads.max(1) {
        let socket = socket.try_clone()?;
        let secret = args.secret.clone().into_bytes();
        handles.push(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let nothing = ReplyAttributes::default();
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
                let Ok(frame) = packet::parse_frame(&buf[..len]) else { continue };
                if frame.code != packet::CODE_ACCESS_REQUEST || !packet::message_authenticator_valid(&frame, &secret) {
                    continue;
                }
                let Ok(reply) = packet::sign_reply(
                    packet::CODE_ACCESS_ACCEPT,
                    frame.identifier,
                    &frame.authenticator,
                    &secret,
                    &nothing,
                ) else {
                    continue;
                };
                let _ = socket.send_to(&reply, from);
            }
        }));
    }
    for handle in handles {
        let _ = handle.join();
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Top::GenTokens(args)) => gen_tokens(&args),
        Some(Top::Ceiling(args)) => serve_ceiling(&args),
        Some(Top::Table { files }) => print_table(&files),
        None => run_bench(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("radotp-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

// ------------------------------------------------------------- gen-tokens

/// The deterministic seed of a serial: SHA-1("radotp-bench:" ++ serial), 20 bytes.
fn seed_of(serial: &str) -> [u8; 20] {
    let mut hash = Sha1::new();
    hash.update(b"radotp-bench:");
    hash.update(serial.as_bytes());
    hash.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(text, "{b:02x}");
    }
    text
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(std::io::BufWriter::new(file))
}

fn gen_tokens(args: &GenArgs) -> Result<()> {
    let assigned = args.assigned.unwrap_or(args.count);
    if assigned > args.count {
        bail!("--assigned {assigned} is more than --count {}", args.count);
    }
    let serial_width = args.count.to_string().len().max(6);
    let user_width = assigned.to_string().len().max(5);
    let mut import = create(&args.out_import)?;
    let mut bench = create(&args.out_bench)?;
    let mut users = args.out_users.as_deref().map(create).transpose()?;
    writeln!(import, "serial,type,seed,user")?;
    writeln!(bench, "user,serial,seed_hex,counter")?;
    for i in 1..=args.count {
        let serial = format!("{}{i:0serial_width$}", args.serial_prefix);
        let seed = hex(&seed_of(&serial));
        if i <= assigned {
            let user = format!("{}{i:0user_width$}", args.users_prefix);
            writeln!(import, "{serial},{},{seed},{user}", args.token_type)?;
            writeln!(bench, "{user},{serial},{seed},0")?;
            if let Some(out) = users.as_mut() {
                writeln!(out, "    - {{ name: {user} }}")?;
            }
        } else {
            writeln!(import, "{serial},{},{seed},", args.token_type)?;
        }
    }
    import.flush()?;
    bench.flush()?;
    if let Some(mut out) = users {
        out.flush()?;
    }
    eprintln!(
        "radotp-bench: {} tokens of type {} ({assigned} assigned) written to {}; bench tokens in {}",
        args.count,
        args.token_type,
        args.out_import.display(),
        args.out_bench.display()
    );
    Ok(())
}

// ---------------------------------------------------------------- loading

struct TokenEntry {
    serial: String,
    seed: Vec<u8>,
    /// The next counter to use (HOTP).
    counter: u64,
    /// The last TOTP step sent with a right code (TOTP).
    last_step: Option<u64>,
}

struct BenchUser {
    name: String,
    /// hotp/totp: the user's tokens; password: empty.
    tokens: Vec<TokenEntry>,
    password: String,
    /// Round-robin position among the user's tokens.
    next_token: usize,
}

fn data_lines(path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<String> = line.split(',').map(|f| f.trim().to_string()).collect();
        if rows.is_empty() && fields.first().is_some_and(|f| f.eq_ignore_ascii_case("user")) {
            continue; // header
        }
        rows.push((n + 1, fields));
    }
    Ok(rows)
}

fn load_tokens(path: &Path) -> Result<Vec<BenchUser>> {
    let mut users: Vec<BenchUser> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (line, fields) in data_lines(path)? {
        let [user, serial, seed, counter] = fields.as_slice() else {
            bail!("{}:{line}: expected user,serial,seed_hex,counter", path.display());
        };
        let seed = data_encoding::HEXLOWER_PERMISSIVE
            .decode(seed.as_bytes())
            .map_err(|_| anyhow!("{}:{line}: seed is not hex", path.display()))?;
        let counter: u64 =
            counter.parse().map_err(|_| anyhow!("{}:{line}: counter is not a number", path.display()))?;
        let at = *index.entry(user.clone()).or_insert_with(|| {
            users.push(BenchUser { name: user.clone(), tokens: Vec::new(), password: String::new(), next_token: 0 });
            users.len() - 1
        });
        users[at].tokens.push(TokenEntry { serial: serial.clone(), seed, counter, last_step: None });
    }
    if users.is_empty() {
        bail!("{}: no tokens", path.display());
    }
    Ok(users)
}

fn load_passwords(path: &Path) -> Result<Vec<BenchUser>> {
    let mut users = Vec::new();
    for (line, fields) in data_lines(path)? {
        let [user, password] = fields.as_slice() else {
            bail!("{}:{line}: expected user,password", path.display());
        };
        users.push(BenchUser { name: user.clone(), tokens: Vec::new(), password: password.clone(), next_token: 0 });
    }
    if users.is_empty() {
        bail!("{}: no users", path.display());
    }
    Ok(users)
}

fn save_tokens(path: &Path, groups: &[Vec<BenchUser>]) -> Result<()> {
    let mut out = create(path)?;
    writeln!(out, "user,serial,seed_hex,counter")?;
    let mut all: Vec<&BenchUser> = groups.iter().flatten().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    for user in all {
        for token in &user.tokens {
            writeln!(out, "{},{},{},{}", user.name, token.serial, hex(&token.seed), token.counter)?;
        }
    }
    out.flush()?;
    Ok(())
}

// ------------------------------------------------------------------ sockets

/// One request waiting for its reply.
struct Pending {
    request: Vec<u8>,
    sent: Instant,
    done: oneshot::Sender<Outcome>,
}

enum Outcome {
    Reply { code: u8, latency: Duration },
    Bad,
}

struct Slots {
    pending: Vec<Option<Pending>>,
    /// The last request of each identifier that timed out, to recognise its late reply.
    timed_out: Vec<Option<Vec<u8>>>,
    /// Free identifiers, oldest first: an identifier is reused as late as possible.
    free: VecDeque<u8>,
}

struct Channel {
    socket: UdpSocket,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    accepts: AtomicU64,
    rejects: AtomicU64,
    expected_rejects: AtomicU64,
    unexpected_accepts: AtomicU64,
    unexpected_rejects: AtomicU64,
    other_codes: AtomicU64,
    timeouts: AtomicU64,
    bad_replies: AtomicU64,
    late_replies: AtomicU64,
    send_errors: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Channel {
    async fn open(server: SocketAddr) -> Result<Self> {
        let bind: SocketAddr = if server.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" }.parse()?;
        let socket = UdpSocket::bind(bind).await.context("cannot bind a UDP socket")?;
        socket.connect(server).await.context("cannot connect the UDP socket")?;
        Ok(Channel {
            socket,
            slots: Mutex::new(Slots {
                pending: (0..256).map(|_| None).collect(),
                timed_out: (0..256).map(|_| None).collect(),
                free: (0..=255u8).collect(),
            }),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Receives replies and hands each to the request it answers.
    async fn receive_loop(self: Arc<Self>, secret: Arc<[u8]>, counters: Arc<Counters>) {
        let mut buf = vec![0u8; 4096];
        loop {
            let len = match self.socket.recv(&mut buf).await {
                Ok(len) => len,
                Err(_) => continue, // ICMP port unreachable and the like
            };
            let arrived = Instant::now();
            let reply = &buf[..len];
            if len < 2 {
                add(&counters.bad_replies);
                continue;
            }
            let id = usize::from(reply[1]);
            let mut slots = self.slots();
            let matches_current = slots.pending[id].as_ref().map(|p| verify_reply(reply, &p.request, &secret));
            match matches_current {
                Some(Ok(verified)) => {
                    if let Some(pending) = slots.pending[id].take() {
                        let _ =
                            pending.done.send(Outcome::Reply { code: verified.code, latency: arrived - pending.sent });
                    }
                }
                _ => {
                    let late =
                        slots.timed_out[id].as_ref().is_some_and(|old| verify_reply(reply, old, &secret).is_ok());
                    if late {
                        slots.timed_out[id] = None;
                        add(&counters.late_replies);
                    } else if let Some(pending) = slots.pending[id].take() {
                        // A reply to this identifier that does not verify.
                        let _ = pending.done.send(Outcome::Bad);
                    } else {
                        add(&counters.bad_replies); // unsolicited
                    }
                }
            }
        }
    }

    /// Sends `build(id)` and waits for its verified reply or the timeout.
    async fn exchange(
        &self,
        build: impl FnOnce(u8) -> Result<Vec<u8>>,
        timeout: Duration,
        counters: &Counters,
    ) -> Result<Option<Outcome>> {
        let (tx, mut rx) = oneshot::channel();
        let (id, request) = {
            let mut slots = self.slots();
            let id = slots.free.pop_front().ok_or_else(|| anyhow!("no free RADIUS identifier on a socket"))?;
            let request = match build(id) {
                Ok(r) => r,
                Err(e) => {
                    slots.free.push_back(id);
                    return Err(e);
                }
            };
            slots.pending[usize::from(id)] = Some(Pending { request: request.clone(), sent: Instant::now(), done: tx });
            (id, request)
        };
        add(&counters.sent);
        if self.socket.send(&request).await.is_err() {
            add(&counters.send_errors);
        }
        let outcome = match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(outcome)) => Some(outcome),
            _ => {
                let mut slots = self.slots();
                if slots.pending[usize::from(id)].take().is_some() {
                    slots.timed_out[usize::from(id)] = Some(request);
                    None
                } else {
                    // Answered just as the timer fired.
                    drop(slots);
                    rx.try_recv().ok()
                }
            }
        };
        self.slots().free.push_back(id);
        Ok(outcome)
    }
}

// ------------------------------------------------------------------ workers

/// xorshift64*: enough randomness to choose which requests are wrong.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Shared {
    args: RunArgs,
    secret: Arc<[u8]>,
    counters: Arc<Counters>,
    /// Requests left to issue in --count mode.
    budget: Option<AtomicU64>,
    deadline: Option<Instant>,
    stop: AtomicBool,
    latencies: Mutex<Vec<u32>>,
}

impl Shared {
    fn may_issue(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        match &self.budget {
            None => true,
            Some(left) => left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok(),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A code of `digits` digits that equals none of `avoid`.
fn wrong_code(rng: &mut Rng, digits: u8, avoid: &[String]) -> String {
    let modulus = 10u64.pow(u32::from(digits));
    loop {
        let code = otp::format_code((rng.next() % modulus) as u32, digits);
        if !avoid.contains(&code) {
            return code;
        }
    }
}

/// What one request carries and what answer it should get.
struct Plan {
    password: String,
    expect_accept: bool,
}

fn plan_request(shared: &Shared, user: &mut BenchUser, rng: &mut Rng) -> Plan {
    let args = &shared.args;
    let wrong = args.wrong_share > 0.0 && rng.unit() < args.wrong_share;
    let digits = args.digits;
    let hash = HashAlg::Sha1;
    match args.mode {
        Mode::Password => {
            if wrong {
                Plan { password: format!("{}-wrong", user.password), expect_accept: false }
            } else {
                Plan { password: user.password.clone(), expect_accept: true }
            }
        }
        Mode::Hotp => {
            let at = user.next_token % user.tokens.len();
            user.next_token = user.next_token.wrapping_add(1);
            let token = &mut user.tokens[at];
            if wrong {
                // Avoid every code the server could take as right or as a replay,
                // even if it lags behind our counter.
                let first = token.counter.saturating_sub(args.hotp_window + 1);
                let last = token.counter.saturating_add(args.hotp_window + 1);
                let avoid: Vec<String> = (first..=last).map(|c| otp::hotp_code(&token.seed, c, digits, hash)).collect();
                Plan { password: wrong_code(rng, digits, &avoid), expect_accept: false }
            } else {
                // The counter moves on whatever the answer: the server's window
                // absorbs codes it never saw (timeouts).
                let code = otp::hotp_code(&token.seed, token.counter, digits, hash);
                token.counter += 1;
                Plan { password: code, expect_accept: true }
            }
        }
        Mode::Totp => {
            let at = user.next_token % user.tokens.len();
            user.next_token = user.next_token.wrapping_add(1);
            let token = &mut user.tokens[at];
            let step = otp::time_step(unix_now(), args.period);
            if wrong {
                let avoid: Vec<String> =
                    (step.saturating_sub(3)..=step + 3).map(|s| otp::hotp_code(&token.seed, s, digits, hash)).collect();
                Plan { password: wrong_code(rng, digits, &avoid), expect_accept: false }
            } else {
                // Only the first right code of a step can be accepted.
                let expect_accept = token.last_step.is_none_or(|s| s < step);
                token.last_step = Some(step);
                Plan { password: otp::hotp_code(&token.seed, step, digits, hash), expect_accept }
            }
        }
    }
}

async fn worker(
    shared: Arc<Shared>,
    channel: Arc<Channel>,
    mut users: Vec<BenchUser>,
    worker_index: u64,
) -> Result<Vec<BenchUser>> {
    let mut rng = Rng::new(shared.args.seed ^ (worker_index + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let timeout = Duration::from_millis(shared.args.timeout_ms);
    let counters = &*shared.counters;
    let mut latencies = Vec::new();
    let mut next = 0usize;
    while shared.may_issue() {
        let at = next % users.len();
        next = next.wrapping_add(1);
        let user = &mut users[at];
        let plan = plan_request(&shared, user, &mut rng);
        let secret = shared.secret.clone();
        let name = user.name.clone();
        let build = move |id: u8| {
            build_access_request(id, &secret, &name, plan.password.as_bytes(), None).map_err(|e| anyhow!(e))
        };
        match channel.exchange(build, timeout, counters).await {
            Err(e) => {
                shared.stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
            Ok(None) => add(&counters.timeouts),
            Ok(Some(Outcome::Bad)) => add(&counters.bad_replies),
            Ok(Some(Outcome::Reply { code, latency })) => {
                latencies.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                match (code, plan.expect_accept) {
                    (CODE_ACCESS_ACCEPT, true) => add(&counters.accepts),
                    (CODE_ACCESS_ACCEPT, false) => {
                        add(&counters.accepts);
                        add(&counters.unexpected_accepts);
                    }
                    (CODE_ACCESS_REJECT, true) => {
                        add(&counters.rejects);
                        add(&counters.unexpected_rejects);
                    }
                    (CODE_ACCESS_REJECT, false) => {
                        add(&counters.rejects);
                        add(&counters.expected_rejects);
                    }
                    _ => add(&counters.other_codes),
                }
            }
        }
    }
    shared.latencies.lock().unwrap_or_else(|p| p.into_inner()).extend(latencies);
    Ok(users)
}

// ------------------------------------------------------------------ report

#[derive(Serialize, Deserialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

#[derive(Serialize, Deserialize)]
struct Report {
    label: Option<String>,
    mode: Mode,
    server: String,
    concurrency: usize,
    sockets: usize,
    wrong_share: f64,
    elapsed_s: f64,
    sent: u64,
    replies: u64,
    requests_per_s: f64,
    accepts: u64,
    rejects: u64,
    expected_rejects: u64,
    unexpected_accepts: u64,
    unexpected_rejects: u64,
    other_codes: u64,
    timeouts: u64,
    bad_replies: u64,
    late_replies: u64,
    send_errors: u64,
    /// Milliseconds, over answered requests.
    latency_ms: Latency,
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Hotp => "hotp",
        Mode::Totp => "totp",
        Mode::Password => "password",
    }
}

fn print_table(files: &[PathBuf]) -> Result<()> {
    println!(
        "| run | mode | conc. | wrong | req/s | accepts | rejects (exp./unexp.) | unexp. accepts | timeouts | bad | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for path in files {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let r: Report =
                serde_json::from_str(line).with_context(|| format!("{}: not a radotp-bench report", path.display()))?;
            let l = &r.latency_ms;
            println!(
                "| {} | {} | {} | {} | {:.0} | {} | {} ({}/{}) | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
                r.label.as_deref().unwrap_or("-"),
                mode_name(r.mode),
                r.concurrency,
                r.wrong_share,
                r.requests_per_s,
                r.accepts,
                r.rejects,
                r.expected_rejects,
                r.unexpected_rejects,
                r.unexpected_accepts,
                r.timeouts,
                r.bad_replies,
                l.p50,
                l.p99,
                l.max
            );
        }
    }
    Ok(())
}

fn print_report(r: &Report) {
    println!(
        "radotp-bench: mode {} against {}, concurrency {} on {} socket(s), wrong share {}{}",
        mode_name(r.mode),
        r.server,
        r.concurrency,
        r.sockets,
        r.wrong_share,
        r.label.as_ref().map(|l| format!(" [{l}]")).unwrap_or_default()
    );
    println!("elapsed            {:.3} s", r.elapsed_s);
    println!("sent               {}", r.sent);
    println!("replies            {}", r.replies);
    println!("requests/s         {:.1}", r.requests_per_s);
    println!("accepts            {}", r.accepts);
    println!("rejects            {} (expected {}, unexpected {})", r.rejects, r.expected_rejects, r.unexpected_rejects);
    println!("unexpected accepts {}", r.unexpected_accepts);
    println!("timeouts           {}", r.timeouts);
    println!("bad replies        {}", r.bad_replies);
    if r.late_replies > 0 || r.other_codes > 0 || r.send_errors > 0 {
        println!("late replies       {}  other codes {}  send errors {}", r.late_replies, r.other_codes, r.send_errors);
    }
    let l = &r.latency_ms;
    println!(
        "latency ms         p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}",
        l.p50, l.p90, l.p99, l.max, l.mean
    );
}

// --------------------------------------------------------------------- run

fn run_bench(args: RunArgs) -> Result<()> {
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?
    };
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.wrong_share) {
        bail!("--wrong-share must be between 0.0 and 1.0");
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if !(otp::MIN_DIGITS..=otp::MAX_DIGITS).contains(&args.digits) {
        bail!("--digits must be {} to {}", otp::MIN_DIGITS, otp::MAX_DIGITS);
    }
    let users = match args.mode {
        Mode::Hotp | Mode::Totp => {
            let path = args.tokens.as_deref().ok_or_else(|| anyhow!("--mode hotp/totp needs --tokens FILE"))?;
            load_tokens(path)?
        }
        Mode::Password => {
            let path = args.users.as_deref().ok_or_else(|| anyhow!("--mode password needs --users FILE"))?;
            load_passwords(path)?
        }
    };
    let mut concurrency = args.concurrency;
    let mut groups: Vec<Vec<BenchUser>> = (0..concurrency).map(|_| Vec::new()).collect();
    if args.mode == Mode::Password {
        // No ordering constraint: workers may share users.
        let total = users.len();
        let shared_users: Vec<(String, String)> = users.into_iter().map(|u| (u.name, u.password)).collect();
        for (w, group) in groups.iter_mut().enumerate() {
            let per = total.div_ceil(concurrency).max(1);
            for k in 0..per {
                let (name, password) = &shared_users[(w + k * concurrency) % total];
                group.push(BenchUser {
                    name: name.clone(),
                    tokens: Vec::new(),
                    password: password.clone(),
                    next_token: 0,
                });
            }
        }
    } else {
        // Each user belongs to one worker: at most one request per user in flight.
        if users.len() < concurrency {
            eprintln!(
                "radotp-bench: only {} users: concurrency lowered from {concurrency} to {} (one request per user in flight)",
                users.len(),
                users.len()
            );
            concurrency = users.len();
            groups.truncate(concurrency);
        }
        for (i, user) in users.into_iter().enumerate() {
            groups[i % concurrency].push(user);
        }
    }

    let per_socket = usize::from(args.per_socket);
    let socket_count = concurrency.div_ceil(per_socket);
    let mut channels = Vec::with_capacity(socket_count);
    for _ in 0..socket_count {
        channels.push(Arc::new(Channel::open(args.server).await?));
    }
    let secret: Arc<[u8]> = Arc::from(args.secret.as_bytes());
    let counters = Arc::new(Counters::default());
    let mut receivers = Vec::new();
    for channel in &channels {
        receivers.push(tokio::spawn(channel.clone().receive_loop(secret.clone(), counters.clone())));
    }

    let duration = match (args.duration, args.count) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(10.0),
    };
    if duration.is_some_and(|d| !(d > 0.0 && d < 86_400.0)) {
        bail!("--duration must be between 0 and 86400 seconds");
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        secret,
        counters: counters.clone(),
        budget: args.count.map(AtomicU64::new),
        deadline: duration.map(|d| start + Duration::from_secs_f64(d)),
        stop: AtomicBool::new(false),
        latencies: Mutex::new(Vec::new()),
        args,
    });
    let mut workers = Vec::with_capacity(concurrency);
    for (w, group) in groups.into_iter().enumerate() {
        let channel = channels[w / per_socket].clone();
        workers.push(tokio::spawn(worker(shared.clone(), channel, group, w as u64)));
    }
    let mut finished = Vec::with_capacity(workers.len());
    let mut failure = None;
    for handle in workers {
        match handle.await {
            Ok(Ok(users)) => finished.push(users),
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(anyhow!("a worker failed: {e}")),
        }
    }
    let elapsed = start.elapsed();
    for r in receivers {
        r.abort();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(path) = &shared.args.save_tokens {
        save_tokens(path, &finished)?;
    }

    let mut latencies = std::mem::take(&mut *shared.latencies.lock().unwrap_or_else(|p| p.into_inner()));
    latencies.sort_unstable();
    let mean = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().map(|&v| f64::from(v)).sum::<f64>() / latencies.len() as f64 / 1000.0
    };
    let c = &*counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let replies = load(&c.accepts) + load(&c.rejects) + load(&c.other_codes);
    let args = &shared.args;
    let report = Report {
        label: args.label.clone(),
        mode: args.mode,
        server: args.server.to_string(),
        concurrency,
        sockets: socket_count,
        wrong_share: args.wrong_share,
        elapsed_s: round3(elapsed.as_secs_f64()),
        sent: load(&c.sent),
        replies,
        requests_per_s: round3(replies as f64 / elapsed.as_secs_f64().max(1e-9)),
        accepts: load(&c.accepts),
        rejects: load(&c.rejects),
        expected_rejects: load(&c.expected_rejects),
        unexpected_accepts: load(&c.unexpected_accepts),
        unexpected_rejects: load(&c.unexpected_rejects),
        other_codes: load(&c.other_codes),
        timeouts: load(&c.timeouts),
        bad_replies: load(&c.bad_replies),
        late_replies: load(&c.late_replies),
        send_errors: load(&c.send_errors),
        latency_ms: Latency {
            p50: round3(percentile(&latencies, 50.0)),
            p90: round3(percentile(&latencies, 90.0)),
            p99: round3(percentile(&latencies, 99.0)),
            max: round3(percentile(&latencies, 100.0)),
            mean: round3(mean),
        },
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn wrong_codes_avoid_the_window() {
        let mut rng = Rng::new(7);
        let avoid: Vec<String> = (0..1000).map(|i| otp::format_code(i, 6)).collect();
        for _ in 0..100 {
            let code = wrong_code(&mut rng, 6, &avoid);
            assert_eq!(code.len(), 6);
            assert!(!avoid.contains(&code));
        }
    }

    #[test]
    fn seeds_are_deterministic() {
        assert_eq!(seed_of("BENCH000001"), seed_of("BENCH000001"));
        assert_ne!(seed_of("BENCH000001"), seed_of("BENCH000002"));
    }
}
