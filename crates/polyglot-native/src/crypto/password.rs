//! Deriving a key from a password with Argon2id (RFC 9106).

use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// The salt generated when none is given: 16 random bytes, as RFC 9106 recommends.
pub const SALT_LEN: usize = 16;
/// The shortest salt accepted: Argon2's own minimum.
pub const MIN_SALT_LEN: usize = 8;
/// The most memory a derivation may use: 1 GiB, in KiB. Far above any recommended
/// setting (RFC 9106's first choice is 2 GiB for disk encryption keys but 64 MiB
/// otherwise), and low enough that a call cannot take a worker's whole machine.
pub const MAX_KDF_MEMORY_KIB: u32 = 1 << 20;
/// The most passes a derivation may make: enough for any sane cost setting, few enough
/// that one call cannot occupy a core for minutes.
pub const MAX_KDF_ITERATIONS: u32 = 64;
/// The most lanes: more than any machine this runs on has cores to give them.
pub const MAX_KDF_PARALLELISM: u32 = 64;
/// The shortest derived key: 128 bits, below which a key is guessable.
pub const MIN_KDF_KEY_LEN: usize = 16;
/// The longest derived key: enough for several keys split from one derivation.
pub const MAX_KDF_KEY_LEN: usize = 1024;

/// Argon2id's cost settings and the derived key's length.
///
/// The default is OWASP's first recommended Argon2id setting, also the `argon2` crate's
/// default: 19 MiB of memory, 2 passes, 1 lane, a 32-byte key (about 30 ms on one core
/// of a current server). Raise `memory_kib` first when there is memory to spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB (Argon2's `m`), at least 8 per lane.
    pub memory_kib: u32,
    /// Passes over the memory (Argon2's `t`).
    pub iterations: u32,
    /// Lanes (Argon2's `p`). The lanes are computed one after another here; more lanes
    /// change the result, not the time.
    pub parallelism: u32,
    /// The derived key's length in bytes.
    pub length: usize,
}

impl Default for KdfParams {
    fn default() -> KdfParams {
        KdfParams {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
            length: Params::DEFAULT_OUTPUT_LEN,
        }
    }
}

impl KdfParams {
    fn check(&self) -> Result<Params> {
        let range = |param: &'static str, v: u64, min: u64, max: u64| {
            if v < min || v > max {
                Err(Error::invalid(
                    param,
                    format!("must be between {min} and {max}, got {v}"),
                ))
            } else {
                Ok(())
            }
        };
        range(
            "parallelism",
            self.parallelism.into(),
            1,
            MAX_KDF_PARALLELISM.into(),
        )?;
        range(
            "memoryKib",
            self.memory_kib.into(),
            8 * u64::from(self.parallelism),
            MAX_KDF_MEMORY_KIB.into(),
        )?;
        range(
            "iterations",
            self.iterations.into(),
            1,
            MAX_KDF_ITERATIONS.into(),
        )?;
        range(
            "length",
            self.length as u64,
            MIN_KDF_KEY_LEN as u64,
            MAX_KDF_KEY_LEN as u64,
        )?;
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(self.length),
        )
        .map_err(|e| Error::invalid("params", e.to_string()))
    }
}

/// A key derived from a password, with what is needed to derive it again.
#[derive(Clone, PartialEq, Eq)]
pub struct DerivedKey {
    /// The key.
    pub key: Vec<u8>,
    /// The salt, given or generated; store it beside whatever the key protects.
    pub salt: Vec<u8>,
    /// The settings used.
    pub params: KdfParams,
}

impl std::fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivedKey")
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("salt", &crate::crypto::to_hex(&self.salt))
            .field("params", &self.params)
            .finish()
    }
}

/// Derives a key from `password` with Argon2id (version 0x13). With `salt` `None`, a
/// random [`SALT_LEN`]-byte salt is generated and returned.
///
/// ```
/// use polyglot_native::crypto::{derive_key_from_password, KdfParams};
///
/// let params = KdfParams { memory_kib: 64, iterations: 1, ..KdfParams::default() };
/// let first = derive_key_from_password(b"hunter2", None, &params)?;
/// let again = derive_key_from_password(b"hunter2", Some(&first.salt), &params)?;
/// assert_eq!(first.key, again.key);
/// # Ok::<(), polyglot_native::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidParam`] naming the setting or the salt when one is out of range.
pub fn derive_key_from_password(
    password: &[u8],
    salt: Option<&[u8]>,
    params: &KdfParams,
) -> Result<DerivedKey> {
    let argon_params = params.check()?;
    let salt = match salt {
        Some(s) if s.len() < MIN_SALT_LEN => {
            return Err(Error::invalid(
                "salt",
                format!("must be at least {MIN_SALT_LEN} bytes, got {}", s.len()),
            ))
        }
        Some(s) => s.to_vec(),
        None => {
            let mut s = vec![0u8; SALT_LEN];
            aws_lc_rs::rand::fill(&mut s).expect("the system random number generator");
            s
        }
    };
    let mut key = vec![0u8; params.length];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(password, &salt, &mut key)
        .map_err(|e| Error::invalid("password", e.to_string()))?;
    Ok(DerivedKey {
        key,
        salt,
        params: *params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Argon2id version 0x13 known answers of the reference implementation
    /// (phc-winner-argon2, `src/test.c`): password "password", salt "somesalt",
    /// 2 passes over 256 KiB, with 1 and 2 lanes.
    #[test]
    fn reference_implementation_known_answers() {
        for (lanes, want) in [
            (
                1,
                "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe",
            ),
            (
                2,
                "6d093c501fd5999645e0ea3bf620d7b8be7fd2db59c20d9fff9539da2bf57037",
            ),
        ] {
            let params = KdfParams {
                memory_kib: 256,
                iterations: 2,
                parallelism: lanes,
                length: 32,
            };
            let got = derive_key_from_password(b"password", Some(b"somesalt"), &params).unwrap();
            assert_eq!(crate::crypto::to_hex(&got.key), want, "{lanes} lanes");
            assert_eq!(got.salt, b"somesalt");
        }
    }

    #[test]
    fn a_generated_salt_is_fresh_each_time() {
        let p = KdfParams {
            memory_kib: 64,
            iterations: 1,
            ..KdfParams::default()
        };
        let a = derive_key_from_password(b"pw", None, &p).unwrap();
        let b = derive_key_from_password(b"pw", None, &p).unwrap();
        assert_eq!(a.salt.len(), SALT_LEN);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.key, b.key);
    }

    #[test]
    fn a_salt_or_a_setting_out_of_range_is_named() {
        let p = KdfParams::default();
        let e = derive_key_from_password(b"pw", Some(b"short"), &p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid `salt`: must be at least 8 bytes, got 5"
        );
        let e = derive_key_from_password(
            b"pw",
            None,
            &KdfParams {
                memory_kib: MAX_KDF_MEMORY_KIB + 1,
                ..p
            },
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid `memoryKib`"), "{e}");
    }
}
