//! AES-256-GCM sealed messages: `nonce(12) || ciphertext || tag(16)`, with a fresh
//! random nonce for every message.
//!
//! Built on aws-lc-rs, the fastest of the Rust AES-GCM implementations measured
//! (`benches/native.rs`; see the crate README). Encryption and decryption run out of
//! place, from the caller's buffer straight into the result: each byte is read once and
//! written once, with no intermediate copy.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

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
    key: LessSafeKey,
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey { .. }")
    }
}

impl AesKey {
    /// Expands a 32-byte key.
    ///
    /// # Errors
    /// [`Error::KeyLength`] naming the length when `key` is not 32 bytes.
    pub fn new(key: &[u8]) -> Result<AesKey> {
        let wrong_length = || Error::KeyLength {
            param: "key",
            expected: KEY_LEN,
            actual: key.len(),
        };
        if key.len() != KEY_LEN {
            return Err(wrong_length());
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| wrong_length())?;
        Ok(AesKey {
            key: LessSafeKey::new(unbound),
        })
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
        self.key
            .seal_out_of_place_scatter(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                plaintext,
                body,
                &[],
                tag,
            )
            .map_err(|_| Error::TooLarge {
                what: "plaintext",
                limit: MAX_PLAINTEXT,
                actual: Some(len as u64),
            })?;
        Ok(out)
    }

    /// Opens a message sealed by [`AesKey::encrypt`] under the same key and `aad`.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] when the key or `aad` differ or any byte of the
    /// message was altered (never garbage plaintext); [`Error::MessageTooShort`] when
    /// `message` is shorter than a nonce and a tag.
    pub fn decrypt(&self, message: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if message.len() < OVERHEAD {
            return Err(Error::MessageTooShort {
                param: "data",
                minimum: OVERHEAD,
                actual: message.len(),
            });
        }
        let (nonce, rest) = message.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::AuthenticationFailed)?;
        let mut out = vec![0u8; body.len()];
        self.key
            .open_separate_gather(nonce, Aad::from(aad), body, tag, &mut out)
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
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| Error::TooLarge {
                what: "plaintext",
                limit: MAX_PLAINTEXT,
                actual: Some(len as u64),
            })?;
        buf.extend_from_slice(tag.as_ref());
        Ok(buf)
    }

    /// [`AesKey::decrypt`] in the message's own buffer: opened in place, the plaintext
    /// moved down over the nonce, the buffer cut to the plaintext's length.
    ///
    /// # Errors
    /// As [`AesKey::decrypt`].
    pub fn decrypt_owned(&self, mut buf: Vec<u8>, aad: &[u8]) -> Result<Vec<u8>> {
        if buf.len() < OVERHEAD {
            return Err(Error::MessageTooShort {
                param: "data",
                minimum: OVERHEAD,
                actual: buf.len(),
            });
        }
        let nonce = Nonce::try_assume_unique_for_key(&buf[..NONCE_LEN])
            .map_err(|_| Error::AuthenticationFailed)?;
        let plain_len = self
            .key
            .open_within(nonce, Aad::from(aad), &mut buf, NONCE_LEN..)
            .map_err(|_| Error::AuthenticationFailed)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
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
            let key = AesKey::new(&field("key")).unwrap();
            let (pt, aad) = (field("plaintext"), field("aad"));
            let sealed = key.encrypt_with_nonce(nonce, &pt, &aad).unwrap();
            let mut want = iv.clone();
            want.extend(field("ciphertext"));
            want.extend(field("tag"));
            assert_eq!(sealed, want, "{name}: sealed message");
            assert_eq!(key.decrypt(&want, &aad).unwrap(), pt, "{name}: opened");
            run += 1;
        }
        assert_eq!(run, 4, "test cases 13 to 16 have 96-bit IVs");
    }

    #[test]
    fn owned_and_borrowed_paths_read_each_other() {
        let key = AesKey::new(&[9; 32]).unwrap();
        for len in [0, 1, 15, 16, 17, 1000, 70_000] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let sealed = key.encrypt_owned(pt.clone(), b"ad").unwrap();
            assert_eq!(sealed.len(), len + OVERHEAD);
            assert_eq!(key.decrypt(&sealed, b"ad").unwrap(), pt, "{len}");
            let sealed = key.encrypt(&pt, b"ad").unwrap();
            assert_eq!(
                key.decrypt_owned(sealed.clone(), b"ad").unwrap(),
                pt,
                "{len}"
            );
            assert!(matches!(
                key.decrypt_owned(sealed, b"other"),
                Err(Error::AuthenticationFailed)
            ));
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
