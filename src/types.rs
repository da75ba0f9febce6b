//! The option and result objects of the JS API (they become interfaces in index.d.ts).

use napi::bindgen_prelude::{Buffer, Either, Float32Array, Function, Object, Uint8Array, Unknown};
use napi_derive::napi;
use serde_json::{Map, Value};

use crate::input::ExactString;

/// Where a client keeps its indexes.
#[napi(string_enum = "lowercase")]
pub enum StorageKind {
    /// In this process's memory (ciphertext only); gone when the client is dropped.
    Memory,
    /// An embedded, crash-safe database file in the directory `path` (created if missing).
    Disk,
    /// A PostgreSQL database that many processes share (`url`); each process keeps its own
    /// working set and follows the others' writes.
    Postgres,
}

/// Storage settings.
#[napi(object)]
pub struct StorageOptions {
    /// The backend: `'memory'`, `'disk'` or `'postgres'`.
    pub kind: StorageKind,
    /// Directory of a `'disk'` store (non-empty). One process at a time may open it
    /// (`ERR_LOCKED`).
    pub path: Option<String>,
    /// `'postgres'`: a libpq connection string, `postgres://user:pw@host:5432/db?sslmode=verify-full&sslrootcert=ca.pem`
    /// or `host=... dbname=...`. `sslmode` as libpq: `disable`, `prefer` (default: TLS if
    /// offered, unverified), `require`, `verify-ca`, `verify-full`.
    pub url: Option<String>,
    /// `'postgres'`: prefix of the tables' names (lowercase SQL name); default `'ciphervec'`.
    pub table: Option<String>,
    /// `'postgres'`: connections in the pool; default 8.
    pub pool_size: Option<f64>,
    /// `'postgres'`: how long to wait for a connection to open; default 10000.
    pub connect_timeout_ms: Option<f64>,
    /// `'postgres'`: how long one statement may take before the call rejects with
    /// `ERR_UNAVAILABLE`; default 30000.
    pub query_timeout_ms: Option<f64>,
    /// `'postgres'`: how long a write waits for another process's write of the same index
    /// before rejecting with `ERR_LOCKED`; default 60000.
    pub lock_timeout_ms: Option<f64>,
    /// `'postgres'`: how often to look for other processes' writes whose notification was
    /// missed (while reconnecting, say); default 1000. Notified writes arrive in milliseconds.
    pub poll_interval_ms: Option<f64>,
}

/// What a read sees of other processes' writes to a shared (`'postgres'`) store. A process
/// always sees its own writes.
#[napi(string_enum = "lowercase")]
pub enum Consistency {
    /// Served from this process's working set, which follows other processes' commits within
    /// milliseconds when notified (at most `pollIntervalMs` when a notification is missed).
    Eventual,
    /// First catches up with every commit made before the read started (one round trip when
    /// there is nothing new).
    Strong,
}

/// Options of `Client.open`.
#[napi(object)]
pub struct ClientOptions {
    /// Where indexes live, required: `{ kind: 'disk', path }` in a directory,
    /// `{ kind: 'postgres', url }` in a database many processes share, or `{ kind: 'memory' }`
    /// only until the process exits (there is no default, so nobody loses data by leaving it out).
    pub storage: StorageOptions,
    /// Worker threads for heavy work (queries, upserts, training): a whole number from 1 to
    /// 1024; default: one per CPU core.
    pub threads: Option<f64>,
    /// The default consistency of reads (`'postgres'` storage); default `'eventual'`.
    pub consistency: Option<Consistency>,
    /// 32 bytes (e.g. from `Client.generateKey()`, kept in your KMS) that seal the store's
    /// catalog of index names, so `listIndexes()` lists every index created or loaded through
    /// a client with this key, also after a restart. One store has one catalog: the first
    /// client key it is opened with makes it, and another key rejects with `ERR_WRONG_KEY`.
    pub client_key: Option<Uint8Array>,
}

