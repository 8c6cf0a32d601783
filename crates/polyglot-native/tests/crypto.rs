//! BLAKE3 official vectors, AES-256-GCM tamper, wrong-key and key-length cases, and the
//! `crypto` handler with params in both binary forms.

mod support;

use polyglot_native::crypto::{self, AesKey, Blake3, KdfParams, NONCE_LEN, OVERHEAD, TAG_LEN};
use polyglot_native::Error;
use polyglot_worker::Value;
use support::{b64, bytes, call, field, json, named, noise};

struct Vectors {
    key: Vec<u8>,
    context: String,
    cases: Vec<(usize, String, String, String)>,
}

fn vectors() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/blake3.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    Vectors {
        key: s(&doc["key"]).into_bytes(),
        context: s(&doc["context_string"]),
        cases: doc["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["input_len"].as_u64().unwrap() as usize,
                    s(&c["hash"]),
                    s(&c["keyed_hash"]),
                    s(&c["derive_key"]),
                )
            })
            .collect(),
    }
}

/// The vectors' input: the bytes 0, 1, ..., 250 repeated.
fn vector_input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn blake3_official_vectors_in_all_three_modes() {
    let v = vectors();
    assert_eq!(v.cases.len(), 15);
    for (len, hash, keyed, derive) in &v.cases {
        let input = vector_input(*len);
        let out_len = hash.len() / 2;
        for (mode, mut hasher, want) in [
            ("hash", Blake3::new(), hash),
            ("keyed_hash", Blake3::keyed(&v.key).unwrap(), keyed),
            ("derive_key", Blake3::derive_key(&v.context), derive),
        ] {
            hasher.update(&input);
            assert_eq!(
                crypto::to_hex(&hasher.finalize_xof(out_len)),
                *want,
                "{mode}, {len} bytes, extended output"
            );
            assert_eq!(
                crypto::to_hex(&hasher.finalize()),
                want[..64],
                "{mode}, {len} bytes, default output"
            );
        }
        assert_eq!(crypto::to_hex(&crypto::blake3(&input)), hash[..64]);
        assert_eq!(
            crypto::to_hex(&crypto::blake3_keyed(&v.key, &input).unwrap()),
            keyed[..64]
        );
        assert_eq!(
            crypto::to_hex(&crypto::blake3_derive_key(&v.context, &input)),
            derive[..64]
        );
    }
}

#[tokio::test]
async fn blake3_vectors_through_the_handler_in_both_binary_forms() {
    let v = vectors();
    let h = crypto::handler();
    for (len, hash, keyed, derive) in v
        .cases
        .iter()
        .filter(|c| [0, 1, 1025, 102400].contains(&c.0))
    {
        let input = vector_input(*len);
        let n = hash.len() / 2;
        // Bytes form, as MessagePack carries it.
        let got = call(
            &h,
            "blake3",
            named(vec![
                ("data", Value::Bytes(input.clone())),
                ("length", n.into()),
            ]),
        )
        .await
        .unwrap();
        assert_eq!(got, Value::from(hash.as_str()), "hash {len}");
        // JSON form: {"$bytes": base64}.
        let params = json(&format!(
            r#"{{"data": {{"$bytes": "{}"}}, "key": {{"$bytes": "{}"}}, "length": {n}}}"#,
            b64(&input),
            b64(&v.key)
        ));
        let got = call(&h, "blake3", params).await.unwrap();
        assert_eq!(got, Value::from(keyed.as_str()), "keyed {len}");
        let params = json(&format!(
            r#"[{{"$bytes": "{}"}}, null, "{}", {n}, true]"#,
            b64(&input),
            v.context
        ));
        let got = bytes(call(&h, "blake3", params).await.unwrap());
        assert_eq!(
            crypto::to_hex(&got),
            *derive,
            "derive_key {len}, positional, raw"
        );
    }
}

