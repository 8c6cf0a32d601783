//! JSON formatting and validation with line and column errors, regexes that cannot
//! backtrack, oversize patterns refused, and the `text` handler.

mod support;

use std::time::{Duration, Instant};

use polyglot_native::text::{self, JsonStyle, Pattern};
use polyglot_native::{Error, PatternProblem};
use polyglot_worker::Value;
use support::{call, field, json, log_text, named};

/// Generous for an unoptimized build on a busy machine; a backtracking engine would take
/// longer than the age of the universe on these inputs.
const LINEAR_TIME: Duration = Duration::from_secs(10);

const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";

#[test]
fn canonical_json_sorts_keys_at_every_depth_and_is_stable() {
    let input =
        br#" { "z": {"b": [3, {"y": 1, "x": 2}], "a": "\u00e9"}, "a": 1.50, "m": [] , "e": {} } "#;
    let canonical = text::json_format(input, JsonStyle::Canonical).unwrap();
    assert_eq!(
        canonical,
        r#"{"a":1.5,"e":{},"m":[],"z":{"a":"é","b":[3,{"x":2,"y":1}]}}"#
    );
    // Pretty and compact keep the document's order and text.
    let pretty = text::json_format(input, JsonStyle::Pretty).unwrap();
    assert!(
        pretty.starts_with("{\n  \"z\": {\n    \"b\": [\n      3,"),
        "{pretty}"
    );
    let compact = text::json_format(input, JsonStyle::Compact).unwrap();
    assert_eq!(
        compact,
        r#"{"z":{"b":[3,{"y":1,"x":2}],"a":"\u00e9"},"a":1.50,"m":[],"e":{}}"#
    );
    for restyled in [&pretty, &compact, &canonical] {
        assert_eq!(
            text::json_format(restyled.as_bytes(), JsonStyle::Canonical).unwrap(),
            canonical
        );
    }
}

