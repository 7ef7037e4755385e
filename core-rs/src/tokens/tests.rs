//! Known counts. The text counts were computed with OpenAI's own `tiktoken` 0.14.0 (Python)
//! over the same rank files, after checking each file's sha256 against the hash tiktoken
//! pins for it (o200k_base 446a9538…, cl100k_base 223921b7…):
//!     len(tiktoken.get_encoding(name).encode_ordinary(text))
//! The message counts: 129 is the prompt_tokens OpenAI's API reported for the cookbook's
//! example on gpt-4-0613 ("How to count tokens with tiktoken"); 78 is the count the
//! tiktoken-rs authors checked against the API for a function-call exchange on gpt-4-0613;
//! the o200k_base figures are the same rule over tiktoken's encode_ordinary.

use super::*;

const PARAGRAPH: &str = "Large language models read text as tokens: pieces of words chosen by \
byte-pair encoding. The same sentence costs a different number of tokens under each encoding, \
which is why a gateway counts with the model's own tokenizer.";
const CODE: &str =
    "fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!(\"{v:?}\");\n}\n";
const UNICODE: &str = "こんにちは世界! Ça va? Grüße aus München. 🌍🚀";
const RUSSIAN: &str = "Привет, как дела? Всё хорошо.";
const SPECIAL: &str = "text with <|endoftext|> inside";
const STREAM: &str =
    "The capital of France is Paris. It has been the country's capital since the 10th century.";

#[test]
fn texts_count_as_tiktoken_counts_them() {
    use Encoding::*;
    let cases: &[(Encoding, &str, usize)] = &[
        (O200kBase, "hello world", 2),
        (O200kBase, "tiktoken is great!", 6),
        (O200kBase, "antidisestablishmentarianism", 6),
        (O200kBase, PARAGRAPH, 44),
        (O200kBase, CODE, 27),
        (O200kBase, UNICODE, 14),
        (O200kBase, RUSSIAN, 9),
        (O200kBase, SPECIAL, 10),
        (O200kBase, STREAM, 20),
        (O200kBase, "", 0),
        (Cl100kBase, "hello world", 2),
        (Cl100kBase, "tiktoken is great!", 6),
        (Cl100kBase, PARAGRAPH, 44),
        (Cl100kBase, CODE, 27),
        (Cl100kBase, UNICODE, 20),
        (Cl100kBase, RUSSIAN, 17),
        (Cl100kBase, SPECIAL, 9),
        (Cl100kBase, STREAM, 21),
    ];
    for &(encoding, text, expected) in cases {
        assert_eq!(
            encoding.count(text),
            Some(expected),
            "{encoding:?} {text:?}"
        );
    }
}

#[test]
fn models_map_to_their_encoding_by_the_crates_table() {
    use Encoding::*;
    for model in [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1-nano",
        "o1",
        "o3-mini",
        "o4-mini",
        "gpt-5",
    ] {
        assert_eq!(Encoding::for_model(model), Some(O200kBase), "{model}");
    }
    for model in [
        "gpt-4",
        "gpt-4-turbo",
        "gpt-3.5-turbo",
        "gpt-35-turbo",
        "text-embedding-3-small",
    ] {
        assert_eq!(Encoding::for_model(model), Some(Cl100kBase), "{model}");
    }
    assert_eq!(
        Encoding::for_model("text-embedding-ada-002"),
        Some(Cl100kBase)
    );
    assert_eq!(
        Encoding::for_model("ft:gpt-4o-mini:acme:tuned:abc"),
        Some(O200kBase)
    );
    // No tokenizer known: the caller estimates.
    for model in [
        "claude-3-5-haiku",
        "gemini-1.5-flash",
        "llama3",
        "mistral-small",
        "m",
    ] {
        assert_eq!(Encoding::for_model(model), None, "{model}");
        assert_eq!(count_for_model(model, "hello"), None);
    }
    // Known to the crate, deliberately not linked (see the module comment).
    assert_eq!(Encoding::for_model("text-davinci-003"), None);
    assert_eq!(Encoding::for_model("gpt-oss-20b"), None);
}

