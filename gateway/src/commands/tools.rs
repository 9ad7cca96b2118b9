//! `switchboard tools import FILE`: an OpenAPI document's proposed tools, printed for review.

use crate::cli::ToolsAction;
use switchboard_pipeline::tools::openapi;

pub fn run(action: ToolsAction) -> anyhow::Result<()> {
    match action {
        ToolsAction::Import { file, base_url } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let proposals = openapi::propose(&text, base_url.as_deref())
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if proposals.is_empty() {
                anyhow::bail!("{}: no operations to turn into tools", file.display());
            }
            println!("{}", serde_json::to_string_pretty(&proposals)?);
            Ok(())
        }
    }
}
