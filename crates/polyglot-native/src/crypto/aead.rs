//! AES-256-GCM sealed messages: `nonce(12) || ciphertext || tag(16)`, with a fresh
//! random nonce for every message.
//!
//! Two libraries do the work, whichever is faster on the CPU at hand ([`AesBackend`]):
//! aws-lc-rs, the fastest measured where the CPU has AVX-512 with VAES, and ring, which
//! has the only VAES code for CPUs with AVX2 but no AVX-512 (there it runs 1.7 times
//! aws-lc-rs). Both implement the same algorithm: their outputs are identical, and each
//! opens what the other sealed (tested below). With aws-lc-rs, the borrowed paths run
//! out of place, from the caller's buffer straight into the result; ring has no
//! out-of-place API, so they copy and then work in place. The owned paths
//! ([`AesKey::encrypt_owned`], [`AesKey::decrypt_owned`]) work in the caller's buffer
//! with either.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;
/// The length of the nonce at the start of a sealed message: GCM's native 96 bits.
pub const NONCE_LEN: usize = 12;
/// The length of the authentication tag at the end of a sealed message: GCM's full 128
/// bits (shorter tags weaken forgery resistance and are not offered).
pub const TAG_LEN: usize = 16;
/// How many bytes a sealed message adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// The library that runs AES-256-GCM for an [`AesKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AesBackend {
    /// aws-lc-rs (AWS-LC).
    AwsLc,
    /// ring.
    Ring,
}

impl AesBackend {
    /// The faster library on this CPU, decided once per process from its features.
    ///
    /// ring on x86-64 CPUs with VAES and VPCLMULQDQ under AVX2 but without AVX-512 (AMD
    /// Zen 3, Intel Alder Lake and later client cores): aws-lc-sys has its VAES code
    /// only for AVX-512 and falls back to AES-NI there, 3.7 GB/s against ring's 6.1 on
    /// the bench's Zen 3. aws-lc-rs everywhere else: with AVX-512 it ran at 9.6 GB/s
    /// against ring's 7.4, and without VAES both run the same AES-NI code.
    pub fn fastest() -> AesBackend {
        static CHOICE: OnceLock<AesBackend> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("vaes")
                    && std::arch::is_x86_feature_detected!("vpclmulqdq")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && !std::arch::is_x86_feature_detected!("avx512f")
                {
                    return AesBackend::Ring;
                }
            }
            AesBackend::AwsLc
        })
    }
}

/// An expanded key of one library.
enum Engine {
    AwsLc(aws_lc_rs::aead::LessSafeKey),
    /// Boxed: ring's expanded key is held inline (over 500 bytes), aws-lc-rs's behind a
    /// pointer.
    Ring(Box<ring::aead::LessSafeKey>),
}

/// The libraries fail only on a message past GCM's length limit (seal) or one that does
/// not authenticate (open); the caller says which.
struct Failed;

