//! Text at scale: JSON validation and compact, pretty or canonical re-serialization of
//! large documents, regular expressions over large texts, and the `text` handler.
//!
//! # Layout
//! - `json`: [`json_format`] (compact, pretty or canonical), [`json_validate`], in one
//!   pass without a tree; [`JsonStyle`], [`JSON_MAX_DEPTH`].
//! - `pattern`: [`Pattern`], a regex with a compiled-size limit: [`Pattern::find_all`],
//!   [`Pattern::count`], [`Pattern::replace`].
//! - `words`: [`stats`], [`word_frequencies`], [`slugify`]: word statistics.
//! - `handler`: [`handler()`], the methods `jsonFormat`, `jsonValidate`,
//!   `regexFindAll`, `regexCount`, `regexReplace`, and `echo`, `stats`,
//!   `wordFrequencies`, `slugify`.

mod handler;
mod json;
mod pattern;
mod words;

pub use handler::{handler, worker, MODULE};
pub use json::{json_format, json_validate, JsonStyle, UnknownStyle, JSON_MAX_DEPTH};
pub use pattern::{Match, Pattern, REGEX_SIZE_LIMIT};
pub use words::{slugify, stats, word_frequencies};
