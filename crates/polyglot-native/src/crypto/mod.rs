//! Cryptography: BLAKE3 hashing, AES-256-GCM sealed messages, Argon2id password key
//! derivation, and the `crypto` handler that serves them.
//!
//! # Layout
//! - `hash`: [`Blake3`] and the one-shot [`blake3()`], [`blake3_keyed`],
//!   [`blake3_derive_key`]; inputs from [`BLAKE3_PARALLEL_THRESHOLD`] up are hashed on
//!   all cores.
//! - `aead`: [`AesKey`], [`encrypt`], [`decrypt`]: `nonce(12) || ciphertext || tag(16)`
//!   with a fresh random nonce per message.
//! - `password`: [`derive_key_from_password`], Argon2id with documented [`KdfParams`].
//! - `handler`: [`handler()`], the methods `blake3`, `encrypt`, `decrypt`, `deriveKey`.

mod aead;
mod handler;
mod hash;
mod password;

pub use aead::{decrypt, encrypt, AesBackend, AesKey, KEY_LEN, NONCE_LEN, OVERHEAD, TAG_LEN};
pub use handler::{handler, worker, MAX_HASH_LENGTH, MODULE};
pub use hash::{
    blake3, blake3_derive_key, blake3_keyed, to_hex, Blake3, BLAKE3_KEY_LEN,
    BLAKE3_PARALLEL_THRESHOLD,
};
pub use password::{
    derive_key_from_password, DerivedKey, KdfParams, MAX_KDF_ITERATIONS, MAX_KDF_KEY_LEN,
    MAX_KDF_MEMORY_KIB, MAX_KDF_PARALLELISM, MIN_KDF_KEY_LEN, MIN_SALT_LEN, SALT_LEN,
};
