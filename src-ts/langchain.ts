// `ciphervec/langchain`: a LangChain.js vector store on an encrypted ciphervec index.
//
// Compiled by `npm run build:langchain` (tsc, CommonJS) to `dist/langchain.js` and
// `dist/langchain.d.ts`; the package's exports map serves it as `ciphervec/langchain`.
// `@langchain/core` (1.x) is an optional peer dependency: only this entry point needs it.
import { randomUUID } from 'node:crypto'

import type { Callbacks } from '@langchain/core/callbacks/manager'
import { Document, type DocumentInterface } from '@langchain/core/documents'
import type { EmbeddingsInterface } from '@langchain/core/embeddings'
import { maximalMarginalRelevance } from '@langchain/core/utils/math'
import { VectorStore, type MaxMarginalRelevanceSearchOptions } from '@langchain/core/vectorstores'

import type {
  AutoTrainOptions,
  Client,
  Consistency,
  DistanceMetric,
  EncryptedIndex,
  Filter,
  IncludeField,
  JsonInput,
  QueryResultItem,
} from '../index.js'

/**
 * A value a filter compares against: JSON, plus `Date` (compared as its ISO-8601 string, as
 * `JSON.stringify` writes it). `undefined` is not a value here: ciphervec rejects it with
 * `ERR_INVALID_FILTER` rather than let `{ tenant: undefined }` match every document.
 */
export type FilterValue = JsonInput

/**
 * A ciphervec metadata filter, Mongo-style, over the documents' `metadata`: implicit equality
 * (`{ lang: 'en' }`), `$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $nor $not $regex
 * $contains`, dot paths for nested fields (`'loc.city'`); `{}` matches every document. The
 * README's "Metadata filters" pins the semantics (e.g. `$ne` excludes documents missing the
 * field). A malformed filter rejects with `ERR_INVALID_FILTER`; a misspelt operator inside a
 * field's condition does not compile (it is ciphervec's `Filter` type).
 */
export type CiphervecFilter = Filter

/** Options of a {@link CiphervecStore} around an index that is already open. */
export interface CiphervecStoreArgs {
  /** The open ciphervec index the store reads and writes; `store.index` gives it back. */
  index: EncryptedIndex
  /**
   * IVF lists each search scans once the index is trained (see `QueryOptions.nProbes`);
   * default: ciphervec's, 2·⌈√nLists⌉.
   */
  nProbes?: number
  /** Consistency of the store's reads on a shared (`'postgres'`) store; default: the client's. */
  consistency?: Consistency
  /**
   * Ids deleted per round by `delete({ filter })`, 1 to 10,000 (the most one
   * `queryMetadata` call returns); default 10,000.
   */
  deletePageSize?: number
}

/** Options of {@link CiphervecStore.open}: which index to open (or create), and the store's options. */
export interface CiphervecOpenArgs extends Omit<CiphervecStoreArgs, 'index'> {
  /** The ciphervec client whose storage holds the index. */
  client: Client
  /** The index's name. */
  indexName: string
  /** The index's 32-byte key (`Client.generateKey()`). */
  indexKey: Uint8Array
  /**
   * Create the index if it does not exist; default `true`. A wrong key cannot be told from
   * a missing index (both are `ERR_INDEX_NOT_FOUND`), so with `true` a wrong key creates a
   * new, empty index under that key: pass `false` wherever the index must already exist.
   */
  createIfMissing?: boolean
  /**
   * The distance metric. Used when the index is created (default `'cosine'`, the usual metric
   * of text embeddings); when given and the existing index has another metric, `open` rejects
   * with `ERR_INVALID_ARGUMENT`.
   */
  metric?: DistanceMetric
  /**
   * The vector dimension, if known; otherwise the first documents fix it. When given and the
   * existing index has another dimension, `open` rejects with `ERR_DIMENSION_MISMATCH`.
   */
  dimension?: number
  /** Auto-training of the index (see `CreateIndexOptions.autoTrain`); default: ciphervec's. */
  autoTrain?: boolean | AutoTrainOptions
}

