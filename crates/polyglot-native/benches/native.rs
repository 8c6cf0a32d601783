//! Benchmarks of this crate's operations against the raw libraries, measured in the same
//! run: `cargo bench -p polyglot-native --bench native
//! [aes|blake3|call-api|zstd|json|regex|calls]`.
//!
//! Each case runs its variants interleaved (ours, then each baseline, round after round)
//! and keeps each variant's best time, so a machine busy with other work slows every
//! variant alike and the ratios stay meaningful. A case stops after its time budget or
//! its maximum rounds.
//!
//! The first table: throughput of each variant in MB/s (10^6 bytes per second of input)
//! and the ratio of its speed to ours (`baseline time / our time`: above 1, ours is
//! faster). The `call-api` cases run the crypto operations through
//! `polyglot_core::Runtime::call`, to the `crypto` handler served in this process, with
//! the raw libraries in the same case.
//!
//! Then the programs outside this process, each run once after the in-process cases:
//! Node.js 20 (`node_baseline.js`: crypto, zlib, JSON, RegExp on the same inputs),
//! `openssl speed` and `zstd -b`; then the price of a call through `polyglot_core`'s
//! runtime, in-process and to a worker process. The last table puts our figures beside
//! theirs, as `ours / theirs` speed (above 1: ours is faster), and against the targets.
//! A program that is not installed is reported as missing and its rows left out. The
//! whole run takes about two minutes.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyglot_core::Value;
use polyglot_native::{compress, crypto, text};

/// A case's time budget: enough rounds for a stable best time on a quiet machine, and
/// for a few quiet moments on a machine shared with builds (1.5 s was not: the best
/// time of a JSON case moved by half between runs).
const BUDGET: Duration = Duration::from_millis(2500);
/// Every case runs at least this many rounds, whatever the budget says.
const MIN_ROUNDS: usize = 5;
/// And at most this many.
const MAX_ROUNDS: usize = 3000;

const MB: usize = 1_000_000;

/// One run of a variant, returning how long its measured part took.
type Run<'a> = Box<dyn FnMut() -> Duration + 'a>;

struct Case<'a> {
    name: String,
    bytes: usize,
    /// Our time from another case, when this case holds only baselines.
    ours: Option<f64>,
    variants: Vec<(&'static str, Run<'a>)>,
    budget: Duration,
}

impl<'a> Case<'a> {
    fn new(name: impl Into<String>, bytes: usize) -> Case<'a> {
        Case {
            name: name.into(),
            bytes,
            ours: None,
            variants: Vec::new(),
            budget: BUDGET,
        }
    }
    /// A time budget other than [`BUDGET`].
    fn budget(mut self, budget: Duration) -> Case<'a> {
        self.budget = budget;
        self
    }
    /// Baselines only, compared with `ours` (seconds) measured in another case.
    fn against(mut self, ours: f64) -> Case<'a> {
        self.ours = Some(ours);
        self
    }
    fn with(self, label: &'static str, mut f: impl FnMut() + 'a) -> Case<'a> {
        self.with_input(label, || (), move |()| f())
    }
    /// A variant given an input that `setup` makes before the clock starts: a buffer its
    /// caller owns and gives away.
    fn with_input<T>(
        mut self,
        label: &'static str,
        mut setup: impl FnMut() -> T + 'a,
        mut f: impl FnMut(T) + 'a,
    ) -> Case<'a> {
        self.variants.push((
            label,
            Box::new(move || {
                let input = setup();
                let t = Instant::now();
                f(input);
                t.elapsed()
            }),
        ));
        self
    }
}

/// Our figures (best times in seconds) that the summary compares with the programs
/// outside this process and with the targets; `None` for cases left out by the filter.
#[derive(Default)]
struct Figures {
    aes_seal: [Option<f64>; 2],
    aes_open: [Option<f64>; 2],
    /// Ours, raw one thread, raw `update_rayon`, for 1 MB and 64 MB.
    blake3: [Option<[f64; 3]>; 2],
    zstd: [Option<f64>; 2],
    /// Through the call API, for 1 MB and 64 MB.
    call_encrypt: [Option<ViaCall>; 2],
    call_decrypt: [Option<ViaCall>; 2],
    call_blake3: [Option<ViaCall>; 2],
    json_compact: Option<f64>,
    json_pretty: Option<f64>,
    json_canonical: Option<f64>,
    regex_count: Option<f64>,
}

/// Best time per variant, in seconds.
fn measure(case: &mut Case<'_>) -> Vec<f64> {
    let mut best = vec![f64::INFINITY; case.variants.len()];
    for (_, f) in case.variants.iter_mut() {
        f(); // warm-up: page in buffers, start thread pools
    }
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < MIN_ROUNDS || (start.elapsed() < case.budget && rounds < MAX_ROUNDS) {
        for (i, (_, f)) in case.variants.iter_mut().enumerate() {
            best[i] = best[i].min(f().as_secs_f64());
        }
        rounds += 1;
    }
    best
}

/// Measures `case`, prints its rows, and returns each variant's best time in seconds.
fn report(mut case: Case<'_>) -> Vec<f64> {
    let best = measure(&mut case);
    let ours = case.ours.unwrap_or(best[0]);
    let mbps = |secs: f64| case.bytes as f64 / secs / MB as f64;
    for (i, (label, _)) in case.variants.iter().enumerate() {
        let ratio = if i == 0 && case.ours.is_none() {
            String::from("-")
        } else {
            format!("{:.2}", best[i] / ours)
        };
        println!(
            "| {:<34} | {:<30} | {:>9.2} ms | {:>9.0} | {:>6} |",
            if i == 0 { case.name.as_str() } else { "" },
            label,
            best[i] * 1e3,
            mbps(best[i]),
            ratio
        );
    }
    best
}

/// Deterministic pseudo-random bytes (xorshift64*), so runs compare alike.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// About `len` bytes of JSON: an array of varied records, keys deliberately unsorted.
fn json_doc(len: usize) -> String {
    let mut s = String::with_capacity(len + 512);
    s.push('[');
    let mut i = 0u64;
    while s.len() < len {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"id":{i},"name":"user {i}","email":"user{i}@example.com","score":{}.{},"active":{},"tags":["t{}","t{}"],"address":{{"zip":"{:05}","city":"City {}","street":"{} Main Street"}},"note":null}}"#,
            i % 1000,
            i % 97,
            i.is_multiple_of(3),
            i % 7,
            i % 11,
            i % 100_000,
            i % 500,
            i % 9999
        ));
        i += 1;
    }
    s.push(']');
    s
}

