//! Regular expressions over large texts, with the `regex` crate: finite automata, no
//! backtracking, so the time of a search grows linearly with the text whatever the
//! pattern (`(a*)*b` over a megabyte of `a`s takes milliseconds, not centuries).

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};

use crate::error::{Error, PatternProblem, Result};

/// The most memory one compiled pattern may take: 4 MiB. Measured compiled sizes: an
/// ASCII e-mail pattern under 1 KiB, `\w+` 48 KiB, `\w{20}` 1 MiB, `\w{50}` 2.4 MiB
/// (Unicode classes are large, and a counted repetition copies its class). A pattern
/// past this (`\w{100}` needs 4.8 MiB, nested counted repetitions far more) is refused
/// with [`Error::BadPattern`] instead of taking a worker's memory and a long compile.
/// The `regex` crate's own default is 10 MiB.
pub const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// How much of a refused pattern an error repeats.
const PATTERN_ECHO_CHARS: usize = 200;

/// A compiled regular expression (the `regex` crate's syntax), with the size limit.
///
/// ```
/// use polyglot_native::text::Pattern;
///
/// let p = Pattern::new(r"(\w+)@(\w+)\.com")?;
/// let text = "mail ann@example.com or bob@test.com";
/// assert_eq!(p.count(text), 2);
/// let first = &p.find_all(text, None)[0];
/// assert_eq!((first.start, first.end, first.text), (5, 20, "ann@example.com"));
/// assert_eq!(first.groups, [Some("ann"), Some("example")]);
/// assert_eq!(p.replace(text, "<$2>", 0, false), "mail <example> or <test>");
/// # Ok::<(), polyglot_native::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
}

/// One match: byte offsets into the text (UTF-8), the matched text, and the capture
/// groups (group 1 onwards; `None` for a group that did not take part; empty when the
/// pattern has no groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'t> {
    /// Where the match starts, in bytes.
    pub start: usize,
    /// Where it ends (exclusive), in bytes.
    pub end: usize,
    /// The matched text.
    pub text: &'t str,
    /// The capture groups, from group 1.
    pub groups: Vec<Option<&'t str>>,
}

impl Pattern {
    /// Compiles `pattern`.
    ///
    /// # Errors
    /// [`Error::BadPattern`] with [`PatternProblem::Syntax`] and the parser's message
    /// (which points at the problem), or [`PatternProblem::TooLarge`] past
    /// [`REGEX_SIZE_LIMIT`].
    pub fn new(pattern: &str) -> Result<Pattern> {
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(|regex| Pattern { regex })
            .map_err(|e| {
                let (problem, detail) = match &e {
                    regex::Error::CompiledTooBig(limit) => (
                        PatternProblem::TooLarge,
                        format!(
                            "the compiled pattern would exceed the size limit of {limit} bytes; \
                             use fewer or smaller counted repetitions, or ASCII classes \
                             ((?-u:\\w)) instead of Unicode ones"
                        ),
                    ),
                    other => (PatternProblem::Syntax, other.to_string()),
                };
                Error::BadPattern {
                    problem,
                    pattern: pattern.chars().take(PATTERN_ECHO_CHARS).collect(),
                    detail,
                    source: e,
                }
            })
    }

    /// The pattern's source text.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// The non-overlapping matches in `text`, left to right; the first `limit` when
    /// given.
    pub fn find_all<'t>(&self, text: &'t str, limit: Option<usize>) -> Vec<Match<'t>> {
        let limit = limit.unwrap_or(usize::MAX);
        if self.regex.captures_len() == 1 {
            // No groups: the faster search that does not track them.
            self.regex
                .find_iter(text)
                .take(limit)
                .map(|m| Match {
                    start: m.start(),
                    end: m.end(),
                    text: m.as_str(),
                    groups: Vec::new(),
                })
                .collect()
        } else {
            self.regex
                .captures_iter(text)
                .take(limit)
                .map(|c| {
                    let whole = c.get(0).expect("group 0 is the whole match");
                    Match {
                        start: whole.start(),
                        end: whole.end(),
                        text: whole.as_str(),
                        groups: c.iter().skip(1).map(|g| g.map(|g| g.as_str())).collect(),
                    }
                })
                .collect()
        }
    }

    /// How many non-overlapping matches `text` holds.
    pub fn count(&self, text: &str) -> usize {
        self.regex.find_iter(text).count()
    }

    /// `text` with the first `limit` matches (all when `limit` is 0) replaced by
    /// `replacement`, in which `$1`, `${name}` name groups and `$$` is a dollar sign;
    /// with `literal`, `replacement` is used as it is. Borrows `text` when nothing
    /// matched.
    pub fn replace<'t>(
        &self,
        text: &'t str,
        replacement: &str,
        limit: usize,
        literal: bool,
    ) -> Cow<'t, str> {
        if literal {
            self.regex
                .replacen(text, limit, regex::NoExpand(replacement))
        } else {
            self.regex.replacen(text, limit, replacement)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_names_the_problem() {
        match Pattern::new("(unclosed") {
            Err(Error::BadPattern {
                problem: PatternProblem::Syntax,
                detail,
                ..
            }) => assert!(detail.contains("unclosed group"), "{detail}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn groups_that_do_not_take_part_are_none() {
        let p = Pattern::new(r"(a)|(b)").unwrap();
        let m = p.find_all("b", None);
        assert_eq!(m[0].groups, [None, Some("b")]);
    }

    #[test]
    fn literal_replacement_keeps_dollars() {
        let p = Pattern::new(r"\d+").unwrap();
        assert_eq!(p.replace("a1b22", "$$0", 0, true), "a$$0b$$0");
        assert_eq!(p.replace("a1b22", "#", 1, false), "a#b22");
        assert!(matches!(p.replace("none", "#", 0, false), Cow::Borrowed(_)));
    }
}