/// Options of `index.iterate`.
#[napi(object)]
pub struct IterateOptions {
    /// Items per batch: a whole number from 1 to 10,000; default 1,000.
    pub batch_size: Option<f64>,
    /// Fields to return besides `id`; default `['metadata', 'contents', 'vector']`.
    #[napi(ts_type = "ReadonlyArray<IncludeField>")]
    pub include: Option<Vec<IncludeField>>,
    /// See `ClientOptions.consistency` (applies when the iteration starts).
    pub consistency: Option<Consistency>,
}

/// Options of reads without other options (`count`, `listIds`).
#[napi(object)]
pub struct ReadOptions {
    /// See `ClientOptions.consistency`.
    pub consistency: Option<Consistency>,
}

/// How distances are measured. Lower is always closer.
#[napi(string_enum)]
pub enum DistanceMetric {
    /// Euclidean distance √Σ(a−b)² (the default).
    #[napi(value = "euclidean")]
    Euclidean,
    /// Squared Euclidean distance Σ(a−b)²: the same order, without the square root.
    #[napi(value = "squared_euclidean")]
    SquaredEuclidean,
    /// Cosine distance 1 − cos(a, b), in [0, 2]; zero vectors are rejected.
    #[napi(value = "cosine")]
    Cosine,
}

/// How an index stores the vectors its lists scan, once trained (`createIndex({ indexType })`).
/// The full float32 vectors are kept in memory too (so re-ranking and `get` are exact) unless
/// the index keeps only codes (`resident: 'codes'`).
#[napi(string_enum = "lowercase")]
pub enum IndexType {
    /// Float32 vectors, scanned exactly: the least memory. FAISS's IndexIVFFlat, the replaced
    /// system's `IVFFlat`.
    Ivfflat,
    /// The default. One byte per dimension of each vector's difference from its list's
    /// centroid, on per-dimension ranges trained with the centroids: scans a quarter of the bytes, then re-ranks `rerank × topK` candidates exactly (default
    /// 2). Same recall as `'ivfflat'`, 1.2–1.6× its speed for single queries and 1.2× in
    /// batches, for a quarter more memory (BENCHMARKS.md, "Batches scan list by list"). FAISS's IndexIVFScalarQuantizer QT_8bit, the replaced
    /// system's `IVFSQ` with `sqBits: 8`.
    Ivfsq8,
    /// One float16 per dimension: half the bytes, nearly exact, re-ranks 2 × topK by default.
    /// FAISS's QT_fp16, in place of the replaced system's `IVFSQ` with `sqBits: 16`.
    Ivffp16,
    /// Product quantization: the residual of each vector from its list's centroid is cut
    /// into `pqDim` sub-vectors (default one per two dimensions up to 64, one per four above;
    /// any count up to the dimension, it need not divide it), each stored as one byte naming the nearest of 256
    /// trained centroids. The smallest codes; re-ranks 4 × topK by default. FAISS's
    /// IndexIVFPQ, the replaced system's `IVFPQ` with `pqDim` and `pqBits: 8`.
    Ivfpq,
}

/// What a trained index keeps in memory (`createIndex({ resident })`).
#[napi(string_enum = "lowercase")]
pub enum Resident {
    /// The default: the float32 vectors (beside the codes of a type with codes). Distances
    /// are exact and `get` reads vectors from memory.
    Vectors,
    /// Only the codes (`'ivfsq8'`: a quarter of the vectors' bytes, `'ivffp16'`: half,
    /// `'ivfpq'`: `pqDim` bytes per item). Queries
    /// rank and score by the codes, so distances are those of the decoded vectors, and
    /// `rerank` has nothing to re-rank on. Full vectors stay sealed in the store: `get` and
    /// `include: ['vector']` decrypt them from there (a packed item's whole segment is read
    /// for it), and compaction and retraining read them all back. Not with `'ivfflat'`.
    Codes,
}