/// `n` log lines; one in eight mentions an e-mail address.
fn log_lines(n: usize) -> String {
    let mut s = String::with_capacity(n * 90);
    for i in 0..n {
        if i % 8 == 0 {
            s.push_str(&format!(
                "2024-05-01T12:{:02}:{:02}Z INFO  mail sent to user.{i}@mail{}.example.org id={i}\n",
                (i / 60) % 60,
                i % 60,
                i % 13
            ));
        } else {
            s.push_str(&format!(
                "2024-05-01T12:{:02}:{:02}Z DEBUG GET /api/v1/items/{i} status=200 bytes={} ms={}\n",
                (i / 60) % 60,
                i % 60,
                i % 4096,
                i % 250
            ));
        }
    }
    s
}

/// The same AES-256-GCM key in each library measured: ours, aws-lc-rs, ring, RustCrypto.
struct AesKeys {
    ours: crypto::AesKey,
    aws: aws_lc_rs::aead::LessSafeKey,
    ring: ring::aead::LessSafeKey,
    rc: aes_gcm::Aes256Gcm,
}

const AES_KEY: [u8; 32] = [0x42; 32];
const AES_NONCE: [u8; 12] = [7; 12];

// The raw baselines do what a caller of each library does to get an owned sealed
// message from a borrowed plaintext: copy into a buffer with room for the tag, seal in
// place; and to open one: copy, open in place. aws-lc-rs and ring share this API.

/// Seals `plaintext` with `key` of the crate `lib` (`aws_lc_rs` or `ring`).
macro_rules! seal_copy {
    ($lib:ident, $key:expr, $plaintext:expr) => {{
        let plaintext: &[u8] = $plaintext;
        let mut buf = Vec::with_capacity(plaintext.len() + 16);
        buf.extend_from_slice(plaintext);
        $key.seal_in_place_append_tag(
            $lib::aead::Nonce::assume_unique_for_key(AES_NONCE),
            $lib::aead::Aad::empty(),
            &mut buf,
        )
        .unwrap();
        buf
    }};
}

/// Opens `body` (ciphertext and tag) sealed under `nonce` with `key` of the crate `lib`.
macro_rules! open_copy {
    ($lib:ident, $key:expr, $nonce:expr, $body:expr) => {{
        let mut buf = $body.to_vec();
        let pt_len = $key
            .open_in_place(
                $lib::aead::Nonce::assume_unique_for_key($nonce),
                $lib::aead::Aad::empty(),
                &mut buf,
            )
            .unwrap()
            .len();
        buf.truncate(pt_len);
        buf
    }};
}

impl AesKeys {
    fn new() -> AesKeys {
        use aes_gcm::aead::KeyInit;
        AesKeys {
            ours: crypto::AesKey::new(&AES_KEY).unwrap(),
            aws: aws_lc_rs::aead::LessSafeKey::new(
                aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &AES_KEY).unwrap(),
            ),
            ring: ring::aead::LessSafeKey::new(
                ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &AES_KEY).unwrap(),
            ),
            rc: aes_gcm::Aes256Gcm::new_from_slice(&AES_KEY).unwrap(),
        }
    }

    fn aws_seal(&self, plaintext: &[u8]) -> Vec<u8> {
        seal_copy!(aws_lc_rs, self.aws, plaintext)
    }

    fn ring_seal(&self, plaintext: &[u8]) -> Vec<u8> {
        seal_copy!(ring, self.ring, plaintext)
    }

    /// Opens `body` (ciphertext and tag) sealed under `nonce`.
    fn aws_open(&self, nonce: [u8; 12], body: &[u8]) -> Vec<u8> {
        open_copy!(aws_lc_rs, self.aws, nonce, body)
    }

    fn ring_open(&self, nonce: [u8; 12], body: &[u8]) -> Vec<u8> {
        open_copy!(ring, self.ring, nonce, body)
    }
}

/// `1 MB`, `64 MB`, or `100 B`.
fn size_label(len: usize) -> String {
    if len >= MB {
        format!("{} MB", len / MB)
    } else {
        format!("{len} B")
    }
}

/// A sealed message of ours split into its nonce and the rest (ciphertext and tag), as
/// the raw libraries take it.
fn split_sealed(sealed: &[u8]) -> ([u8; 12], &[u8]) {
    let (n, body) = sealed.split_at(12);
    (n.try_into().unwrap(), body)
}

fn aes_cases(len: usize, fig: &mut Figures) {
    let plaintext = noise(len);
    let k = AesKeys::new();
    use aes_gcm::aead::AeadInPlace;
    let size = size_label(len);
    let slot = usize::from(len > MB);
    let seal = report(
        Case::new(format!("AES-256-GCM seal {size}"), len)
            .with("ours (aws-lc-rs, out of place)", || {
                black_box(k.ours.encrypt(black_box(&plaintext), b"").unwrap());
            })
            .with("aws-lc-rs raw", || {
                black_box(k.aws_seal(black_box(&plaintext)));
            })
            .with("ring raw", || {
                black_box(k.ring_seal(black_box(&plaintext)));
            })
            .with("aes-gcm (RustCrypto) raw", || {
                let mut buf = Vec::with_capacity(len + 16);
                buf.extend_from_slice(black_box(&plaintext));
                k.rc.encrypt_in_place(&AES_NONCE.into(), b"", &mut buf)
                    .unwrap();
                black_box(buf);
            }),
    );
    fig.aes_seal[slot] = Some(seal[0]);

    let sealed = k.ours.encrypt(&plaintext, b"").unwrap();
    let (n, body) = split_sealed(&sealed);
    let open = report(
        Case::new(format!("AES-256-GCM open {size}"), len)
            .with("ours (aws-lc-rs, out of place)", || {
                black_box(k.ours.decrypt(black_box(&sealed), b"").unwrap());
            })
            .with("aws-lc-rs raw", || {
                black_box(k.aws_open(n, black_box(body)));
            })
            .with("ring raw", || {
                black_box(k.ring_open(n, black_box(body)));
            })
            .with("aes-gcm (RustCrypto) raw", || {
                let mut buf = black_box(body).to_vec();
                k.rc.decrypt_in_place(&n.into(), b"", &mut buf).unwrap();
                black_box(buf);
            }),
    );
    fig.aes_open[slot] = Some(open[0]);
}

