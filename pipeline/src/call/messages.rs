//! The assistant messages of a response: each opened on its first text or audio (a new one
//! after each MCP call, `mcp.rs`), closed once said whole (its words have all come and its
//! audio has all been sent) or when the response ends (`respond.rs`).

use super::actor::{ActiveResponse, CallActor, MessageOut};
use super::events::{CallEvent, PartRef};
use crate::conversation::{Content, Item, ItemKind, ItemStatus, Role};

impl CallActor {
    /// Where message `m`'s content is, for its events.
    pub(super) fn part(r: &ActiveResponse, m: &MessageOut) -> PartRef {
        PartRef {
            response_id: r.id.clone(),
            item_id: m.item_id.clone(),
            output_index: m.output_index,
            content_index: 0,
        }
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
        let content = if r.audio {
            Content::OutputAudio {
                transcript: String::new(),
            }
        } else {
            Content::OutputText {
                text: String::new(),
            }
        };
        let mut item = Item::message(item_id.clone(), Role::Assistant, vec![content]);
        item.status = ItemStatus::InProgress;
        let _ = self.conversation.insert(item.clone(), None);
        let m = MessageOut {
            item_id,
            output_index,
            text: String::new(),
            segment,
            closed: false,
        };
        let part = Self::part(r, &m);
        let (audio, response_id) = (r.audio, r.id.clone());
        r.messages.push(m);
        let mut shown = item;
        if let ItemKind::Message { content, .. } = &mut shown.kind {
            content.clear();
        }
        self.emit(CallEvent::OutputItemAdded {
            response_id,
            output_index,
            item: shown,
        })
        .await;
        self.emit(CallEvent::ContentPartAdded { part, audio }).await;
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
        let part = PartRef {
            response_id: response_id.to_owned(),
            item_id: m.item_id.clone(),
            output_index: m.output_index,
            content_index: 0,
        };
        if audio {
            self.emit(CallEvent::AudioDone { part: part.clone() }).await;
        }
        self.emit(CallEvent::TextDone {
            part: part.clone(),
            audio,
            text: m.text.clone(),
        })
        .await;
        self.emit(CallEvent::ContentPartDone {
            part,
            audio,
            text: m.text.clone(),
        })
        .await;
        let item = self.conversation.get_mut(&m.item_id)?;
        item.status = status;
        if let ItemKind::Message { content, .. } = &mut item.kind
            && let Some(
                Content::OutputAudio { transcript } | Content::OutputText { text: transcript },
            ) = content.first_mut()
        {
            transcript.clone_from(&m.text);
        }
        let item = item.clone();
        self.emit(CallEvent::OutputItemDone {
            response_id: response_id.to_owned(),
            output_index: m.output_index,
            item: item.clone(),
        })
        .await;
        Some(item)
    }
}
