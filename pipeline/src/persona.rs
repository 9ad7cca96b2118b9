//! Personas: who the agent is for a conversation. Each names its system prompt, voice,
//! allowed tools, context engines with their deadlines, LLM model and sampling. They come
//! from a TOML file:
//!
//! ```toml
//! default = "support"
//!
//! [personas.support]
//! instructions = "You are Acme's support agent. Answer from the reference material."
//! voice = "joe"
//! tools = ["lookup_order"]          # omitted: every tool the client offers
//! engines = ["knowledge", "profile"] # omitted: every configured engine
//! model = "gpt-4o-mini"
//! temperature = 0.3
//! deadlines_ms = { knowledge = 300 }
//! voice_notes = true                # answer IM voice notes with a voice note
//! end_call = true                   # phone calls: the agent may hang up
//! noise_reduction = "near_field"     # phone calls: RNNoise on the caller's audio
//! turn_eagerness = "auto"            # phone calls: semantic_vad end of turn (omitted: server_vad)
//! handoff = { webhook_url = "https://crm.example.com/handoff", transfer_to = "+15550100" }
//! dtmf = { "0" = "escalate_to_human", "1" = "Where is my order?" }  # keypad digits
//!
//! [channels.telegram]              # who answers a bot channel, and for which tenant
//! persona = "support"
//! tenant = "acme"
//!
//! [tools.lookup_order]               # a server-side tool (see `crate::tools`)
//! description = "Look up an order"
//! effect = "read"
//! http = { url = "https://orders.example.com/orders/{order_id}" }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::context::ContextPlan;
use crate::llm::ToolSpec;
use crate::tools::builtin::HandoffConfig;
use crate::tools::mcp::McpServerConfig;
use crate::tools::{ToolDef, ToolDefs};

/// Prompt tokens a persona may use by default (room for a small model's reply within 2k).
pub const DEFAULT_PROMPT_BUDGET: usize = 1536;
pub const DEFAULT_PERSONA: &str = "default";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Filled from the table's key.
    #[serde(skip)]
    pub name: String,
    pub instructions: String,
    #[serde(default)]
    pub voice: Option<String>,
    /// Tool names the model may call; `None`: every tool offered.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Context engines to consult; `None`: all configured.
    #[serde(default)]
    pub engines: Option<Vec<String>>,
    /// Deadline per engine name, in ms; unlisted engines use their defaults.
    #[serde(default)]
    pub deadlines_ms: BTreeMap<String, u64>,
    /// The LLM model to ask for; `None`: the provider's own.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default = "default_budget")]
    pub prompt_budget: usize,
    /// On messaging channels, answer a voice note with a voice note (Telegram `sendVoice`).
    #[serde(default)]
    pub voice_notes: bool,
    /// Hand-off to people: `escalate_to_human` (see `crate::tools::builtin`).
    #[serde(default)]
    pub handoff: Option<HandoffConfig>,
    /// Offer `end_call` on phone calls.
    #[serde(default)]
    pub end_call: bool,
    /// Phone calls start with noise reduction (`near_field` or `far_field`); a Realtime
    /// client sets its own with `session.update`.
    #[serde(default)]
    pub noise_reduction: Option<crate::session::NoiseReduction>,
    /// Phone calls end turns by `semantic_vad` at this eagerness (`low`, `medium`, `high`,
    /// `auto`) instead of `server_vad`'s fixed silence.
    #[serde(default)]
    pub turn_eagerness: Option<crate::session::Eagerness>,
    /// Phone keypad digits (`0`-`9`, `*`, `#`) mapped to a tool the agent must call
    /// (`"0" = "escalate_to_human"`) or to what the caller means (`"1" = "Where is my order?"`).
    #[serde(default)]
    pub dtmf: BTreeMap<String, String>,
}

fn default_budget() -> usize {
    DEFAULT_PROMPT_BUDGET
}

impl Persona {
    /// The built-in persona used when no file names one: no instructions of its own (the
    /// client's system prompt or session instructions stand alone), every tool and engine.
    pub fn builtin() -> Self {
        Self {
            name: DEFAULT_PERSONA.into(),
            instructions: String::new(),
            voice: None,
            voice_notes: false,
            noise_reduction: None,
            turn_eagerness: None,
            handoff: None,
            end_call: false,
            dtmf: BTreeMap::new(),
            tools: None,
            engines: None,
            deadlines_ms: BTreeMap::new(),
            model: None,
            temperature: None,
            top_p: None,
            max_tokens: None,
            prompt_budget: DEFAULT_PROMPT_BUDGET,
        }
    }

