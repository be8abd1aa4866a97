//! OpenSearch security patterns: exact strings, `*`/`?` globs, and
//! `/regex/` (full match). Used for users, backend roles, hosts, actions and
//! index patterns alike.

use std::fmt;

/// One compiled pattern.
#[derive(Clone)]
pub enum Pattern {
    Exact(String),
    /// `prefix*`: the common case, matched without a scan.
    Prefix(String),
    Glob(String),
    Regex(regex::Regex),
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(s) => write!(f, "{s:?}"),
            Pattern::Prefix(p) => write!(f, "{p:?}*"),
            Pattern::Glob(g) => write!(f, "glob {g:?}"),
            Pattern::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern `{pattern}`: {message}")]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

impl crate::error::HasKind for PatternError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Invalid
    }
}

impl Pattern {
    pub fn parse(source: &str) -> Result<Pattern, PatternError> {
        if Pattern::is_regex_source(source) {
            let body = &source[1..source.len() - 1];
            return regex::Regex::new(&format!("^(?:{body})$"))
                .map(Pattern::Regex)
                .map_err(|e| PatternError { pattern: source.to_owned(), message: e.to_string() });
        }
        Ok(Pattern::parse_glob(source))
    }

    /// `source` as an exact string or a `*`/`?` glob, never a regex (for
    /// patterns built from substituted values, whose kind was decided
    /// before substitution).
    pub fn parse_glob(source: &str) -> Pattern {
        let wild = |c: char| c == '*' || c == '?';
        if !source.contains(wild) {
            return Pattern::Exact(source.to_owned());
        }
        match source.strip_suffix('*') {
            Some(prefix) if !prefix.contains(wild) => Pattern::Prefix(prefix.to_owned()),
            _ => Pattern::Glob(source.to_owned()),
        }
    }

    /// Whether `source` is a `/regex/`.
    pub fn is_regex_source(source: &str) -> bool {
        source.len() >= 2 && source.starts_with('/') && source.ends_with('/')
    }

    pub fn matches(&self, candidate: &str) -> bool {
        match self {
            Pattern::Exact(s) => s == candidate,
            Pattern::Prefix(p) => candidate.starts_with(p.as_str()),
            Pattern::Glob(g) => glob_match(g.as_bytes(), candidate.as_bytes()),
            Pattern::Regex(r) => r.is_match(candidate),
        }
    }

    /// True for `*` (matches everything).
    pub fn is_match_all(&self) -> bool {
        matches!(self, Pattern::Prefix(p) if p.is_empty())
    }
}

/// `*` matches any run (including empty), `?` exactly one byte-char.
/// Iterative with single backtrack point: linear in practice, never exponential.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Several patterns; matches when any does.
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
}

impl PatternSet {
    pub fn parse<S: AsRef<str>>(sources: &[S]) -> Result<PatternSet, PatternError> {
        let patterns = sources.iter().map(|s| Pattern::parse(s.as_ref())).collect::<Result<_, _>>()?;
        Ok(PatternSet { patterns })
    }

    pub fn matches(&self, candidate: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(candidate))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, candidate: &str) -> bool {
        Pattern::parse(pattern).map(|p| p.matches(candidate)).unwrap_or(false)
    }

    #[test]
    fn pattern_semantics() {
        let cases = [
            ("logs", "logs", true),
            ("logs", "logs-1", false),
            ("logs-*", "logs-2026", true),
            ("logs-*", "logs-", true),
            ("logs-*", "log", false),
            ("*", "", true),
            ("*", "anything", true),
            ("l?gs", "logs", true),
            ("l?gs", "lgs", false),
            ("*-prod", "eu-prod", true),
            ("*-prod", "eu-prod-2", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("indices:data/read/*", "indices:data/read/search", true),
            ("/logs-\\d+/", "logs-42", true),
            ("/logs-\\d+/", "logs-42x", false), // full match, not find
            ("/logs-\\d+/", "xlogs-42", false),
            ("/", "/", true), // a lone slash is an exact string
        ];
        for (pattern, candidate, expected) in cases {
            assert_eq!(m(pattern, candidate), expected, "{pattern} vs {candidate}");
        }
    }

    #[test]
    fn bad_regex_is_an_error_naming_it() {
        let e = Pattern::parse("/(unclosed/").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("invalid pattern `/(unclosed/`"), "{e}");
    }

    #[test]
    fn glob_does_not_explode() {
        // Eight stars against 10,000 `a`s: a backtracking matcher would take
        // O(n^8) steps (O(n^2) at the least). Bound it by a one-star pattern
        // scanning the same text in the same run, with a generous ratio.
        let text = "a".repeat(10_000);
        let hostile = Pattern::parse("*a*a*a*a*a*a*a*a*b");
        let baseline = Pattern::parse("*b");
        let (Ok(hostile), Ok(baseline)) = (hostile, baseline) else { panic!("patterns parse") };
        let time = |pattern: &Pattern| {
            let started = std::time::Instant::now();
            for _ in 0..50 {
                assert!(!pattern.matches(std::hint::black_box(&text)));
            }
            started.elapsed()
        };
        let mut ratios: Vec<f64> =
            (0..5).map(|_| time(&hostile).as_secs_f64() / time(&baseline).as_secs_f64().max(1e-9)).collect();
        ratios.sort_by(f64::total_cmp);
        assert!(ratios[2] < 50.0, "eight stars vs one: {ratios:?}");
    }
}
