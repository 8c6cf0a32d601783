//! Inputs the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) found breaking a property, kept as
//! tests so that the bugs they showed stay fixed without a fuzzing run.

use polyglot_protocol::{Codec, FrameReader, Response, Value, WorkerMessage};

/// Feeds `stream` in reads of `chunk` bytes, taking every frame, and returns how many
/// bytes of an unfinished frame the reader reports at the end.
fn truncated_after(codec: Codec, limit: usize, stream: &[u8], chunk: usize) -> Option<u64> {
    let mut r = FrameReader::new(codec, limit);
    for piece in stream.chunks(chunk) {
        r.extend(piece);
        while r.next_frame().is_some() {}
    }
    r.finish().err().map(|t| t.buffered)
}

/// msgpack_frames: a stream ending 3 bytes into a 28-byte frame reported 28 bytes of an
/// unfinished frame (its declared length) when the frame was over the limit, 29 (what had
/// arrived: the prefix and 25 bytes) when it was not.
#[test]
fn a_cut_oversize_msgpack_frame_counts_the_bytes_that_arrived() {
    let mut stream = vec![0, 0, 0, 0x1c];
    stream.extend_from_slice(b"\x83\xa2id\x07\xa6method\xa4echo\xa6params\x91");
    assert_eq!(stream.len(), 4 + 25);
    for limit in [12, 1024] {
        for chunk in 1..=stream.len() {
            assert_eq!(
                truncated_after(Codec::Msgpack, limit, &stream, chunk),
                Some(29),
                "limit {limit}, reads of {chunk}"
            );
        }
    }
    // A huge declared length, cut after 5 bytes: 9 bytes arrived, not 1_694_510_626.
    let stream = [0x65, 0, 0x2e, 0x22, 0x82, 0xa2, b'i', b'd', 1];
    assert_eq!(truncated_after(Codec::Msgpack, 1024, &stream, 3), Some(9));
}

/// json_frames, msgpack_frames: JSON floats decoded one ULP off (serde_json's default float
/// parser is not correctly rounded), so a value a worker sent was not the value the host
/// got, and a decoded message did not re-encode to itself. Fixed by serde_json's
/// `float_roundtrip` feature in the workspace's dependency on it.
#[test]
fn json_floats_decode_to_the_exact_double() {
    let texts = [
        "-9.223372323584009e+23",
        "-5.630510097415724e-296",
        "2.699038309416696e-307",
        "-1.6810777060633125e53",
        "1.9152320786075119e86",
        "-8.608512505062673e106",
    ];
    for text in texts {
        let exact: f64 = text.parse().unwrap();
        let got = Value::decode(Codec::Json, text.as_bytes()).unwrap();
        assert_eq!(
            got.as_f64().map(f64::to_bits),
            Some(exact.to_bits()),
            "{text} decoded as {got:?}, not {exact:e}"
        );
        // A MessagePack double sent on as JSON (the host relaying a result) survives too.
        let msg = WorkerMessage::Response(Response {
            id: 1u64.into(),
            outcome: Ok(Value::Array(vec![Value::Float(exact)])),
            timestamp: None,
            execution_time_us: None,
        });
        let mut line = Vec::new();
        msg.encode(Codec::Json, &mut line);
        let again = WorkerMessage::decode(Codec::Json, &line[..line.len() - 1]).unwrap();
        assert_eq!(again, msg, "{text} through a JSON frame");
    }
}

/// json_frames: an oversize line `{"id":1\r\n` read byte by byte reported id 1, read
/// whole no id. A read ending at the `\r` left it in the head the id is read from, where it
/// ended the number; the line itself ends at `1`, which may have been cut. Now the id is
/// the same whatever the reads.
#[test]
fn an_oversize_json_line_has_the_same_id_whatever_the_reads() {
    use polyglot_protocol::Frame;
    let stream = b"{\"id\":1\r\n{\"id\":2}\r\n";
    for chunk in 1..=stream.len() {
        let mut r = FrameReader::new(Codec::Json, 3);
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            r.extend(piece);
            while let Some(f) = r.next_frame() {
                got.push(match f {
                    Frame::TooLarge { size, id } => (size, id),
                    Frame::Data(d) => panic!("{d:?} is over the limit"),
                });
            }
        }
        assert_eq!(
            got,
            vec![(7, None), (8, Some(2u64.into()))],
            "reads of {chunk}"
        );
    }
}
