//! A chat `messages` list counted the way OpenAI's API counts a prompt.
//!
//! The rule is the one OpenAI publishes in its cookbook ("How to count tokens with
//! tiktoken", `num_tokens_from_messages`), checked there against the API's own
//! `usage.prompt_tokens` (129 for its example on gpt-4-0613):
//! - every message costs 3 tokens of framing (`<|start|>{role}<|message|>...<|end|>`) plus
//!   the tokens of its role and of its content;
//! - a `name` costs its tokens plus 1;
//! - the reply is primed with `<|start|>assistant<|message|>`: 3 tokens, once.
//!
//! The cookbook does not cover an assistant's `tool_calls` (or the older `function_call`);
//! for those this follows `tiktoken-rs`'s `num_tokens_from_messages`, whose authors checked
//! it against the API: each call costs the tokens of its function name and arguments plus 1.
//! A `refusal` is counted as text. Content given as parts counts its text parts; a part the
//! BPE cannot count (an image, audio, a file) makes the whole list uncountable (`None`), so
//! the caller estimates instead of reporting a count that leaves the part out.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use super::Encoding;

const TOKENS_PER_MESSAGE: usize = 3;
const TOKENS_PER_NAME: usize = 1;
const TOKENS_PER_CALL: usize = 1;
const REPLY_PRIMING: usize = 3;

/// One message as the chat API takes it; fields the count does not use are skipped unread.
#[derive(Deserialize)]
pub struct Message<'a> {
    #[serde(borrow, default)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(borrow, default)]
    function_call: Option<Function<'a>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<Part<'a>>),
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow)]
    function: Function<'a>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Cow<'a, str>,
}

/// The messages were not a JSON list of message objects.
#[derive(Debug)]
pub struct ChatCountError(String);

impl fmt::Display for ChatCountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "messages must be a JSON list of chat messages: {}",
            self.0
        )
    }
}

impl std::error::Error for ChatCountError {}

/// Prompt tokens of a `messages` list given as JSON text (what a request body holds).
/// Ok(None): a part no tokenizer counts (see the module's rule).
pub fn count_chat_json(encoding: Encoding, json: &[u8]) -> Result<Option<usize>, ChatCountError> {
    let messages: Vec<Message<'_>> =
        serde_json::from_slice(json).map_err(|e| ChatCountError(e.to_string()))?;
    Ok(count_chat(encoding, &messages))
}

/// Prompt tokens of parsed messages, by the rule above.
pub fn count_chat(encoding: Encoding, messages: &[Message<'_>]) -> Option<usize> {
    let mut total = REPLY_PRIMING;
    for message in messages {
        total += TOKENS_PER_MESSAGE + encoding.count(&message.role)?;
        match &message.content {
            None => {}
            Some(Content::Text(text)) => total += encoding.count(text)?,
            Some(Content::Parts(parts)) => {
                for part in parts {
                    match (part.kind.as_ref(), &part.text) {
                        ("text", Some(text)) => total += encoding.count(text)?,
                        ("text", None) => {}
                        _ => return None,
                    }
                }
            }
        }
        if let Some(name) = &message.name {
            total += encoding.count(name)? + TOKENS_PER_NAME;
        }
        let calls = message.tool_calls.iter().flatten().map(|c| &c.function);
        for function in calls.chain(message.function_call.iter()) {
            total += encoding.count(&function.name)?
                + encoding.count(&function.arguments)?
                + TOKENS_PER_CALL;
        }
        if let Some(refusal) = &message.refusal {
            total += encoding.count(refusal)?;
        }
    }
    Some(total)
}

/// Completion tokens of an answer the provider sent without usage: the tokens of the text
/// the model produced, and for each tool call its function name and arguments plus 1 (the
/// same per-call rule as a tool call in the prompt's history).
pub fn count_completion<'t>(
    encoding: Encoding,
    content: &str,
    tool_calls: impl IntoIterator<Item = (&'t str, &'t str)>,
) -> Option<usize> {
    let mut total = encoding.count(content)?;
    for (name, arguments) in tool_calls {
        total += encoding.count(name)? + encoding.count(arguments)? + TOKENS_PER_CALL;
    }
    Some(total)
}
