//! Prompt assembly under a token budget, in priority order:
//! persona > recent messages > profile, memory, knowledge > summary of older turns.
//!
//! The persona and the user's latest message are always kept. Recent messages are kept
//! newest first, whole exchanges at a time (an assistant's tool calls travel with their
//! results). Context items fill what is left, best first within each section; the summary
//! of older turns comes last.
//!
//! Where each part goes is chosen for prompt caching. The system prompt holds what changes
//! rarely (the persona, and the summary when one is needed), and the history follows it
//! unchanged, so the next turn's prompt starts as this one did and a provider that caches
//! prompt prefixes (the embedded LLM; OpenAI-style prompt caching) computes only the new
//! turns. The context items, looked up again for every turn, go into the latest user message,
//! before the user's words under [`USER_WORDS_HEADING`]: put in the system prompt, a changed
//! item would change the prompt's start and make the whole prompt be computed again. The
//! user message, not a second system message, because several chat templates (Mistral's,
//! Gemma's) reject a system message after the first.

use super::summary::OlderTurns;
use super::{ContextItem, ContextPart, PartKind};
use crate::llm::ChatMessage;

/// Tokens a piece of text costs, roughly (four characters a token, as for English with
/// BPE tokenizers), plus a small per-message overhead added by the caller.
pub fn approx_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Framing tokens each chat message costs (role markers).
const MESSAGE_OVERHEAD: usize = 4;

/// The line that heads the user's own words in a user message carrying the turn's context
/// items.
const USER_WORDS_LINE: &str = "## The user's message\n";

/// Heads the user's own words in a user message that carries the turn's context items.
pub const USER_WORDS_HEADING: &str = USER_WORDS_LINE.trim_ascii_end();

/// A user message as [`assemble`] leaves it: the context sections put before the user's
/// words (`None` when it carries none) and the words.
pub fn split_user_message(text: &str) -> (Option<&str>, &str) {
    match text.rsplit_once(USER_WORDS_LINE) {
        Some((sections, words)) => (Some(sections.trim_end()), words),
        None => (None, text),
    }
}

#[derive(Debug, Clone)]
pub struct PromptInputs<'a> {
    /// The persona's system prompt.
    pub persona: &'a str,
    /// The conversation, oldest first; the last message is the one being answered.
    pub history: &'a [ChatMessage],
    pub context: &'a [ContextPart],
    /// A summary of the conversation's first messages. It is used when the prompt lacks
    /// some of them: the budget dropped old messages, or `history` is shorter than what
    /// the summary covers (the client sent only recent turns).
    pub summary: Option<&'a OlderTurns>,
    /// Tokens the prompt may use (the model's context minus room for the reply).
    pub budget: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assembled {
    pub messages: Vec<ChatMessage>,
    /// Tokens used, by the same count the budget was checked with.
    pub tokens: usize,
    /// History messages left out for lack of room.
    pub dropped_messages: usize,
    /// Context items left out for lack of room.
    pub dropped_items: usize,
    pub summary_included: bool,
}

fn message_tokens(m: &ChatMessage, count: &dyn Fn(&str) -> usize) -> usize {
    MESSAGE_OVERHEAD
        + match m {
            ChatMessage::System(t) | ChatMessage::User(t) => count(t),
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => {
                count(content)
                    + tool_calls
                        .iter()
                        .map(|c| count(&c.name) + count(&c.arguments))
                        .sum::<usize>()
            }
            ChatMessage::Tool { content, .. } => count(content),
        }
}

