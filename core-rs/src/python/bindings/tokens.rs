//! Token counts (core-rs/src/tokens/) for the Python AI path: the completion and prompt
//! tokens of a call whose provider sent no usage, and the prompt side of the
//! tokens-per-minute checks. Every function answers None for a model with no known
//! tokenizer, and Python estimates and marks the row `tokens_estimated`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::tokens::{self, Encoding};

/// Below this many bytes a count takes microseconds: releasing and taking back the GIL
/// would cost about as much. Longer texts, and the first count of an encoding (which parses
/// its ranks), run with the GIL released.
const RELEASE_GIL_BYTES: usize = 4096;

fn run<T: Send>(
    py: Python<'_>,
    encoding: Encoding,
    bytes: usize,
    f: impl Send + FnOnce() -> T,
) -> T {
    if bytes >= RELEASE_GIL_BYTES || !encoding.loaded() {
        py.allow_threads(f)
    } else {
        f()
    }
}

/// The encoding `model` is counted with ("o200k_base", "cl100k_base"), or None.
#[pyfunction]
pub fn token_encoding(model: &str) -> Option<&'static str> {
    Encoding::for_model(model).map(Encoding::name)
}

/// Tokens of `text` for `model`, or None.
#[pyfunction]
pub fn count_tokens(py: Python<'_>, model: &str, text: &str) -> Option<usize> {
    let encoding = Encoding::for_model(model)?;
    run(py, encoding, text.len(), || encoding.count(text))
}

/// Prompt tokens of a chat `messages` list (its JSON text) for `model`, by OpenAI's rule
/// (core-rs/src/tokens/chat.rs), or None. ValueError when it is not a list of messages.
#[pyfunction]
pub fn count_chat_tokens(
    py: Python<'_>,
    model: &str,
    messages_json: &[u8],
) -> PyResult<Option<usize>> {
    let Some(encoding) = Encoding::for_model(model) else {
        return Ok(None);
    };
    run(py, encoding, messages_json.len(), || {
        tokens::count_chat_json(encoding, messages_json)
    })
    .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Completion tokens of an answer's text and its tool calls ((name, arguments) pairs), or
/// None.
#[pyfunction]
#[pyo3(signature = (model, content, tool_calls = Vec::new()))]
pub fn count_completion_tokens(
    py: Python<'_>,
    model: &str,
    content: &str,
    tool_calls: Vec<(String, String)>,
) -> Option<usize> {
    let encoding = Encoding::for_model(model)?;
    let bytes = content.len()
        + tool_calls
            .iter()
            .map(|(n, a)| n.len() + a.len())
            .sum::<usize>();
    run(py, encoding, bytes, || {
        let calls = tool_calls.iter().map(|(n, a)| (n.as_str(), a.as_str()));
        tokens::count_completion(encoding, content, calls)
    })
}