/// Sealing and opening again in one buffer kept across rounds: the libraries' pure
/// speed, without the cost of a fresh output buffer. Ours is `encrypt_owned` +
/// `decrypt_owned`, which also move the data by the 12 bytes of the nonce each way (the
/// message format puts the nonce first).
fn aes_in_place_cases(len: usize) {
    let nonce = AES_NONCE;
    let plaintext = noise(len);
    let k = AesKeys::new();
    let (ours, aws, ring_key, rc) = (&k.ours, &k.aws, &k.ring, &k.rc);
    use aes_gcm::aead::AeadInPlace;
    let fresh = || {
        let mut b = Vec::with_capacity(len + 28);
        b.extend_from_slice(&plaintext);
        b
    };
    let mut b_ours = Some(fresh());
    let (mut b_aws, mut b_fmt, mut b_ring, mut b_rc) = (fresh(), fresh(), fresh(), fresh());
    let size = size_label(len);
    report(
        Case::new(format!("AES-256-GCM seal+open in place {size}"), 2 * len)
            .with("ours (encrypt_owned+decrypt_owned)", || {
                let sealed = ours.encrypt_owned(b_ours.take().unwrap(), b"").unwrap();
                b_ours = Some(ours.decrypt_owned(black_box(sealed), b"").unwrap());
            })
            .with("aws-lc-rs raw", || {
                aws.seal_in_place_append_tag(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                    aws_lc_rs::aead::Aad::empty(),
                    &mut b_aws,
                )
                .unwrap();
                let n = aws
                    .open_in_place(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                        aws_lc_rs::aead::Aad::empty(),
                        black_box(&mut b_aws),
                    )
                    .unwrap()
                    .len();
                b_aws.truncate(n);
            })
            .with("aws-lc-rs raw, same nonce-first format", || {
                // What any caller must do to put the nonce first in an owned buffer.
                b_fmt.splice(0..0, nonce);
                let tag = aws
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                        aws_lc_rs::aead::Aad::empty(),
                        &mut b_fmt[12..],
                    )
                    .unwrap();
                b_fmt.extend_from_slice(tag.as_ref());
                let n = aws
                    .open_within(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                        aws_lc_rs::aead::Aad::empty(),
                        black_box(&mut b_fmt),
                        12..,
                    )
                    .unwrap()
                    .len();
                b_fmt.truncate(n);
            })
            .with("ring raw", || {
                ring_key
                    .seal_in_place_append_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::empty(),
                        &mut b_ring,
                    )
                    .unwrap();
                let n = ring_key
                    .open_in_place(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::empty(),
                        black_box(&mut b_ring),
                    )
                    .unwrap()
                    .len();
                b_ring.truncate(n);
            })
            .with("aes-gcm (RustCrypto) raw", || {
                rc.encrypt_in_place(&nonce.into(), b"", &mut b_rc).unwrap();
                rc.decrypt_in_place(&nonce.into(), b"", black_box(&mut b_rc))
                    .unwrap();
            }),
    );
}

/// The raw crate on every core.
fn blake3_rayon(data: &[u8]) -> blake3::Hash {
    blake3::Hasher::new().update_rayon(data).finalize()
}

fn blake3_cases(len: usize, fig: &mut Figures) {
    let data = noise(len);
    let best = report(
        Case::new(format!("BLAKE3 {} MB", len / MB), len)
            .with("ours (parallel from 256 KiB)", || {
                black_box(crypto::blake3(black_box(&data)));
            })
            .with("blake3 raw, one thread", || {
                black_box(blake3::hash(black_box(&data)));
            })
            .with("blake3 raw, update_rayon", || {
                black_box(blake3_rayon(black_box(&data)));
            }),
    );
    fig.blake3[usize::from(len > MB)] = Some([best[0], best[1], best[2]]);
}

/// Where one thread and all threads cross: the measurement behind
/// `BLAKE3_PARALLEL_THRESHOLD`.
fn blake3_threshold() {
    for kib in [128usize, 256, 512, 1024, 2048] {
        let data = noise(kib * 1024);
        report(
            Case::new(format!("BLAKE3 threshold {kib} KiB"), data.len())
                .with("update_rayon", || {
                    black_box(blake3_rayon(black_box(&data)));
                })
                .with("update (one thread)", || {
                    black_box(blake3::hash(black_box(&data)));
                }),
        );
    }
}

