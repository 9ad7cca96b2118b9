//! Out-of-band responses and responses with a context of their own (`response.create`'s
//! `conversation: "none"` and `input`), end to end: the real gateway with its speech models,
//! a scripted LLM that records what it is asked, and a Realtime WebSocket client.

use serde_json::{Value, json};
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

mod calls;
use calls::{LONG, RATE, runtime};
use switchboard_e2e::speech::silence;

/// The `response.done` of the response tagged `tag` in its metadata.
async fn done_of(c: &mut RealtimeClient, tag: &str) -> Value {
    let tagged = |e: &Value| e["response"]["metadata"]["tag"] == tag;
    c.wait_where("response.done", tagged, LONG)
        .await
        .unwrap()
        .event
}

/// What the LLM was asked, as (role, content) pairs.
fn asked(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (text("role"), text("content"))
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(r, c)| ((*r).to_owned(), (*c).to_owned()))
        .collect()
}

async fn expect_error(c: &mut RealtimeClient, code: &str, param: Option<&str>) {
    let e = c.wait_for("error", LONG).await.unwrap().event;
    assert_eq!(e["error"]["code"], code, "{e}");
    assert_eq!(e["error"]["param"].as_str(), param, "{e}");
}

#[test]
fn an_out_of_band_response_runs_beside_the_spoken_one_and_is_written_nowhere() {
    let llm = ScriptedLlm::replying(
        "Sure. The weather in Paris is mild today, with light clouds this morning.",
    );
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.say("What's the weather in Paris?").await.unwrap();
        c.send(json!({"type": "response.create", "response": {"metadata": {"tag": "spoken"}}}))
            .await
            .unwrap();
        let speaking = c
            .wait_for("response.output_audio.delta", LONG)
            .await
            .unwrap();
        let spoken_id = speaking.event["response_id"].as_str().unwrap().to_owned();
        c.send(
            json!({"type": "response.create", "event_id": "side_1", "response": {
            "conversation": "none", "output_modalities": ["text"],
            "instructions": "Classify the caller's mood in one word.",
            "metadata": {"tag": "mood"}}}),
        )
        .await
        .unwrap();
        let mood = done_of(&mut c, "mood").await;
        let spoken = c.wait_for("response.done", LONG).await.unwrap().event;
        assert_eq!(spoken["response"]["id"], spoken_id.as_str());
        assert_eq!(spoken["response"]["status"], "completed", "{spoken}");
        assert!(c.of_kind("error").is_empty(), "{:?}", c.kinds());

        // It ran while the agent spoke: done long before the spoken reply.
        let r = &mood["response"];
        assert_eq!(r["status"], "completed", "{mood}");
        assert_ne!(r["id"], spoken_id.as_str());
        assert!(r["conversation_id"].is_null(), "{mood}");
        assert_eq!(r["output_modalities"], json!(["text"]));
        let text = r["output"][0]["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("Sure. The weather"), "{text}");
        let mood_id = r["id"].as_str().unwrap().to_owned();
        let created = c
            .of_kind("response.created")
            .into_iter()
            .find(|e| e.event["response"]["id"] == mood_id.as_str())
            .expect("its response.created");
        assert!(created.event["response"]["conversation_id"].is_null());
        let deltas = c.response_deltas("response.output_text.delta", &mood_id);
        assert_eq!(deltas, text);
        let mood_done_at = c
            .log
            .iter()
            .position(|e| {
                e.kind() == "response.done" && e.event["response"]["id"] == mood_id.as_str()
            })
            .unwrap();
        let audio_after = c.log[mood_done_at..]
            .iter()
            .filter(|e| e.kind() == "response.output_audio.delta")
            .count();
        assert!(
            audio_after > 10,
            "the agent was still speaking: {audio_after} deltas after"
        );

        // Written to no conversation: no item events, not retrievable, not in the next context.
        let item_id = r["output"][0]["id"].as_str().unwrap().to_owned();
        let in_conversation = c.log.iter().any(|e| {
            e.kind().starts_with("conversation.item") && e.event["item"]["id"] == item_id.as_str()
        });
        assert!(!in_conversation, "{:?}", c.kinds());
        c.send(json!({"type": "conversation.item.retrieve", "item_id": item_id}))
            .await
            .unwrap();
        expect_error(&mut c, "item_not_found", Some("item_id")).await;

        // It was asked the conversation as it stood, under its own instructions.
        let requests = llm.requests();
        let side = requests
            .iter()
            .find(|r| asked(r)[0].1 == "Classify the caller's mood in one word.")
            .expect("the out-of-band request");
        assert_eq!(
            asked(side)[1],
            pairs(&[("user", "What's the weather in Paris?")])[0]
        );

        let next = c
            .ask_with("And tomorrow?", json!({"output_modalities": ["text"]}))
            .await
            .unwrap();
        assert!(next.iter().any(|e| e.kind() == "response.done"));
        let last = llm.requests().pop().unwrap();
        let roles: Vec<String> = asked(&last).into_iter().map(|(role, _)| role).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"], "{last}");
        c.close().await;
    });
}

