//! Carrying out a control action on a call held by this instance.

use switchboard_pipeline::call::Command;
use switchboard_pipeline::conversation::{Content, Item, Role};
use switchboard_pipeline::tools::builtin::CallControl;
use switchboard_pipeline::{CallInput, call::ResponseOptions};

use super::{ControlAction, ControlError, MessageRole, Registry};

impl Registry {
    pub(super) async fn act_locally(
        &self,
        tenant: &str,
        call_id: &str,
        action: &ControlAction,
    ) -> Result<(), ControlError> {
        let (commands, provider, hangup) = {
            let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
            let Some(call) = local.get_mut(call_id).filter(|c| c.tenant == tenant) else {
                return Err(ControlError::NotFound);
            };
            let hangup = match action {
                ControlAction::Hangup => call.hangup.take(),
                _ => None,
            };
            (call.commands.clone(), call.provider.clone(), hangup)
        };
        let send = |input: CallInput| {
            let commands = commands.clone();
            async move {
                commands
                    .send(Command {
                        event_id: None,
                        input,
                    })
                    .await
                    .map_err(|_| ControlError::NotFound)
            }
        };
        match action {
            ControlAction::Hangup => {
                if let Some(p) = provider {
                    // The provider ends the phone call; the stream closes after it.
                    p(CallControl::Hangup).await.map_err(ControlError::Failed)?;
                }
                match hangup {
                    Some(switch) => {
                        let _ = switch.send(());
                    }
                    None => send(CallInput::Shutdown).await?,
                }
                Ok(())
            }
            ControlAction::Message {
                role,
                text,
                respond,
                interrupt,
            } => {
                let role = match role {
                    MessageRole::System => Role::System,
                    MessageRole::User => Role::User,
                };
                let item = Item::message(
                    String::new(),
                    role,
                    vec![Content::InputText { text: text.clone() }],
                );
                send(CallInput::CreateItem {
                    previous_item_id: None,
                    item,
                })
                .await?;
                if *respond {
                    send(CallInput::CreateResponse(ResponseOptions {
                        interrupt: *interrupt,
                        queue: !*interrupt,
                        ..Default::default()
                    }))
                    .await?;
                }
                Ok(())
            }
            ControlAction::Respond => {
                send(CallInput::CreateResponse(ResponseOptions {
                    queue: true,
                    ..Default::default()
                }))
                .await
            }
            ControlAction::Transfer { to } => {
                let p = provider.ok_or(ControlError::Unsupported(
                    "only phone calls can be transferred",
                ))?;
                p(CallControl::Transfer { to: to.clone() })
                    .await
                    .map_err(ControlError::Failed)
            }
        }
    }
}