/// One operation through the call API, against the raw libraries in the same case: best
/// times in seconds.
#[derive(Clone, Copy)]
struct ViaCall {
    /// `Runtime::call` with the caller's buffer moved into the params.
    moved: f64,
    /// `Runtime::call` with the params copied from a borrowed slice, inside the timing.
    copied: f64,
    /// Our function called directly, without the call.
    direct: f64,
    /// Our function called directly on a buffer given to it and freed after, as the
    /// call frees the buffer moved into it (BLAKE3 only).
    given: Option<f64>,
    /// The raw library variants and their labels; the first is the library ours uses.
    raws: [(&'static str, f64); 2],
}

impl ViaCall {
    /// The fastest raw variant.
    fn fastest(&self) -> (&'static str, f64) {
        let [a, b] = self.raws;
        if a.1 <= b.1 {
            a
        } else {
            b
        }
    }
}

/// A call-API case of AES: the method, its input and its answer's length, our function
/// called directly, and the raw libraries doing the same.
struct AesMethod<'r> {
    method: &'static str,
    input: &'r [u8],
    answer_len: usize,
    direct_label: &'static str,
    direct: &'r dyn Fn(),
    aws: &'r dyn Fn(),
    ring: &'r dyn Fn(),
}

/// The module the call-API cases and the call latencies call in this process: the
/// `crypto` handler, registered as the builtin a manifest names.
const IN_PROCESS: &str = "crypto-rust";

fn in_process_manifest() -> serde_json::Value {
    serde_json::json!({"name": IN_PROCESS, "language": "rust", "version": "1.0.0",
                       "builtin": "crypto"})
}

/// A `polyglot_core::Runtime` with the `crypto` handler registered as the builtin
/// `crypto`, and `manifests` (folder, module.json) written under `dir` and loaded.
async fn crypto_runtime(
    dir: &Path,
    manifests: &[(&str, serde_json::Value)],
) -> Result<polyglot_core::Runtime, String> {
    for (folder, manifest) in manifests {
        let d = dir.join(folder);
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        std::fs::write(d.join("module.json"), manifest.to_string()).map_err(|e| e.to_string())?;
    }
    let rt = polyglot_core::Runtime::default();
    rt.register_builtin("crypto", Arc::new(crypto::handler()));
    let loaded = rt.load_dir(dir).await;
    if !loaded.errors.is_empty() {
        rt.shutdown().await;
        return Err(format!("modules not loaded: {:?}", loaded.errors));
    }
    Ok(rt)
}

/// The bytes of a call's answer.
fn answer_bytes(v: Value) -> Vec<u8> {
    match v {
        Value::Bytes(b) => b,
        other => panic!("expected bytes, got {}", other.type_name()),
    }
}

/// The variants of a call-API case, in this order; the raw ones follow.
const CALL_MOVED: &str = "call, buffer moved in";
const CALL_COPIED: &str = "call, params copied from &[u8]";

/// `best` of a call-API case: the two calls, our function called directly (and on a
/// given buffer, when the case has that variant), then the two raw variants (labelled
/// `labels`).
fn via_call(best: &[f64], labels: [&'static str; 2]) -> ViaCall {
    let n = best.len();
    ViaCall {
        moved: best[0],
        copied: best[1],
        direct: best[2],
        given: (n == 6).then(|| best[3]),
        raws: [(labels[0], best[n - 2]), (labels[1], best[n - 1])],
    }
}

/// The crypto operations through `polyglot_core::Runtime::call` to the `crypto` handler
/// served in this process, on the inputs of the cases above. Each case has the call
/// with the caller's buffer moved in (made before the clock starts, as a caller that
/// owns its data gives it), the call with the params copied from a borrowed slice
/// (timed), our function called directly (for BLAKE3 also on a buffer given to it and
/// freed, which is what the call does with a moved buffer), and the raw libraries'
/// variants from above. Each call runs to its answer from `block_on` on this thread, as
/// an async caller's `await` does.
fn call_api_cases(fig: &mut Figures) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let rt = tokio.block_on(crypto_runtime(
        dir.path(),
        &[(IN_PROCESS, in_process_manifest())],
    ))?;
    let call = |method: &str, params: Value| -> Value {
        match tokio.block_on(rt.call(IN_PROCESS, method, params)) {
            Ok(reply) => reply.value,
            Err(e) => panic!("{method} through the call API: {e}"),
        }
    };
    let k = AesKeys::new();
    let aes_params =
        |data: Vec<u8>| Value::Array(vec![Value::Bytes(data), Value::Bytes(AES_KEY.to_vec())]);
    for (slot, len) in [(0, MB), (1, 64 * MB)] {
        let size = size_label(len);
        let plaintext = noise(len);
        // A 64 MB round of five variants, with the inputs made for the moved ones, takes
        // about 300 ms: the usual budget leaves too few rounds for a stable best time.
        let budget = if len > MB { 3 * BUDGET } else { BUDGET };
        let sealed = k.ours.encrypt(&plaintext, b"").unwrap();
        let (n, body) = split_sealed(&sealed);
        let aes_methods = [
            AesMethod {
                method: "encrypt",
                input: &plaintext,
                answer_len: len + crypto::OVERHEAD,
                direct_label: "AesKey::encrypt, no call",
                direct: &|| {
                    black_box(k.ours.encrypt(black_box(&plaintext), b"").unwrap());
                },
                aws: &|| {
                    black_box(k.aws_seal(black_box(&plaintext)));
                },
                ring: &|| {
                    black_box(k.ring_seal(black_box(&plaintext)));
                },
            },
            AesMethod {
                method: "decrypt",
                input: &sealed,
                answer_len: len,
                direct_label: "AesKey::decrypt, no call",
                direct: &|| {
                    black_box(k.ours.decrypt(black_box(&sealed), b"").unwrap());
                },
                aws: &|| {
                    black_box(k.aws_open(n, black_box(body)));
                },
                ring: &|| {
                    black_box(k.ring_open(n, black_box(body)));
                },
            },
        ];
        for m in aes_methods {
            let (method, input) = (m.method, m.input);
            let answer = |p: Value| {
                assert_eq!(answer_bytes(call(method, p)).len(), m.answer_len);
            };
            let best = report(
                Case::new(format!("call API: {method} {size}"), len)
                    .budget(budget)
                    .with_input(CALL_MOVED, || aes_params(input.to_vec()), &answer)
                    .with(CALL_COPIED, || {
                        answer(aes_params(black_box(input).to_vec()))
                    })
                    .with(m.direct_label, m.direct)
                    .with("aws-lc-rs raw", m.aws)
                    .with("ring raw", m.ring),
            );
            let figures = if method == "encrypt" {
                &mut fig.call_encrypt
            } else {
                &mut fig.call_decrypt
            };
            figures[slot] = Some(via_call(&best, ["aws-lc-rs raw", "ring raw"]));
        }

        let expected = Value::from(crypto::to_hex(&crypto::blake3(&plaintext)));
        let hash = |data: Vec<u8>| {
            assert_eq!(
                call("blake3", Value::Array(vec![Value::Bytes(data)])),
                expected
            );
        };
        let best = report(
            Case::new(format!("call API: blake3 {size}"), len)
                .budget(budget)
                .with_input(CALL_MOVED, || plaintext.clone(), &hash)
                .with(CALL_COPIED, || hash(black_box(&plaintext).to_vec()))
                .with("crypto::blake3, no call", || {
                    black_box(crypto::blake3(black_box(&plaintext)));
                })
                .with_input(
                    "crypto::blake3, buffer given, freed",
                    || plaintext.clone(),
                    |data| {
                        black_box(crypto::blake3(black_box(&data)));
                    },
                )
                .with("blake3 raw, one thread", || {
                    black_box(blake3::hash(black_box(&plaintext)));
                })
                .with("blake3 raw, update_rayon", || {
                    black_box(blake3_rayon(black_box(&plaintext)));
                }),
        );
        fig.call_blake3[slot] = Some(via_call(
            &best,
            ["blake3 raw, one thread", "blake3 raw, update_rayon"],
        ));
    }
    tokio.block_on(rt.shutdown());
    Ok(())
}

fn zstd_cases(doc: &str, fig: &mut Figures) {
    let data = doc.as_bytes();
    for (i, level) in [1, 3].into_iter().enumerate() {
        let best = report(
            Case::new(
                format!("zstd compress 10 MB JSON, level {level}"),
                data.len(),
            )
            .with("ours", || {
                black_box(compress::compress(black_box(data), level).unwrap());
            })
            .with("zstd raw (bulk::compress)", || {
                black_box(zstd::bulk::compress(black_box(data), level).unwrap());
            })
            .with("zstd raw, same params (checksum)", || {
                let mut c = zstd::bulk::Compressor::new(level).unwrap();
                c.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))
                    .unwrap();
                black_box(c.compress(black_box(data)).unwrap());
            })
            .with("zstd raw, 2 worker threads", || {
                let mut c = zstd::bulk::Compressor::new(level).unwrap();
                c.set_parameter(zstd::stream::raw::CParameter::NbWorkers(2))
                    .unwrap();
                black_box(c.compress(black_box(data)).unwrap());
            }),
        );
        fig.zstd[i] = Some(best[0]);
    }
    let packed = compress::compress(data, 3).unwrap();
    println!(
        "|   (level 3 ratio: {:.1}:1, {} -> {} bytes) | | | | |",
        data.len() as f64 / packed.len() as f64,
        data.len(),
        packed.len()
    );
    report(
        Case::new("zstd decompress 10 MB JSON", data.len())
            .with("ours (size-checked)", || {
                black_box(compress::decompress(black_box(&packed), 256 << 20).unwrap());
            })
            .with("zstd raw (bulk::decompress)", || {
                black_box(zstd::bulk::decompress(black_box(&packed), data.len()).unwrap());
            }),
    );
}