#[test]
fn a_response_answers_its_own_input_and_bad_ones_are_refused() {
    let llm = ScriptedLlm::replying("Noted.");
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.say("My order number is 4471.").await.unwrap();
        let added = c.wait_for("conversation.item.added", LONG).await.unwrap();
        let first = added.event["item"]["id"].as_str().unwrap().to_owned();
        c.say("Something unrelated.").await.unwrap();
        c.wait_for("conversation.item.added", LONG).await.unwrap();

        // Out of band: only the item referred to, then one of its own.
        c.send(json!({"type": "response.create", "response": {"conversation": "none",
            "output_modalities": ["text"], "instructions": "Extract the order number.",
            "metadata": {"tag": "extract"},
            "input": [{"type": "item_reference", "id": first},
                      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Just the digits."}]}]}}))
            .await
            .unwrap();
        let done = done_of(&mut c, "extract").await;
        assert_eq!(done["response"]["status"], "completed", "{done}");
        assert_eq!(
            asked(&llm.requests().pop().unwrap()),
            pairs(&[
                ("system", "Extract the order number."),
                ("user", "My order number is 4471."),
                ("user", "Just the digits."),
            ])
        );

        // In the conversation with a context of its own: asked only that, written to it.
        c.send(json!({"type": "response.create", "response": {"output_modalities": ["text"],
            "metadata": {"tag": "own"}, "instructions": "Be brief.",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say noted."}]}]}}))
            .await
            .unwrap();
        let done = done_of(&mut c, "own").await;
        assert!(done["response"]["conversation_id"].is_string(), "{done}");
        assert_eq!(
            asked(&llm.requests().pop().unwrap()),
            pairs(&[("system", "Be brief."), ("user", "Say noted.")])
        );
        let written = done["response"]["output"][0]["id"].as_str().unwrap().to_owned();
        c.send(json!({"type": "conversation.item.retrieve", "item_id": written}))
            .await
            .unwrap();
        let got = c.wait_for("conversation.item.retrieved", LONG).await.unwrap();
        assert_eq!(got.event["item"]["content"][0]["text"], "Noted.");

        // Refused by name, and the call goes on.
        let asked_before = llm.requests().len();
        c.send(json!({"type": "response.create", "response": {"conversation": "none",
            "input": [{"type": "item_reference", "id": "item_nope"}], "output_modalities": ["text"]}}))
            .await
            .unwrap();
        expect_error(&mut c, "item_not_found", Some("response.input")).await;
        c.send(json!({"type": "response.create", "response": {"input": [{"type": "item_reference", "id": "item_nope"}]}}))
            .await
            .unwrap();
        expect_error(&mut c, "item_not_found", Some("response.input")).await;
        c.send(json!({"type": "response.create", "response": {"conversation": "conv_other"}}))
            .await
            .unwrap();
        expect_error(&mut c, "invalid_value", Some("response.conversation")).await;
        assert_eq!(llm.requests().len(), asked_before, "nothing refused reached the LLM");
        c.close().await;
    });
}

/// 16-bit samples from a response's `response.output_audio.delta` events.
fn audio_of(c: &RealtimeClient, response_id: &str) -> Vec<i16> {
    use base64::Engine;
    let bytes: Vec<u8> = c
        .of_kind("response.output_audio.delta")
        .iter()
        .filter(|e| e.event["response_id"] == response_id)
        .flat_map(|e| {
            let delta = e.event["delta"].as_str().unwrap();
            base64::engine::general_purpose::STANDARD
                .decode(delta)
                .unwrap()
        })
        .collect();
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn an_out_of_band_response_speaks_to_the_client_alone() {
    let llm = ScriptedLlm::replying("Your order ships on Monday.");
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send(json!({"type": "response.create", "response": {"conversation": "none",
            "output_modalities": ["audio"], "metadata": {"tag": "aside"},
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "When does my order ship?"}]}]}}))
            .await
            .unwrap();
        let done = done_of(&mut c, "aside").await;
        let r = &done["response"];
        assert_eq!(r["status"], "completed", "{done}");
        assert!(r["conversation_id"].is_null(), "{done}");
        assert_eq!(r["output_modalities"], json!(["audio"]), "{done}");
        let id = r["id"].as_str().unwrap().to_owned();
        let content = &r["output"][0]["content"][0];
        assert_eq!(content["type"], "output_audio", "{done}");
        assert_eq!(content["transcript"], "Your order ships on Monday.");
        let transcript = c.response_deltas("response.output_audio_transcript.delta", &id);
        assert_eq!(transcript, "Your order ships on Monday.");
        assert_eq!(c.of_kind("response.output_audio.done").len(), 1, "{:?}", c.kinds());

        // Real speech, about as long as the sentence: heard back by a transcription session.
        let audio = audio_of(&c, &id);
        let secs = audio.len() as f64 / f64::from(RATE);
        assert!((1.0..6.0).contains(&secs), "{secs} s of audio");
        let item_id = r["output"][0]["id"].as_str().unwrap().to_owned();
        c.send(json!({"type": "conversation.item.retrieve", "item_id": item_id}))
            .await
            .unwrap();
        expect_error(&mut c, "item_not_found", Some("item_id")).await;
        c.close().await;

        let mut ear = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        ear.send(json!({"type": "session.update", "session": {"type": "realtime",
            "audio": {"input": {"turn_detection": null}}}}))
            .await
            .unwrap();
        ear.wait_for("session.updated", LONG).await.unwrap();
        let mut heard = silence(300, RATE);
        heard.extend(&audio);
        heard.extend(silence(300, RATE));
        ear.stream_audio(&heard, RATE).await.unwrap();
        ear.send(json!({"type": "input_audio_buffer.commit"})).await.unwrap();
        let said = ear
            .wait_for("conversation.item.input_audio_transcription.completed", LONG)
            .await
            .unwrap();
        let words = said.event["transcript"].as_str().unwrap().to_lowercase();
        assert!(words.contains("monday"), "heard {words:?}");
        ear.close().await;
    });
}

#[test]
fn out_of_band_responses_are_limited_per_call_and_cancelled_by_id() {
    let llm_script = Script {
        reply: "Thinking it over.".into(),
        first_token_ms: 20_000,
        ..Script::default()
    };
    let llm = ScriptedLlm::start(llm_script.clone());
    // They stay running: no provider replaces the slow one.
    let gw = Gateway::start(
        &[llm.base_url()],
        &[("SWITCHBOARD_LLM_FIRST_TOKEN_TIMEOUT_MS", "60000")],
    );
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.say("Hello.").await.unwrap();
        for n in 0..4 {
            c.send(
                json!({"type": "response.create", "response": {"conversation": "none",
                "output_modalities": ["text"], "metadata": {"tag": format!("side{n}")}}}),
            )
            .await
            .unwrap();
        }
        let mut ids = Vec::new();
        for _ in 0..4 {
            let created = c.wait_for("response.created", LONG).await.unwrap();
            ids.push(created.event["response"]["id"].as_str().unwrap().to_owned());
        }
        c.send(
            json!({"type": "response.create", "response": {"conversation": "none",
            "output_modalities": ["text"]}}),
        )
        .await
        .unwrap();
        expect_error(&mut c, "too_many_active_responses", None).await;
        // Without an id, response.cancel is for the conversation's response: there is none.
        c.send(json!({"type": "response.cancel"})).await.unwrap();
        expect_error(&mut c, "response_cancel_not_active", None).await;

        c.send(json!({"type": "response.cancel", "response_id": ids[1]}))
            .await
            .unwrap();
        let done = done_of(&mut c, "side1").await;
        assert_eq!(done["response"]["id"], ids[1].as_str());
        assert_eq!(done["response"]["status"], "cancelled", "{done}");
        assert_eq!(
            done["response"]["status_details"]["reason"],
            "client_cancelled"
        );
        // One slot is free again, and a cancelled id is no longer active.
        c.send(
            json!({"type": "response.create", "response": {"conversation": "none",
            "output_modalities": ["text"], "metadata": {"tag": "fifth"}}}),
        )
        .await
        .unwrap();
        let created = c.wait_for("response.created", LONG).await.unwrap();
        assert_eq!(created.event["response"]["metadata"]["tag"], "fifth");
        c.send(json!({"type": "response.cancel", "response_id": ids[1]}))
            .await
            .unwrap();
        expect_error(&mut c, "response_cancel_not_active", None).await;
        // The conversation's own response is not held up by them.
        llm.set_script(Script {
            first_token_ms: 30,
            ..llm_script
        });
        let events = c
            .respond_with(
                c.log.len(),
                json!({"output_modalities": ["text"], "metadata": {"tag": "main"}}),
            )
            .await
            .unwrap();
        let main = events.iter().find(|e| {
            e.kind() == "response.done" && e.event["response"]["metadata"]["tag"] == "main"
        });
        assert!(main.is_some(), "{:?}", c.kinds());
        c.close().await;
    });
}
