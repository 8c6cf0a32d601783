//! Word statistics: `echo`, `stats`, `wordFrequencies` and `slugify`, the methods the
//! bundled `text-rust` module has always served, with exactly the outputs of its Python
//! fallback `text-python`, so callers cannot tell which served.
//!
//! - `echo(value)`: the value unchanged.
//! - `stats(text)`: `{bytes, chars, words, lines}`.
//! - `wordFrequencies(text, top = 10)`: `[[word, count], ...]`, most frequent first, ties
//!   by word.
//! - `slugify(text)`: lowercase words joined by `-`.
//!
//! A word is a maximal run of characters whose Unicode general category is a letter (L*)
//! or a number (N*), exactly what Python's `str.isalnum` tests; each word is lowercased
//! after the split. (`char::is_alphanumeric` would also take ~1,400 combining marks and
//! symbols, and the two implementations would disagree.) Outputs match for every
//! character both Unicode versions (Python's and this crate's) assign alike.

use std::collections::HashMap;

use polyglot_worker::{arg, arg_str, opt_arg, MethodError, Value, Worker};

/// Adds the word methods to `w`.
pub(crate) fn methods(w: Worker) -> Worker {
    w.method("echo", |p: Value, _| async move { echo(p) })
        .method("stats", |p: Value, _| async move { Ok(stats(text(&p)?)) })
        .method("wordFrequencies", |p: Value, _| async move {
            let top = match opt_arg(&p, 1, "top") {
                None => 10,
                Some(v) => v.as_u64().ok_or_else(|| {
                    MethodError::invalid_params(format!(
                        "wordFrequencies expects `top` to be an integer >= 0, not {v}"
                    ))
                })? as usize,
            };
            Ok(word_frequencies(text(&p)?, top))
        })
        .method("slugify", |p: Value, _| async move {
            Ok(Value::from(slugify(text(&p)?)))
        })
}

/// Exactly one argument, positional or named `value`.
fn echo(p: Value) -> Result<Value, MethodError> {
    match p {
        Value::Array(mut a) if a.len() == 1 => Ok(a.remove(0)),
        Value::Map(mut m) if m.len() == 1 && m.contains_key("value") => {
            Ok(m.remove("value").unwrap_or_default())
        }
        other => Err(MethodError::invalid_params(format!(
            "`echo` takes exactly one argument, got {other}"
        ))),
    }
}

fn text(p: &Value) -> Result<&str, MethodError> {
    arg_str(p, 0, "text").map_err(|_| {
        MethodError::invalid_params(format!(
            "expects a string `text`, got {}",
            arg(p, 0, "text").map_or("nothing", Value::type_name)
        ))
    })
}

/// Python's `str.isalnum` for one character: general category L* or N*.
fn is_word_char(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    matches!(
        get_general_category(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
    )
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// `{bytes, chars, words, lines}` of `text`.
pub fn stats(text: &str) -> Value {
    let newlines = text.matches('\n').count();
    let lines = newlines + usize::from(!text.is_empty() && !text.ends_with('\n'));
    let mut m = polyglot_worker::Map::new();
    m.insert("bytes".into(), Value::from(text.len()));
    m.insert("chars".into(), Value::from(text.chars().count()));
    m.insert("words".into(), Value::from(words(text).count()));
    m.insert("lines".into(), Value::from(lines));
    Value::Map(m)
}

/// The `top` most frequent words of `text`, most frequent first, ties by word.
pub fn word_frequencies(text: &str, top: usize) -> Value {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for w in words(text) {
        *counts.entry(w).or_default() += 1;
    }
    let mut list: Vec<(String, u64)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(top);
    Value::Array(
        list.into_iter()
            .map(|(w, c)| Value::Array(vec![Value::from(w), Value::from(c)]))
            .collect(),
    )
}

/// Lowercase words of `text` joined by `-`.
pub fn slugify(text: &str) -> String {
    let lower = text.to_lowercase();
    let parts: Vec<&str> = lower
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .collect();
    parts.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_match_the_python_definitions() {
        assert_eq!(slugify("  Hello, World! Ça va?  "), "hello-world-ça-va");
        assert_eq!(slugify("--"), "");
        let s = stats("Héllo wörld\nsecond line");
        assert_eq!(s.get("bytes"), Some(&Value::from(25)));
        assert_eq!(s.get("chars"), Some(&Value::from(23)));
        assert_eq!(s.get("words"), Some(&Value::from(4)));
        assert_eq!(s.get("lines"), Some(&Value::from(2)));
        assert_eq!(stats("").get("lines"), Some(&Value::from(0)));
        assert_eq!(stats("a\n").get("lines"), Some(&Value::from(1)));
        // Combining marks split words, as in Python ("हिन्दी" -> ह / न / द).
        assert_eq!(slugify("हिन्दी"), "ह-न-द");
        assert_eq!(slugify("İstanbul"), "i-stanbul");
        let f = word_frequencies("b a b c a b", 2);
        assert_eq!(f.to_string(), r#"[["b",3],["a",2]]"#);
    }
}