#[tokio::test]
async fn blake3_of_a_string_is_the_hash_of_its_utf8() {
    let h = crypto::handler();
    let got = call(&h, "blake3", Value::from("héllo")).await.unwrap();
    assert_eq!(
        got,
        Value::from(crypto::to_hex(&crypto::blake3("héllo".as_bytes())))
    );
    let got = call(&h, "blake3", json(r#"{"data": "", "length": 4}"#))
        .await
        .unwrap();
    assert_eq!(
        got,
        Value::from("af1349b9"),
        "the empty input's hash starts af1349b9"
    );
}

#[tokio::test]
async fn blake3_params_that_do_not_fit_are_refused_by_name() {
    let h = crypto::handler();
    let cases = [
        (
            json(r#"{"data": "x", "key": {"$bytes": "AAEC"}}"#),
            "INVALID_PARAMS",
            "`key` must be 32 bytes, got 3",
        ),
        (
            named(vec![
                ("data", "x".into()),
                ("key", Value::Bytes(vec![0; 32])),
                ("context", "c".into()),
            ]),
            "INVALID_PARAMS",
            "cannot be combined with `key`",
        ),
        (
            json(r#"{"data": "x", "length": 0}"#),
            "INVALID_PARAMS",
            "`length` must be at least 1",
        ),
        (
            json(r#"{"data": "x", "length": 1048577}"#),
            "TOO_LARGE",
            "hash length",
        ),
        (
            json(r#"{"data": 5}"#),
            "INVALID_PARAMS",
            "`data` must be bytes or a string, not integer",
        ),
        (
            json(r#"{"data": "x", "key": "0123456789abcdef0123456789abcdef"}"#),
            "INVALID_PARAMS",
            "`key` must be bytes",
        ),
        (
            json(r#"{"dta": "x"}"#),
            "INVALID_PARAMS",
            "unknown param `dta`",
        ),
        (json(r#"{}"#), "INVALID_PARAMS", "`data` is required"),
    ];
    for (params, code, message) in cases {
        let e = call(&h, "blake3", params).await.unwrap_err();
        assert_eq!(e.code, code, "{}", e.message);
        assert!(
            e.message.contains(message),
            "{:?} lacks {message:?}",
            e.message
        );
    }
}

#[test]
fn every_altered_byte_of_a_sealed_message_fails_authentication() {
    let key = AesKey::new(&[0x11; 32]).unwrap();
    let plaintext = b"twenty-four bytes of pt!";
    let sealed = key.encrypt(plaintext, b"header").unwrap();
    assert_eq!(sealed.len(), NONCE_LEN + plaintext.len() + TAG_LEN);
    let regions = [
        ("nonce", 0..NONCE_LEN),
        ("ciphertext", NONCE_LEN..sealed.len() - TAG_LEN),
        ("tag", sealed.len() - TAG_LEN..sealed.len()),
    ];
    for (region, range) in regions {
        for i in range {
            for bit in [0x01u8, 0x80] {
                let mut altered = sealed.clone();
                altered[i] ^= bit;
                assert!(
                    matches!(
                        key.decrypt(&altered, b"header"),
                        Err(Error::AuthenticationFailed)
                    ),
                    "{region}: byte {i} bit {bit:#x} went unnoticed"
                );
                assert!(matches!(
                    key.decrypt_owned(altered, b"header"),
                    Err(Error::AuthenticationFailed)
                ));
            }
        }
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(
        key.decrypt(&longer, b"header"),
        Err(Error::AuthenticationFailed)
    ));
    let shorter = &sealed[..sealed.len() - 1];
    assert!(matches!(
        key.decrypt(shorter, b"header"),
        Err(Error::AuthenticationFailed)
    ));
    assert_eq!(key.decrypt(&sealed, b"header").unwrap(), plaintext);
}

#[test]
fn a_wrong_key_or_associated_data_fails_authentication() {
    let sealed = crypto::encrypt(&[1; 32], b"secret", b"ad").unwrap();
    let mut other = [1u8; 32];
    other[31] = 2;
    assert!(matches!(
        crypto::decrypt(&other, &sealed, b"ad"),
        Err(Error::AuthenticationFailed)
    ));
    assert!(matches!(
        crypto::decrypt(&[1; 32], &sealed, b"AD"),
        Err(Error::AuthenticationFailed)
    ));
    assert!(matches!(
        crypto::decrypt(&[1; 32], &sealed, b""),
        Err(Error::AuthenticationFailed)
    ));
    assert_eq!(
        crypto::decrypt(&[1; 32], &sealed, b"ad").unwrap(),
        b"secret"
    );
}

#[test]
fn a_key_of_any_other_length_is_refused_naming_it() {
    for len in [0usize, 1, 16, 24, 31, 33, 64] {
        let key = vec![7u8; len];
        for result in [
            crypto::encrypt(&key, b"x", b"").map(drop),
            crypto::decrypt(&key, &[0; 40], b"").map(drop),
        ] {
            match result {
                Err(Error::KeyLength {
                    param: "key",
                    expected: 32,
                    actual,
                }) => assert_eq!(actual, len),
                other => panic!("{len}-byte key: {other:?}"),
            }
        }
        assert_eq!(
            AesKey::new(&key).unwrap_err().to_string(),
            format!("`key` must be 32 bytes, got {len}")
        );
    }
}

#[test]
fn empty_and_large_plaintexts_round_trip() {
    let key = AesKey::new(&[3; 32]).unwrap();
    let empty = key.encrypt(b"", b"").unwrap();
    assert_eq!(empty.len(), OVERHEAD);
    assert_eq!(key.decrypt(&empty, b"").unwrap(), b"");
    let large = noise(10 << 20, 5);
    let sealed = key.encrypt(&large, b"").unwrap();
    assert_ne!(
        &sealed[NONCE_LEN..NONCE_LEN + 64],
        &large[..64],
        "encrypted"
    );
    assert_eq!(key.decrypt_owned(sealed, b"").unwrap(), large);
    match key.decrypt(&[0; OVERHEAD - 1], b"") {
        Err(Error::MessageTooShort {
            minimum, actual, ..
        }) => {
            assert_eq!((minimum, actual), (28, 27))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn encrypt_and_decrypt_through_the_handler_in_both_binary_forms() {
    let h = crypto::handler();
    let key = [0x5a; 32];
    // JSON form in, bytes out.
    let sealed = bytes(
        call(
            &h,
            "encrypt",
            json(&format!(
                r#"{{"data": {{"$bytes": "{}"}}, "key": {{"$bytes": "{}"}}, "aad": "v1"}}"#,
                b64(b"binary \x00\x01 payload"),
                b64(&key)
            )),
        )
        .await
        .unwrap(),
    );
    assert_eq!(sealed.len(), b"binary \x00\x01 payload".len() + OVERHEAD);
    // The wire format is the documented one: the Rust API opens it.
    assert_eq!(
        crypto::decrypt(&key, &sealed, b"v1").unwrap(),
        b"binary \x00\x01 payload"
    );
    // Bytes form, positional.
    let opened = call(
        &h,
        "decrypt",
        Value::Array(vec![
            Value::Bytes(sealed.clone()),
            Value::Bytes(key.to_vec()),
            Value::from("v1"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(bytes(opened), b"binary \x00\x01 payload");
    // A string plaintext is its UTF-8.
    let sealed_text = bytes(
        call(
            &h,
            "encrypt",
            named(vec![
                ("data", "héllo".into()),
                ("key", Value::Bytes(key.to_vec())),
            ]),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        crypto::decrypt(&key, &sealed_text, b"").unwrap(),
        "héllo".as_bytes()
    );

    let mut tampered = sealed.clone();
    tampered[NONCE_LEN] ^= 1;
    let e = call(
        &h,
        "decrypt",
        named(vec![
            ("data", Value::Bytes(tampered)),
            ("key", Value::Bytes(key.to_vec())),
            ("aad", "v1".into()),
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "AUTHENTICATION_FAILED", "{}", e.message);

    let e = call(
        &h,
        "encrypt",
        named(vec![
            ("data", "x".into()),
            ("key", Value::Bytes(vec![1; 16])),
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert_eq!(e.message, "`key` must be 32 bytes, got 16");
    assert_eq!(field(e.data.as_ref().unwrap(), "actual"), &Value::from(16));

    let e = call(
        &h,
        "decrypt",
        named(vec![
            ("data", Value::Bytes(vec![0; 10])),
            ("key", Value::Bytes(key.to_vec())),
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert!(
        e.message.contains("shorter than the 28 bytes"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_large_message_goes_through_the_handler() {
    // Large enough to run on the blocking pool.
    let h = crypto::handler();
    let key = [9u8; 32];
    let data = noise(3 << 20, 11);
    let sealed = bytes(
        call(
            &h,
            "encrypt",
            named(vec![
                ("data", Value::Bytes(data.clone())),
                ("key", Value::Bytes(key.to_vec())),
            ]),
        )
        .await
        .unwrap(),
    );
    let opened = call(
        &h,
        "decrypt",
        named(vec![
            ("data", Value::Bytes(sealed)),
            ("key", Value::Bytes(key.to_vec())),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(bytes(opened), data);
}

#[tokio::test]
async fn derive_key_through_the_handler_matches_the_api_and_returns_its_salt() {
    let h = crypto::handler();
    let params = KdfParams {
        memory_kib: 256,
        iterations: 2,
        parallelism: 1,
        length: 32,
    };
    let got = call(
        &h,
        "deriveKey",
        json(r#"{"password": "password", "salt": {"$bytes": "c29tZXNhbHQ="}, "memoryKib": 256, "iterations": 2}"#),
    )
    .await
    .unwrap();
    let want = crypto::derive_key_from_password(b"password", Some(b"somesalt"), &params).unwrap();
    assert_eq!(bytes(field(&got, "key").clone()), want.key);
    assert_eq!(
        crypto::to_hex(&want.key),
        "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe"
    );
    assert_eq!(field(&got, "algorithm"), &Value::from("argon2id"));
    assert_eq!(field(&got, "memoryKib"), &Value::from(256));

    // No salt: one is generated, and deriving again with it gives the same key.
    let first = call(
        &h,
        "deriveKey",
        json(r#"{"password": "pw", "memoryKib": 64, "iterations": 1, "length": 16}"#),
    )
    .await
    .unwrap();
    let salt = bytes(field(&first, "salt").clone());
    assert_eq!(salt.len(), crypto::SALT_LEN);
    let again = call(
        &h,
        "deriveKey",
        named(vec![
            ("password", Value::Bytes(b"pw".to_vec())),
            ("salt", Value::Bytes(salt)),
            ("memoryKib", 64.into()),
            ("iterations", 1.into()),
            ("length", 16.into()),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(field(&first, "key"), field(&again, "key"));
    assert_eq!(bytes(field(&again, "key").clone()).len(), 16);

    let e = call(
        &h,
        "deriveKey",
        json(r#"{"password": "pw", "memoryKib": 4194304}"#),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert!(
        e.message.starts_with("invalid `memoryKib`"),
        "{}",
        e.message
    );
}
