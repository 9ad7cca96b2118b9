//! MCP servers a response declares (`response.create` with `"type": "mcp"` in
//! `response.tools`), as OpenAI's Realtime API allows: offered for that response beside the
//! session's servers (one with a session server's label stands in for it).
//!
//! A server already connected with the same declaration (the session's, or an earlier
//! response's) is used as it is. Any other is connected by the response's task before it
//! asks the model, all side by side; each shows as an `mcp_list_tools` item of the
//! response, and a server that cannot be used is an error event while the response goes on
//! without it. Servers connected for responses are kept (the last [`MAX_SERVERS`] labels)
//! so the next response that declares one again does not wait, and so a call to one that
//! waits for approval can run in a later response.

use std::sync::Arc;

use super::actor::CallActor;
use super::events::CallEvent;
use super::mcp::McpCallOut;
use crate::conversation::{Item, ItemKind, ItemStatus};
use crate::tools::client_mcp::{ClientMcpServer, ClientServer, ClientTools, MAX_SERVERS};

impl CallActor {
    /// The client servers a response declaring `declared` may call, and those of `declared`
    /// it must connect first.
    pub(super) fn response_tools(
        &self,
        declared: &[ClientMcpServer],
    ) -> (ClientTools, Vec<ClientMcpServer>) {
        let mut tools = self.client_tools();
        tools
            .servers
            .retain(|s| !declared.iter().any(|d| d.label == s.declared.label));
        let known = |d: &ClientMcpServer| {
            self.mcp
                .iter()
                .filter_map(|s| s.ready.as_ref())
                .chain(&self.response_mcp)
                .find(|s| s.declared == *d)
                .cloned()
        };
        let mut connect = Vec::new();
        for d in declared {
            match known(d) {
                Some(server) => tools.servers.push(server),
                None => connect.push(d.clone()),
            }
        }
        // Approved calls may be to a server this response does not declare.
        tools.reachable = self
            .response_mcp
            .iter()
            .chain(self.mcp.iter().filter_map(|s| s.ready.as_ref()))
            .filter(|s| !tools.servers.iter().any(|o| Arc::ptr_eq(o, s)))
            .cloned()
            .collect();
        (tools, connect)
    }

    /// The response being created connects `servers`: an `mcp_list_tools` item each, in
    /// progress.
    pub(super) async fn open_listings(&mut self, servers: &[ClientMcpServer]) {
        for d in servers {
            let kind = ItemKind::McpListTools {
                server_label: d.label.clone(),
                tools: Vec::new(),
            };
            let item = Item::new(self.ids.next("item"), kind, ItemStatus::InProgress);
            let Some(part) = self.open_output(&item) else {
                return;
            };
            if let Some(r) = self.response.as_mut() {
                let out = McpCallOut {
                    item_id: item.id.clone(),
                    output_index: part.output_index,
                };
                r.mcp_listings.insert(d.label.clone(), out);
            }
            self.emit(CallEvent::OutputItemAdded {
                response_id: part.response_id,
                output_index: part.output_index,
                item: item.clone(),
            })
            .await;
            self.emit(CallEvent::McpListTools {
                item,
                status: "in_progress",
            })
            .await;
        }
    }

    /// The response's task connected the server it declared as `label`, or could not.
    pub(super) async fn on_response_listed(
        &mut self,
        label: &str,
        result: Result<Arc<ClientServer>, String>,
    ) {
        let Some(r) = self.response.as_mut() else {
            return;
        };
        let Some(out) = r.mcp_listings.remove(label) else {
            return;
        };
        let output = Some((r.id.clone(), out.output_index));
        let listing = result.map(|server| {
            let tools = server.listing();
            self.response_mcp.retain(|s| s.declared.label != label);
            if self.response_mcp.len() == MAX_SERVERS {
                self.response_mcp.remove(0);
            }
            self.response_mcp.push(server);
            tools
        });
        self.close_listing(&out.item_id, label, listing, "response.tools", output)
            .await;
    }
}
