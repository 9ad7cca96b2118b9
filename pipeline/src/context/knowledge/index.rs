//! The knowledge index: BM25 over chunk text (tantivy, English stemming and stop words) and
//! dense vectors (MiniLM embeddings, exact dot-product search), fused by a convex combination
//! of cosine and normalised BM25 (see [`fuse`] and ARCHITECTURE.md for why not rank fusion). Tantivy is the one store on disk: each chunk document holds its tenant, document
//! id, heading, text and embedding, so the in-memory vectors are rebuilt from it on open.
//!
//! Tantivy and the vector scan are blocking work: they run on tokio's blocking pool.
//! Embeddings run on the embedder's own worker.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use switchboard_models::embed::{TextEmbedder, dot, from_bytes, to_bytes};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::analyzer::{ANALYZER, analyzer};
use super::chunk::{Chunk, TARGET_CHARS, chunk};

/// Candidates each retriever contributes to the fusion.
const CANDIDATES: usize = 20;
/// Weight of the cosine similarity in the hybrid score (BM25, normalised, gets the rest).
/// Chosen on the FAQ test corpus (pipeline/tests/knowledge.rs): 0.9 keeps dense retrieval's
/// recall on paraphrased questions (30/30 at 3) and BM25's first place on exact terms
/// (MRR 1.0 against 0.95 dense); 0.7 lost two paraphrases.
const DENSE_WEIGHT: f32 = 0.9;
const WRITER_MEMORY: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IndexError {
    #[error("knowledge index: {0}")]
    Index(String),
    #[error("embedding: {0}")]
    Embed(String),
}

fn index_err(e: impl std::fmt::Display) -> IndexError {
    IndexError::Index(e.to_string())
}

/// How to rank: both retrievers fused (the default), or one alone (for comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    #[default]
    Hybrid,
    Bm25,
    Dense,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub doc_id: String,
    pub heading: String,
    pub text: String,
    /// Fused (or single-retriever) score; higher is better.
    pub score: f32,
}

/// A document as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    pub doc_id: String,
    pub filename: String,
    /// Unix seconds when it was indexed.
    pub created_at: u64,
    pub chunks: usize,
}

#[derive(Clone, Copy)]
struct Fields {
    tenant: Field,
    /// `tenant` + U+001F + document id: what a delete matches.
    doc_key: Field,
    doc_id: Field,
    chunk_no: Field,
    filename: Field,
    created_at: Field,
    heading: Field,
    text: Field,
    vector: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_opts = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
        .set_stored();
    let fields = Fields {
        tenant: b.add_text_field("tenant", STRING | STORED),
        doc_key: b.add_text_field("doc_key", STRING),
        doc_id: b.add_text_field("doc_id", STRING | STORED),
        chunk_no: b.add_u64_field("chunk_no", INDEXED | STORED),
        filename: b.add_text_field("filename", STORED),
        created_at: b.add_u64_field("created_at", STORED),
        heading: b.add_text_field("heading", STORED),
        text: b.add_text_field("text", text_opts),
        vector: b.add_bytes_field("vector", STORED),
    };
    (b.build(), fields)
}

fn doc_key(tenant: &str, doc_id: &str) -> String {
    format!("{tenant}\u{1f}{doc_id}")
}

/// One chunk's vector and where to find its text.
struct Entry {
    doc_id: String,
    filename: String,
    created_at: u64,
    chunk_no: u64,
    heading: String,
    text: String,
    vector: Vec<f32>,
}

struct Inner {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    /// Dense side, per tenant.
    vectors: RwLock<HashMap<String, Vec<Entry>>>,
}

/// Per-tenant hybrid retrieval over uploaded documents.
#[derive(Clone)]
pub struct KnowledgeIndex {
    inner: Arc<Inner>,
    embedder: Arc<dyn TextEmbedder>,
}

impl std::fmt::Debug for KnowledgeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeIndex").finish_non_exhaustive()
    }
}

