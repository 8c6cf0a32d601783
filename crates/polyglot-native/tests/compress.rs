//! zstd round trips, decompression bombs refused under the limit, corrupt input, and
//! the `compress` handler with params in both binary forms.

mod support;

use polyglot_native::compress::{self, Decoder, DEFAULT_MAX_SIZE};
use polyglot_native::Error;
use polyglot_worker::Value;
use support::{b64, bytes, call, field, json, log_text, named, noise};

#[test]
fn empty_small_and_10_mb_inputs_round_trip() {
    let ten_mb = log_text(250_000).into_bytes();
    assert!(ten_mb.len() > 10 << 20, "{}", ten_mb.len());
    for (name, data) in [
        ("empty", Vec::new()),
        ("small", b"hello, hello, hello".to_vec()),
        ("incompressible", noise(100_000, 3)),
        ("10 MB of logs", ten_mb),
    ] {
        for level in [1, 3, 9] {
            let packed = compress::compress(&data, level).unwrap();
            assert_eq!(
                compress::decompress(&packed, DEFAULT_MAX_SIZE).unwrap(),
                data,
                "{name} at level {level}"
            );
            if data.len() > 1 << 20 {
                assert!(packed.len() * 5 < data.len(), "{name}: logs compress well");
            }
        }
        let mut streamed = Vec::new();
        compress::compress_stream(&data[..], &mut streamed, 3).unwrap();
        let mut back = Vec::new();
        compress::decompress_stream(&streamed[..], &mut back, DEFAULT_MAX_SIZE).unwrap();
        assert_eq!(back, data, "{name} streamed");
        // A streamed frame does not record its size: the bounded path decodes it.
        assert_eq!(
            compress::decompress(&streamed, DEFAULT_MAX_SIZE).unwrap(),
            data
        );
    }
}

/// A frame header that claims a terabyte of content, followed by an empty last block.
fn lying_frame() -> Vec<u8> {
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header descriptor: 8-byte content size, single segment, no checksum.
    f.push(0xe0);
    f.extend_from_slice(&(1u64 << 40).to_le_bytes());
    // Block header: last block, raw, 0 bytes.
    f.extend_from_slice(&[0x01, 0x00, 0x00]);
    f
}