    /// Which engines to consult and their deadlines.
    pub fn context_plan(&self) -> ContextPlan {
        ContextPlan {
            engines: self.engines.clone(),
            deadlines: self
                .deadlines_ms
                .iter()
                .map(|(k, ms)| (k.clone(), Duration::from_millis(*ms)))
                .collect(),
        }
    }

    /// The offered tools this persona allows.
    pub fn allowed_tools(&self, offered: Vec<ToolSpec>) -> Vec<ToolSpec> {
        match &self.tools {
            None => offered,
            Some(names) => offered
                .into_iter()
                .filter(|t| names.contains(&t.name))
                .collect(),
        }
    }
}

/// Channels whose requests carry no API key of a tenant: each is bound to one tenant and
/// persona in the file's `[channels.NAME]` tables.
pub const BOUND_CHANNELS: &[&str] = &["telegram", "slack", "webhook", "phone"];

/// Whom a bot or phone channel serves. A Telegram bot, a Slack app, the signed webhook and
/// Twilio authenticate as the provider, not as a tenant, so the file says which tenant's
/// sessions, knowledge and limits their conversations use and which persona answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelBinding {
    /// The tenant (created at start-up if missing); `None`: the default tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The persona; `None`: the file's default. On the phone `?persona=` still overrides it.
    #[serde(default)]
    pub persona: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PersonaError {
    #[error("persona file: {0}")]
    Parse(String),
    #[error("persona file: the default persona {0:?} is not defined")]
    MissingDefault(String),
    #[error("persona {persona:?}: {problem}")]
    Invalid { persona: String, problem: String },
    #[error("tool {tool:?}: {problem}")]
    Tool { tool: String, problem: String },
    #[error("channel {channel:?}: {problem}")]
    Channel { channel: String, problem: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    personas: BTreeMap<String, Persona>,
    #[serde(default)]
    tools: BTreeMap<String, ToolDef>,
    #[serde(default)]
    mcp: BTreeMap<String, McpServerConfig>,
    #[serde(default)]
    channels: BTreeMap<String, ChannelBinding>,
}

/// Every persona, by name, and which one applies when a conversation names none.
#[derive(Debug, Clone, PartialEq)]
pub struct Personas {
    by_name: BTreeMap<String, Persona>,
    default: String,
    /// Server-side tools declared in the file.
    tools: ToolDefs,
    /// MCP servers whose tools the agent may call.
    mcp: BTreeMap<String, McpServerConfig>,
    /// Tenant and persona of each bot or phone channel named in the file.
    channels: BTreeMap<String, ChannelBinding>,
}

impl Default for Personas {
    fn default() -> Self {
        Self {
            by_name: [(DEFAULT_PERSONA.to_owned(), Persona::builtin())].into(),
            default: DEFAULT_PERSONA.into(),
            tools: ToolDefs::new(),
            mcp: BTreeMap::new(),
            channels: BTreeMap::new(),
        }
    }
}

impl Personas {
    /// Parse a persona file. The built-in `default` persona is kept unless the file
    /// redefines it.
    pub fn parse(toml_text: &str) -> Result<Self, PersonaError> {
        let file: File =
            toml::from_str(toml_text).map_err(|e| PersonaError::Parse(e.to_string()))?;
        let mut out = Self::default();
        for (name, mut p) in file.personas {
            let invalid = |problem: &str| PersonaError::Invalid {
                persona: name.clone(),
                problem: problem.into(),
            };
            if p.instructions.trim().is_empty() {
                return Err(invalid("instructions are empty"));
            }
            if p.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
                return Err(invalid("temperature must be within 0..2"));
            }
            if p.top_p.is_some_and(|t| !(t > 0.0 && t <= 1.0)) {
                return Err(invalid("top_p must be within (0, 1]"));
            }
            if p.deadlines_ms.values().any(|&ms| ms == 0 || ms > 60_000) {
                return Err(invalid("engine deadlines must be 1..60000 ms"));
            }
            if p.prompt_budget < 64 {
                return Err(invalid("prompt_budget must be at least 64 tokens"));
            }
            if let Some(h) = &p.handoff {
                h.validate().map_err(|e| invalid(&e))?;
            }
            let digit = |k: &str| {
                k.len() == 1
                    && k.chars()
                        .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            };
            if p.dtmf.iter().any(|(k, v)| !digit(k) || v.trim().is_empty()) {
                return Err(invalid(
                    "dtmf maps single keys (0-9, *, #) to a tool name or a sentence",
                ));
            }
            p.name.clone_from(&name);
            out.by_name.insert(name, p);
        }
        for (name, mut t) in file.tools {
            t.name.clone_from(&name);
            t.validate().map_err(|problem| PersonaError::Tool {
                tool: name.clone(),
                problem,
            })?;
            out.tools.insert(name, t);
        }
        for (name, server) in file.mcp {
            server.validate().map_err(|problem| PersonaError::Tool {
                tool: format!("mcp.{name}"),
                problem,
            })?;
            out.mcp.insert(name, server);
        }
        if let Some(default) = file.default {
            if !out.by_name.contains_key(&default) {
                return Err(PersonaError::MissingDefault(default));
            }
            out.default = default;
        }
        for (channel, binding) in file.channels {
            let problem = if !BOUND_CHANNELS.contains(&channel.as_str()) {
                Some(format!(
                    "not a bot or phone channel (one of {BOUND_CHANNELS:?})"
                ))
            } else {
                binding
                    .persona
                    .as_ref()
                    .filter(|p| !out.by_name.contains_key(*p))
                    .map(|p| format!("persona {p:?} is not defined"))
            };
            if let Some(problem) = problem {
                return Err(PersonaError::Channel { channel, problem });
            }
            out.channels.insert(channel, binding);
        }
        Ok(out)
    }

    /// The tenant and persona `channel` serves (both `None` when the file does not bind it).
    pub fn channel(&self, channel: &str) -> ChannelBinding {
        self.channels.get(channel).cloned().unwrap_or_default()
    }

    /// The tenants the file binds channels to.
    pub fn bound_tenants(&self) -> impl Iterator<Item = (&str, &str)> {
        self.channels
            .iter()
            .filter_map(|(c, b)| Some((c.as_str(), b.tenant.as_deref()?)))
    }

    /// The named persona, if it exists.
    pub fn get(&self, name: &str) -> Option<&Persona> {
        self.by_name.get(name)
    }

    /// The persona a conversation uses: the named one, else the default.
    pub fn pick(&self, name: Option<&str>) -> &Persona {
        name.and_then(|n| self.by_name.get(n))
            .or_else(|| self.by_name.get(&self.default))
            .unwrap_or_else(|| {
                self.by_name
                    .values()
                    .next()
                    .expect("at least the built-in persona")
            })
    }

    /// The server-side tools the file declares.
    pub fn tools(&self) -> &ToolDefs {
        &self.tools
    }

    /// The MCP servers the file declares.
    pub fn mcp_servers(&self) -> &BTreeMap<String, McpServerConfig> {
        &self.mcp
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
default = "support"

[personas.support]
instructions = "You are Acme support."
voice = "joe"
tools = ["lookup_order"]
engines = ["knowledge"]
model = "gpt-4o-mini"
temperature = 0.3
deadlines_ms = { knowledge = 250 }
noise_reduction = "far_field"
turn_eagerness = "high"

[personas.sales]
instructions = "You sell."
"#;

    fn tool(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: serde_json::json!({"type": "object"}),
        }
    }

    #[test]
    fn parses_a_persona_file() {
        let p = Personas::parse(FILE).expect("parses");
        assert_eq!(p.pick(None).name, "support");
        assert_eq!(p.pick(Some("sales")).instructions, "You sell.");
        assert_eq!(p.pick(Some("nobody")).name, "support");
        assert!(p.get("default").is_some(), "built-in kept");
        let support = p.pick(None);
        let plan = support.context_plan();
        assert_eq!(plan.engines, Some(vec!["knowledge".to_owned()]));
        assert_eq!(plan.deadlines["knowledge"], Duration::from_millis(250));
        let tools = support.allowed_tools(vec![tool("lookup_order"), tool("delete_account")]);
        assert_eq!(tools, vec![tool("lookup_order")]);
        assert_eq!(
            p.pick(Some("sales")).allowed_tools(vec![tool("x")]).len(),
            1
        );
        assert_eq!(p.pick(Some("sales")).prompt_budget, DEFAULT_PROMPT_BUDGET);
        assert_eq!(
            support.noise_reduction,
            Some(crate::session::NoiseReduction::FarField)
        );
        assert_eq!(p.pick(Some("sales")).noise_reduction, None);
        assert_eq!(
            support.turn_eagerness,
            Some(crate::session::Eagerness::High)
        );
        assert_eq!(p.pick(Some("sales")).turn_eagerness, None);
        let bad = "[personas.a]\ninstructions = \"x\"\nturn_eagerness = \"eager\"\n";
        assert!(Personas::parse(bad).is_err());
    }

    #[test]
    fn binds_bot_and_phone_channels_to_a_tenant_and_persona() {
        let file = format!(
            "{FILE}\n[channels.telegram]\ntenant = \"acme\"\npersona = \"sales\"\n[channels.phone]\npersona = \"support\"\n"
        );
        let p = Personas::parse(&file).expect("parses");
        let telegram = p.channel("telegram");
        assert_eq!(telegram.tenant.as_deref(), Some("acme"));
        assert_eq!(telegram.persona.as_deref(), Some("sales"));
        assert_eq!(p.channel("phone").tenant, None);
        assert_eq!(p.channel("slack"), ChannelBinding::default());
        assert_eq!(
            p.bound_tenants().collect::<Vec<_>>(),
            [("telegram", "acme")]
        );

        let unknown_persona = format!("{FILE}\n[channels.slack]\npersona = \"nobody\"\n");
        assert!(matches!(
            Personas::parse(&unknown_persona),
            Err(PersonaError::Channel { channel, problem }) if channel == "slack" && problem.contains("nobody")
        ));
        let unknown_channel = "[channels.fax]\ntenant = \"acme\"\n";
        assert!(matches!(
            Personas::parse(unknown_channel),
            Err(PersonaError::Channel { channel, .. }) if channel == "fax"
        ));
        let unknown_field = "[channels.slack]\nteam = \"acme\"\n";
        assert!(matches!(
            Personas::parse(unknown_field),
            Err(PersonaError::Parse(_))
        ));
    }

    #[test]
    fn declares_server_side_tools() {
        let file = r#"
[tools.cancel_order]
description = "Cancel an order"
effect = "dangerous"
confirm = "cancel order {order_id}"
parameters = { type = "object", properties = { order_id = { type = "string" } }, required = ["order_id"] }
http = { method = "POST", url = "https://orders.example.com/orders/{order_id}/cancel", headers = { Authorization = "Bearer ${ORDERS_TOKEN}" } }
"#;
        let p = Personas::parse(file).expect("parses");
        let t = &p.tools()["cancel_order"];
        assert_eq!(t.name, "cancel_order");
        assert_eq!(t.effect, crate::tools::SideEffect::Dangerous);
        assert_eq!(t.timeout_ms, crate::tools::DEFAULT_TIMEOUT_MS);
        assert_eq!(t.spec().parameters["required"][0], "order_id");
        let bad =
            "[tools.x]\ndescription = \"d\"\neffect = \"read\"\nhttp = { url = \"ftp://h/\" }\n";
        assert!(
            matches!(Personas::parse(bad), Err(PersonaError::Tool { tool, .. }) if tool == "x")
        );
        let bad_effect =
            "[tools.x]\ndescription = \"d\"\neffect = \"maybe\"\nhttp = { url = \"http://h/\" }\n";
        assert!(Personas::parse(bad_effect).is_err());
    }

    #[test]
    fn declares_mcp_servers() {
        let file = "[mcp.shop]\nurl = \"http://127.0.0.1:9000/mcp\"\nmax_concurrent_calls = 8\n\
                    [mcp.local]\ncommand = \"shop-mcp\"\n";
        let p = Personas::parse(file).expect("parses");
        assert_eq!(p.mcp_servers()["shop"].max_concurrent_calls, 8);
        assert_eq!(
            p.mcp_servers()["local"].max_concurrent_calls,
            64,
            "the default"
        );
        for bad in [
            "[mcp.x]\nurl = \"http://h/mcp\"\nmax_concurrent_calls = 0\n",
            "[mcp.x]\nurl = \"http://h/mcp\"\nmax_concurrent_calls = 5000\n",
            "[mcp.x]\nurl = \"http://h/mcp\"\ncommand = \"both\"\n",
            "[mcp.x]\nurl = \"http://h/mcp\"\ntimeout_ms = 0\n",
        ] {
            assert!(
                matches!(Personas::parse(bad), Err(PersonaError::Tool { tool, .. }) if tool == "mcp.x"),
                "{bad}"
            );
        }
    }

    #[test]
    fn mistakes_are_reported_with_the_persona_name() {
        let unknown_field = "[personas.a]\ninstructions = \"x\"\nvoise = \"joe\"\n";
        assert!(
            matches!(Personas::parse(unknown_field), Err(PersonaError::Parse(m)) if m.contains("voise"))
        );
        let loud = "[personas.a]\ninstructions = \"x\"\nnoise_reduction = \"loud\"\n";
        assert!(matches!(Personas::parse(loud), Err(PersonaError::Parse(m)) if m.contains("loud")));
        let bad = "[personas.a]\ninstructions = \"x\"\ntemperature = 9.0\n";
        assert!(
            matches!(Personas::parse(bad), Err(PersonaError::Invalid { persona, .. }) if persona == "a")
        );
        assert_eq!(
            Personas::parse("default = \"ghost\"\n"),
            Err(PersonaError::MissingDefault("ghost".into()))
        );
        assert!(
            Personas::parse(
                "[personas.a]\ninstructions = \"x\"\ndeadlines_ms = { knowledge = 0 }\n"
            )
            .is_err()
        );
    }
}