/// Auto-training settings.
#[napi(object)]
pub struct AutoTrainOptions {
    /// Vectors at which an untrained index trains itself in the background; a trained index
    /// retrains when it grows past nLists × threshold. Default 10,000 (or the environment
    /// variable `CIPHERVEC_RETRAIN_THRESHOLD`).
    pub threshold: Option<f64>,
}

/// Options of `client.createIndex`.
#[napi(object, object_to_js = false)]
pub struct CreateIndexOptions {
    /// The index's name; unique per key within the client's storage (stored only as an HMAC
    /// under a key derived from `indexKey`). At most 256 bytes of UTF-8, well-formed.
    #[napi(ts_type = "string")]
    pub index_name: ExactString,
    /// 32-byte key from `Client.generateKey()`. Keep it safe: without it the index is unreadable.
    pub index_key: Uint8Array,
    /// Vector dimension; if omitted, fixed by the first upsert.
    pub dimension: Option<f64>,
    /// Distance metric; default `'euclidean'`.
    pub metric: Option<DistanceMetric>,
    /// How the lists store vectors once trained; default `'ivfsq8'` (see `IndexType`).
    /// Fixed at creation. Any other string rejects with `ERR_INVALID_ARGUMENT`.
    #[napi(ts_type = "IndexType")]
    pub index_type: Option<String>,
    /// What the index keeps in memory once trained; default `'vectors'` (see `Resident`).
    /// `'codes'` needs an index type with codes. Fixed at creation.
    #[napi(ts_type = "Resident")]
    pub resident: Option<String>,
    /// `'ivfpq'` only: sub-vectors per code, i.e. bytes per item (1 to the dimension; any
    /// value, an uneven split is fine). Default: one per two dimensions up to 64 dimensions,
    /// one per four above (rounded up).
    pub pq_dim: Option<f64>,
    /// `'ivfpq'` only: bits per sub-vector; 8, the only width so far (and the default).
    #[napi(ts_type = "8")]
    pub pq_bits: Option<f64>,
    /// Background training once the index is large enough: `false` turns it off, `true` or
    /// an object turns it on. Default: on with threshold 10,000, unless the environment sets
    /// `CIPHERVEC_AUTO_TRAIN_DISABLED=1` or `CIPHERVEC_RETRAIN_THRESHOLD`.
    pub auto_train: Option<Either<bool, AutoTrainOptions>>,
    /// Fields for full-text (BM25) search, fixed at creation: `'contents'` (the item's
    /// contents, when a string) and metadata dot paths (`'title'`, `'doc.summary'`); 1 to 16.
    /// A field holding a non-string for an item is skipped for that item. Needed by
    /// `queryMetadata({ text })` and `query({ vector, text })`.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub text_fields: Option<Vec<String>>,
    /// BM25 parameters; default `{ k1: 1.2, b: 0.75 }`.
    pub bm25: Option<Bm25Options>,
    /// Metadata dot paths to leave out of the in-memory metadata index, with everything
    /// below them (e.g. a big blob nobody filters on, to save memory); at most 64. Filters
    /// on them still work, checked item by item. Fixed at creation.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub unindexed_fields: Option<Vec<String>>,
}

/// BM25 parameters (see `CreateIndexOptions.bm25`).
#[napi(object, object_to_js = false)]
pub struct Bm25Options {
    /// Term-frequency saturation, 0 or more; default 1.2.
    pub k1: Option<f64>,
    /// Length normalisation, 0 to 1; default 0.75.
    pub b: Option<f64>,
}

/// Options of `client.loadIndex`.
#[napi(object, object_to_js = false)]
pub struct LoadIndexOptions<'env> {
    /// The name the index was created with.
    #[napi(ts_type = "string")]
    pub index_name: ExactString,
    /// The 32-byte key the index was created with; under another key the index is not found
    /// (`ERR_INDEX_NOT_FOUND`).
    pub index_key: Uint8Array,
    /// Auto-training for this handle; see `CreateIndexOptions.autoTrain`.
    pub auto_train: Option<Either<bool, AutoTrainOptions>>,
    /// Aborts the load: the promise rejects with `ERR_ABORTED` within one read batch (a few
    /// MB of the store), nothing is opened and the stored index is untouched.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
}

