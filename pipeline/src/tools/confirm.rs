//! Asking the caller before a tool changes anything, and understanding the answer.
//!
//! The question is written by us from the tool's `confirm` template and the arguments, not
//! by the model, so what the caller approves is exactly what will run. The answer is read
//! conservatively: any negative word wins over a positive one ("yes... no, wait" is no), and
//! only a short reply counts as an answer at all.

use serde_json::{Map, Value};

/// What the caller's reply to a confirmation question means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    /// Not an answer (a new request, a question): the action is not run.
    Unclear,
}

const NEGATIVE: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not",
    "don't",
    "dont",
    "do not",
    "stop",
    "wait",
    "never mind",
    "nevermind",
    "negative",
    "hold on",
    "abort",
    "reject",
];
const POSITIVE: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "go ahead",
    "do it",
    "please do",
    "confirm",
    "confirmed",
    "approve",
    "approved",
    "correct",
    "absolutely",
    "affirmative",
    "that's right",
    "right",
    "proceed",
];
/// Longer replies are not read as an answer.
const MAX_ANSWER_WORDS: usize = 8;

/// Lowercase words with punctuation removed (apostrophes kept).
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('’', "'"))
        .collect()
}

fn contains_phrase(words: &[String], phrase: &str) -> bool {
    let p: Vec<&str> = phrase.split(' ').collect();
    words
        .windows(p.len())
        .any(|w| w.iter().zip(&p).all(|(a, b)| a == b))
}

/// Read a reply to "Shall I go ahead?".
pub fn decide(reply: &str) -> Decision {
    let w = words(reply);
    if w.is_empty() || w.len() > MAX_ANSWER_WORDS {
        return Decision::Unclear;
    }
    if NEGATIVE.iter().any(|p| contains_phrase(&w, p)) {
        return Decision::Reject;
    }
    if POSITIVE.iter().any(|p| contains_phrase(&w, p)) {
        return Decision::Approve;
    }
    Decision::Unclear
}

/// The action in words: the tool's template filled with the arguments, else its
/// description and the arguments.
pub fn describe(template: Option<&str>, description: &str, args: &Map<String, Value>) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(t) = template {
        let mut out = String::new();
        let mut rest = t;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                break;
            };
            out.push_str(&args.get(&after[..close]).map(text).unwrap_or_default());
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        return out;
    }
    let listed: Vec<String> = args
        .iter()
        .map(|(k, v)| format!("{} {}", k.replace('_', " "), text(v)))
        .collect();
    let what = description.trim_end_matches('.');
    if listed.is_empty() {
        what.to_owned()
    } else {
        format!("{what} ({})", listed.join(", "))
    }
}

/// The question put to the caller, spoken in calls and shown in chat.
pub fn question(action: &str) -> String {
    format!(
        "Before I do that, please confirm: {action}. Shall I go ahead? Please answer yes or no."
    )
}

/// Argument names whose values never reach logs or the audit trail.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "card",
    "cvv",
    "cvc",
    "ssn",
    "pin",
    "iban",
];

/// Arguments with secret-looking fields replaced by `"[redacted]"` (nested objects too).
pub fn redact(args: &Value) -> Value {
    match args {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = k.to_ascii_lowercase();
                    if SECRET_NAMES.iter().any(|s| key.contains(s)) {
                        (k.clone(), Value::String("[redacted]".into()))
                    } else {
                        (k.clone(), redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// 1-64 of `[A-Za-z0-9_-]`, as the OpenAI tools API requires of function names.
pub fn is_tool_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn reads_short_answers() {
        for yes in [
            "Yes.",
            "yes please",
            "Yeah, go ahead.",
            "OK",
            "Sure, do it!",
            "That's right.",
        ] {
            assert_eq!(decide(yes), Decision::Approve, "{yes}");
        }
        for no in [
            "No.",
            "no thanks",
            "Don't.",
            "Wait!",
            "yes... no, wait",
            "Never mind",
            "not now",
        ] {
            assert_eq!(decide(no), Decision::Reject, "{no}");
        }
        for other in [
            "",
            "What is my order status?",
            "Can you tell me how long shipping to Berlin takes these days?",
        ] {
            assert_eq!(decide(other), Decision::Unclear, "{other}");
        }
    }

    #[test]
    fn describes_the_action() {
        let args = json!({"order_id": "42", "reason": "late"});
        let args = args.as_object().expect("object");
        assert_eq!(
            describe(Some("cancel order {order_id}"), "", args),
            "cancel order 42"
        );
        assert_eq!(
            describe(None, "Cancel an order.", args),
            "Cancel an order (order id 42, reason late)"
        );
    }

    #[test]
    fn redacts_secrets_at_any_depth() {
        let v = redact(&json!({"order_id": "1", "card_number": "4111", "auth": {"api_key": "k"}}));
        assert_eq!(
            v,
            json!({"order_id": "1", "card_number": "[redacted]", "auth": {"api_key": "[redacted]"}})
        );
    }

    proptest! {
        #[test]
        fn a_negative_word_is_never_approval(prefix in "[a-z ,.]{0,20}", neg in prop::sample::select(NEGATIVE)) {
            let reply = format!("{prefix} {neg} yes");
            prop_assert_ne!(decide(&reply), Decision::Approve);
        }

        #[test]
        fn decide_never_panics(s in "\\PC{0,80}") {
            let _ = decide(&s);
        }
    }
}
