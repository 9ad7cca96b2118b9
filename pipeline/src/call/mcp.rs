//! A call's client-declared MCP servers (`tools/client_mcp.rs`): connected when the session
//! declares them, each listing shown as an `mcp_list_tools` item. The calls a response makes
//! to them become `mcp_call` items, and those waiting for the client's approval
//! `mcp_approval_request` items; an approval the client gives is run by its next response.
//! The words before a call and after it are two assistant messages, the call's item between.

use std::sync::Arc;

use super::actor::CallActor;
use super::events::{CallError, CallEvent, PartRef};
use crate::conversation::{Item, ItemKind, ItemStatus};
use crate::llm::{ActionNotice, McpCallNotice};
use crate::outbound::OutboundClient;
use crate::tools::client_mcp::{ApprovedCall, ClientMcpServer, ClientServer, ClientTools};

/// One declared server of the call.
#[derive(Debug)]
pub(super) struct DeclaredServer {
    pub declared: ClientMcpServer,
    /// Its `mcp_list_tools` item.
    pub item_id: String,
    /// `None` while connecting or after it failed.
    pub ready: Option<Arc<ClientServer>>,
}

/// A connection attempt's outcome, back to the actor.
#[derive(Debug)]
pub(crate) struct Listed {
    item_id: String,
    declared: ClientMcpServer,
    result: Result<ClientServer, String>,
}

/// An MCP item a response has open: an `mcp_call` running, or an `mcp_list_tools` listing.
#[derive(Debug)]
pub(super) struct McpCallOut {
    pub item_id: String,
    pub output_index: u32,
}

impl CallActor {
    /// Connect to the servers the session newly declares; forget those it no longer does.
    pub(super) async fn sync_mcp(&mut self) {
        let declared = self.config.mcp.clone();
        self.mcp.retain(|s| declared.contains(&s.declared));
        for d in declared {
            if self.mcp.iter().any(|s| s.declared == d) {
                continue;
            }
            let item_id = self.ids.next("item");
            let kind = ItemKind::McpListTools {
                server_label: d.label.clone(),
                tools: Vec::new(),
            };
            let item = Item::new(item_id.clone(), kind, ItemStatus::InProgress);
            let previous_item_id = self.conversation.insert(item.clone(), None).ok().flatten();
            self.emit(CallEvent::ItemCreated {
                previous_item_id,
                item: item.clone(),
            })
            .await;
            self.emit(CallEvent::McpListTools {
                item,
                status: "in_progress",
            })
            .await;
            self.mcp.push(DeclaredServer {
                declared: d.clone(),
                item_id: item_id.clone(),
                ready: None,
            });
            let guard = self.mcp_guard();
            let (tx, token) = (self.mcp_tx.clone(), self.token.clone());
            tokio::spawn(async move {
                let result = match guard {
                    Ok(guard) => tokio::select! {
                        () = token.cancelled() => return,
                        r = ClientServer::connect(d.clone(), guard) => r,
                    },
                    Err(why) => Err(why.to_owned()),
                };
                let _ = tx
                    .send(Listed {
                        item_id,
                        declared: d,
                        result,
                    })
                    .await;
            });
        }
    }

    /// A server has listed its tools, or failed to.
    pub(super) async fn on_listed(&mut self, listed: Listed) {
        let Some(slot) = self
            .mcp
            .iter_mut()
            .find(|s| s.item_id == listed.item_id && s.declared == listed.declared)
        else {
            return; // declared no longer
        };
        let listing = listed.result.map(|server| {
            let tools = server.listing();
            slot.ready = Some(Arc::new(server));
            tools
        });
        let label = listed.declared.label.clone();
        self.close_listing(&listed.item_id, &label, listing, "session.tools", None)
            .await;
    }

