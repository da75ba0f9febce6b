//! The English analyzer of full-text search: text → terms.
//!
//! Lowercase, split on every character that is not alphanumeric (Unicode), drop English
//! stopwords, stem with Porter2 (Snowball English, `rust-stemmers`). Documents and queries go
//! through the same steps, so a query for "Running" finds "runs".

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::OnceLock;

use hashbrown::HashMap;

use rust_stemmers::{Algorithm, Stemmer};

/// Lucene's English stopwords (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`): short, so that
/// content words like "first" or "between" stay searchable.
const STOPWORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

/// Words whose stems a thread remembers: a corpus repeats its words (118k WordNet glosses:
/// 1.4M words, 80k distinct), and stemming was a third of building its text index.
const STEM_CACHE: usize = 1 << 17;

thread_local! {
    /// Lowercased word → its term (`None`: a stopword).
    static STEMS: RefCell<HashMap<Box<str>, Option<Box<str>>>> = RefCell::new(HashMap::new());
}

/// The terms of `text`, in order (repeats kept: term frequencies count them).
pub(crate) fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    STEMS.with_borrow_mut(|cache| {
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let lower: Cow<'_, str> = if word.chars().any(char::is_uppercase) {
                Cow::Owned(word.to_lowercase())
            } else {
                Cow::Borrowed(word)
            };
            if let Some(term) = cache.get(lower.as_ref()) {
                out.extend(term.as_deref().map(str::to_string));
                continue;
            }
            let term = (!STOPWORDS.contains(&lower.as_ref())).then(|| stemmer().stem(&lower).into_owned());
            if cache.len() >= STEM_CACHE {
                cache.clear();
            }
            cache.insert(lower.as_ref().into(), term.as_deref().map(Into::into));
            out.extend(term);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::terms;

    #[test]
    fn lowercases_splits_drops_stopwords_and_stems() {
        assert_eq!(terms("The Runner was RUNNING, and runs!"), ["runner", "run", "run"]);
        assert_eq!(terms("e-mail: x@y.org"), ["e", "mail", "x", "y", "org"]);
        assert_eq!(terms("Ünïcödé straße 42"), ["ünïcödé", "straße", "42"]);
        assert!(terms("to be or not to be").is_empty());
        assert!(terms("  ,;  ").is_empty());
    }
}