/// Options of `client.backup`.
#[napi(object, object_to_js = false)]
pub struct BackupOptions {
    /// The directory to write the backup to, as `Client.open({ storage: { kind: 'disk', path } })`
    /// takes it (a relative path is relative to the working directory): it must not exist yet or
    /// be empty, else the call rejects with `ERR_INVALID_ARGUMENT` and writes nothing.
    pub path: String,
}

/// What `client.backup` copied.
#[napi(object)]
pub struct BackupResult {
    /// Spaces copied: one per index in the store (also indexes this client never opened).
    pub spaces: u32,
    /// Stored entries copied (records, segments, headers, ...), as ciphertext.
    pub entries: f64,
    /// The size of the backup's file, in bytes.
    pub bytes: f64,
}

/// One item to upsert.
#[napi(object, object_to_js = false)]
// Declares the item type of index.d.ts; the items themselves are read by `input::upsert`.
#[allow(dead_code)]
pub struct VectorItem<'env> {
    /// Unique, non-empty id (at most 1024 bytes of UTF-8; well-formed: a lone surrogate is
    /// rejected).
    pub id: String,
    /// The embedding; `Float32Array` is the fast path.
    #[napi(ts_type = "Float32Array | ReadonlyArray<number>")]
    pub vector: Either<Float32Array, Vec<f64>>,
    /// A JSON object stored (encrypted) with the item; serialised like `JSON.stringify` (a
    /// `Date` becomes its ISO string), except that a value JSON would drop or change
    /// (`undefined`, a function, a symbol, `NaN`, `Infinity`, a BigInt, a Map or Set) is
    /// rejected with `ERR_INVALID_ARGUMENT` naming its path. At most 64 levels deep.
    #[napi(ts_type = "MetadataInput")]
    pub metadata: Option<Unknown<'env>>,
    /// Text or bytes stored (encrypted) with the item; returned in the form given (text
    /// exactly: a lone surrogate is rejected).
    pub contents: Option<Either<String, Uint8Array>>,
}

/// Options of `index.upsert`: either `items`, or the columnar form `ids` + `vectors`
/// (+ optional `metadata` and `contents` of the same length). The columnar form with a flat
/// `Float32Array` is the fast path for large batches. Either form is read in slices of a
/// few thousand items, one per event-loop turn, so a large call never holds the JS thread
/// for long; a value of the wrong type inside an array rejects with `ERR_INVALID_ARGUMENT`
/// naming its position.
#[napi(object, object_to_js = false)]
pub struct UpsertOptions<'env> {
    /// Items to write. An existing id is overwritten entirely; within one call the last
    /// occurrence of an id wins.
    #[napi(ts_type = "ReadonlyArray<VectorItem>")]
    pub items: Option<Unknown<'env>>,
    /// Columnar form: ids.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub ids: Option<Unknown<'env>>,
    /// Columnar form: one `Float32Array` of `ids.length × dimension` values (fastest), or one
    /// vector (an array of numbers or a Float32Array) per id. Copied (a slice per event-loop
    /// turn) before the write starts: do not change it until the promise settles; one
    /// transferred meanwhile rejects with `ERR_INVALID_ARGUMENT`.
    #[napi(ts_type = "Float32Array | ReadonlyArray<Float32Array | ReadonlyArray<number>>")]
    pub vectors: Option<Unknown<'env>>,
    /// Columnar form: metadata per id (`null` for none); see `VectorItem.metadata`.
    #[napi(ts_type = "ReadonlyArray<MetadataInput | null | undefined>")]
    pub metadata: Option<Unknown<'env>>,
    /// Columnar form: contents per id (`null` for none).
    #[napi(ts_type = "ReadonlyArray<string | Uint8Array | null | undefined>")]
    pub contents: Option<Unknown<'env>>,
    /// Aborts the upsert: the promise rejects with `ERR_ABORTED` and nothing is written, if
    /// the signal fires before the write reaches the store (while the arguments are read,
    /// while the batch waits for another write, or while it is sealed); once the write is
    /// stored the call completes.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
}