impl Engine {
    fn new(backend: AesBackend, key: &[u8]) -> std::result::Result<Engine, Failed> {
        Ok(match backend {
            AesBackend::AwsLc => {
                use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
                let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| Failed)?;
                Engine::AwsLc(LessSafeKey::new(key))
            }
            AesBackend::Ring => {
                use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
                let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| Failed)?;
                Engine::Ring(Box::new(LessSafeKey::new(key)))
            }
        })
    }

    /// Seals `buf` in place, returning the tag.
    fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> std::result::Result<[u8; TAG_LEN], Failed> {
        let mut out = [0u8; TAG_LEN];
        match self {
            Engine::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                let tag = k
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        buf,
                    )
                    .map_err(|_| Failed)?;
                out.copy_from_slice(tag.as_ref());
            }
            Engine::Ring(k) => {
                use ring::aead::{Aad, Nonce};
                let tag = k
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        buf,
                    )
                    .map_err(|_| Failed)?;
                out.copy_from_slice(tag.as_ref());
            }
        }
        Ok(out)
    }

    /// Opens `buf[from..]` (ciphertext and tag, `from` bytes after the start) and moves
    /// the plaintext to the start of `buf`; returns its length.
    fn open_within(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        from: usize,
    ) -> std::result::Result<usize, Failed> {
        match self {
            Engine::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                k.open_within(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    buf,
                    from..,
                )
                .map(|p| p.len())
                .map_err(|_| Failed)
            }
            Engine::Ring(k) => {
                use ring::aead::{Aad, Nonce};
                k.open_within(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    buf,
                    from..,
                )
                .map(|p| p.len())
                .map_err(|_| Failed)
            }
        }
    }

    /// Seals `plaintext` into `body` (of its length) and `tag`.
    fn seal_out_of_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        body: &mut [u8],
        tag: &mut [u8],
    ) -> std::result::Result<(), Failed> {
        match self {
            Engine::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                k.seal_out_of_place_scatter(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    plaintext,
                    body,
                    &[],
                    tag,
                )
                .map_err(|_| Failed)
            }
            Engine::Ring(_) => {
                body.copy_from_slice(plaintext);
                tag.copy_from_slice(&self.seal_in_place(nonce, aad, body)?);
                Ok(())
            }
        }
    }

    /// Opens `body` with `tag` into `out` (of `body`'s length).
    fn open_out_of_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        body: &[u8],
        tag: &[u8],
        out: &mut [u8],
    ) -> std::result::Result<(), Failed> {
        match self {
            Engine::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                k.open_separate_gather(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    body,
                    tag,
                    out,
                )
                .map_err(|_| Failed)
            }
            Engine::Ring(k) => {
                use ring::aead::{Aad, Nonce, Tag};
                out.copy_from_slice(body);
                let tag = Tag::try_from(tag).map_err(|_| Failed)?;
                k.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    tag,
                    out,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| Failed)
            }
        }
    }
}

/// An AES-256-GCM key, expanded once and reusable for any number of messages.
///
/// Each message gets a fresh random 96-bit nonce. Random nonces are safe for up to
/// about 2^32 messages under one key (NIST SP 800-38D, section 8.3); rotate keys well
/// before that.
///
/// ```
/// use polyglot_native::crypto::AesKey;
///
/// let key = AesKey::new(&[0x42; 32])?;
/// let sealed = key.encrypt(b"hello", b"header")?;
/// assert_eq!(sealed.len(), 5 + polyglot_native::crypto::OVERHEAD);
/// assert_eq!(key.decrypt(&sealed, b"header")?, b"hello");
/// assert!(key.decrypt(&sealed, b"other header").is_err());
/// # Ok::<(), polyglot_native::Error>(())
/// ```
pub struct AesKey {
    engine: Engine,
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AesKey {{ backend: {:?}, .. }}", self.backend())
    }
}

impl AesKey {
    /// Expands a 32-byte key for the faster library on this CPU
    /// ([`AesBackend::fastest`]).
    ///
    /// # Errors
    /// [`Error::KeyLength`] naming the length when `key` is not 32 bytes.
    pub fn new(key: &[u8]) -> Result<AesKey> {
        AesKey::with_backend(key, AesBackend::fastest())
    }

    /// [`AesKey::new`] for a chosen library: the messages are the same whichever runs.
    ///
    /// # Errors
    /// As [`AesKey::new`].
    pub fn with_backend(key: &[u8], backend: AesBackend) -> Result<AesKey> {
        let wrong_length = || Error::KeyLength {
            param: "key",
            expected: KEY_LEN,
            actual: key.len(),
        };
        if key.len() != KEY_LEN {
            return Err(wrong_length());
        }
        let engine = Engine::new(backend, key).map_err(|_| wrong_length())?;
        Ok(AesKey { engine })
    }

    /// The library this key runs on.
    pub fn backend(&self) -> AesBackend {
        match self.engine {
            Engine::AwsLc(_) => AesBackend::AwsLc,
            Engine::Ring(_) => AesBackend::Ring,
        }
    }