    /// Close the `mcp_list_tools` item `item_id` of the server labelled `label` with its
    /// tools, or as failed: `mcp_list_tools.completed`/`.failed`, then (for a response's
    /// listing, `output`: response id and output index) `response.output_item.done`, then
    /// for a failure an `mcp_server_unavailable` error on `param` saying why. Nothing if the
    /// client deleted the item.
    pub(super) async fn close_listing(
        &mut self,
        item_id: &str,
        label: &str,
        listing: Result<Vec<serde_json::Value>, String>,
        param: &str,
        output: Option<(String, u32)>,
    ) {
        let (status, tools, failure) = match listing {
            Ok(tools) => ("completed", tools, None),
            Err(e) => {
                tracing::warn!(server = %label, error = %e, param, "client MCP server unavailable");
                ("failed", Vec::new(), Some(e))
            }
        };
        let Some(item) = self.conversation.get_mut(item_id) else {
            return; // the client deleted the listing
        };
        if let ItemKind::McpListTools { tools: t, .. } = &mut item.kind {
            *t = tools;
        }
        item.status = match failure {
            None => ItemStatus::Completed,
            Some(_) => ItemStatus::Incomplete,
        };
        let item = item.clone();
        self.emit(CallEvent::McpListTools {
            item: item.clone(),
            status,
        })
        .await;
        if let Some((response_id, output_index)) = output {
            self.emit(CallEvent::OutputItemDone {
                response_id,
                output_index,
                item,
            })
            .await;
        }
        if let Some(e) = failure {
            let message = format!("MCP server '{label}' could not be used: {e}");
            let err = CallError::invalid("mcp_server_unavailable", message);
            self.error(err.with_param(param), None).await;
        }
    }

    /// The servers a response may call now.
    pub(super) fn client_tools(&self) -> ClientTools {
        ClientTools {
            servers: self.mcp.iter().filter_map(|s| s.ready.clone()).collect(),
            reachable: Vec::new(),
        }
    }