/// Result of `index.upsert`.
#[napi(object)]
pub struct UpsertResult {
    /// Distinct ids written.
    pub upserted_count: u32,
    /// Whether this upsert started a background training run (auto-training).
    pub training_triggered: bool,
}

/// A field a read can return besides the id.
#[napi(string_enum = "lowercase")]
pub enum IncludeField {
    Distance,
    Metadata,
    Contents,
    Vector,
}

/// Options of `index.query`.
#[napi(object, object_to_js = false)]
pub struct QueryOptions<'env> {
    /// The query embedding.
    #[napi(ts_type = "Float32Array | ReadonlyArray<number>")]
    pub vector: Unknown<'env>,
    /// How many neighbours to return, 1..=10000; default 100.
    pub top_k: Option<f64>,
    /// Lists to scan once trained (ignored before). Default 2·⌈√nLists⌉ (64 of 1024 lists);
    /// more is slower and closer to exact; `nLists` or more is exact.
    pub n_probes: Option<f64>,
    /// Index types with codes (`'ivfsq8'`, `'ivffp16'`, `'ivfpq'`): candidates per result
    /// taken from the codes and re-scored on the exact vectors, 1..=1000; default 2 (`'ivfpq'`:
    /// 4). Higher is slower and closer to the flat index's results; ignored by `'ivfflat'`.
    /// Distances returned are always exact.
    pub rerank: Option<f64>,
    /// Mongo-style metadata filter, e.g. `{ lang: 'en', year: { $gte: 2020 } }`; only matching
    /// items are returned (see the README for operators and edge cases). A value JSON would
    /// drop or change (`undefined`, a function, `NaN`, ...) rejects with `ERR_INVALID_FILTER`
    /// naming its path: `{ tenant: undefined }` must not match every item.
    #[napi(ts_type = "Filter")]
    pub filters: Option<Unknown<'env>>,
    /// Fields to return besides `id`; default `['distance']`.
    #[napi(ts_type = "ReadonlyArray<IncludeField>")]
    pub include: Option<Vec<IncludeField>>,
    /// See `ClientOptions.consistency`.
    pub consistency: Option<Consistency>,
    /// Hybrid search: a text searched by BM25 over the index's text fields, whose ranking
    /// is fused with the vector's by weighted reciprocal rank fusion (each ranking takes
    /// 3 × `topK` candidates; both see `filters`). Results then carry `score` (higher is
    /// better) and are ordered by it.
    pub text: Option<String>,
    /// Hybrid search: the text fields to search; default all of the index's.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub text_fields: Option<Vec<String>>,
    /// Hybrid search: the vector ranking's weight, 0 (text only) to 1 (vector only); default
    /// 0.5. A result's score is `alpha / (rrfK + vector rank) + (1 − alpha) / (rrfK + text
    /// rank)`, ranks from 1, a ranking it is absent from adding nothing.
    pub alpha: Option<f64>,
    /// Hybrid search: the rank offset of the fusion, 0 or more; default 60.
    pub rrf_k: Option<f64>,
}

