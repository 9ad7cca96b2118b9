//! The assistant messages of a response: each opened on its first text or audio (a new one
//! after each MCP call, `mcp.rs`), closed once said whole (its words have all come and its
//! audio has all been sent) or when the response ends (`respond.rs`).

use super::actor::{ActiveResponse, CallActor, FunctionCallOut, MessageOut};
use super::events::{CallEvent, PartRef};
use crate::conversation::{Content, Item, ItemKind, ItemStatus, Role};

impl CallActor {
    /// Where message `m`'s content is, for its events.
    pub(super) fn part(r: &ActiveResponse, m: &MessageOut) -> PartRef {
        m.part(&r.id)
    }

    /// Open message `segment` on its first text or audio.
    pub(super) async fn ensure_message(&mut self, segment: usize) {
        let Some(r) = self.response.as_mut() else {
            return;
        };
        if r.messages.iter().any(|m| m.segment == segment) {
            return;
        }
        let item_id = self.ids.next("item");
        let output_index = r.outputs;
        r.outputs += 1;
        let m = MessageOut {
            item_id,
            output_index,
            text: String::new(),
            segment,
            closed: false,
        };
        let (item, events) = m.opened(&r.id, r.audio);
        r.messages.push(m);
        let _ = self.conversation.insert(item, None);
        for event in events {
            self.emit(event).await;
        }
    }

    /// Close the messages said whole while the response goes on: those whose words have all
    /// come (an MCP call followed them) and, with audio, all been sent.
    pub(super) async fn close_said_messages(&mut self) {
        let Some(r) = self.response.as_mut() else {
            return;
        };
        let said = |m: &MessageOut| {
            !m.closed
                && m.segment < r.text_segment
                && (!r.audio
                    || (m.segment < r.audio_segment
                        && r.playback
                            .item_span(&m.item_id)
                            .is_none_or(|(span, _)| r.playback.sent() >= span.end)))
        };
        let ready: Vec<usize> = (0..r.messages.len())
            .filter(|&i| said(&r.messages[i]))
            .collect();
        let mut closing = Vec::new();
        for i in ready {
            r.messages[i].closed = true;
            closing.push(r.messages[i].clone());
        }
        let (response_id, audio) = (r.id.clone(), r.audio);
        for m in closing {
            self.close_message(&response_id, audio, &m, ItemStatus::Completed)
                .await;
        }
    }

    /// Send message `m`'s closing events with its final text; the item as closed.
    pub(super) async fn close_message(
        &mut self,
        response_id: &str,
        audio: bool,
        m: &MessageOut,
        status: ItemStatus,
    ) -> Option<Item> {
        for event in m.part_closed(response_id, audio) {
            self.emit(event).await;
        }
        let slot = self.conversation.get_mut(&m.item_id)?;
        *slot = m.item(audio, status);
        let item = slot.clone();
        self.emit(m.done(response_id, item.clone())).await;
        Some(item)
    }
}

/// The events of one message, for the conversation's responses and out-of-band ones alike.
impl MessageOut {
    pub(super) fn part(&self, response_id: &str) -> PartRef {
        PartRef {
            response_id: response_id.to_owned(),
            item_id: self.item_id.clone(),
            output_index: self.output_index,
            content_index: 0,
        }
    }

    /// Its item: one part holding its text so far.
    pub(super) fn item(&self, audio: bool, status: ItemStatus) -> Item {
        let content = if audio {
            Content::OutputAudio {
                transcript: self.text.clone(),
            }
        } else {
            Content::OutputText {
                text: self.text.clone(),
            }
        };
        let mut item = Item::message(self.item_id.clone(), Role::Assistant, vec![content]);
        item.status = status;
        item
    }

    /// Its item as it opens (in progress), and the events that announce it (the item shown
    /// without content, then its part).
    pub(super) fn opened(&self, response_id: &str, audio: bool) -> (Item, [CallEvent; 2]) {
        let item = self.item(audio, ItemStatus::InProgress);
        let mut shown = item.clone();
        if let ItemKind::Message { content, .. } = &mut shown.kind {
            content.clear();
        }
        let events = [
            CallEvent::OutputItemAdded {
                response_id: response_id.to_owned(),
                output_index: self.output_index,
                item: shown,
            },
            CallEvent::ContentPartAdded {
                part: self.part(response_id),
                audio,
            },
        ];
        (item, events)
    }

    /// Add `delta` to its text, and the event that says so.
    pub(super) fn push_text(&mut self, response_id: &str, audio: bool, delta: String) -> CallEvent {
        self.text.push_str(&delta);
        CallEvent::TextDelta {
            part: self.part(response_id),
            audio,
            delta,
        }
    }

    /// Its closed `item` is done (after [`Self::part_closed`]).
    pub(super) fn done(&self, response_id: &str, item: Item) -> CallEvent {
        CallEvent::OutputItemDone {
            response_id: response_id.to_owned(),
            output_index: self.output_index,
            item,
        }
    }

    /// The events that close its part with its final text (audio first, when spoken).
    pub(super) fn part_closed(&self, response_id: &str, audio: bool) -> Vec<CallEvent> {
        let part = self.part(response_id);
        let mut events = Vec::with_capacity(3);
        if audio {
            events.push(CallEvent::AudioDone { part: part.clone() });
        }
        events.push(CallEvent::TextDone {
            part: part.clone(),
            audio,
            text: self.text.clone(),
        });
        events.push(CallEvent::ContentPartDone {
            part,
            audio,
            text: self.text.clone(),
        });
        events
    }
}

/// The events of one function call the model makes.
impl FunctionCallOut {
    fn part(&self, response_id: &str) -> PartRef {
        PartRef {
            response_id: response_id.to_owned(),
            item_id: self.item_id.clone(),
            output_index: self.output_index,
            content_index: 0,
        }
    }

    pub(super) fn item(&self, status: ItemStatus) -> Item {
        let kind = ItemKind::FunctionCall {
            call_id: self.call_id.clone(),
            name: self.name.clone(),
            arguments: self.arguments.clone(),
        };
        Item::new(self.item_id.clone(), kind, status)
    }

    /// Its item appears (in progress, no arguments yet).
    pub(super) fn started(&self, response_id: &str) -> CallEvent {
        CallEvent::OutputItemAdded {
            response_id: response_id.to_owned(),
            output_index: self.output_index,
            item: self.item(ItemStatus::InProgress),
        }
    }

    /// Add `delta` to its arguments, and the event that says so.
    pub(super) fn push_arguments(&mut self, response_id: &str, delta: String) -> CallEvent {
        self.arguments.push_str(&delta);
        CallEvent::FunctionCallArgumentsDelta {
            part: self.part(response_id),
            call_id: self.call_id.clone(),
            delta,
        }
    }

    /// Its item as it ends, and the events that close it (the arguments, then the item).
    pub(super) fn closed(&self, response_id: &str, status: ItemStatus) -> (Item, [CallEvent; 2]) {
        let item = self.item(status);
        let events = [
            CallEvent::FunctionCallArgumentsDone {
                part: self.part(response_id),
                call_id: self.call_id.clone(),
                name: self.name.clone(),
                arguments: self.arguments.clone(),
            },
            CallEvent::OutputItemDone {
                response_id: response_id.to_owned(),
                output_index: self.output_index,
                item: item.clone(),
            },
        ];
        (item, events)
    }
}