/** Options of {@link CiphervecStore.addDocuments} and {@link CiphervecStore.addVectors}. */
export interface CiphervecAddOptions {
  /**
   * One id per document. Default: each document's `id`, or a random UUID for a document
   * without one. A document whose id is already in the index replaces it.
   */
  ids?: string[]
}

/**
 * What {@link CiphervecStore.delete} deletes: the documents with these `ids` (ids not in the
 * index are ignored), or every document whose metadata matches `filter` (`{}`: all of them).
 */
export type CiphervecDeleteParams = { ids: string[]; filter?: undefined } | { filter: CiphervecFilter; ids?: undefined }

/**
 * The score {@link CiphervecStore} reports for a ciphervec distance: a similarity, higher is
 * closer, falling strictly as the distance grows (so results, closest first, have falling scores).
 *
 * - `'cosine'` (distance d = 1 − cos θ, in [0, 2]): `1 − d`, the cosine similarity, in
 *   [−1, 1]: 1 for the same direction, 0 at right angles (everything at most 90° apart scores
 *   in [0, 1]). The convention of LangChain's `MemoryVectorStore` and of Python LangChain's
 *   cosine relevance score, so a `minSimilarityScore` threshold means the same here.
 * - `'euclidean'` (d = ‖a − b‖) and `'squared_euclidean'` (d = ‖a − b‖²): `1 / (1 + d)`, in
 *   (0, 1]: 1 for the same vector, ½ at distance 1, towards 0 far away. It needs no bound on
 *   vector lengths (`1 − d/√2`, Python's choice, assumes unit vectors and goes negative
 *   otherwise).
 */
export function distanceToScore(metric: DistanceMetric, distance: number): number {
  switch (metric) {
    case 'cosine':
      return 1 - distance
    case 'euclidean':
    case 'squared_euclidean':
      return 1 / (1 + distance)
    default:
      throw codedError('ERR_INVALID_ARGUMENT', `unknown distance metric '${String(metric satisfies never)}'`)
  }
}

/**
 * A LangChain.js `VectorStore` on a ciphervec index: documents (embedding, `pageContent`,
 * `metadata` and id) are stored encrypted, searched in memory.
 *
 * - A document is one ciphervec item: its id, its embedding as the vector, `pageContent` as
 *   the item's `contents` and `metadata` as its metadata (JSON; a value JSON cannot hold, such
 *   as `undefined`, rejects the write with `ERR_INVALID_ARGUMENT`).
 * - Scores are similarities, higher is closer: see {@link distanceToScore} for the formula of
 *   each metric.
 * - Filters are ciphervec's Mongo-style metadata filters ({@link CiphervecFilter}).
 * - Errors are ciphervec's: `Error`s with a stable `code` (see the README's Errors).
 *
 * @example
 * ```ts
 * const store = await CiphervecStore.open(embeddings, { client, indexName: 'docs', indexKey })
 * await store.addDocuments([{ pageContent: 'hello', metadata: { lang: 'en' } }])
 * const hits = await store.similaritySearchWithScore('hi', 4, { lang: 'en' })
 * ```
 */
export class CiphervecStore extends VectorStore {
  /** Filters are ciphervec metadata filters. */
  declare FilterType: CiphervecFilter

  /** The ciphervec index behind the store: for `train()`, `stats()`, `count()` and the rest. */
  readonly index: EncryptedIndex
  /** IVF lists each search scans (see {@link CiphervecStoreArgs.nProbes}). */
  readonly nProbes: number | undefined
  /** Read consistency (see {@link CiphervecStoreArgs.consistency}). */
  readonly consistency: Consistency | undefined
  /** Ids deleted per round by `delete({ filter })` (see {@link CiphervecStoreArgs.deletePageSize}). */
  readonly deletePageSize: number