impl KnowledgeIndex {
    /// Open the index in `dir` (created if missing), or in memory when `dir` is `None`.
    pub fn open(dir: Option<&Path>, embedder: Arc<dyn TextEmbedder>) -> Result<Self, IndexError> {
        let (schema, fields) = schema();
        let index = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(index_err)?;
                let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(index_err)?;
                Index::open_or_create(mmap, schema).map_err(index_err)?
            }
            None => Index::create_in_ram(schema),
        };
        index.tokenizers().register(ANALYZER, analyzer());
        let writer = index.writer(WRITER_MEMORY).map_err(index_err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(index_err)?;
        let inner = Inner {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
            vectors: RwLock::new(HashMap::new()),
        };
        inner.load_vectors()?;
        Ok(Self {
            inner: Arc::new(inner),
            embedder,
        })
    }

    /// Chunk, embed and index a document, replacing any earlier version with the same id.
    /// Returns the number of chunks.
    pub async fn add_document(
        &self,
        tenant: &str,
        doc_id: &str,
        filename: &str,
        text: &str,
    ) -> Result<usize, IndexError> {
        let chunks = chunk(text, TARGET_CHARS);
        let texts: Vec<String> = chunks.iter().map(Chunk::indexed_text).collect();
        let vectors = self
            .embedder
            .embed(texts)
            .await
            .map_err(|e| IndexError::Embed(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        let meta = DocumentInfo {
            doc_id: doc_id.to_owned(),
            filename: filename.to_owned(),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            chunks: chunks.len(),
        };
        let tenant = tenant.to_owned();
        let n = chunks.len();
        blocking(move || inner.write(&tenant, &meta, chunks, vectors)).await?;
        Ok(n)
    }

    /// Remove a document's chunks. Returns whether it had any.
    pub async fn remove_document(&self, tenant: &str, doc_id: &str) -> Result<bool, IndexError> {
        let inner = Arc::clone(&self.inner);
        let (tenant, doc_id) = (tenant.to_owned(), doc_id.to_owned());
        blocking(move || inner.remove(&tenant, &doc_id)).await
    }

    /// Whether no tenant has any chunk.
    pub fn is_empty(&self) -> bool {
        self.inner
            .vectors
            .read()
            .map_or(true, |v| v.values().all(Vec::is_empty))
    }

    /// Chunks in a tenant's index.
    pub fn chunk_count(&self, tenant: &str) -> usize {
        self.inner
            .vectors
            .read()
            .map_or(0, |v| v.get(tenant).map_or(0, Vec::len))
    }

    /// A tenant's documents, in id order.
    pub fn documents(&self, tenant: &str) -> Vec<DocumentInfo> {
        let Ok(map) = self.inner.vectors.read() else {
            return Vec::new();
        };
        let mut docs: std::collections::BTreeMap<&str, DocumentInfo> = Default::default();
        for e in map.get(tenant).into_iter().flatten() {
            docs.entry(&e.doc_id)
                .or_insert_with(|| DocumentInfo {
                    doc_id: e.doc_id.clone(),
                    filename: e.filename.clone(),
                    created_at: e.created_at,
                    chunks: 0,
                })
                .chunks += 1;
        }
        docs.into_values().collect()
    }

    /// The `k` best chunks for `query` in `tenant`'s documents.
    pub async fn search(
        &self,
        tenant: &str,
        query: &str,
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<Hit>, IndexError> {
        if k == 0 || query.trim().is_empty() || self.chunk_count(tenant) == 0 {
            return Ok(Vec::new());
        }
        let query_vector = if mode == SearchMode::Bm25 {
            Vec::new()
        } else {
            let mut v = self
                .embedder
                .embed(vec![query.to_owned()])
                .await
                .map_err(|e| IndexError::Embed(e.to_string()))?;
            v.pop().unwrap_or_default()
        };
        self.search_embedded(tenant, query, &query_vector, k, mode)
            .await
    }

    /// [`search`](Self::search) with the query's embedding already computed (by this
    /// index's embedder; ignored for BM25).
    pub async fn search_embedded(
        &self,
        tenant: &str,
        query: &str,
        query_vector: &[f32],
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<Hit>, IndexError> {
        if k == 0 || query.trim().is_empty() || self.chunk_count(tenant) == 0 {
            return Ok(Vec::new());
        }
        let inner = Arc::clone(&self.inner);
        let (tenant, query, query_vector) =
            (tenant.to_owned(), query.to_owned(), query_vector.to_vec());
        blocking(move || inner.search(&tenant, &query, &query_vector, k, mode)).await
    }

    /// The embedder the index's vectors come from (queries must use the same).
    pub fn embedder(&self) -> &Arc<dyn TextEmbedder> {
        &self.embedder
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IndexError> + Send + 'static,
) -> Result<T, IndexError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IndexError::Index(format!("index task failed: {e}")))?
}

type Key = (String, u64);

impl Inner {
    fn load_vectors(&self) -> Result<(), IndexError> {
        let searcher = self.reader.searcher();
        let mut map: HashMap<String, Vec<Entry>> = HashMap::new();
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            for doc in segment.doc_ids_alive() {
                let d: TantivyDocument = searcher
                    .doc(DocAddress::new(ord as u32, doc))
                    .map_err(index_err)?;
                let f = self.fields;
                let s = |field| {
                    d.get_first(field)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_owned()
                };
                let entry = Entry {
                    doc_id: s(f.doc_id),
                    filename: s(f.filename),
                    created_at: d
                        .get_first(f.created_at)
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0),
                    chunk_no: d
                        .get_first(f.chunk_no)
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0),
                    heading: s(f.heading),
                    text: s(f.text),
                    vector: from_bytes(
                        d.get_first(f.vector)
                            .and_then(|v| v.as_bytes())
                            .unwrap_or(&[]),
                    ),
                };
                map.entry(s(f.tenant)).or_default().push(entry);
            }
        }
        *self.vectors.write().map_err(index_err)? = map;
        Ok(())
    }

    fn write(
        &self,
        tenant: &str,
        meta: &DocumentInfo,
        chunks: Vec<Chunk>,
        vectors: Vec<Vec<f32>>,
    ) -> Result<(), IndexError> {
        let f = self.fields;
        let doc_id = meta.doc_id.as_str();
        let key = doc_key(tenant, doc_id);
        let mut entries = Vec::with_capacity(chunks.len());
        {
            let mut writer = self.writer.lock().map_err(index_err)?;
            writer.delete_term(Term::from_field_text(f.doc_key, &key));
            for (n, (c, v)) in chunks.into_iter().zip(vectors).enumerate() {
                let mut d = TantivyDocument::default();
                d.add_text(f.tenant, tenant);
                d.add_text(f.doc_key, &key);
                d.add_text(f.doc_id, doc_id);
                d.add_u64(f.chunk_no, n as u64);
                d.add_text(f.filename, &meta.filename);
                d.add_u64(f.created_at, meta.created_at);
                d.add_text(f.heading, &c.heading);
                d.add_text(f.text, c.indexed_text());
                d.add_bytes(f.vector, &to_bytes(&v));
                writer.add_document(d).map_err(index_err)?;
                let text = c.indexed_text();
                entries.push(Entry {
                    doc_id: doc_id.to_owned(),
                    filename: meta.filename.clone(),
                    created_at: meta.created_at,
                    chunk_no: n as u64,
                    heading: c.heading,
                    text,
                    vector: v,
                });
            }
            writer.commit().map_err(index_err)?;
        }
        self.reader.reload().map_err(index_err)?;
        let mut map = self.vectors.write().map_err(index_err)?;
        let list = map.entry(tenant.to_owned()).or_default();
        list.retain(|e| e.doc_id != doc_id);
        list.extend(entries);
        Ok(())
    }

    fn remove(&self, tenant: &str, doc_id: &str) -> Result<bool, IndexError> {
        let had = {
            let map = self.vectors.read().map_err(index_err)?;
            map.get(tenant)
                .is_some_and(|l| l.iter().any(|e| e.doc_id == doc_id))
        };
        {
            let mut writer = self.writer.lock().map_err(index_err)?;
            writer.delete_term(Term::from_field_text(
                self.fields.doc_key,
                &doc_key(tenant, doc_id),
            ));
            writer.commit().map_err(index_err)?;
        }
        self.reader.reload().map_err(index_err)?;
        if let Some(list) = self.vectors.write().map_err(index_err)?.get_mut(tenant) {
            list.retain(|e| e.doc_id != doc_id);
        }
        Ok(had)
    }

    /// BM25 ranking: chunk keys and scores, best first.
    fn bm25(&self, tenant: &str, query: &str, limit: usize) -> Result<Vec<(Key, f32)>, IndexError> {
        let f = self.fields;
        let mut analyzer = self.index.tokenizer_for_field(f.text).map_err(index_err)?;
        let mut stream = analyzer.token_stream(query);
        let mut terms: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        while stream.advance() {
            let term = Term::from_field_text(f.text, &stream.token().text);
            terms.push((
                Occur::Should,
                Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
            ));
        }
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.tenant, tenant),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (Occur::Must, Box::new(BooleanQuery::new(terms))),
        ]);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(index_err)?;
        top.into_iter()
            .map(|(score, addr)| {
                let d: TantivyDocument = searcher.doc(addr).map_err(index_err)?;
                let doc_id = d.get_first(f.doc_id).and_then(|v| v.as_str()).unwrap_or("");
                let n = d
                    .get_first(f.chunk_no)
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                Ok(((doc_id.to_owned(), n), score))
            })
            .collect()
    }

    fn search(
        &self,
        tenant: &str,
        query: &str,
        query_vector: &[f32],
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<Hit>, IndexError> {
        let map = self.vectors.read().map_err(index_err)?;
        let Some(entries) = map.get(tenant) else {
            return Ok(Vec::new());
        };
        let by_key: HashMap<(&str, u64), &Entry> = entries
            .iter()
            .map(|e| ((e.doc_id.as_str(), e.chunk_no), e))
            .collect();
        let limit = CANDIDATES.max(k);
        let fused = match mode {
            SearchMode::Bm25 => self.bm25(tenant, query, limit)?,
            SearchMode::Dense => dense(entries, query_vector, limit),
            SearchMode::Hybrid => {
                let bm25 = self.bm25(tenant, query, limit)?;
                let dense = dense(entries, query_vector, limit);
                let cosine = |key: &Key| {
                    by_key
                        .get(&(key.0.as_str(), key.1))
                        .map_or(0.0, |e| dot(&e.vector, query_vector))
                };
                fuse(&bm25, &dense, cosine)
            }
        };
        Ok(fused
            .into_iter()
            .filter_map(|((doc, n), score)| {
                by_key.get(&(doc.as_str(), n)).map(|e| Hit {
                    doc_id: e.doc_id.clone(),
                    heading: e.heading.clone(),
                    text: e.text.clone(),
                    score,
                })
            })
            .take(k)
            .collect())
    }
}