/// Options of `index.queryBatch`.
#[napi(object, object_to_js = false)]
pub struct QueryBatchOptions<'env> {
    /// Query embeddings: one vector (an array of numbers or a Float32Array) per query, or one
    /// `Float32Array` of `n × dimension` values. Copied before the call works on it.
    #[napi(ts_type = "Float32Array | ReadonlyArray<Float32Array | ReadonlyArray<number>>")]
    pub vectors: Unknown<'env>,
    /// Neighbours per query, 1..=10000; default 100.
    pub top_k: Option<f64>,
    /// Lists to scan per query once trained; see `QueryOptions.nProbes`.
    pub n_probes: Option<f64>,
    /// Candidates per result re-ranked exactly; see `QueryOptions.rerank`.
    pub rerank: Option<f64>,
    /// Metadata filter applied to every query; see `QueryOptions.filters`.
    #[napi(ts_type = "Filter")]
    pub filters: Option<Unknown<'env>>,
    /// Fields to return besides `id`; default `['distance']`.
    #[napi(ts_type = "ReadonlyArray<IncludeField>")]
    pub include: Option<Vec<IncludeField>>,
    /// See `ClientOptions.consistency`.
    pub consistency: Option<Consistency>,
    /// Aborts the batch: queries not started yet are skipped and the promise rejects with
    /// `ERR_ABORTED`.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
    /// Hybrid search: one text per query vector (see `QueryOptions.text`); results then carry
    /// `score` and are ordered by it.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub texts: Option<Vec<String>>,
    /// Hybrid search: see `QueryOptions.textFields`.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub text_fields: Option<Vec<String>>,
    /// Hybrid search: see `QueryOptions.alpha`.
    pub alpha: Option<f64>,
    /// Hybrid search: see `QueryOptions.rrfK`.
    pub rrf_k: Option<f64>,
    /// `'rows'` (default): one array of result objects per query. `'columns'`: one
    /// `QueryColumns` object for the whole batch (typed arrays and flat arrays, no object per
    /// result), for callers that read many results.
    pub layout: Option<QueryLayout>,
}

/// How `queryBatch` returns its results.
#[napi(string_enum = "lowercase")]
#[derive(PartialEq, Eq)]
pub enum QueryLayout {
    /// An array of result objects per query.
    Rows,
    /// One object of columns for the whole batch: building no object per result costs the
    /// event loop a fraction of the time (BENCHMARKS.md, "Columnar queryBatch results").
    Columns,
}

/// One neighbour, closest first.
#[napi(object)]
pub struct QueryResultItem {
    pub id: String,
    /// Distance under the index's metric (lower is closer), if `include` has `'distance'`.
    pub distance: Option<f64>,
    /// The fused score of a hybrid query (`text` given), higher is better.
    pub score: Option<f64>,
    /// The item's metadata, if `include` has `'metadata'` and the item has any.
    #[napi(ts_type = "Metadata")]
    pub metadata: Option<Map<String, Value>>,
    pub contents: Option<Either<String, Buffer>>,
    pub vector: Option<Float32Array>,
}

/// Options of `index.get`.
#[napi(object, object_to_js = false)]
pub struct GetOptions<'env> {
    /// Ids to fetch. Ids that are not in the index yield no item.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub ids: Unknown<'env>,
    /// Fields to return besides `id`; default `['metadata', 'contents', 'vector']`.
    #[napi(ts_type = "ReadonlyArray<IncludeField>")]
    pub include: Option<Vec<IncludeField>>,
    /// See `ClientOptions.consistency`.
    pub consistency: Option<Consistency>,
}

/// One fetched item.
#[napi(object)]
pub struct GetResultItem {
    pub id: String,
    /// The item's metadata, if requested and present.
    #[napi(ts_type = "Metadata")]
    pub metadata: Option<Map<String, Value>>,
    pub contents: Option<Either<String, Buffer>>,
    pub vector: Option<Float32Array>,
}

/// Options of `index.delete`.
#[napi(object, object_to_js = false)]
pub struct DeleteOptions<'env> {
    /// Ids to delete; ids not in the index are ignored.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub ids: Unknown<'env>,
}

/// What `index.stats()` reports: read from the working set in memory, nothing from the store.
#[napi(object)]
pub struct IndexStats {
    /// Items held.
    pub items: u32,
    /// The dimension; absent until the first upsert fixes it.
    pub dimension: Option<u32>,
    /// The distance metric.
    pub metric: DistanceMetric,
    /// How the lists store vectors once trained.
    pub index_type: IndexType,
    /// What the index keeps in memory once trained.
    pub resident: Resident,
    /// `'untrained'`, `'training'` or `'trained'`.
    pub training_state: TrainingState,
    /// IVF lists: 1 until trained.
    pub n_lists: u32,
    /// How the items spread over the lists; absent until trained.
    pub list_sizes: Option<ListSizes>,
    /// Loose records and tombstones in the store; a compaction packs them into segments.
    pub loose_entries: u32,
    /// Packed segments in the store.
    pub segments: u32,
    /// Heap bytes the working set holds, by structure.
    pub memory: MemoryStats,
}