  /**
   * A store on an index that is already open. {@link CiphervecStore.open} opens or creates
   * the index as well.
   */
  constructor(embeddings: EmbeddingsInterface, args: CiphervecStoreArgs) {
    // Nothing goes to the base class's constructor arguments (kept as `lc_kwargs`), so that a
    // store never carries its arguments around for serialisation.
    super(embeddings, {})
    const { index, nProbes, consistency, deletePageSize = MAX_PAGE } = args
    if (!Number.isInteger(deletePageSize) || deletePageSize < 1 || deletePageSize > MAX_PAGE) {
      throw codedError('ERR_INVALID_ARGUMENT', `deletePageSize must be a whole number from 1 to ${MAX_PAGE}, got ${deletePageSize}`)
    }
    this.index = index
    this.nProbes = nProbes
    this.consistency = consistency
    this.deletePageSize = deletePageSize
  }

  /**
   * Opens the index `indexName` under `indexKey`, creating it if it does not exist (unless
   * `createIfMissing: false`), and returns a store on it. Opening the same name and key again,
   * in this process or after a restart, gives the documents back.
   *
   * Rejects with ciphervec's errors: `ERR_INDEX_NOT_FOUND` (missing or another key, with
   * `createIfMissing: false`), `ERR_INVALID_KEY`, `ERR_INTEGRITY`, ...; and with
   * `ERR_INVALID_ARGUMENT` / `ERR_DIMENSION_MISMATCH` if an existing index's metric /
   * dimension differs from a `metric` / `dimension` given.
   */
  static async open(embeddings: EmbeddingsInterface, args: CiphervecOpenArgs): Promise<CiphervecStore> {
    const { client, indexName, indexKey, createIfMissing = true, metric, dimension, autoTrain, ...storeArgs } = args
    const load = () => client.loadIndex({ indexName, indexKey, ...(autoTrain !== undefined && { autoTrain }) })
    let index: EncryptedIndex
    try {
      index = await load()
    } catch (e) {
      if (!createIfMissing || errorCode(e) !== 'ERR_INDEX_NOT_FOUND') throw e
      try {
        index = await client.createIndex({
          indexName,
          indexKey,
          metric: metric ?? 'cosine',
          ...(dimension !== undefined && { dimension }),
          ...(autoTrain !== undefined && { autoTrain }),
        })
      } catch (e2) {
        // Another process (or call) created it meanwhile: open theirs.
        if (errorCode(e2) !== 'ERR_INDEX_EXISTS') throw e2
        index = await load()
      }
    }
    if (metric !== undefined && index.metric !== metric) {
      throw codedError('ERR_INVALID_ARGUMENT', `index '${indexName}' uses the metric '${index.metric}', not '${metric}'`)
    }
    if (dimension !== undefined && index.dimension !== null && index.dimension !== dimension) {
      throw codedError('ERR_DIMENSION_MISMATCH', `index '${indexName}' has dimension ${index.dimension}, not ${dimension}`)
    }
    return new CiphervecStore(embeddings, { index, ...storeArgs })
  }

  /** `'ciphervec'`. */
  _vectorstoreType(): string {
    return 'ciphervec'
  }

  /**
   * Embeds the documents' `pageContent` with the store's embeddings and writes them (see
   * {@link CiphervecStore.addVectors}). Resolves to the documents' ids, in order.
   */
  async addDocuments(documents: DocumentInterface[], options?: CiphervecAddOptions): Promise<string[]> {
    const ids = resolveIds(documents, options?.ids)
    if (documents.length === 0) return []
    const vectors = await this.embeddings.embedDocuments(documents.map((d) => d.pageContent))
    return this.addVectors(vectors, documents, { ids })
  }