    /// Seals `plaintext` (with optional associated data `aad`, authenticated but not
    /// encrypted) into `nonce(12) || ciphertext || tag(16)` under a fresh random nonce.
    ///
    /// # Errors
    /// [`Error::TooLarge`] past GCM's limit of 2^36 - 32 bytes per message.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        self.encrypt_with_nonce(fresh_nonce(), plaintext, aad)
    }

    /// [`AesKey::encrypt`] with a given nonce. Private: a repeated nonce under one key
    /// reveals the XOR of two plaintexts and lets anyone forge tags. Known-answer tests
    /// use it.
    pub(crate) fn encrypt_with_nonce(
        &self,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        let len = plaintext.len();
        // Zeroed memory comes from the allocator as untouched pages: no extra pass.
        let mut out = vec![0u8; NONCE_LEN + len + TAG_LEN];
        out[..NONCE_LEN].copy_from_slice(&nonce);
        let (body, tag) = out[NONCE_LEN..].split_at_mut(len);
        self.engine
            .seal_out_of_place(nonce, aad, plaintext, body, tag)
            .map_err(|_| too_large(len))?;
        Ok(out)
    }

    /// Opens a message sealed by [`AesKey::encrypt`] under the same key and `aad`.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] when the key or `aad` differ or any byte of the
    /// message was altered (never garbage plaintext); [`Error::MessageTooShort`] when
    /// `message` is shorter than a nonce and a tag.
    pub fn decrypt(&self, message: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let nonce = nonce_of(message)?;
        let (body, tag) = message[NONCE_LEN..].split_at(message.len() - OVERHEAD);
        let mut out = vec![0u8; body.len()];
        self.engine
            .open_out_of_place(nonce, aad, body, tag, &mut out)
            .map_err(|_| Error::AuthenticationFailed)?;
        Ok(out)
    }

    /// [`AesKey::encrypt`] in the plaintext's own buffer: the plaintext is moved up by
    /// the nonce's 12 bytes and sealed in place, so no second buffer is allocated. For
    /// large owned inputs (a worker's decoded params) this saves the page faults of a
    /// fresh output buffer, which cost more than the encryption itself at 64 MB.
    ///
    /// # Errors
    /// [`Error::TooLarge`] past GCM's limit of 2^36 - 32 bytes per message.
    pub fn encrypt_owned(&self, mut buf: Vec<u8>, aad: &[u8]) -> Result<Vec<u8>> {
        let nonce = fresh_nonce();
        let len = buf.len();
        buf.reserve_exact(OVERHEAD);
        buf.splice(0..0, nonce);
        let tag = self
            .engine
            .seal_in_place(nonce, aad, &mut buf[NONCE_LEN..])
            .map_err(|_| too_large(len))?;
        buf.extend_from_slice(&tag);
        Ok(buf)
    }

    /// [`AesKey::decrypt`] in the message's own buffer: opened in place, the plaintext
    /// moved down over the nonce, the buffer cut to the plaintext's length.
    ///
    /// # Errors
    /// As [`AesKey::decrypt`].
    pub fn decrypt_owned(&self, mut buf: Vec<u8>, aad: &[u8]) -> Result<Vec<u8>> {
        let nonce = nonce_of(&buf)?;
        let plain_len = self
            .engine
            .open_within(nonce, aad, &mut buf, NONCE_LEN)
            .map_err(|_| Error::AuthenticationFailed)?;
        buf.truncate(plain_len);
        Ok(buf)
    }
}

/// The nonce at the start of a sealed `message`.
///
/// # Errors
/// [`Error::MessageTooShort`] when `message` is shorter than a nonce and a tag.
fn nonce_of(message: &[u8]) -> Result<[u8; NONCE_LEN]> {
    if message.len() < OVERHEAD {
        return Err(Error::MessageTooShort {
            param: "data",
            minimum: OVERHEAD,
            actual: message.len(),
        });
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&message[..NONCE_LEN]);
    Ok(nonce)
}

fn too_large(len: usize) -> Error {
    Error::TooLarge {
        what: "plaintext",
        limit: MAX_PLAINTEXT,
        actual: Some(len as u64),
    }
}

/// A random 96-bit nonce from the operating system's generator.
fn fresh_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    // Fails only when the operating system has no randomness to give, which leaves
    // nothing safe to do.
    aws_lc_rs::rand::fill(&mut nonce).expect("the system random number generator");
    nonce
}

/// GCM's limit on one message: 2^32 - 2 blocks of 16 bytes.
const MAX_PLAINTEXT: u64 = ((1 << 32) - 2) * 16;

/// Seals `plaintext` under a 32-byte `key`; see [`AesKey::encrypt`].
///
/// # Errors
/// [`Error::KeyLength`] when `key` is not 32 bytes.
pub fn encrypt(key: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    AesKey::new(key)?.encrypt(plaintext, aad)
}

