//! BLAKE3: plain, keyed and derive-key modes, any output length, and all cores for
//! large inputs.

use crate::error::{Error, Result};

/// Inputs of at least this many bytes are hashed with every core (rayon); smaller ones
/// on the calling thread. Measured on a 2-core machine (`benches/native.rs`, "BLAKE3
/// threshold", three runs), the parallel hash against one thread: 0.84 to 1.14 times
/// the speed at 128 KiB (splitting and waking the pool cost about what the second core
/// gains), 1.0 to 1.28 at 256 KiB, 1.22 to 1.49 at 512 KiB, 1.45 to 1.62 at 1 MiB.
pub const BLAKE3_PARALLEL_THRESHOLD: usize = 256 * 1024;

/// The length of a BLAKE3 key in bytes.
pub const BLAKE3_KEY_LEN: usize = blake3::KEY_LEN;

/// A BLAKE3 hasher in one of its three modes. Feed it with [`Blake3::update`] as often
/// as needed, then read any number of output bytes.
///
/// ```
/// use polyglot_native::crypto::{to_hex, Blake3};
///
/// let mut h = Blake3::new();
/// h.update(b"hello ").update(b"world");
/// assert_eq!(h.finalize(), polyglot_native::crypto::blake3(b"hello world"));
/// assert_eq!(to_hex(&h.finalize_xof(4)), "d74981ef");
/// ```
#[derive(Clone, Default)]
pub struct Blake3 {
    inner: blake3::Hasher,
}

impl std::fmt::Debug for Blake3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state of a keyed hasher is derived from its key: never print it.
        f.write_str("Blake3 { .. }")
    }
}

impl Blake3 {
    /// The plain hash mode.
    pub fn new() -> Blake3 {
        Blake3::default()
    }

    /// The keyed hash mode (a MAC / PRF).
    ///
    /// # Errors
    /// [`Error::KeyLength`] when `key` is not 32 bytes.
    pub fn keyed(key: &[u8]) -> Result<Blake3> {
        let key: &[u8; BLAKE3_KEY_LEN] = key.try_into().map_err(|_| Error::KeyLength {
            param: "key",
            expected: BLAKE3_KEY_LEN,
            actual: key.len(),
        })?;
        Ok(Blake3 {
            inner: blake3::Hasher::new_keyed(key),
        })
    }

    /// The derive-key mode: derives key material from input key material under a
    /// `context` string, which should be hardcoded, globally unique and
    /// application-specific (for example `"example.com 2024-01-01 session tokens v1"`).
    pub fn derive_key(context: &str) -> Blake3 {
        Blake3 {
            inner: blake3::Hasher::new_derive_key(context),
        }
    }

    /// Adds input; from [`BLAKE3_PARALLEL_THRESHOLD`] bytes up on every core.
    ///
    /// The parallel hash runs as one job inside rayon's pool. BLAKE3 hashes an input as
    /// a series of power-of-two subtrees, one after another (1,000,000 bytes is five:
    /// 512, 256, 128, 64 and 16 KiB), and splits each. Called from a thread outside the
    /// pool (a tokio or Python thread), each split hands its subtree to the pool and
    /// sleeps until it is done: five round trips for 1 MB. Inside the pool the splits are
    /// rayon's in-pool joins, and only the one job makes the round trip. On the 2-core
    /// development machine, idle, that took 1 MB from 1.44-1.49 times one thread's speed
    /// to 1.55-1.80 times (`docs/benchmarks.md`, "Python package").
    pub fn update(&mut self, data: &[u8]) -> &mut Blake3 {
        if data.len() >= BLAKE3_PARALLEL_THRESHOLD {
            let inner = &mut self.inner;
            rayon::scope(|_| {
                inner.update_rayon(data);
            });
        } else {
            self.inner.update(data);
        }
        self
    }

    /// Adds everything `reader` yields until its end, and returns how many bytes that
    /// was. For inputs larger than memory.
    ///
    /// # Errors
    /// [`Error::Io`] when reading fails.
    pub fn update_reader(&mut self, mut reader: impl std::io::Read) -> Result<u64> {
        // Buffers of the parallel threshold's size let each one use every core.
        let mut buf = vec![0u8; BLAKE3_PARALLEL_THRESHOLD * 8];
        let mut total = 0u64;
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            }
            if filled == 0 {
                return Ok(total);
            }
            self.update(&buf[..filled]);
            total += filled as u64;
        }
    }

    /// The default 32-byte output.
    pub fn finalize(&self) -> [u8; 32] {
        *self.inner.finalize().as_bytes()
    }

    /// `len` bytes of output (BLAKE3 is an extendable-output function: the first 32
    /// bytes are [`Blake3::finalize`], and a shorter output is a prefix of a longer one).
    pub fn finalize_xof(&self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.inner.finalize_xof().fill(&mut out);
        out
    }
}

/// The plain BLAKE3 hash of `data`.
pub fn blake3(data: &[u8]) -> [u8; 32] {
    Blake3::new().update(data).finalize()
}

/// The keyed BLAKE3 hash of `data`.
///
/// # Errors
/// [`Error::KeyLength`] when `key` is not 32 bytes.
pub fn blake3_keyed(key: &[u8], data: &[u8]) -> Result<[u8; 32]> {
    Ok(Blake3::keyed(key)?.update(data).finalize())
}

/// A 32-byte key derived from `material` under `context` (BLAKE3's derive-key mode).
pub fn blake3_derive_key(context: &str, material: &[u8]) -> [u8; 32] {
    Blake3::derive_key(context).update(material).finalize()
}

/// Lowercase hexadecimal.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parallel_path_hashes_like_the_serial_one() {
        let data: Vec<u8> = (0..3 * BLAKE3_PARALLEL_THRESHOLD + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        let serial = *blake3::Hasher::new().update(&data).finalize().as_bytes();
        assert_eq!(super::blake3(&data), serial);
        let mut streamed = Blake3::new();
        assert_eq!(
            streamed.update_reader(&data[..]).unwrap(),
            data.len() as u64
        );
        assert_eq!(streamed.finalize(), serial);
    }

    #[test]
    fn a_short_key_is_refused_with_its_length() {
        let e = Blake3::keyed(&[0; 16]).unwrap_err();
        assert_eq!(e.to_string(), "`key` must be 32 bytes, got 16");
    }
}