fn json_cases(doc: &str, fig: &mut Figures) {
    let data = doc.as_bytes();
    let compact = report(
        Case::new("JSON parse + compact 10 MB", data.len())
            .with("ours (scan and copy tokens)", || {
                black_box(text::json_format(black_box(data), text::JsonStyle::Compact).unwrap());
            })
            .with("serde_json transcode", || {
                let mut de = serde_json::Deserializer::from_slice(black_box(data));
                let mut out = Vec::with_capacity(data.len());
                serde_transcode::transcode(&mut de, &mut serde_json::Serializer::new(&mut out))
                    .unwrap();
                de.end().unwrap();
                black_box(String::from_utf8(out).unwrap());
            })
            .with("sonic-rs transcode (SIMD)", || {
                let mut de = sonic_rs::Deserializer::from_slice(black_box(data));
                let mut out = Vec::with_capacity(data.len());
                serde_transcode::transcode(&mut de, &mut sonic_rs::Serializer::new(&mut out))
                    .unwrap();
                de.end().unwrap();
                black_box(String::from_utf8(out).unwrap());
            }),
    );
    fig.json_compact = Some(compact[0]);
    let pretty = report(
        Case::new("JSON parse + pretty 10 MB", data.len())
            .with("ours (scan and copy tokens)", || {
                black_box(text::json_format(black_box(data), text::JsonStyle::Pretty).unwrap());
            })
            .with("serde_json transcode, pretty", || {
                let mut de = serde_json::Deserializer::from_slice(black_box(data));
                let mut out = Vec::with_capacity(2 * data.len());
                serde_transcode::transcode(&mut de, &mut serde_json::Serializer::pretty(&mut out))
                    .unwrap();
                de.end().unwrap();
                black_box(String::from_utf8(out).unwrap());
            }),
    );
    fig.json_pretty = Some(pretty[0]);
    let canonical = report(Case::new("JSON parse + canonical 10 MB", data.len()).with(
        "ours (scan, sort at object close)",
        || {
            black_box(text::json_format(black_box(data), text::JsonStyle::Canonical).unwrap());
        },
    ));
    // In a case of its own: it frees hundreds of MB of small allocations per round,
    // after which the allocator hands out fresh pages, and our next round would pay
    // their page faults (5-6 ms for 10 MB here) where no other JSON case does.
    report(
        Case::new("  (same output, vs the case above)", data.len())
            .against(canonical[0])
            .with("serde_json Value round trip", || {
                // Without serde_json's `preserve_order`, `Value` objects are sorted maps:
                // the same canonical output.
                let v: serde_json::Value = serde_json::from_slice(black_box(data)).unwrap();
                black_box(serde_json::to_string(&v).unwrap());
            }),
    );
    fig.json_canonical = Some(canonical[0]);
    report(
        Case::new("JSON validate 10 MB", data.len())
            .with("ours (scan only)", || {
                text::json_validate(black_box(data)).unwrap();
            })
            .with("serde_json parse, IgnoredAny", || {
                black_box(
                    serde_json::from_slice::<serde::de::IgnoredAny>(black_box(data)).unwrap(),
                );
            }),
    );
}

/// The e-mail pattern of the regex cases, also given to Node's RegExp.
const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";

fn regex_cases(lines: &str, fig: &mut Figures) {
    let ours = text::Pattern::new(EMAIL).unwrap();
    let raw = regex::Regex::new(EMAIL).unwrap();
    let count = report(
        Case::new("regex e-mail count, 1M lines", lines.len())
            .with("ours", || {
                black_box(ours.count(black_box(lines)));
            })
            .with("regex raw find_iter().count()", || {
                black_box(raw.find_iter(black_box(lines)).count());
            }),
    );
    fig.regex_count = Some(count[0]);
    report(
        Case::new("regex e-mail find all, 1M lines", lines.len())
            .with("ours (Match structs)", || {
                black_box(ours.find_all(black_box(lines), None));
            })
            .with("regex raw find_iter().collect()", || {
                black_box(raw.find_iter(black_box(lines)).collect::<Vec<_>>());
            }),
    );
}

/// What Node.js measured (`node_baseline.js`), times in seconds.
struct NodeFigures {
    version: String,
    aes_seal: [f64; 2],
    aes_open: [f64; 2],
    gzip: [(f64, u64); 2],
    json_round_trip: f64,
    json_parse: f64,
    regex_count: f64,
    regex_matches: u64,
}