#[test]
fn a_large_document_formats_and_validates() {
    let mut doc = String::from("[");
    for i in 0..100_000 {
        if i > 0 {
            doc.push(',');
        }
        doc.push_str(&format!(
            r#"{{"n":{i},"id":"item-{i}","tags":["a","b"],"ok":true}}"#
        ));
    }
    doc.push(']');
    assert!(doc.len() > 5 << 20);
    text::json_validate(doc.as_bytes()).unwrap();
    let out = text::json_format(doc.as_bytes(), JsonStyle::Canonical).unwrap();
    assert!(
        out.starts_with(r#"[{"id":"item-0","n":0,"ok":true,"tags":["a","b"]},"#),
        "{}",
        &out[..80]
    );
    assert_eq!(out.len(), doc.len(), "same content, keys reordered");
}

#[test]
fn bad_json_names_the_line_and_column() {
    let doc = "{\n  \"name\": \"polyglot\",\n  \"tags\": [\"a\", \"b\"],\n  \"count\": 12,,\n  \"ok\": true\n}";
    for e in [
        text::json_format(doc.as_bytes(), JsonStyle::Pretty).unwrap_err(),
        text::json_validate(doc.as_bytes()).unwrap_err(),
    ] {
        match &e {
            Error::BadJson {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!((*line, *column), (4, 15), "{message}");
                assert_eq!(
                    e.to_string(),
                    "invalid JSON at line 4, column 15: key must be a string"
                );
            }
            other => panic!("expected BadJson, got {other:?}"),
        }
    }
    // An error found at a line break is reported at the end of the line it ends.
    match text::json_validate(b"[1,\n2,\n3") {
        Err(Error::BadJson {
            line,
            column,
            message,
            ..
        }) => {
            assert_eq!(
                (line, column, message.as_str()),
                (3, 1, "EOF while parsing a list")
            )
        }
        other => panic!("{other:?}"),
    }
    match text::json_validate(b"{\"a\": tru\n}") {
        Err(Error::BadJson { line, column, .. }) => assert_eq!((line, column), (1, 10)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pathological_patterns_run_in_linear_time() {
    let long_a = "a".repeat(1 << 20);
    for (pattern, text) in [
        ("(a*)*b", long_a.clone()),
        ("^(a+)+$", format!("{long_a}!")),
        ("(a|aa)+c", long_a.clone()),
        ("(.*a){20}x", long_a.clone()),
    ] {
        let p = Pattern::new(pattern).unwrap();
        let started = Instant::now();
        assert_eq!(p.count(&text), 0, "{pattern}");
        assert!(
            started.elapsed() < LINEAR_TIME,
            "{pattern}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn an_oversize_pattern_is_refused_and_a_bad_one_named() {
    for big in [r"\w{100}", r"(\w{50}){50}", r"[\p{L}\p{N}]{500}"] {
        match Pattern::new(big) {
            Err(Error::BadPattern {
                problem: PatternProblem::TooLarge,
                ref detail,
                ..
            }) => {
                assert!(detail.contains("size limit"), "{detail}")
            }
            other => panic!("{big}: expected TooLarge, got {other:?}"),
        }
    }
    match Pattern::new("a{2,1}") {
        Err(
            e @ Error::BadPattern {
                problem: PatternProblem::Syntax,
                ..
            },
        ) => {
            assert!(e.to_string().starts_with("bad pattern \"a{2,1}\""), "{e}");
            assert_eq!(e.code(), "BAD_PATTERN");
        }
        other => panic!("{other:?}"),
    }
    // What realistic patterns need fits the limit.
    Pattern::new(EMAIL).unwrap();
    Pattern::new(r"\w{50}").unwrap();
}

#[test]
fn find_count_and_replace_over_large_and_empty_texts() {
    let logs = log_text(100_000);
    let p = Pattern::new(EMAIL).unwrap();
    assert_eq!(p.count(&logs), 25_000);
    let all = p.find_all(&logs, None);
    assert_eq!(all.len(), 25_000);
    assert_eq!(all[1].text, "user4@example.com");
    assert_eq!(&logs[all[1].start..all[1].end], all[1].text);
    assert_eq!(p.find_all(&logs, Some(3)).len(), 3);
    let masked = p.replace(&logs, "<email>", 0, false);
    assert_eq!(masked.matches("<email>").count(), 25_000);
    assert_eq!(p.count(&masked), 0);
    assert_eq!(p.count(""), 0);
    assert!(p.find_all("", None).is_empty());
    assert_eq!(p.replace("", "x", 0, false), "");
}

#[tokio::test]
async fn json_methods_through_the_handler() {
    let h = text::handler();
    let got = call(
        &h,
        "jsonFormat",
        json(r#"{"text": "{\"b\": 1, \"a\": 2}"}"#),
    )
    .await
    .unwrap();
    assert_eq!(got, Value::from(r#"{"a":2,"b":1}"#));
    let got = call(
        &h,
        "jsonFormat",
        Value::Array(vec![
            Value::Bytes(b"[1, {\"b\":2}]".to_vec()),
            "pretty".into(),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(got, Value::from("[\n  1,\n  {\n    \"b\": 2\n  }\n]"));

    let e = call(&h, "jsonFormat", json(r#"{"text": "{\n\"a\": nul}"}"#))
        .await
        .unwrap_err();
    assert_eq!(e.code, "BAD_JSON", "{}", e.message);
    let data = e.data.unwrap();
    assert_eq!(
        (field(&data, "line"), field(&data, "column")),
        (&Value::from(2), &Value::from(9))
    );

    let got = call(
        &h,
        "jsonFormat",
        json(r#"{"text": "{\"b\": 1, \"a\": 2.50}", "style": "compact"}"#),
    )
    .await
    .unwrap();
    assert_eq!(got, Value::from(r#"{"b":1,"a":2.50}"#));

    let e = call(
        &h,
        "jsonFormat",
        json(r#"{"text": "{}", "style": "sorted"}"#),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert!(
        e.message
            .contains("expected \"canonical\", \"compact\" or \"pretty\""),
        "{}",
        e.message
    );

    let ok = call(&h, "jsonValidate", json(r#"["{\"a\": [1, 2]}"]"#))
        .await
        .unwrap();
    assert_eq!(field(&ok, "valid"), &Value::from(true));
    let bad = call(
        &h,
        "jsonValidate",
        named(vec![("text", Value::from("[1,\n 2,\n ]"))]),
    )
    .await
    .unwrap();
    assert_eq!(field(&bad, "valid"), &Value::from(false));
    assert_eq!(field(&bad, "line"), &Value::from(3));
    assert_eq!(field(&bad, "column"), &Value::from(2));
    assert_eq!(field(&bad, "message"), &Value::from("trailing comma"));
}

#[tokio::test]
async fn regex_methods_through_the_handler() {
    let h = text::handler();
    let found = call(
        &h,
        "regexFindAll",
        json(
            r#"{"pattern": "(\\w+)@(\\w+)\\.com", "text": "to ann@x.com, bob@y.com", "limit": 5}"#,
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        found.to_string(),
        r#"[{"end":12,"groups":["ann","x"],"match":"ann@x.com","start":3},{"end":23,"groups":["bob","y"],"match":"bob@y.com","start":14}]"#
    );
    let n = call(
        &h,
        "regexCount",
        Value::Array(vec![EMAIL.into(), log_text(4000).into()]),
    )
    .await
    .unwrap();
    assert_eq!(n, Value::from(1000));
    // Text as UTF-8 bytes (the JSON binary form).
    let n = call(
        &h,
        "regexCount",
        json(r#"{"pattern": "é", "text": {"$bytes": "w6lhw6k="}}"#),
    )
    .await
    .unwrap();
    assert_eq!(n, Value::from(2));
    let replaced = call(
        &h,
        "regexReplace",
        named(vec![
            ("pattern", r"(\d+)".into()),
            ("text", "a1 b22 c333".into()),
            ("replacement", "<$1>".into()),
            ("limit", 2.into()),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(replaced, Value::from("a<1> b<22> c333"));
    let literal = call(
        &h,
        "regexReplace",
        json(r#"{"pattern": "\\d", "text": "a1", "replacement": "$1", "literal": true}"#),
    )
    .await
    .unwrap();
    assert_eq!(literal, Value::from("a$1"));

    let e = call(
        &h,
        "regexCount",
        json(r#"{"pattern": "\\w{1000}", "text": "x"}"#),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "BAD_PATTERN");
    assert_eq!(
        field(e.data.as_ref().unwrap(), "reason"),
        &Value::from("too_large")
    );
    let e = call(&h, "regexFindAll", json(r#"["(unclosed", "x"]"#))
        .await
        .unwrap_err();
    assert_eq!(e.code, "BAD_PATTERN");
    assert_eq!(
        field(e.data.as_ref().unwrap(), "reason"),
        &Value::from("syntax")
    );
    assert!(e.message.contains("unclosed group"), "{}", e.message);
    let e = call(
        &h,
        "regexCount",
        named(vec![
            ("pattern", "x".into()),
            ("text", Value::Bytes(vec![0xff, 0xfe])),
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert!(
        e.message.contains("`text` is not valid UTF-8"),
        "{}",
        e.message
    );
}
