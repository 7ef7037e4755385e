//! Token counts with the models' own tokenizers, for calls whose provider sent no usage and
//! for the prompt side of the tokens-per-minute checks made before a call.
//!
//! OpenAI's BPE ranks ship inside the `tiktoken-rs` crate (`include_str!`), so nothing is
//! fetched at run time. Which model uses which encoding is the crate's own table
//! (`tiktoken_rs::tokenizer::get_tokenizer`, kept in step with OpenAI's `tiktoken/model.py`);
//! pygate links two encodings of it: `o200k_base` (gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3,
//! o4-mini, chatgpt-4o) and `cl100k_base` (gpt-4, gpt-3.5-turbo, text-embedding-3-*,
//! text-embedding-ada-002). Every other model is unknown (`None`): the caller estimates and
//! says so (`tokens_estimated`). That covers the retired completion models of r50k/p50k (no
//! provider pygate speaks serves them; leaving them out keeps ~1.6 MB of ranks out of the
//! library) and gpt-oss, whose harmony chat format adds messages of its own, so the message
//! rule below would not hold.
//!
//! Each encoding is built once, on first use, and shared by every thread (`OnceLock`): the
//! ranks are parsed into a hash map (tens of milliseconds), never per call.

mod chat;
mod guard;

use std::sync::OnceLock;

use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

pub use chat::{count_chat, count_chat_json, count_completion, ChatCountError, Message};

/// A BPE encoding pygate can count with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    O200kBase,
    Cl100kBase,
}

impl Encoding {
    /// The encoding of a provider's model name (`gpt-4o-mini`, `ft:gpt-4o:org:x:id`,
    /// Azure's `gpt-35-turbo`), or None when no tokenizer is known for it.
    pub fn for_model(model: &str) -> Option<Encoding> {
        match get_tokenizer(model)? {
            Tokenizer::O200kBase => Some(Encoding::O200kBase),
            Tokenizer::Cl100kBase => Some(Encoding::Cl100kBase),
            Tokenizer::O200kHarmony
            | Tokenizer::P50kBase
            | Tokenizer::P50kEdit
            | Tokenizer::R50kBase
            | Tokenizer::Gpt2 => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    fn cell(self) -> &'static OnceLock<CoreBPE> {
        static O200K: OnceLock<CoreBPE> = OnceLock::new();
        static CL100K: OnceLock<CoreBPE> = OnceLock::new();
        match self {
            Encoding::O200kBase => &O200K,
            Encoding::Cl100kBase => &CL100K,
        }
    }

    fn bpe(self) -> &'static CoreBPE {
        // The ranks are compiled in: failing to parse them is a broken build, not an input.
        self.cell().get_or_init(|| match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base().expect("the o200k_base ranks parse"),
            Encoding::Cl100kBase => {
                tiktoken_rs::cl100k_base().expect("the cl100k_base ranks parse")
            }
        })
    }

    /// Whether the ranks are parsed already (the first count pays for that; a caller
    /// holding a lock, such as Python's GIL, releases it for that count).
    pub fn loaded(self) -> bool {
        self.cell().get().is_some()
    }

    /// Tokens of `text` as a model reads caller text: special-token spellings such as
    /// `<|endoftext|>` are ordinary characters (OpenAI does not let a caller's text inject
    /// special tokens), so they count as the pieces they are made of. None only when the
    /// text is one the tokenizer cannot count in bounded time (see guard.rs).
    pub fn count(self, text: &str) -> Option<usize> {
        if !guard::countable(text) {
            return None;
        }
        // A panic inside the tokenizer (its regex engine reports a backtracking limit as an
        // error that the crate unwraps) must not take the gateway down: count as unknown.
        std::panic::catch_unwind(|| self.bpe().encode_ordinary(text).len()).ok()
    }
}

/// Tokens of `text` for `model`; None when the model has no known tokenizer.
pub fn count_for_model(model: &str, text: &str) -> Option<usize> {
    Encoding::for_model(model)?.count(text)
}

#[cfg(test)]
mod tests;