#[test]
fn a_frame_claiming_a_terabyte_is_refused_before_any_work() {
    match compress::decompress(&lying_frame(), DEFAULT_MAX_SIZE) {
        Err(Error::TooLarge {
            limit,
            actual: Some(claimed),
            ..
        }) => {
            assert_eq!(limit, DEFAULT_MAX_SIZE);
            assert_eq!(claimed, 1 << 40);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// 300 frames of 1 MiB of zeros each: 300 MiB from a few kilobytes, with no frame
/// claiming more than 1 MiB, so only the running total can stop it.
fn bomb() -> Vec<u8> {
    let frame = compress::compress(&vec![0u8; 1 << 20], 19).unwrap();
    let bomb: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 300)
        .collect();
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
    bomb
}

#[test]
fn a_decompression_bomb_stops_at_the_default_limit() {
    let bomb = bomb();
    match compress::decompress(&bomb, DEFAULT_MAX_SIZE) {
        Err(Error::TooLarge {
            limit,
            actual: None,
            ..
        }) => assert_eq!(limit, DEFAULT_MAX_SIZE),
        other => panic!("expected TooLarge, got {:?}", other.map(|v| v.len())),
    }
    // Under a limit it fits, the same input decodes.
    assert_eq!(
        compress::decompress(&bomb, 300 << 20).unwrap().len(),
        300 << 20
    );

    // The streaming decoder stops there too, having written no more than the limit.
    let mut out = Vec::new();
    let e = compress::decompress_stream(&bomb[..], &mut out, 5 << 20).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    assert!(out.len() <= 5 << 20, "{} bytes written", out.len());
    let mut dec = Decoder::new(&bomb[..], 1 << 20).unwrap();
    let err = std::io::copy(&mut dec, &mut std::io::sink()).unwrap_err();
    assert!(
        err.to_string().contains("over the limit of 1048576 bytes"),
        "{err}"
    );
    assert!(dec.produced() <= (1 << 20) + 1);
}

#[test]
fn corrupt_input_is_named_corrupt_data() {
    let good = compress::compress(&log_text(1000).into_bytes(), 3).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    for (name, input) in [
        ("empty", Vec::new()),
        ("not zstd", b"plain text, not a frame".to_vec()),
        ("truncated", good[..good.len() - 10].to_vec()),
        ("altered", flipped),
        ("trailing garbage", [good.clone(), b"xx".to_vec()].concat()),
    ] {
        match compress::decompress(&input, DEFAULT_MAX_SIZE) {
            Err(e @ Error::CorruptData { .. }) => assert_eq!(e.code(), "CORRUPT_DATA"),
            other => panic!(
                "{name}: expected CorruptData, got {:?}",
                other.map(|v| v.len())
            ),
        }
    }
}

#[tokio::test]
async fn the_handler_round_trips_in_both_binary_forms() {
    let h = compress::handler();
    let text = log_text(2000);
    // JSON form in.
    let packed = bytes(
        call(
            &h,
            "compress",
            json(&format!(
                r#"{{"data": {{"$bytes": "{}"}}, "level": 5}}"#,
                b64(text.as_bytes())
            )),
        )
        .await
        .unwrap(),
    );
    assert!(packed.len() < text.len() / 4);
    // Bytes form in, positional.
    let back = call(
        &h,
        "decompress",
        Value::Array(vec![Value::Bytes(packed.clone()), 1_000_000.into()]),
    )
    .await
    .unwrap();
    assert_eq!(bytes(back), text.as_bytes());
    // A string is compressed as its UTF-8; the default level is used without one.
    let from_text = bytes(
        call(&h, "compress", Value::from(text.clone()))
            .await
            .unwrap(),
    );
    assert_eq!(
        compress::decompress(&from_text, 1 << 20).unwrap(),
        text.as_bytes()
    );
    // The single-value form of decompress.
    let back = call(&h, "decompress", Value::Bytes(from_text))
        .await
        .unwrap();
    assert_eq!(bytes(back), text.as_bytes());
}

#[tokio::test]
async fn the_handler_refuses_bombs_bad_levels_and_bad_limits_clearly() {
    let h = compress::handler();
    let e = call(
        &h,
        "decompress",
        named(vec![("data", Value::Bytes(bomb()))]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "TOO_LARGE", "{}", e.message);
    assert_eq!(
        field(e.data.as_ref().unwrap(), "limit"),
        &Value::from(DEFAULT_MAX_SIZE)
    );

    let e = call(
        &h,
        "decompress",
        named(vec![
            ("data", Value::Bytes(lying_frame())),
            ("maxSize", 1000.into()),
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "TOO_LARGE");
    assert_eq!(
        field(e.data.as_ref().unwrap(), "actual"),
        &Value::from(1u64 << 40)
    );

    let e = call(&h, "compress", json(r#"{"data": "x", "level": 23}"#))
        .await
        .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert!(
        e.message.starts_with("invalid `level`: must be between"),
        "{}",
        e.message
    );

    let e = call(
        &h,
        "decompress",
        json(r#"{"data": {"$bytes": "AAAA"}, "maxSize": 99999999999}"#),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert!(
        e.message.contains("`maxSize` must be at most"),
        "{}",
        e.message
    );

    let e = call(
        &h,
        "decompress",
        json(r#"{"data": "a string is not compressed data"}"#),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");

    let e = call(
        &h,
        "decompress",
        named(vec![("data", Value::Bytes(b"not zstd".to_vec()))]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "CORRUPT_DATA", "{}", e.message);
}
