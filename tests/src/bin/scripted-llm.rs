//! Run the scripted OpenAI-compatible LLM on its own: `scripted-llm [REPLY]`. Prints its base URL.

use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};

fn main() {
    let mut script = Script::default();
    if let Some(reply) = std::env::args().nth(1) {
        script.reply = reply;
    }
    let llm = ScriptedLlm::start(script);
    println!("{}", llm.base_url());
    loop {
        std::thread::park();
    }
}