/// Opens a message sealed by [`encrypt`]; see [`AesKey::decrypt`].
///
/// # Errors
/// [`Error::KeyLength`] when `key` is not 32 bytes, [`Error::AuthenticationFailed`] when
/// the message does not open.
pub fn decrypt(key: &[u8], message: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    AesKey::new(key)?.decrypt(message, aad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The AES-256 cases of the GCM specification (McGrew and Viega, "The Galois/Counter
    /// Mode of Operation", test cases 13 to 18), kept in `tests/vectors/aes_gcm.json`.
    #[test]
    fn gcm_spec_known_answers_seal_and_open() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/aes_gcm.json");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        let mut run = 0;
        for case in cases {
            let field = |k: &str| unhex(case[k].as_str().unwrap());
            let name = case["name"].as_str().unwrap();
            let iv = field("iv");
            let Ok(nonce) = <[u8; NONCE_LEN]>::try_from(iv.as_slice()) else {
                // Test cases 17 and 18 use 64- and 480-bit IVs, which GCM hashes into a
                // counter block; messages here always carry a 96-bit nonce.
                continue;
            };
            for backend in BACKENDS {
                let key = AesKey::with_backend(&field("key"), backend).unwrap();
                let (pt, aad) = (field("plaintext"), field("aad"));
                let sealed = key.encrypt_with_nonce(nonce, &pt, &aad).unwrap();
                let mut want = iv.clone();
                want.extend(field("ciphertext"));
                want.extend(field("tag"));
                assert_eq!(sealed, want, "{name}, {backend:?}: sealed message");
                let opened = key.decrypt(&want, &aad).unwrap();
                assert_eq!(opened, pt, "{name}, {backend:?}: opened");
                let opened = key.decrypt_owned(want, &aad).unwrap();
                assert_eq!(opened, pt, "{name}, {backend:?}: opened in place");
                run += 1;
            }
        }
        assert_eq!(
            run, 8,
            "test cases 13 to 16 have 96-bit IVs, run on each backend"
        );
    }

    const BACKENDS: [AesBackend; 2] = [AesBackend::AwsLc, AesBackend::Ring];

    #[test]
    fn owned_and_borrowed_paths_of_both_backends_read_each_other() {
        for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let (ba, bb) = (BACKENDS[a], BACKENDS[b]);
            let seal = AesKey::with_backend(&[9; 32], ba).unwrap();
            let open = AesKey::with_backend(&[9; 32], bb).unwrap();
            for len in [0, 1, 15, 16, 17, 1000, 70_000] {
                let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let sealed = seal.encrypt_owned(pt.clone(), b"ad").unwrap();
                assert_eq!(sealed.len(), len + OVERHEAD);
                assert_eq!(
                    open.decrypt(&sealed, b"ad").unwrap(),
                    pt,
                    "{ba:?} -> {bb:?}, {len}"
                );
                let sealed = seal.encrypt(&pt, b"ad").unwrap();
                let opened = open.decrypt_owned(sealed.clone(), b"ad").unwrap();
                assert_eq!(opened, pt, "{ba:?} -> {bb:?}, {len}");
                for (what, r) in [
                    ("owned", open.decrypt_owned(sealed.clone(), b"other")),
                    ("borrowed", open.decrypt(&sealed, b"other")),
                ] {
                    assert!(
                        matches!(r, Err(Error::AuthenticationFailed)),
                        "{ba:?} -> {bb:?}, {len}, {what}: {r:?}"
                    );
                }
                let mut tampered = sealed;
                let last = tampered.len() - 1;
                tampered[last] ^= 1;
                assert!(matches!(
                    open.decrypt(&tampered, b"ad"),
                    Err(Error::AuthenticationFailed)
                ));
            }
        }
    }

    #[test]
    fn the_faster_backend_is_chosen_once_and_used_by_new() {
        assert_eq!(AesBackend::fastest(), AesBackend::fastest());
        assert_eq!(
            AesKey::new(&[1; 32]).unwrap().backend(),
            AesBackend::fastest()
        );
        for backend in BACKENDS {
            let err = AesKey::with_backend(&[1; 31], backend).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::KeyLength {
                        expected: 32,
                        actual: 31,
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn two_messages_never_share_a_nonce() {
        let key = AesKey::new(&[1; 32]).unwrap();
        let a = key.encrypt(b"same", b"").unwrap();
        let b = key.encrypt_owned(b"same".to_vec(), b"").unwrap();
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
    }
}
