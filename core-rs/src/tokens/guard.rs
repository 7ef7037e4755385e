//! Which texts are counted exactly, and which are left to the estimate.
//!
//! A caller controls the text, and a gateway must not spend unbounded CPU on it. The
//! pre-tokenizer cuts text into pieces (a run of letters, of symbols, of whitespace; numbers
//! by three digits), and the work per piece grows faster than its length: BPE merges within
//! the piece, and the regex backtracks over whitespace runs (measured: 16 K spaces take a
//! few milliseconds, 64 K a hundred). A text with a run of one class over `MAX_RUN_BYTES`
//! is not counted (None: the caller estimates and marks it). Prose, code and minified JSON
//! never come near it (their runs are words and punctuation); padding does.

/// Longest run of letters, of whitespace or of other symbols counted exactly.
pub const MAX_RUN_BYTES: usize = 16 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Space,
    Digit,
    Other,
}

fn class(c: char) -> Class {
    if c.is_alphabetic() {
        Class::Letter
    } else if c.is_whitespace() {
        Class::Space
    } else if c.is_numeric() {
        Class::Digit
    } else {
        Class::Other
    }
}

/// Whether `text` has no run of one class longer than `MAX_RUN_BYTES`. Digits never make
/// a long piece: the pre-tokenizer cuts numbers into pieces of at most three digits.
pub fn countable(text: &str) -> bool {
    if text.len() <= MAX_RUN_BYTES {
        return true;
    }
    let (mut run, mut current) = (0usize, Class::Digit);
    for c in text.chars() {
        let this = class(c);
        if this != current || this == Class::Digit {
            run = 0;
            current = this;
        }
        run += c.len_utf8();
        if run > MAX_RUN_BYTES {
            return false;
        }
    }
    true
}