/// Exact nearest neighbours by dot product (the vectors are unit length), with their cosine.
fn dense(entries: &[Entry], query: &[f32], limit: usize) -> Vec<(Key, f32)> {
    let mut scored: Vec<(f32, &Entry)> =
        entries.iter().map(|e| (dot(&e.vector, query), e)).collect();
    let limit = limit.min(scored.len());
    if limit == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(limit - 1, |a, b| b.0.total_cmp(&a.0));
    scored.truncate(limit);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .map(|(s, e)| ((e.doc_id.clone(), e.chunk_no), s))
        .collect()
}

/// Hybrid ranking of the union of both candidate lists: a convex combination of the
/// chunk's cosine similarity (exact, for every candidate) and its BM25 score relative to the
/// best BM25 score of the query (0 when BM25 did not find it).
pub(crate) fn fuse<K: Clone + Eq + std::hash::Hash>(
    bm25: &[(K, f32)],
    dense: &[(K, f32)],
    cosine: impl Fn(&K) -> f32,
) -> Vec<(K, f32)> {
    let best = bm25.iter().map(|(_, s)| *s).fold(0.0f32, f32::max);
    let mut lexical: HashMap<&K, f32> = HashMap::new();
    for (k, s) in bm25 {
        lexical.insert(k, if best > 0.0 { s / best } else { 0.0 });
    }
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(K, f32)> = dense
        .iter()
        .map(|(k, _)| k)
        .chain(bm25.iter().map(|(k, _)| k))
        .filter(|k| seen.insert(*k))
        .map(|k| {
            let lex = lexical.get(k).copied().unwrap_or(0.0);
            (
                k.clone(),
                DENSE_WEIGHT * cosine(k) + (1.0 - DENSE_WEIGHT) * lex,
            )
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_combines_meaning_and_words() {
        let cos = |k: &&str| match *k {
            "a" => 0.80,
            "b" => 0.60,
            "c" => 0.55,
            _ => 0.10,
        };
        // "c" matches the query's words best; "a" means the same; "d" only shares words.
        let bm25 = vec![("c", 10.0), ("d", 9.0), ("a", 2.0)];
        let dense = vec![("a", 0.80), ("b", 0.60), ("c", 0.55)];
        let fused: Vec<(&str, f32)> = fuse(&bm25, &dense, cos);
        let order: Vec<&str> = fused.iter().map(|(k, _)| *k).collect();
        // a: 0.9*0.8 + 0.1*0.2 = 0.74; c: 0.495 + 0.1 = 0.595; b: 0.54; d: 0.09 + 0.09 = 0.18.
        assert_eq!(order, ["a", "c", "b", "d"]);
        assert!((fused[0].1 - 0.74).abs() < 1e-5);
        // Words break a tie in meaning.
        let tied = fuse(&[("y", 5.0)], &[("x", 0.5), ("y", 0.5)], |_| 0.5);
        assert_eq!(tied[0].0, "y");
    }
}