/// Split the history into blocks that must be kept or dropped together: an assistant
/// message with tool calls and the tool results that follow it; anything else alone.
fn blocks(history: &[ChatMessage]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, m) in history.iter().enumerate() {
        match (m, out.last_mut()) {
            (ChatMessage::Tool { .. }, Some(last)) if last.end == i => last.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

fn item_line(kind: PartKind, index: usize, item: &ContextItem) -> String {
    match kind {
        PartKind::Knowledge => format!("[{}] ({}) {}", index + 1, item.source, item.text),
        PartKind::Profile | PartKind::Memory => format!("- {}", item.text),
    }
}

/// Old messages are dropped in steps of this share of the budget (a quarter).
const DROP_STEPS: usize = 4;

/// Where to cut a history that does not fit, given the first block that would fit: the first
/// checkpoint at or after it (never past the last block, the question), checkpoints being
/// the blocks where each further `budget / DROP_STEPS` tokens of the conversation begin.
/// The cut then stays put while the
/// conversation grows by that much, so the prompt keeps its start and an LLM that caches
/// earlier prompts (the embedded one) computes only the new turns. Dropping one message per
/// turn instead would change the start every turn and make it compute the whole prompt.
fn stable_cut(costs: &[usize], fits_from: usize, budget: usize) -> usize {
    let step = (budget / DROP_STEPS).max(1);
    let mut before = 0; // tokens of the blocks before block `i`
    for (i, &cost) in costs.iter().enumerate() {
        if i >= fits_from && (i == 0 || before / step > (before - costs[i - 1]) / step) {
            return i;
        }
        before += cost;
    }
    // No checkpoint after it (a persona or a message of most of the budget): cut where it fits.
    fits_from
}

/// Assemble the messages for one LLM request. `count` measures text in tokens.
pub fn assemble(inputs: &PromptInputs<'_>, count: &dyn Fn(&str) -> usize) -> Assembled {
    let mut used = MESSAGE_OVERHEAD + count(inputs.persona);

    // Recent messages, newest first; the last block (the question) is always kept.
    let blocks = blocks(inputs.history);
    let costs: Vec<usize> = blocks
        .iter()
        .map(|b| {
            inputs.history[b.clone()]
                .iter()
                .map(|m| message_tokens(m, count))
                .sum()
        })
        .collect();
    let mut first = blocks.len();
    for (i, &cost) in costs.iter().enumerate().rev() {
        if i + 1 < blocks.len() && used + cost > inputs.budget {
            break;
        }
        used += cost;
        first = i;
    }
    if first > 0 {
        let cut = stable_cut(&costs, first, inputs.budget);
        used -= costs[first..cut].iter().sum::<usize>();
        first = cut;
    }
    let keep_from = blocks.get(first).map_or(inputs.history.len(), |b| b.start);

    // Context sections in priority order, best items first; items that do not fit are
    // skipped (a shorter one further down may still fit).
    let mut parts: Vec<&ContextPart> = inputs.context.iter().collect();
    parts.sort_by_key(|p| p.kind);
    let mut sections = String::new();
    let mut dropped_items = 0;
    // The heading before the user's words, paid for with the first item.
    let mut framing = count(USER_WORDS_HEADING) + 2;
    for part in parts {
        let mut lines = Vec::new();
        let mut items: Vec<&ContextItem> = part.items.iter().collect();
        items.sort_by(|a, b| b.score.total_cmp(&a.score));
        let heading_cost = count(part.kind.heading()) + 2 + framing;
        for item in items {
            let line = item_line(part.kind, lines.len(), item);
            let cost = count(&line) + 1 + if lines.is_empty() { heading_cost } else { 0 };
            if used + cost > inputs.budget {
                dropped_items += 1;
                continue;
            }
            used += cost;
            lines.push(line);
            framing = 0;
        }
        if !lines.is_empty() {
            sections.push_str(&format!(
                "\n\n## {}\n{}",
                part.kind.heading(),
                lines.join("\n")
            ));
        }
    }

    let mut summary_included = false;
    let mut system = inputs.persona.to_owned();
    let missing_turns = |s: &OlderTurns| keep_from > 0 || inputs.history.len() < s.covers;
    if let Some(summary) = inputs
        .summary
        .filter(|s| !s.text.trim().is_empty() && missing_turns(s))
    {
        let text = format!("\n\n## Earlier in this conversation\n{}", summary.text);
        let cost = count(&text);
        if used + cost <= inputs.budget {
            used += cost;
            system.push_str(&text);
            summary_included = true;
        }
    }

    let mut kept = inputs.history[keep_from..].to_vec();
    let latest_words = kept.iter_mut().rev().find_map(|m| match m {
        ChatMessage::User(t) => Some(t),
        _ => None,
    });
    match latest_words {
        _ if sections.is_empty() => {}
        Some(words) => *words = format!("{}\n\n{USER_WORDS_LINE}{words}", sections.trim_start()),
        // No user message kept (a reply asked for without one): the system prompt has them.
        None => system.push_str(&sections),
    }
    let mut messages = Vec::with_capacity(1 + kept.len());
    messages.push(ChatMessage::System(system.trim_start().to_owned()));
    messages.extend(kept);
    Assembled {
        messages,
        tokens: used,
        dropped_messages: keep_from,
        dropped_items,
        summary_included,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;
    use proptest::prelude::*;

    fn words(n: usize) -> String {
        vec!["word"; n].join(" ")
    }

    fn part(kind: PartKind, texts: &[(&str, f32)]) -> ContextPart {
        ContextPart {
            engine: format!("{kind:?}").to_lowercase(),
            kind,
            items: texts
                .iter()
                .map(|(t, s)| ContextItem {
                    text: (*t).to_owned(),
                    source: "faq.md".into(),
                    score: *s,
                })
                .collect(),
        }
    }

    fn older(text: &str, covers: usize) -> OlderTurns {
        OlderTurns {
            text: text.into(),
            covers,
        }
    }

    fn system(a: &Assembled) -> &str {
        match &a.messages[0] {
            ChatMessage::System(s) => s,
            other => panic!("first message is {other:?}"),
        }
    }

    #[test]
    fn everything_fits_in_a_large_budget() {
        let history = vec![
            ChatMessage::User("hi".into()),
            ChatMessage::Assistant {
                content: "hello".into(),
                tool_calls: vec![],
            },
            ChatMessage::User("what is the refund policy?".into()),
        ];
        let context = vec![
            part(
                PartKind::Knowledge,
                &[("Refunds within 30 days.", 0.9), ("Shipping is free.", 0.2)],
            ),
            part(PartKind::Profile, &[("name: Ada", 1.0)]),
        ];
        let a = assemble(
            &PromptInputs {
                persona: "You are helpful.",
                history: &history,
                context: &context,
                // The client sent only the last three of eight messages.
                summary: Some(&older("The user asked about shoes.", 8)),
                budget: 10_000,
            },
            &approx_tokens,
        );
        assert_eq!(a.messages.len(), 4);
        assert_eq!(a.dropped_messages, 0);
        assert!(a.summary_included);
        let s = system(&a);
        assert!(s.starts_with("You are helpful.") && s.contains("The user asked about shoes."));
        assert!(!s.contains("Ada") && !s.contains("Refunds"), "{s}");
        // The context goes with the question: profile before knowledge, knowledge numbered
        // best first, then the user's words.
        let ChatMessage::User(q) = &a.messages[3] else {
            panic!("{:?}", a.messages[3]);
        };
        let profile = q.find("name: Ada").expect("profile");
        let refund = q.find("[1] (faq.md) Refunds").expect("best chunk first");
        let shipping = q.find("[2] (faq.md) Shipping").expect("second chunk");
        assert!(profile < refund && refund < shipping);
        assert!(
            q.ends_with("\n\n## The user's message\nwhat is the refund policy?"),
            "{q}"
        );
        // The earlier messages are as they were, and the turn is still about the words.
        assert_eq!(a.messages[1..3], history[..2]);
        let request = crate::llm::ChatRequest {
            messages: a.messages.clone(),
            ..Default::default()
        };
        assert_eq!(request.latest_user_text(), "what is the refund policy?");
        let (sections, words) = split_user_message(q);
        assert_eq!(words, "what is the refund policy?");
        assert!(sections.is_some_and(
            |s| s.starts_with("## About the user") && s.ends_with("Shipping is free.")
        ));
        assert_eq!(split_user_message("hi"), (None, "hi"));
        assert!(a.tokens >= approx_tokens(s) + approx_tokens(q));
    }

    #[test]
    fn a_new_turn_with_other_context_keeps_the_prompt_start() {
        let mut history = vec![ChatMessage::User("do you have vegan dishes?".into())];
        let turn = |history: &[ChatMessage], item: &str| {
            let context = vec![part(PartKind::Knowledge, &[(item, 0.9)])];
            let inputs = PromptInputs {
                persona: "You take bookings.",
                history,
                context: &context,
                summary: None,
                budget: 10_000,
            };
            assemble(&inputs, &approx_tokens).messages
        };
        let first = turn(&history, "The risotto is vegan.");
        history.push(ChatMessage::Assistant {
            content: "Yes, the risotto.".into(),
            tool_calls: vec![],
        });
        history.push(ChatMessage::User("and for dessert?".into()));
        let second = turn(&history, "The sorbet is vegan.");
        // Everything before the first turn's question is the same; the question is now
        // the user's words alone, and the new context goes with the new question.
        assert_eq!(first[0], second[0]);
        assert_eq!(second[1], history[0]);
        let ChatMessage::User(q) = &second[3] else {
            panic!("{second:?}");
        };
        assert!(q.contains("sorbet") && !q.contains("risotto"), "{q}");
    }

    #[test]
    fn without_a_user_message_the_context_goes_in_the_system_prompt() {
        let history = vec![ChatMessage::Assistant {
            content: "Hello!".into(),
            tool_calls: vec![],
        }];
        let context = vec![part(PartKind::Profile, &[("name: Ada", 1.0)])];
        let a = assemble(
            &PromptInputs {
                persona: "P",
                history: &history,
                context: &context,
                summary: None,
                budget: 10_000,
            },
            &approx_tokens,
        );
        assert_eq!(system(&a), "P\n\n## About the user\n- name: Ada");
        assert_eq!(a.messages[1..], history[..]);
    }

    #[test]
    fn the_summary_fills_in_only_for_messages_the_prompt_lacks() {
        let history: Vec<ChatMessage> = (0..6)
            .map(|i| ChatMessage::User(format!("message {i} {}", words(20))))
            .collect();
        let summary = older("They talked about a refund.", 4);
        let with_budget = |budget| {
            assemble(
                &PromptInputs {
                    persona: "P",
                    history: &history,
                    context: &[],
                    summary: Some(&summary),
                    budget,
                },
                &approx_tokens,
            )
        };
        // Everything fits: the messages the summary covers are all there.
        let all = with_budget(10_000);
        assert_eq!(all.dropped_messages, 0);
        assert!(!all.summary_included);
        // Old messages dropped for room: the summary stands in for them.
        let cut = with_budget(120);
        assert!(cut.dropped_messages > 0);
        assert!(cut.summary_included, "{cut:?}");
        assert!(system(&cut).contains("## Earlier in this conversation\nThey talked"));
    }

    #[test]
    fn recent_messages_outrank_context_and_summary() {
        let mut history = Vec::new();
        for _ in 0..10 {
            history.push(ChatMessage::User(words(40)));
        }
        let context = vec![part(PartKind::Knowledge, &[(&words(80), 1.0)])];
        let a = assemble(
            &PromptInputs {
                persona: "P",
                history: &history,
                context: &context,
                summary: Some(&older(&words(20), 4)),
                budget: 250,
            },
            &approx_tokens,
        );
        // Each message costs 50 + 4: four fit after the persona, nothing else does.
        assert_eq!(a.dropped_messages, 6);
        assert_eq!(a.dropped_items, 1);
        assert!(!a.summary_included);
        assert!(a.tokens <= 250);
    }

    #[test]
    fn the_question_is_kept_even_over_budget() {
        let history = vec![ChatMessage::User(words(500))];
        let a = assemble(
            &PromptInputs {
                persona: "P",
                history: &history,
                context: &[],
                summary: None,
                budget: 10,
            },
            &approx_tokens,
        );
        assert_eq!(a.messages.len(), 2);
    }

    #[test]
    fn tool_results_stay_with_their_call() {
        let history = vec![
            ChatMessage::User(words(10)),
            ChatMessage::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "lookup".into(),
                    arguments: "{}".into(),
                }],
            },
            ChatMessage::Tool {
                call_id: "c1".into(),
                content: words(30),
            },
        ];
        // Room for the tool result alone but not the call and the result together would
        // split the pair; the block is kept whole (it is the newest) or not at all.
        let a = assemble(
            &PromptInputs {
                persona: "P",
                history: &history,
                context: &[],
                summary: None,
                budget: 30,
            },
            &approx_tokens,
        );
        assert!(matches!(a.messages[1], ChatMessage::Assistant { .. }));
        assert_eq!(a.dropped_messages, 1);
    }

    /// `dropped_messages` as a conversation of `lens`-word messages grows one at a time.
    fn cuts_as_it_grows(lens: &[usize], budget: usize) -> Vec<usize> {
        let history: Vec<ChatMessage> = lens.iter().map(|n| ChatMessage::User(words(*n))).collect();
        (1..=history.len())
            .map(|n| {
                let inputs = PromptInputs {
                    persona: "You help.",
                    history: &history[..n],
                    context: &[],
                    summary: None,
                    budget,
                };
                assemble(&inputs, &approx_tokens).dropped_messages
            })
            .collect()
    }

    #[test]
    fn a_long_conversation_drops_old_turns_a_quarter_of_the_budget_at_a_time() {
        // Messages of 42 tokens and a persona of 7 in a budget of 440: ten messages fit.
        // Checkpoints every 110 tokens of conversation begin at messages 3, 6, 8, 11, 14.
        // Once the budget is full, the start moves to the next checkpoint only when it must,
        // every two or three turns, instead of by one message every turn.
        let cuts = cuts_as_it_grows(&[30; 24], 440);
        let mut expected = vec![0; 10];
        expected.extend([3, 3, 3, 6, 6, 6, 8, 8, 11, 11, 11, 14, 14, 14]);
        assert_eq!(cuts, expected);
    }

    proptest! {
        #[test]
        fn a_growing_conversation_keeps_its_start_between_cuts(
            lens in proptest::collection::vec(1usize..200, 1..40),
            budget in 200usize..2000,
        ) {
            let cuts = cuts_as_it_grows(&lens, budget);
            prop_assert!(cuts.windows(2).all(|w| w[0] <= w[1]), "{:?}", cuts);
            // Each move of the start drops at least a step of tokens: few moves in all.
            let total: usize = lens.iter().map(|n| approx_tokens(&words(*n)) + MESSAGE_OVERHEAD).sum();
            let mut moves = cuts.clone();
            moves.dedup();
            prop_assert!(moves.len() - 1 <= total / (budget / DROP_STEPS) + 1, "{:?}", cuts);
        }

        #[test]
        fn within_budget_unless_only_the_question_is_left(
            lens in proptest::collection::vec(1usize..200, 1..30),
            items in proptest::collection::vec((1usize..100, 0.0f32..1.0), 0..20),
            budget in 0usize..2000,
        ) {
            let history: Vec<ChatMessage> = lens.iter().map(|n| ChatMessage::User(words(*n))).collect();
            let texts: Vec<(String, f32)> = items.iter().map(|(n, s)| (words(*n), *s)).collect();
            let refs: Vec<(&str, f32)> = texts.iter().map(|(t, s)| (t.as_str(), *s)).collect();
            let context = vec![part(PartKind::Memory, &refs)];
            let a = assemble(&PromptInputs { persona: "You help.", history: &history, context: &context, summary: Some(&older("older", 3)), budget }, &approx_tokens);
            prop_assert!(a.tokens <= budget || a.messages.len() == 2);
            prop_assert_eq!(a.messages.len() - 1 + a.dropped_messages, history.len());
            // What is kept is a suffix of the history, in order; the latest message carries
            // the context items that fit before its words.
            let kept = &history[a.dropped_messages..];
            let last = a.messages.len() - 1;
            prop_assert_eq!(&a.messages[1..last], &kept[..kept.len() - 1]);
            let (ChatMessage::User(got), ChatMessage::User(words)) = (&a.messages[last], &kept[kept.len() - 1]) else {
                panic!("{:?}", a.messages[last]);
            };
            let shown = items.len() - a.dropped_items;
            match shown {
                0 => prop_assert_eq!(got, words),
                _ => {
                    prop_assert!(got.ends_with(&format!("\n\n{USER_WORDS_HEADING}\n{words}")), "{}", got);
                    prop_assert_eq!(got.matches("\n- ").count(), shown);
                }
            }
        }
    }
}