/// Runs `node benches/node_baseline.js <dir>` on the inputs written to `dir`.
fn node_baseline(dir: &Path) -> Result<NodeFigures, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/node_baseline.js");
    let out = Command::new("node")
        .arg(&script)
        .arg(dir)
        .output()
        .map_err(|e| format!("`node` could not be run ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "`node {}` failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("node_baseline.js printed no JSON ({e})"))?;
    let ms = |path: &str| {
        v.pointer(path)
            .and_then(serde_json::Value::as_f64)
            .map(|ms| ms / 1e3)
            .ok_or_else(|| format!("node_baseline.js printed no {path}"))
    };
    let int = |path: &str| {
        v.pointer(path)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| format!("node_baseline.js printed no {path}"))
    };
    Ok(NodeFigures {
        version: v["node"].as_str().unwrap_or("?").to_owned(),
        aes_seal: [ms("/aes_gcm/seal_1mb_ms")?, ms("/aes_gcm/seal_64mb_ms")?],
        aes_open: [ms("/aes_gcm/open_1mb_ms")?, ms("/aes_gcm/open_64mb_ms")?],
        gzip: [
            (ms("/gzip/level1_ms")?, int("/gzip/level1_bytes")?),
            (ms("/gzip/level6_ms")?, int("/gzip/level6_bytes")?),
        ],
        json_round_trip: ms("/json/parse_stringify_ms")?,
        json_parse: ms("/json/parse_ms")?,
        regex_count: ms("/regex/count_ms")?,
        regex_matches: int("/regex/matches")?,
    })
}

/// `openssl speed [-decrypt] -evp aes-256-gcm -bytes <1 MiB | 64 MiB> -seconds <1 | 2>`:
/// AES-256-GCM encryption and decryption, each size in one buffer reused, in bytes per
/// second, as `[[encrypt, decrypt] of 1 MiB, of 64 MiB]`. Its last line reads
/// `AES-256-GCM    3039778.13k`, in thousands of bytes per second.
fn openssl_speed() -> Result<(String, [[f64; 2]; 2]), String> {
    let speed = |bytes: &str, seconds: &str, decrypt: bool| -> Result<f64, String> {
        let mut cmd = Command::new("openssl");
        cmd.arg("speed");
        if decrypt {
            cmd.arg("-decrypt");
        }
        let out = cmd
            .args(["-evp", "aes-256-gcm", "-bytes", bytes, "-seconds", seconds])
            .output()
            .map_err(|e| format!("`openssl` could not be run ({e})"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let kilobytes = stdout
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("aes-256-gcm"))
            .filter_map(|l| {
                l.split_whitespace()
                    .last()?
                    .strip_suffix('k')?
                    .parse::<f64>()
                    .ok()
            })
            .next_back()
            .ok_or_else(|| format!("no AES-256-GCM figure in `openssl speed` output: {stdout}"))?;
        Ok(kilobytes * 1e3)
    };
    // A 64 MiB buffer takes tens of milliseconds: 2 s keep the count's rounding small.
    let speeds = [
        [speed("1048576", "1", false)?, speed("1048576", "1", true)?],
        [
            speed("67108864", "2", false)?,
            speed("67108864", "2", true)?,
        ],
    ];
    let version = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Ok((version, speeds))
}

/// `zstd -b<level> <file>`: zstd's own benchmark, single-threaded, whole file as one
/// frame, best of 3 seconds; its compression speed in MB/s (10^6 bytes). It redraws
/// its result line with carriage returns; the last one reads
/// ` |-doc.json :  10000056 ->    565723 (x17.68),  639.5 MB/s, 1214.6 MB/s`.
fn zstd_cli(file: &Path, level: i32) -> Result<f64, String> {
    let out = Command::new("zstd")
        .arg(format!("-b{level}"))
        .arg(file)
        .output()
        .map_err(|e| format!("`zstd` could not be run ({e})"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.split(['\r', '\n'])
        .filter(|l| l.contains("->") && l.contains("MB/s"))
        .filter_map(|l| {
            let after = l.split_once("),")?.1;
            after.split("MB/s").next()?.trim().parse::<f64>().ok()
        })
        .next_back()
        .ok_or_else(|| format!("no speed in `zstd -b{level}` output: {text}"))
}

fn zstd_version() -> String {
    Command::new("zstd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .find(|w| w.starts_with('v'))
                .map(|w| w.trim_end_matches(',').to_owned())
        })
        .unwrap_or_default()
}

/// Calls through a `polyglot_core::Runtime`: p50 and p99 latency in seconds.
struct CallFigures {
    /// `[in-process, worker process]` for an empty call and for 1 MB.
    empty: [(f64, f64); 2],
    one_mb: [(f64, f64); 2],
}

/// Warm-up and measured calls per path: enough for a stable p50 and p99 in a few
/// seconds. Each measured call of one path is followed by the same call of the other,
/// so both see the same machine.
const EMPTY_CALLS: (usize, usize) = (1_000, 10_000);
const ONE_MB_CALLS: (usize, usize) = (20, 300);

/// The `polyglot-native` binary: beside this bench's executable (`target/<profile>/`),
/// where cargo builds it for benches, or built now.
fn worker_binary() -> Result<PathBuf, String> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("polyglot-native")));
    let candidates = [
        beside.clone(),
        Some(PathBuf::from(env!("CARGO_BIN_EXE_polyglot-native"))),
    ];
    if let Some(found) = candidates.iter().flatten().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    println!("(building the polyglot-native binary for the worker-process calls)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "polyglot-native",
            "--bin",
            "polyglot-native",
        ])
        .status()
        .map_err(|e| format!("cargo build could not be run ({e})"))?;
    let built = beside.filter(|p| p.is_file());
    match (status.success(), built) {
        (true, Some(p)) => Ok(p),
        _ => Err("the polyglot-native binary could not be built".into()),
    }
}

