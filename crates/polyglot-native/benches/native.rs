//! Benchmarks of this crate's operations against the raw libraries, measured in the same
//! run: `cargo bench -p polyglot-native --bench native`.
//!
//! Each case runs its variants interleaved (ours, then each baseline, round after round)
//! and keeps each variant's best time, so a machine busy with other work slows every
//! variant alike and the ratios stay meaningful. A case stops after its time budget or
//! its maximum rounds. The whole run takes about a minute.
//!
//! The table: throughput of each variant in MB/s (10^6 bytes per second of input) and
//! the ratio of its speed to ours (`ours / baseline` > 1 means ours is faster).

use std::hint::black_box;
use std::time::{Duration, Instant};

use polyglot_native::{compress, crypto, text};

/// A case's time budget: enough rounds for a stable best time on a quiet machine.
const BUDGET: Duration = Duration::from_millis(1500);
/// Every case runs at least this many rounds, whatever the budget says.
const MIN_ROUNDS: usize = 5;
/// And at most this many.
const MAX_ROUNDS: usize = 3000;

const MB: usize = 1_000_000;

type Run<'a> = Box<dyn FnMut() + 'a>;

struct Case<'a> {
    name: String,
    bytes: usize,
    variants: Vec<(&'static str, Run<'a>)>,
}

impl<'a> Case<'a> {
    fn new(name: impl Into<String>, bytes: usize) -> Case<'a> {
        Case {
            name: name.into(),
            bytes,
            variants: Vec::new(),
        }
    }
    fn with(mut self, label: &'static str, f: impl FnMut() + 'a) -> Case<'a> {
        self.variants.push((label, Box::new(f)));
        self
    }
}

/// Best time per variant, in seconds.
fn measure(case: &mut Case<'_>) -> Vec<f64> {
    let mut best = vec![f64::INFINITY; case.variants.len()];
    for (_, f) in case.variants.iter_mut() {
        f(); // warm-up: page in buffers, start thread pools
    }
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < MIN_ROUNDS || (start.elapsed() < BUDGET && rounds < MAX_ROUNDS) {
        for (i, (_, f)) in case.variants.iter_mut().enumerate() {
            let t = Instant::now();
            f();
            best[i] = best[i].min(t.elapsed().as_secs_f64());
        }
        rounds += 1;
    }
    best
}

fn report(mut case: Case<'_>) {
    let best = measure(&mut case);
    let ours = best[0];
    let mbps = |secs: f64| case.bytes as f64 / secs / MB as f64;
    for (i, (label, _)) in case.variants.iter().enumerate() {
        let ratio = if i == 0 {
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

fn aes_cases(len: usize) {
    let key = [0x42u8; 32];
    let nonce = [7u8; 12];
    let plaintext = noise(len);
    let ours = crypto::AesKey::new(&key).unwrap();
    let aws = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &key).unwrap(),
    );
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).unwrap(),
    );
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let rc = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();

    // The raw baselines do what a caller of each library does to get an owned sealed
    // message from a borrowed plaintext: copy into a buffer with room for the tag, seal
    // in place.
    let size = if len >= MB {
        format!("{} MB", len / MB)
    } else {
        format!("{len} B")
    };
    report(
        Case::new(format!("AES-256-GCM seal {size}"), len)
            .with("ours (aws-lc-rs, out of place)", || {
                black_box(ours.encrypt(black_box(&plaintext), b"").unwrap());
            })
            .with("aws-lc-rs raw", || {
                let mut buf = Vec::with_capacity(len + 16);
                buf.extend_from_slice(black_box(&plaintext));
                aws.seal_in_place_append_tag(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                    aws_lc_rs::aead::Aad::empty(),
                    &mut buf,
                )
                .unwrap();
                black_box(buf);
            })
            .with("ring raw", || {
                let mut buf = Vec::with_capacity(len + 16);
                buf.extend_from_slice(black_box(&plaintext));
                ring_key
                    .seal_in_place_append_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::empty(),
                        &mut buf,
                    )
                    .unwrap();
                black_box(buf);
            })
            .with("aes-gcm (RustCrypto) raw", || {
                let mut buf = Vec::with_capacity(len + 16);
                buf.extend_from_slice(black_box(&plaintext));
                rc.encrypt_in_place(&nonce.into(), b"", &mut buf).unwrap();
                black_box(buf);
            }),
    );

    let sealed = ours.encrypt(&plaintext, b"").unwrap();
    let (n, body) = sealed.split_at(12);
    let n: [u8; 12] = n.try_into().unwrap();
    report(
        Case::new(format!("AES-256-GCM open {size}"), len)
            .with("ours (aws-lc-rs, out of place)", || {
                black_box(ours.decrypt(black_box(&sealed), b"").unwrap());
            })
            .with("aws-lc-rs raw", || {
                let mut buf = black_box(body).to_vec();
                let pt_len = aws
                    .open_in_place(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(n),
                        aws_lc_rs::aead::Aad::empty(),
                        &mut buf,
                    )
                    .unwrap()
                    .len();
                buf.truncate(pt_len);
                black_box(buf);
            })
            .with("ring raw", || {
                let mut buf = black_box(body).to_vec();
                let pt_len = ring_key
                    .open_in_place(
                        ring::aead::Nonce::assume_unique_for_key(n),
                        ring::aead::Aad::empty(),
                        &mut buf,
                    )
                    .unwrap()
                    .len();
                buf.truncate(pt_len);
                black_box(buf);
            })
            .with("aes-gcm (RustCrypto) raw", || {
                let mut buf = black_box(body).to_vec();
                rc.decrypt_in_place(&n.into(), b"", &mut buf).unwrap();
                black_box(buf);
            }),
    );
}