    /// The outbound guard to connect a client's servers through, or why there is none.
    pub(super) fn mcp_guard(&self) -> Result<OutboundClient, &'static str> {
        match &self.deps.orchestrator.tools {
            None => Err("this gateway runs no server-side tools, so it calls no MCP servers"),
            Some(e) => e.client_mcp_outbound().cloned().ok_or(
                "this gateway's operator has turned client-declared MCP servers off \
                 (SWITCHBOARD_CLIENT_MCP)",
            ),
        }
    }

    /// A client's `mcp_approval_response` must answer an approval request, once.
    pub(super) fn check_approval_response(&self, item: &Item) -> Result<(), CallError> {
        let ItemKind::McpApprovalResponse {
            approval_request_id,
            ..
        } = &item.kind
        else {
            return Ok(());
        };
        let refuse = |message: String| {
            Err(CallError::invalid("invalid_value", message).with_param("item.approval_request_id"))
        };
        match self.conversation.get(approval_request_id) {
            Some(Item {
                kind: ItemKind::McpApprovalRequest { .. },
                ..
            }) => {}
            _ => {
                return refuse(format!(
                    "{approval_request_id} is not an mcp_approval_request item of this conversation"
                ));
            }
        }
        if self.conversation.approval_of(approval_request_id).is_some() {
            return refuse(format!("{approval_request_id} has already been answered"));
        }
        Ok(())
    }

    /// What the tool loop did with a client's MCP server, as items of the response.
    pub(super) async fn on_mcp_notice(&mut self, notice: ActionNotice) {
        match notice {
            ActionNotice::McpCallStarted(call) => self.mcp_call_started(call).await,
            ActionNotice::McpCallDone { call_id, result } => {
                self.mcp_call_done(&call_id, result).await;
            }
            ActionNotice::McpApprovalRequested(call) => self.mcp_approval_requested(call).await,
            other => self.emit(CallEvent::Action(other)).await,
        }
    }

    /// A new output item of the response; its output index and part reference.
    pub(super) fn open_output(&mut self, item: &Item) -> Option<PartRef> {
        let r = self.response.as_mut()?;
        let output_index = r.outputs;
        r.outputs += 1;
        r.mcp_items.push((output_index, item.id.clone()));
        let _ = self.conversation.insert(item.clone(), None);
        Some(PartRef {
            response_id: r.id.clone(),
            item_id: item.id.clone(),
            output_index,
            content_index: 0,
        })
    }

    async fn mcp_call_started(&mut self, call: McpCallNotice) {
        // What the model says after the call is a new message, after the call's item (as at
        // OpenAI); its audio follows the audio break (`response.rs`).
        if let Some(r) = self.response.as_mut() {
            r.text_segment += 1;
        }
        self.close_said_messages().await;
        let kind = ItemKind::McpCall {
            server_label: call.server_label,
            name: call.name,
            arguments: call.arguments.clone(),
            approval_request_id: call.approval_request_id,
            output: None,
            error: None,
        };
        let item = Item::new(self.ids.next("item"), kind, ItemStatus::InProgress);
        let Some(part) = self.open_output(&item) else {
            return;
        };
        if let Some(r) = self.response.as_mut() {
            r.mcp_calls.insert(
                call.call_id,
                McpCallOut {
                    item_id: item.id.clone(),
                    output_index: part.output_index,
                },
            );
        }
        self.emit(CallEvent::OutputItemAdded {
            response_id: part.response_id.clone(),
            output_index: part.output_index,
            item,
        })
        .await;
        self.emit(CallEvent::McpCallArguments {
            part: part.clone(),
            arguments: call.arguments,
        })
        .await;
        self.emit(CallEvent::McpCallStatus {
            part,
            status: "in_progress",
        })
        .await;
    }

    async fn mcp_call_done(&mut self, call_id: &str, result: Result<String, serde_json::Value>) {
        let Some(r) = self.response.as_mut() else {
            return;
        };
        let Some(out) = r.mcp_calls.remove(call_id) else {
            return;
        };
        let part = PartRef {
            response_id: r.id.clone(),
            item_id: out.item_id.clone(),
            output_index: out.output_index,
            content_index: 0,
        };
        let status = if result.is_ok() {
            "completed"
        } else {
            "failed"
        };
        let Some(item) = self.conversation.get_mut(&out.item_id) else {
            return;
        };
        if let ItemKind::McpCall { output, error, .. } = &mut item.kind {
            match result {
                Ok(o) => *output = Some(o),
                Err(e) => *error = Some(e),
            }
        }
        item.status = ItemStatus::Completed;
        let item = item.clone();
        self.emit(CallEvent::McpCallStatus {
            part: part.clone(),
            status,
        })
        .await;
        self.emit(CallEvent::OutputItemDone {
            response_id: part.response_id,
            output_index: part.output_index,
            item,
        })
        .await;
    }

    /// The calls the client approved that have not run yet, each to the server it was asked
    /// for.
    pub(super) fn approved_mcp_calls(&self) -> Vec<ApprovedCall> {
        let mut calls = self.conversation.approved_mcp_calls();
        for call in &mut calls {
            call.server_url = self
                .approval_servers
                .get(&call.approval_request_id)
                .cloned();
        }
        calls
    }

    async fn mcp_approval_requested(&mut self, call: McpCallNotice) {
        let kind = ItemKind::McpApprovalRequest {
            server_label: call.server_label,
            name: call.name,
            arguments: call.arguments,
        };
        let item = Item::new(self.ids.next("item"), kind, ItemStatus::Completed);
        // Its item names the server by label only; the call, once approved, goes to this one.
        self.approval_servers
            .insert(item.id.clone(), call.server_url);
        let Some(part) = self.open_output(&item) else {
            return;
        };
        self.emit(CallEvent::OutputItemAdded {
            response_id: part.response_id.clone(),
            output_index: part.output_index,
            item: item.clone(),
        })
        .await;
        self.emit(CallEvent::OutputItemDone {
            response_id: part.response_id,
            output_index: part.output_index,
            item,
        })
        .await;
    }

    /// A response ends: calls still running are cut off (the tool loop, stopped with the
    /// response, drops them and the server is told to cancel), and its MCP items join its
    /// output.
    pub(super) async fn close_mcp_items(
        &mut self,
        response_id: &str,
        mcp_items: &[(u32, String)],
        open: &[McpCallOut],
    ) -> Vec<(u32, Item)> {
        for o in open {
            let Some(item) = self.conversation.get_mut(&o.item_id) else {
                continue;
            };
            item.status = ItemStatus::Incomplete;
            let item = item.clone();
            self.emit(CallEvent::OutputItemDone {
                response_id: response_id.to_owned(),
                output_index: o.output_index,
                item,
            })
            .await;
        }
        mcp_items
            .iter()
            .filter_map(|(i, id)| Some((*i, self.conversation.get(id)?.clone())))
            .collect()
    }
}