  /**
   * Writes one document per vector, all or none, in one ciphervec upsert: the vector, the
   * document's `pageContent` as contents and its `metadata`. Ids: `options.ids`, else each
   * document's `id`, else a random UUID; an id already in the index is replaced. Resolves to
   * the ids, in order.
   *
   * Rejects with `ERR_INVALID_ARGUMENT` if the counts of vectors, documents and ids differ
   * or a metadata value is not JSON, `ERR_DIMENSION_MISMATCH` for a vector of another
   * dimension, `ERR_INVALID_VECTOR` for NaN, infinities or (under cosine) a zero vector.
   */
  async addVectors(vectors: number[][], documents: DocumentInterface[], options?: CiphervecAddOptions): Promise<string[]> {
    if (vectors.length !== documents.length) {
      throw codedError('ERR_INVALID_ARGUMENT', `addVectors got ${vectors.length} vectors for ${documents.length} documents`)
    }
    const ids = resolveIds(documents, options?.ids)
    if (documents.length === 0) return []
    await this.index.upsert({
      ids,
      vectors: column(vectors),
      metadata: documents.map((d) => d.metadata ?? null),
      contents: documents.map((d) => d.pageContent),
    })
    return ids
  }

  /**
   * The `k` documents nearest to `query` (whose metadata match `filter`, if given), closest
   * first, each with its score: a similarity, higher is closer, falling down the list (see
   * {@link distanceToScore}: cosine similarity under `'cosine'`, `1 / (1 + distance)` under
   * the Euclidean metrics). `k` is 1 to 10,000 (`ERR_INVALID_ARGUMENT` otherwise).
   */
  async similaritySearchVectorWithScore(query: number[], k: number, filter?: this['FilterType']): Promise<[Document, number][]> {
    const hits = await this.search(query, k, filter, ['distance', 'metadata', 'contents'])
    const metric = this.index.metric
    return hits.map((hit) => [toDocument(hit), distanceToScore(metric, distanceOf(hit))])
  }

  /**
   * Maximal marginal relevance: fetches the `fetchK` (default 20, at least `k`) documents
   * nearest to the query, then picks `k` of them one by one, each maximising
   * `lambda · sim(query, doc) − (1 − lambda) · max sim(doc, picked)` (LangChain's
   * `maximalMarginalRelevance`, where `sim` is the cosine similarity of the embeddings,
   * whatever the index's metric). `lambda` (default 0.5) runs from 0, most diverse, to 1,
   * plain similarity order.
   */
  async maxMarginalRelevanceSearch(query: string, options: MaxMarginalRelevanceSearchOptions<this['FilterType']>, _callbacks?: Callbacks): Promise<Document[]> {
    const { k, fetchK = 20, lambda = 0.5, filter } = options
    const queryVector = await this.embeddings.embedQuery(query)
    const hits = await this.search(queryVector, Math.max(k, fetchK), filter, ['metadata', 'contents', 'vector'])
    const picked = maximalMarginalRelevance(
      queryVector,
      hits.map((hit) => Array.from(vectorOf(hit))),
      lambda,
      k,
    )
    return picked.map((i) => toDocument(hits[i]))
  }

  /**
   * Deletes the documents with the given `ids` (ids not in the index are ignored), or every
   * document whose metadata matches `filter`: the matching ids are read (`queryMetadata`) and
   * deleted `deletePageSize` at a time until none is left, so a filter may match any number of
   * documents; each round is atomic, the whole is not. Rejects with `ERR_INVALID_ARGUMENT`
   * unless exactly one of `ids` and `filter` is given.
   */
  async delete(params: CiphervecDeleteParams): Promise<void> {
    // `?? {}`: JavaScript callers may call `delete()` without arguments.
    const { ids, filter } = (params ?? {}) as { ids?: string[]; filter?: CiphervecFilter }
    if ((ids === undefined) === (filter === undefined)) {
      throw codedError('ERR_INVALID_ARGUMENT', 'delete takes either { ids } or { filter }')
    }
    if (filter === undefined) {
      if (ids !== undefined && ids.length > 0) await this.index.delete({ ids })
      return
    }
    // Rounds that delete nothing: another writer deleted what we read first (fine, once); a
    // second in a row would mean the loop cannot make progress.
    let idle = 0
    for (;;) {
      const page = await this.index.queryMetadata({ filters: filter, topK: this.deletePageSize, ...this.readOptions() })
      if (page.length === 0) return
      const { deletedCount } = await this.index.delete({ ids: page.map((m) => m.id) })
      idle = deletedCount === 0 ? idle + 1 : 0
      if (idle === 2) throw codedError('ERR_INTERNAL', 'delete({ filter }) found matching ids that it could not delete')
    }
  }