fn p50_p99(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn call_overhead() -> Result<CallFigures, String> {
    let binary = worker_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let worker = serde_json::json!({"name": "crypto-worker", "language": "rust",
                                    "version": "1.0.0", "command": binary,
                                    "args": ["crypto"], "codec": "msgpack"});
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    tokio.block_on(async {
        let rt = crypto_runtime(
            dir.path(),
            &[
                (IN_PROCESS, in_process_manifest()),
                ("crypto-worker", worker),
            ],
        )
        .await?;
        let run = async |data: &[u8], (warm, measured): (usize, usize)| {
            let expected = Value::from(crypto::to_hex(&crypto::blake3(data)));
            let mut samples = [Vec::with_capacity(measured), Vec::with_capacity(measured)];
            for i in 0..warm + measured {
                for (k, module) in [IN_PROCESS, "crypto-worker"].into_iter().enumerate() {
                    let params = Value::Array(vec![Value::Bytes(data.to_vec())]);
                    let t = Instant::now();
                    let reply = rt.call(module, "blake3", params).await;
                    let took = t.elapsed().as_secs_f64();
                    match reply {
                        Ok(r) if r.value == expected && r.served_by == module => {}
                        other => return Err(format!("{module}: unexpected answer {other:?}")),
                    }
                    if i >= warm {
                        samples[k].push(took);
                    }
                }
            }
            let [inproc, worker] = samples;
            Ok([p50_p99(inproc), p50_p99(worker)])
        };
        let empty = run(&[], EMPTY_CALLS).await;
        let one_mb = run(&noise(MB), ONE_MB_CALLS).await;
        rt.shutdown().await;
        Ok(CallFigures {
            empty: empty?,
            one_mb: one_mb?,
        })
    })
}

/// One row of the summary: what, ours, theirs, and the ratio with its target.
fn summary_row(what: &str, ours: &str, theirs: &str, ratio: &str, target: &str) {
    println!("| {what:<46} | {ours:>14} | {theirs:>28} | {ratio:>12} | {target:<18} |");
}

fn mbps(bytes: usize, secs: f64) -> String {
    format!("{:.0} MB/s", bytes as f64 / secs / MB as f64)
}

fn ms(secs: f64) -> String {
    format!("{:.2} ms", secs * 1e3)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// The summary's rows for the call-API cases: through the call, with the buffer moved in
/// and with the params copied, against the fastest raw library in the same case (target:
/// at least 0.90) and, for AES, against `openssl speed` (target: at least 2); then, for
/// reading them, the call against our function called directly and, when it was not the
/// fastest, against the raw library ours uses.
fn call_api_rows(fig: &Figures, openssl: Option<&(String, [[f64; 2]; 2])>) {
    let ops = [
        ("encrypt", &fig.call_encrypt),
        ("decrypt", &fig.call_decrypt),
        ("blake3", &fig.call_blake3),
    ];
    for (op, figures) in ops {
        for (i, size) in [(0, MB), (1, 64 * MB)] {
            let Some(c) = figures[i] else { continue };
            let label = size_label(size);
            let (raw_label, raw) = c.fastest();
            for (how, ours) in [("moved in", c.moved), ("copied", c.copied)] {
                let ratio = raw / ours;
                summary_row(
                    &format!("call {op} {label}, {how} vs {raw_label}"),
                    &mbps(size, ours),
                    &mbps(size, raw),
                    &format!("{ratio:.2}"),
                    &format!(">= 0.90: {}", verdict(ratio >= 0.9)),
                );
                let openssl_bps = match (op, openssl) {
                    ("encrypt", Some((_, speeds))) => speeds[i][0],
                    ("decrypt", Some((_, speeds))) => speeds[i][1],
                    _ => continue,
                };
                let ratio = size as f64 / ours / openssl_bps;
                summary_row(
                    &format!("call {op} {label}, {how} vs `openssl speed`"),
                    &mbps(size, ours),
                    &format!("{:.0} MB/s", openssl_bps / MB as f64),
                    &format!("{ratio:.2}"),
                    &format!(">= 2: {}", verdict(ratio >= 2.0)),
                );
            }
            let mut references = vec![("our function, no call", c.direct)];
            if let Some(given) = c.given {
                references.push(("our function, buffer freed", given));
            }
            if c.raws[0].0 != raw_label && op != "blake3" {
                references.push(c.raws[0]);
            }
            for (what, theirs) in references {
                summary_row(
                    &format!("call {op} {label}, moved in vs {what}"),
                    &mbps(size, c.moved),
                    &mbps(size, theirs),
                    &format!("{:.2}", theirs / c.moved),
                    "",
                );
            }
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks cases by prefix.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let on = |name: &str| filter.as_deref().is_none_or(|f| name.starts_with(f));
    let started = Instant::now();
    println!(
        "| {:<34} | {:<30} | {:>12} | {:>9} | {:>6} |",
        "case", "variant", "best time", "MB/s", "vs ours"
    );
    println!(
        "|{:-<36}|{:-<32}|{:-<14}|{:-<11}|{:-<8}|",
        "", "", "", "", ""
    );
    let mut fig = Figures::default();
    if on("aes") {
        aes_cases(MB, &mut fig);
        aes_cases(64 * MB, &mut fig);
        aes_in_place_cases(MB);
        aes_in_place_cases(64 * MB);
    }
    if on("blake3") {
        blake3_cases(MB, &mut fig);
        blake3_cases(64 * MB, &mut fig);
        blake3_threshold();
    }
    let call_api = on("call-api").then(|| call_api_cases(&mut fig));
    let doc = json_doc(10 * MB);
    let lines = log_lines(1_000_000);
    if on("zstd") {
        zstd_cases(&doc, &mut fig);
    }
    if on("json") {
        json_cases(&doc, &mut fig);
    }
    if on("regex") {
        regex_cases(&lines, &mut fig);
    }
    let in_process = started.elapsed();

    // The programs outside this process, on the same inputs written to files.
    let inputs = tempfile::tempdir().expect("a temporary directory");
    let doc_file = inputs.path().join("doc.json");
    std::fs::write(&doc_file, &doc).expect("writing doc.json");
    std::fs::write(inputs.path().join("logs.txt"), &lines).expect("writing logs.txt");
    let node = on("node").then(|| node_baseline(inputs.path()));
    let openssl = (on("aes") || on("call-api")).then(openssl_speed);
    let zstd_cli = on("zstd").then(|| [zstd_cli(&doc_file, 1), zstd_cli(&doc_file, 3)]);
    let calls = on("calls").then(call_overhead);

    println!("\n## Against other programs, and the targets\n");
    let mut missing = Vec::new();
    if let Some(Err(e)) = &node {
        missing.push(format!("Node.js rows missing: {e}"));
    }
    if let Some(Err(e)) = &openssl {
        missing.push(format!("openssl rows missing: {e}"));
    }
    if let Some(Err(e)) = &calls {
        missing.push(format!("call overhead rows missing: {e}"));
    }
    if let Some(Err(e)) = &call_api {
        missing.push(format!("call API rows missing: {e}"));
    }
    if let Some(Ok(n)) = &node {
        println!(
            "Node.js {}; ratios are our speed / theirs (above 1: ours is faster).",
            n.version
        );
    }
    if let Some(Ok((version, _))) = &openssl {
        println!("{version}.");
    }
    if zstd_cli.is_some() {
        println!(
            "zstd CLI {}; zstd library in this build {}.",
            zstd_version(),
            zstd::zstd_safe::version_string()
        );
    }
    println!();
    summary_row("measure", "ours", "theirs", "ours/theirs", "target");
    println!(
        "|{:-<48}|{:-<16}|{:-<30}|{:-<14}|{:-<20}|",
        "", "", "", "", ""
    );
    let speed_ratio = |ours: f64, theirs: f64| format!("{:.2}", theirs / ours);

    for (i, size) in [(0, MB), (1, 64 * MB)] {
        let label = if size == MB { "1 MB" } else { "64 MB" };
        if let Some(ours) = fig.aes_seal[i] {
            if let (0, Some(Ok((_, [[bytes_per_s, _], _])))) = (i, &openssl) {
                let theirs = 1_048_576.0 / bytes_per_s;
                summary_row(
                    "AES-256-GCM seal 1 MB vs `openssl speed` (1 MiB)",
                    &mbps(size, ours),
                    &mbps(1_048_576, theirs),
                    &format!("{:.2}", size as f64 / ours / bytes_per_s),
                    "",
                );
            }
            if let Some(Ok(n)) = &node {
                summary_row(
                    &format!("AES-256-GCM seal {label} vs Node crypto"),
                    &mbps(size, ours),
                    &mbps(size, n.aes_seal[i]),
                    &speed_ratio(ours, n.aes_seal[i]),
                    "",
                );
            }
        }
        if let (Some(ours), Some(Ok(n))) = (fig.aes_open[i], &node) {
            summary_row(
                &format!("AES-256-GCM open {label} vs Node crypto"),
                &mbps(size, ours),
                &mbps(size, n.aes_open[i]),
                &speed_ratio(ours, n.aes_open[i]),
                "",
            );
        }
    }
    for (i, size) in [(0, MB), (1, 64 * MB)] {
        if let Some([ours, one, rayon]) = fig.blake3[i] {
            let label = if size == MB { "1 MB" } else { "64 MB" };
            summary_row(
                &format!("BLAKE3 {label} vs blake3 raw, one thread"),
                &mbps(size, ours),
                &mbps(size, one),
                &speed_ratio(ours, one),
                "",
            );
            summary_row(
                &format!("BLAKE3 {label} vs blake3 raw, update_rayon"),
                &mbps(size, ours),
                &mbps(size, rayon),
                &speed_ratio(ours, rayon),
                "",
            );
        }
    }
    call_api_rows(&fig, openssl.as_ref().and_then(|o| o.as_ref().ok()));
    let doc_len = doc.len();
    for (i, level) in [1, 3].into_iter().enumerate() {
        let Some(ours) = fig.zstd[i] else { continue };
        match zstd_cli.as_ref().map(|r| &r[i]) {
            Some(Ok(theirs_mbps)) => {
                let ratio = doc_len as f64 / ours / MB as f64 / theirs_mbps;
                summary_row(
                    &format!("zstd level {level}, 10 MB JSON vs `zstd -b{level}`"),
                    &mbps(doc_len, ours),
                    &format!("{theirs_mbps:.0} MB/s"),
                    &format!("{ratio:.2}"),
                    &format!(">= 0.95: {}", verdict(ratio >= 0.95)),
                );
            }
            Some(Err(e)) => missing.push(format!("zstd -b{level} row missing: {e}")),
            None => {}
        }
        if let Some(Ok(n)) = &node {
            let (secs, bytes) = n.gzip[i];
            let gz_level = if level == 1 { 1 } else { 6 };
            summary_row(
                &format!("zstd level {level} vs Node zlib gzip level {gz_level}"),
                &mbps(doc_len, ours),
                &format!(
                    "{} ({:.1}:1)",
                    mbps(doc_len, secs),
                    doc_len as f64 / bytes as f64
                ),
                &speed_ratio(ours, secs),
                "",
            );
        }
    }
    const JSON_TARGET: f64 = 0.025;
    for (style, ours) in [
        ("compact", fig.json_compact),
        ("pretty", fig.json_pretty),
        ("canonical", fig.json_canonical),
    ] {
        let Some(ours) = ours else { continue };
        let target = if style == "canonical" {
            format!(
                "reported: {}",
                if ours <= JSON_TARGET {
                    "<= 25 ms"
                } else {
                    "> 25 ms"
                }
            )
        } else {
            format!("<= 25 ms: {}", verdict(ours <= JSON_TARGET))
        };
        summary_row(
            &format!("JSON parse + {style}, 10 MB"),
            &ms(ours),
            "25 ms (target)",
            &format!("{:.2}", JSON_TARGET / ours),
            &target,
        );
        if let Some(Ok(n)) = &node {
            summary_row(
                &format!("JSON {style} vs Node JSON.parse+stringify"),
                &ms(ours),
                &ms(n.json_round_trip),
                &speed_ratio(ours, n.json_round_trip),
                "",
            );
        }
    }
    if let Some(Ok(n)) = &node {
        summary_row("  (Node JSON.parse alone)", "", &ms(n.json_parse), "", "");
    }
    const REGEX_TARGET: f64 = 0.035;
    if let Some(ours) = fig.regex_count {
        summary_row(
            "regex e-mail count, 1M lines",
            &ms(ours),
            "35 ms (target)",
            &format!("{:.2}", REGEX_TARGET / ours),
            &format!("<= 35 ms: {}", verdict(ours <= REGEX_TARGET)),
        );
        if let Some(Ok(n)) = &node {
            let expected = text::Pattern::new(EMAIL).unwrap().count(&lines) as u64;
            let note = if n.regex_matches == expected {
                ""
            } else {
                "(match counts differ)"
            };
            summary_row(
                "regex e-mail count vs Node RegExp",
                &ms(ours),
                &ms(n.regex_count),
                &speed_ratio(ours, n.regex_count),
                note,
            );
        }
    }
    if let Some(Ok(c)) = &calls {
        let us = |s: f64| format!("{:.1} µs", s * 1e6);
        for (what, [(ip50, ip99), (wp50, wp99)]) in [
            ("empty call (BLAKE3 of 0 bytes)", c.empty),
            ("BLAKE3 of 1 MB", c.one_mb),
        ] {
            summary_row(
                &format!("call p50, {what}: in-process vs worker"),
                &us(ip50),
                &us(wp50),
                &format!("{:.1}x", wp50 / ip50),
                "worker / in-process",
            );
            summary_row(
                &format!("call p99, {what}: in-process vs worker"),
                &us(ip99),
                &us(wp99),
                &format!("{:.1}x", wp99 / ip99),
                "worker / in-process",
            );
        }
    }
    for m in &missing {
        println!("\n{m}");
    }
    println!(
        "\n(in-process cases {:.0} s; whole run {:.0} s)",
        in_process.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