const COOKBOOK: &str = r#"[
 {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
 {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
 {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
 {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
 {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
 {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}
]"#;

const FUNCTION_CALL: &str = r#"[
 {"role": "system", "content": "You are a friendly chatbot.\n"},
 {"role": "assistant", "content": "Hello, I am a friendly chatbot!\n"},
 {"role": "user", "content": "What is the weather in New York?"},
 {"role": "assistant", "content": "", "function_call": {"name": "get_weather", "arguments": "{\n  \"city\": \"New York\"\n}"}},
 {"role": "function", "name": "get_weather", "content": "{\"temperature\": 72, \"conditions\": \"partly_cloudy\"}"}
]"#;

#[test]
fn messages_count_as_openai_counts_a_prompt() {
    let count = |e, json: &str| count_chat_json(e, json.as_bytes()).unwrap();
    assert_eq!(count(Encoding::Cl100kBase, COOKBOOK), Some(129));
    assert_eq!(count(Encoding::O200kBase, COOKBOOK), Some(124));
    assert_eq!(count(Encoding::Cl100kBase, FUNCTION_CALL), Some(78));
    assert_eq!(count(Encoding::O200kBase, FUNCTION_CALL), Some(76));
    assert_eq!(count(Encoding::O200kBase, "[]"), Some(3)); // the reply priming alone
}

#[test]
fn tool_calls_and_parts_count_by_the_same_pieces() {
    let e = Encoding::O200kBase;
    let n = |t: &str| e.count(t).unwrap();
    // A tool call in an assistant message, written the chat API's way, with null content.
    let json = r#"[{"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
        "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}]"#;
    let expected = 3 + 3 + n("assistant") + n("get_weather") + n(r#"{"city": "Paris"}"#) + 1;
    assert_eq!(count_chat_json(e, json.as_bytes()).unwrap(), Some(expected));
    // Text parts count like the same text given as a string, part by part.
    let parts = r#"[{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]"#;
    let plain = r#"[{"role": "user", "content": "hello world"}]"#;
    assert_eq!(
        count_chat_json(e, parts.as_bytes()).unwrap(),
        count_chat_json(e, plain.as_bytes()).unwrap()
    );
    // An image cannot be counted by a BPE: the whole prompt is left to the estimate.
    let image = r#"[{"role": "user", "content": [{"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]"#;
    assert_eq!(count_chat_json(e, image.as_bytes()).unwrap(), None);
    // Escaped strings (not borrowable from the input) count as their decoded text.
    let escaped = r#"[{"role": "user", "content": "caf\u00e9 \"quoted\""}]"#;
    let decoded = 3 + 3 + n("user") + n("café \"quoted\"");
    assert_eq!(
        count_chat_json(e, escaped.as_bytes()).unwrap(),
        Some(decoded)
    );
}

#[test]
fn completions_count_their_text_and_calls() {
    let e = Encoding::O200kBase;
    assert_eq!(count_completion(e, STREAM, []), Some(20));
    let args = r#"{"city": "Paris"}"#;
    let with_call = count_completion(e, "", [("get_weather", args)]).unwrap();
    assert_eq!(
        with_call,
        e.count("get_weather").unwrap() + e.count(args).unwrap() + 1
    );
}

#[test]
fn bad_messages_are_an_error_not_a_count() {
    for bad in [
        &b"{}"[..],
        b"not json",
        b"[1, 2]",
        b"[{\"role\": 3}]",
        b"\xff",
    ] {
        let err = count_chat_json(Encoding::O200kBase, bad).unwrap_err();
        assert!(
            err.to_string().starts_with("messages must be a JSON list"),
            "{err}"
        );
    }
}

#[test]
fn runs_over_the_bound_are_left_to_the_estimate() {
    let e = Encoding::O200kBase;
    let limit = guard::MAX_RUN_BYTES;
    assert!(e.count(&"a".repeat(limit)).is_some());
    assert_eq!(e.count(&"a".repeat(limit + 1)), None);
    assert_eq!(e.count(&" ".repeat(limit + 1)), None);
    assert_eq!(e.count(&"!".repeat(limit + 1)), None);
    // Long texts of words, numbers or minified JSON are counted, whatever their length.
    let words = "word ".repeat(limit);
    assert_eq!(e.count(&words), Some(limit + 1)); // "word", " word" each, a last " "
    assert!(e.count(&"7".repeat(limit * 2)).is_some());
    assert!(e
        .count(&r#"{"key":"value","n":[1,2]},"#.repeat(limit))
        .is_some());
}

#[test]
fn one_encoding_is_shared_by_every_thread() {
    let counts: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| Encoding::Cl100kBase.count(PARAGRAPH)))
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(counts, vec![Some(44); 4]);
    let first = Encoding::Cl100kBase.bpe() as *const _;
    assert_eq!(first, Encoding::Cl100kBase.bpe() as *const _);
}