  /**
   * A store holding `texts`, with `metadatas` (one object per text, or one object for all)
   * embedded by `embeddings`: on the index `args.index`, or on the one {@link CiphervecStore.open}
   * opens or creates from `args`.
   */
  static async fromTexts(
    texts: string[],
    metadatas: object[] | object,
    embeddings: EmbeddingsInterface,
    args: CiphervecStoreArgs | CiphervecOpenArgs,
  ): Promise<CiphervecStore> {
    const documents = texts.map(
      (pageContent, i) =>
        new Document({ pageContent, metadata: { ...(Array.isArray(metadatas) ? (metadatas[i] as object | undefined) : metadatas) } }),
    )
    return CiphervecStore.fromDocuments(documents, embeddings, args)
  }

  /**
   * A store holding `docs` embedded by `embeddings`: on the index `args.index`, or on the one
   * {@link CiphervecStore.open} opens or creates from `args`.
   */
  static async fromDocuments(docs: DocumentInterface[], embeddings: EmbeddingsInterface, args: CiphervecStoreArgs | CiphervecOpenArgs): Promise<CiphervecStore> {
    const store = 'index' in args ? new CiphervecStore(embeddings, args) : await CiphervecStore.open(embeddings, args)
    await store.addDocuments(docs)
    return store
  }

  private search(vector: number[], topK: number, filter: CiphervecFilter | undefined, include: IncludeField[]): Promise<QueryResultItem[]> {
    return this.index.query({
      vector,
      topK,
      include,
      ...(filter !== undefined && { filters: filter }),
      ...(this.nProbes !== undefined && { nProbes: this.nProbes }),
      ...this.readOptions(),
    })
  }

  private readOptions(): { consistency?: Consistency } {
    return this.consistency === undefined ? {} : { consistency: this.consistency }
  }
}

/** The most ids one `queryMetadata` call returns. */
const MAX_PAGE = 10_000

function resolveIds(documents: DocumentInterface[], ids: string[] | undefined): string[] {
  if (ids === undefined) return documents.map((d) => d.id ?? randomUUID())
  if (ids.length !== documents.length) {
    throw codedError('ERR_INVALID_ARGUMENT', `got ${ids.length} ids for ${documents.length} documents`)
  }
  return ids
}

/**
 * The vectors as one flat `Float32Array` (ciphervec's fast path) when they all have the
 * first one's length; otherwise as given, for ciphervec to reject with the position of the
 * odd one out.
 */
function column(vectors: number[][]): Float32Array | number[][] {
  const dim = vectors[0].length
  if (dim === 0 || vectors.some((v) => v.length !== dim)) return vectors
  const flat = new Float32Array(vectors.length * dim)
  vectors.forEach((v, i) => flat.set(v, i * dim))
  return flat
}

function toDocument(hit: QueryResultItem): Document {
  const { contents } = hit
  return new Document({
    id: hit.id,
    pageContent: contents === undefined ? '' : typeof contents === 'string' ? contents : contents.toString('utf8'),
    metadata: hit.metadata ?? {},
  })
}

function distanceOf(hit: QueryResultItem): number {
  if (hit.distance === undefined) throw codedError('ERR_INTERNAL', `query returned no distance for '${hit.id}'`)
  return hit.distance
}

function vectorOf(hit: QueryResultItem): Float32Array {
  if (hit.vector === undefined) throw codedError('ERR_INTERNAL', `query returned no vector for '${hit.id}'`)
  return hit.vector
}

function errorCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined
}

function codedError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code })
}