/// Sealing and opening again in one buffer kept across rounds: the libraries' pure
/// speed, without the cost of a fresh output buffer. Ours is `encrypt_owned` +
/// `decrypt_owned`, which also move the data by the 12 bytes of the nonce each way (the
/// message format puts the nonce first).
fn aes_in_place_cases(len: usize) {
    let key = [0x42u8; 32];
    let nonce = [7u8; 12];
    let plaintext = noise(len);
    let ours = crypto::AesKey::new(&key).unwrap();
    let aws = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &key).unwrap(),
    );
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).unwrap(),
    );
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let rc = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let fresh = || {
        let mut b = Vec::with_capacity(len + 28);
        b.extend_from_slice(&plaintext);
        b
    };
    let mut b_ours = Some(fresh());
    let (mut b_aws, mut b_fmt, mut b_ring, mut b_rc) = (fresh(), fresh(), fresh(), fresh());
    let size = if len >= MB {
        format!("{} MB", len / MB)
    } else {
        format!("{len} B")
    };
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

fn blake3_cases(len: usize) {
    let data = noise(len);
    report(
        Case::new(format!("BLAKE3 {} MB", len / MB), len)
            .with("ours (parallel from 256 KiB)", || {
                black_box(crypto::blake3(black_box(&data)));
            })
            .with("blake3 raw, one thread", || {
                black_box(blake3::hash(black_box(&data)));
            })
            .with("blake3 raw, update_rayon", || {
                black_box(
                    blake3::Hasher::new()
                        .update_rayon(black_box(&data))
                        .finalize(),
                );
            }),
    );
}

/// Where one thread and all threads cross: the measurement behind
/// `BLAKE3_PARALLEL_THRESHOLD`.
fn blake3_threshold() {
    for kib in [128usize, 256, 512, 1024, 2048] {
        let data = noise(kib * 1024);
        report(
            Case::new(format!("BLAKE3 threshold {kib} KiB"), data.len())
                .with("update_rayon", || {
                    black_box(
                        blake3::Hasher::new()
                            .update_rayon(black_box(&data))
                            .finalize(),
                    );
                })
                .with("update (one thread)", || {
                    black_box(blake3::hash(black_box(&data)));
                }),
        );
    }
}

fn zstd_cases(doc: &str) {
    let data = doc.as_bytes();
    for level in [1, 3] {
        report(
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

fn json_cases(doc: &str) {
    let data = doc.as_bytes();
    report(
        Case::new("JSON parse + canonical 10 MB", data.len())
            .with("ours (borrowed tree, sorted)", || {
                black_box(text::json_format(black_box(data), text::JsonStyle::Canonical).unwrap());
            })
            .with("serde_json raw Value round trip", || {
                let v: serde_json::Value = serde_json::from_slice(black_box(data)).unwrap();
                black_box(serde_json::to_string(&v).unwrap());
            }),
    );
    report(
        Case::new("JSON validate 10 MB", data.len())
            .with("ours (no tree)", || {
                text::json_validate(black_box(data)).unwrap();
            })
            .with("serde_json raw parse to Value", || {
                black_box(serde_json::from_slice::<serde_json::Value>(black_box(data)).unwrap());
            }),
    );
}

fn regex_cases(lines: &str) {
    const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";
    let ours = text::Pattern::new(EMAIL).unwrap();
    let raw = regex::Regex::new(EMAIL).unwrap();
    report(
        Case::new("regex e-mail count, 1M lines", lines.len())
            .with("ours", || {
                black_box(ours.count(black_box(lines)));
            })
            .with("regex raw find_iter().count()", || {
                black_box(raw.find_iter(black_box(lines)).count());
            }),
    );
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
    if on("aes") {
        aes_cases(MB);
        aes_cases(64 * MB);
        aes_in_place_cases(MB);
        aes_in_place_cases(64 * MB);
    }
    if on("blake3") {
        blake3_cases(MB);
        blake3_cases(64 * MB);
        blake3_threshold();
    }
    let doc = json_doc(10 * MB);
    if on("zstd") {
        zstd_cases(&doc);
    }
    if on("json") {
        json_cases(&doc);
    }
    if on("regex") {
        let lines = log_lines(1_000_000);
        regex_cases(&lines);
    }
    println!("\n(ran in {:.0} s)", started.elapsed().as_secs_f64());
}