/// Items per IVF list (`IndexStats.listSizes`).
#[napi(object)]
pub struct ListSizes {
    /// The smallest list.
    pub min: u32,
    /// The median list.
    pub median: u32,
    /// The largest list.
    pub max: u32,
    /// Lists holding no item.
    pub empty: u32,
}

/// Heap bytes of an index's working set (`IndexStats.memory`), counted from capacities: the
/// process also holds the allocator's slack and the disk store's page cache.
#[napi(object)]
pub struct MemoryStats {
    /// The float32 vectors (the IVF lists once trained).
    pub vectors_bytes: f64,
    /// The lists' compressed codes (`'ivfsq8'`, `'ivffp16'`, `'ivfpq'`) with their norms and code book.
    pub codes_bytes: f64,
    /// Ids and the id → item tables.
    pub ids_bytes: f64,
    /// Metadata (binary encoded).
    pub metadata_bytes: f64,
    /// Contents.
    pub contents_bytes: f64,
    /// The metadata index (which items hold which values), estimated.
    pub metadata_index_bytes: f64,
    /// The full-text index (`textFields`), estimated.
    pub text_index_bytes: f64,
    /// Everything else: norms, centroids, list slots, per-item bookkeeping, tombstones.
    pub other_bytes: f64,
    /// All of it.
    pub total_bytes: f64,
}

/// Result of `index.delete`.
#[napi(object)]
pub struct DeleteResult {
    /// How many of the ids existed and were deleted.
    pub deleted_count: u32,
}

/// Progress of a training run, reported once per Lloyd iteration or mini-batch pass.
#[napi(object)]
pub struct TrainingProgress {
    /// 1-based iteration number (`'minibatch'`: passes, then the finishing Lloyd iteration).
    pub iteration: u32,
    /// The most iterations the run reports: `maxIters` (`'minibatch'`: `maxIters` + 1).
    pub max_iters: u32,
    /// Sum of squared distances of the training sample to its centroids (lower is better);
    /// in a mini-batch pass, each vector's distance when its step assigned it.
    pub inertia: f64,
}

/// The k-means `index.train` runs.
#[napi(string_enum = "lowercase")]
pub enum TrainAlgorithm {
    /// Exact Lloyd iterations, FAISS's k-means (the default): `maxIters` (default 10) full
    /// passes over the training sample, each moving every centroid to the mean of its points,
    /// until `tolerance`.
    Lloyd,
    /// Mini-batch k-means: `maxIters` passes (default 4) over the training sample in steps of
    /// `batchSize` vectors, each step moving the centroids, then one exact Lloyd iteration.
    /// Costs about `maxIters` + 1 Lloyd iterations.
    Minibatch,
}

