//! The per-call pipeline (to come with the live-call issue): one actor per call owning the
//! VAD state, turn-taking, barge-in, the orchestrator's stages (prepare, context, tools,
//! generate, persist), context engines, the tool loop and LLM providers.
//!
//! It must not open sockets or know about HTTP routes, tenants or SQL: channels feed it
//! events and take its outbound events; the speech engines come from `switchboard-models`.
