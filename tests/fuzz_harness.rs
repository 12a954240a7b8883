//! The fuzz targets of `fuzz/` on the stable toolchain: every file of the
//! checked-in corpus, then generated mutations of them (deterministic, so a
//! failure reproduces). A panic anywhere fails CI. The iteration count comes
//! from RADOTP_FUZZ_ITERATIONS (default 20,000 per target); the long run
//! recorded in docs/security.md used 1,000,000 per target in release mode.

use std::path::{Path, PathBuf};

use radotp::fuzzing;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(corpus_dir(target))
        .map(|dir| dir.filter_map(Result::ok).filter_map(|e| std::fs::read(e.path()).ok()).collect())
        .unwrap_or_default();
    inputs.push(Vec::new());
    inputs
}

/// One mutation of `input`: bit flips, byte sets, cuts, duplications, splices.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = [0, 1, 2, 16, 18, 20, 80, 127, 128, 255][rng.below(10)];
            }
            2 if !out.is_empty() => out.truncate(rng.below(out.len())),
            3 => {
                let i = rng.below(out.len() + 1);
                let byte = rng.next() as u8;
                out.insert(i, byte);
            }
            4 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + rng.below(64)).min(out.len());
                let chunk = out[start..end].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + rng.below(128)).min(other.len());
                let at = rng.below(out.len() + 1);
                out.splice(at..at, other[start..end].iter().copied());
            }
            _ if out.len() >= 4 => {
                // RADIUS Length field and attribute lengths are favourite targets.
                let i = if rng.below(2) == 0 { 2 + rng.below(2) } else { rng.below(out.len()) };
                out[i] = out[i].wrapping_add(rng.below(5) as u8).wrapping_sub(2);
            }
            _ => {}
        }
    }
    out.truncate(70_000);
    out
}

fn iterations() -> usize {
    std::env::var("RADOTP_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
}

fn run(target: &str, entry: fn(&[u8])) {
    let seeds = corpus(target);
    assert!(seeds.len() > 1 || std::env::var_os("RADOTP_WRITE_CORPUS").is_some(), "no corpus for {target}");
    for seed in &seeds {
        entry(seed);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    let n = iterations();
    for _ in 0..n {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, a, b);
        entry(&input);
    }
    eprintln!("{target}: {} corpus inputs and {n} generated inputs, no panic", seeds.len());
}

#[test]
fn fuzz_radius_request() {
    run("radius_request", fuzzing::radius_request);
}

#[test]
fn fuzz_radius_reply() {
    run("radius_reply", fuzzing::radius_reply);
}

#[test]
fn fuzz_admin_request() {
    run("admin_request", fuzzing::admin_request);
}

#[test]
fn fuzz_config() {
    run("config", fuzzing::config);
}

#[test]
fn fuzz_import() {
    run("import", fuzzing::import);
}

/// Writes the seed corpus (run once with RADOTP_WRITE_CORPUS=1 -- --ignored).
#[test]
#[ignore]
fn write_seed_corpus() {
    use radotp::radius::packet;
    if std::env::var_os("RADOTP_WRITE_CORPUS").is_none() {
        return;
    }
    let secret = fuzzing::FUZZ_SECRET;
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(corpus_dir(target)).unwrap();
        std::fs::write(corpus_dir(target).join(name), bytes).unwrap();
    };
    let request = packet::build_access_request(7, secret, "alice", b"755224", None).unwrap();
    write("radius_request", "pap-with-ma", &request);
    write(
        "radius_request",
        "pap-with-state",
        &packet::build_access_request(8, secret, "bob", b"123456", Some(&[1; 16])).unwrap(),
    );
    write("radius_request", "status-server", &packet::build_status_server(9, secret));
    let mut long_name =
        packet::build_access_request(10, secret, &"x".repeat(250), b"1234567890123456789012345678901234567890", None)
            .unwrap();
    write("radius_request", "long-attributes", &long_name);
    long_name.truncate(40);
    write("radius_request", "truncated", &long_name);
    let frame = packet::parse_frame(&request).unwrap();
    let attrs =
        packet::ReplyAttributes { reply_message: Some("hello".into()), state: Some(vec![9; 16]), ..Default::default() };
    let reply = packet::sign_reply(packet::CODE_ACCESS_CHALLENGE, 7, &frame.authenticator, secret, &attrs).unwrap();
    write("radius_reply", "challenge", &reply);
    write(
        "admin_request",
        "assign",
        br#"{"version":1,"op":"token_assign","args":{"serial":"S1","user":"alice","reassign":false}}"#,
    );
    write(
        "admin_request",
        "list",
        br#"{"version":1,"op":"token_list","args":{"user":"alice","state":"locked","unassigned":false,"limit":5}}"#,
    );
    write("admin_request", "import", br#"{"version":1,"op":"token_import","args":{"content":"serial,type,seed\nA,hw-hotp,00","skip_invalid":true,"dry_run":true}}"#);
    write(
        "admin_request",
        "audit",
        br#"{"version":1,"op":"audit","args":{"limit":10,"serial":null,"user":"bob","since":5}}"#,
    );
    write("admin_request", "ping", br#"{"version":1,"op":"ping"}"#);
    let config = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/radotp.yaml")).unwrap();
    write("config", "demo", &config);
    write(
        "config",
        "production",
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/production.yaml")).unwrap(),
    );
    write("import", "csv", b"serial,type,seed,user,digits,counter\nA1,hw-hotp,3132333435363738393031323334353637383930,alice,6,5\nA2,hw-totp,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,,8,\n");
    for name in ["figure5", "figure6", "tampered-mac", "billion-laughs"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/pskc/{name}.pskcxml"));
        write("import", name, &std::fs::read(path).unwrap());
    }
}