/// Options of `index.train`.
#[napi(object, object_to_js = false)]
pub struct TrainOptions<'env> {
    /// Number of lists (k-means centroids). Default: the largest power of two ≤ 4·√n, at most
    /// n/39 (n = vectors in the index). Needs at least 2 × nLists vectors.
    pub n_lists: Option<f64>,
    /// Which k-means runs: `'lloyd'` (default) or `'minibatch'`; any other value rejects with
    /// `ERR_INVALID_ARGUMENT`.
    #[napi(ts_type = "TrainAlgorithm")]
    pub algorithm: Option<String>,
    /// `'lloyd'`: vectors per assignment block (a unit of parallel work); `'minibatch'`:
    /// vectors per training step (the centroids move after each). Default 2048.
    pub batch_size: Option<f64>,
    /// `'lloyd'`: iteration cap (default 10; `maxIters: 20, tolerance: 0` is FAISS's k-means).
    /// `'minibatch'`: passes over the training sample (default 4; one Lloyd iteration follows).
    pub max_iters: Option<f64>,
    /// Stop when the relative change of inertia between two iterations (or passes) falls below
    /// this; default 1e-6.
    pub tolerance: Option<f64>,
    /// Megabytes the trainer may use for its sample (0 = no limit); it samples fewer vectors
    /// to stay under it.
    pub max_memory: Option<f64>,
    /// Seed for sampling and initialisation: same seed and data give the same centroids.
    pub seed: Option<f64>,
    /// Aborts a running training: the promise rejects with `ERR_ABORTED`, the index keeps its
    /// previous state.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
    /// Called once per Lloyd iteration or mini-batch pass (then once for the finishing Lloyd
    /// iteration). It does not keep the process alive.
    #[napi(ts_type = "(progress: TrainingProgress) => void")]
    pub on_progress: Option<Function<'env, TrainingProgress, ()>>,
}

/// Result of `index.train`.
#[napi(object)]
pub struct TrainResult {
    /// Lists built.
    pub n_lists: u32,
    /// k-means iterations run (`'minibatch'`: passes + the finishing Lloyd iteration).
    pub iterations: u32,
    /// Final inertia of the training sample.
    pub inertia: f64,
    /// Vectors the centroids were trained on (a sample of at most 256 per list).
    pub trained_on: u32,
    /// Wall-clock seconds, including assigning and re-sealing every item.
    pub seconds: f64,
}

/// Where an index is in its training life cycle.
#[napi(string_enum = "lowercase")]
pub enum TrainingState {
    /// No IVF lists: queries scan everything (exact).
    Untrained,
    /// A training run is in progress (queries use the previous state meanwhile).
    Training,
    /// IVF lists exist: queries probe the nearest lists.
    Trained,
}

/// Options of `index.queryMetadata`.
#[napi(object, object_to_js = false)]
pub struct QueryMetadataOptions<'env> {
    /// Mongo-style metadata filter; `{}` matches every item. Required unless `text` is given
    /// (then it pre-filters the text's matches).
    #[napi(ts_type = "Filter")]
    pub filters: Option<Unknown<'env>>,
    /// Full-text search: items matching this text by BM25 over the index's text fields,
    /// best first, each with its `score` (`orderBy` does not apply).
    pub text: Option<String>,
    /// Full-text search: the text fields to search; default all of the index's.
    #[napi(ts_type = "ReadonlyArray<string>")]
    pub text_fields: Option<Vec<String>>,
    /// Full-text search: only items holding every term of the text; default false.
    pub require_all_terms: Option<bool>,
    /// How many ids to return, 1..=10000; default 100.
    pub top_k: Option<f64>,
    /// Dot path of a metadata field to order by (numbers before strings, items without the
    /// field last); default: order by id.
    #[napi(ts_type = "string")]
    pub order_by: Option<ExactString>,
    /// Sort direction for `orderBy`; default true.
    pub ascending: Option<bool>,
    /// Matches to skip before the `topK` returned (a page further on); default 0.
    pub offset: Option<f64>,
    /// A cursor for id order (no `orderBy`): only ids after this one. Pass the last id of a
    /// page to get the next; unlike `offset` it stays right while items are written or
    /// deleted between pages.
    #[napi(ts_type = "string")]
    pub after_id: Option<ExactString>,
    /// Fields of each matched item to return besides `id` (and `score`), as `get` returns
    /// them: a get by filter in one call. Default none (`distance` does not apply).
    #[napi(ts_type = "ReadonlyArray<IncludeField>")]
    pub include: Option<Vec<IncludeField>>,
    /// See `ClientOptions.consistency`.
    pub consistency: Option<Consistency>,
}

/// One item matched by `queryMetadata`.
#[napi(object)]
pub struct MetadataMatch {
    pub id: String,
    /// The BM25 score of a full-text search (`text` given), higher is better.
    pub score: Option<f64>,
}
