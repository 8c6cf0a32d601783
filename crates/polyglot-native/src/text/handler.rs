//! The `text` handler: `jsonFormat`, `jsonValidate`, `regexFindAll`, `regexCount`,
//! `regexReplace`, and the word methods of `words`. Params and results are described in
//! the crate README.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use polyglot_worker::{Map, MethodError, MethodResult, Value, Worker};

use super::{json_format, json_validate, JsonStyle, Pattern};
use crate::blocking;
use crate::error::Error;
use crate::params::Params;

/// The module name [`handler()`] serves under.
pub const MODULE: &str = "text";

/// How many compiled patterns a handler keeps. Callers tend to reuse a handful of
/// patterns, and compiling one costs microseconds to milliseconds, more than searching
/// a short text. Past this many the cache starts over. Its memory is a few hundred KiB
/// for typical patterns, 128 MiB at worst (32 patterns at
/// [`REGEX_SIZE_LIMIT`](super::REGEX_SIZE_LIMIT)).
const PATTERN_CACHE_SIZE: usize = 32;

/// Compiled patterns by source text.
#[derive(Default)]
struct PatternCache {
    patterns: Mutex<HashMap<String, Pattern>>,
}

impl PatternCache {
    fn get(&self, source: &str) -> Result<Pattern, Error> {
        if let Some(p) = self.lock().get(source) {
            return Ok(p.clone());
        }
        // Compiled outside the lock: a slow pattern does not hold up other calls.
        let compiled = Pattern::new(source)?;
        let mut patterns = self.lock();
        if patterns.len() >= PATTERN_CACHE_SIZE {
            patterns.clear();
        }
        patterns.insert(source.to_owned(), compiled.clone());
        Ok(compiled)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pattern>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.patterns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `text` handler under the module name `text`, for a host to mount in-process or
/// to serve.
pub fn handler() -> Worker {
    worker(MODULE)
}

/// The `text` handler under another module name.
pub fn worker(module: impl Into<String>) -> Worker {
    let cache = Arc::new(PatternCache::default());
    let (c1, c2, c3) = (cache.clone(), cache.clone(), cache);
    let w = Worker::new(module, env!("CARGO_PKG_VERSION")).max_concurrency(crate::MAX_CONCURRENCY);
    super::words::methods(w)
        .method("jsonFormat", |p: Value, _| json_format_method(p))
        .method("jsonValidate", |p: Value, _| json_validate_method(p))
        .method("regexFindAll", move |p: Value, _| find_all(c1.clone(), p))
        .method("regexCount", move |p: Value, _| count(c2.clone(), p))
        .method("regexReplace", move |p: Value, _| replace(c3.clone(), p))
}

async fn json_format_method(params: Value) -> MethodResult {
    let mut p = Params::new("jsonFormat", &["text", "style"], params)?;
    let text = p.bytes_or_text("text")?;
    let style = match p.opt_text("style")? {
        None => JsonStyle::default(),
        Some(s) => s.parse().map_err(|e| p.error("style", e))?,
    };
    let out = blocking::run(text.len(), move || json_format(&text, style)).await??;
    Ok(Value::from(out))
}

async fn json_validate_method(params: Value) -> MethodResult {
    let mut p = Params::new("jsonValidate", &["text"], params)?;
    let text = p.bytes_or_text("text")?;
    let checked = blocking::run(text.len(), move || json_validate(&text)).await?;
    // Invalid JSON is this method's answer, not its failure.
    let mut out = Map::new();
    match checked {
        Ok(()) => {
            out.insert("valid".into(), Value::from(true));
        }
        Err(Error::BadJson {
            line,
            column,
            message,
            ..
        }) => {
            out.insert("valid".into(), Value::from(false));
            out.insert("line".into(), Value::from(line));
            out.insert("column".into(), Value::from(column));
            out.insert("message".into(), Value::from(message));
        }
        Err(other) => return Err(other.into()),
    }
    Ok(Value::Map(out))
}

/// The pattern and the text every regex method takes, the pattern compiled.
fn pattern_and_text(
    cache: &PatternCache,
    p: &mut Params,
) -> Result<(Pattern, String), MethodError> {
    let source = p.text("pattern")?;
    let text = p.text("text")?;
    Ok((cache.get(&source)?, text))
}

fn opt_usize(p: &mut Params, name: &'static str) -> Result<Option<usize>, MethodError> {
    p.opt_u64(name)?
        .map(|n| usize::try_from(n).map_err(|_| p.error(name, format!("{n} is out of range"))))
        .transpose()
}

async fn find_all(cache: Arc<PatternCache>, params: Value) -> MethodResult {
    let mut p = Params::new("regexFindAll", &["pattern", "text", "limit"], params)?;
    let (pattern, text) = pattern_and_text(&cache, &mut p)?;
    let limit = opt_usize(&mut p, "limit")?;
    blocking::run(text.len(), move || {
        let matches = pattern.find_all(&text, limit);
        Value::Array(
            matches
                .into_iter()
                .map(|m| {
                    let mut out = Map::new();
                    out.insert("match".into(), Value::from(m.text));
                    out.insert("start".into(), Value::from(m.start));
                    out.insert("end".into(), Value::from(m.end));
                    if !m.groups.is_empty() {
                        let groups = m.groups.into_iter().map(Value::from).collect();
                        out.insert("groups".into(), Value::Array(groups));
                    }
                    Value::Map(out)
                })
                .collect(),
        )
    })
    .await
}

async fn count(cache: Arc<PatternCache>, params: Value) -> MethodResult {
    let mut p = Params::new("regexCount", &["pattern", "text"], params)?;
    let (pattern, text) = pattern_and_text(&cache, &mut p)?;
    let n = blocking::run(text.len(), move || pattern.count(&text)).await?;
    Ok(Value::from(n))
}

async fn replace(cache: Arc<PatternCache>, params: Value) -> MethodResult {
    let mut p = Params::new(
        "regexReplace",
        &["pattern", "text", "replacement", "limit", "literal"],
        params,
    )?;
    let (pattern, text) = pattern_and_text(&cache, &mut p)?;
    let replacement = p.text("replacement")?;
    let limit = opt_usize(&mut p, "limit")?.unwrap_or(0);
    let literal = p.opt_bool("literal")?.unwrap_or(false);
    blocking::run(text.len(), move || {
        match pattern.replace(&text, &replacement, limit, literal) {
            // Nothing matched: hand back the text without a copy.
            std::borrow::Cow::Borrowed(_) => Value::from(text),
            std::borrow::Cow::Owned(s) => Value::from(s),
        }
    })
    .await
}
