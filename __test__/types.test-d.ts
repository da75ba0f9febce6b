// Compile-time tests of index.d.ts, never run: `npm run typecheck` (tsc --strict over
// __test__) compiles this file, and every `@ts-expect-error` line must fail to type-check
// (tsc reports one that compiles as an unused directive), while the rest must compile.
// The name keeps it out of `node --test __test__/*.test.ts`.

import {
  Client,
  isCiphervecError,
  type CiphervecError,
  type EncryptedIndex,
  type ErrorCode,
  type FieldOperators,
  type Filter,
  type GetResultItem,
  type IncludeField,
  type JsonValue,
  type Metadata,
  type MetadataInput,
  type QueryOptions,
  type QueryResultItem,
  type UpsertColumns,
  type UpsertItems,
} from '../index.js'

declare const client: Client
declare const index: EncryptedIndex

// ---- filters ----

const filters: Filter[] = [
  {},
  { lang: 'en', year: { $gte: 2020 } },
  { 'loc.city': 'Oslo', 'tags.0': 'a' },
  { year: { $gt: 2019, $lte: 2024 }, date: { $lt: new Date() }, name: { $gte: 'm' } },
  { tags: { $in: ['a', 1, null] }, lang: { $nin: [] } },
  { score: { $exists: false }, lang: { $ne: null } },
  { lang: { $regex: '^e', $options: 'i' }, city: { $contains: 'sl' } },
  { year: { $not: { $gte: 2020 } } },
  { $and: [{ a: 1 }, { $or: [{ b: 2 }, { c: { $eq: 3 } }] }], $nor: [{ d: true }], $not: { e: 'x' } },
  { loc: { city: 'Oslo', zip: [1, 2] } }, // implicit equality with an object literal
]
// Readonly arrays, and filters built field by field.
const langs = ['en', 'de'] as const
const built: Record<string, FieldOperators | string> = { lang: { $in: langs } }
built.year = { $gte: 2020 }
filters.push(built, { $or: [built, { a: 1 }] as const })

// @ts-expect-error a misspelt operator
filters.push({ year: { $gtee: 2020 } })
// @ts-expect-error an unknown operator beside a known one
filters.push({ year: { $gte: 2020, $lt: 2025, $lte2: 1 } })
// @ts-expect-error $in takes an array
filters.push({ tags: { $in: 'a' } })
// @ts-expect-error $exists takes true or false
filters.push({ score: { $exists: 'yes' } })
// @ts-expect-error $gt takes a number, a string or a Date
filters.push({ year: { $gt: true } })
// @ts-expect-error $regex takes a string, not a RegExp
filters.push({ lang: { $regex: /^e/ } })
// @ts-expect-error $and takes an array of filters
filters.push({ $and: { a: 1 } })
// @ts-expect-error a field-level $not takes operators
filters.push({ year: { $not: { $gtee: 1 } } })
// @ts-expect-error undefined would match every item
filters.push({ tenant: undefined })
// @ts-expect-error a function is not JSON
filters.push({ tenant: () => 't1' })

void index.query({ vector: [1, 2, 3], filters: { year: { $gte: 2020 } } })
void index.queryBatch({ vectors: [[1, 2, 3]], filters: { lang: 'en' } })
void index.queryMetadata({ filters: { lang: { $in: ['en'] } } })
// @ts-expect-error the filter of query is a Filter
void index.query({ vector: [1, 2, 3], filters: { year: { $gtee: 2020 } } })
// @ts-expect-error the filter of queryMetadata is a Filter
void index.queryMetadata({ filters: { $or: [{ year: { $gtee: 2020 } }] } })

// ---- metadata ----

const when = new Date()
const metadata: MetadataInput = { title: 'x', n: 1, ok: true, none: null, tags: ['a'], loc: { city: 'Oslo' }, when }
type Doc = { title: string; pages: number } // a `type`, not an `interface`: see Metadata
const doc: Doc = { title: 't', pages: 3 }
const frozen = { tags: ['a', 'b'] } as const
void index.upsert({ items: [{ id: 'a', vector: [1, 2, 3], metadata }, { id: 'b', vector: [1, 2, 3], metadata: doc }] })
void index.upsert({ ids: ['a', 'b', 'c'], vectors: new Float32Array(9), metadata: [metadata, null, frozen] })
// @ts-expect-error metadata holding a function
void index.upsert({ items: [{ id: 'a', vector: [1], metadata: { f: () => 1 } }] })
// @ts-expect-error metadata holding undefined
void index.upsert({ items: [{ id: 'a', vector: [1], metadata: { title: undefined } }] })
// @ts-expect-error metadata holding a BigInt
void index.upsert({ ids: ['a'], vectors: [[1]], metadata: [{ n: 10n }] })
// @ts-expect-error metadata holding a Map
void index.upsert({ ids: ['a'], vectors: [[1]], metadata: [{ m: new Map() }] })
// @ts-expect-error metadata is an object, not an array
void index.upsert({ items: [{ id: 'a', vector: [1], metadata: [1, 2] }] })

// Either upsert form, not a mix.
const columns: UpsertColumns = { ids: ['a'], vectors: new Float32Array(3), contents: ['text'] }
const rows: UpsertItems = { items: [{ id: 'a', vector: [1, 2, 3], contents: new Uint8Array(2) }] }
void index.upsert(columns)
void index.upsert(rows)
void index.upsert(Math.random() < 0.5 ? columns : rows)
// @ts-expect-error both forms at once
void index.upsert({ items: [], ids: ['a'], vectors: [[1, 2, 3]] })
// @ts-expect-error ids without vectors
void index.upsert({ ids: ['a'] })
// @ts-expect-error metadata belongs to the columnar form (items carry their own)
void index.upsert({ items: [], metadata: [] })
// @ts-expect-error neither form
void index.upsert({})

// What comes back is JSON, not `any`.
async function readBack(): Promise<void> {
  const [item]: GetResultItem[] = await index.get({ ids: ['a'] })
  const m: Metadata | undefined = item.metadata
  const title: JsonValue | undefined = m?.title
  // @ts-expect-error a JSON value is not a string until narrowed
  const s: string | undefined = m?.title
  if (typeof title === 'string') title.toUpperCase()
  const again: MetadataInput | undefined = m // what was read can be written back
  void [s, again]
}

// ---- results follow `include` ----

async function results(): Promise<void> {
  const [hit] = await index.query({ vector: [1, 2, 3] }) // include defaults to ['distance']
  const d: number = hit.distance
  const [full] = await index.query({ vector: [1, 2, 3], include: ['vector', 'metadata'] })
  const v: Float32Array = full.vector
  // @ts-expect-error distance was not asked for
  const d2: number = full.distance
  const m: Metadata | undefined = full.metadata // optional: an item may have none
  const [[batched]] = await index.queryBatch({ vectors: [[1, 2, 3]], include: ['distance', 'vector'] })
  const bv: Float32Array = batched.vector
  const bd: number = batched.distance
  const [got] = await index.get({ ids: ['a'] }) // include defaults to metadata, contents, vector
  const gv: Float32Array = got.vector
  const [bare] = await index.get({ ids: ['a'], include: ['metadata'] })
  // @ts-expect-error vector was not asked for
  const gv2: Float32Array = bare.vector
  // A list whose elements the compiler does not know promises nothing.
  const wide: IncludeField[] = ['distance']
  const [unsure] = await index.query({ vector: [1, 2, 3], include: wide })
  // @ts-expect-error distance may be absent
  const d3: number = unsure.distance
  const plain: QueryResultItem[] = await index.query({ vector: [1, 2, 3], include: wide })
  // queryMetadata: ids (and scores) by default, `get`'s fields when asked (a get by filter).
  const [match] = await index.queryMetadata({ filters: { lang: 'en' } })
  const mid: string = match.id
  // @ts-expect-error no fields were asked for
  const mm: unknown = match.metadata
  const [rich] = await index.queryMetadata({ filters: { lang: 'en' }, include: ['metadata', 'vector'] })
  const rv: Float32Array = rich.vector
  const rm: Metadata | undefined = rich.metadata
  const [noVector] = await index.queryMetadata({ filters: { lang: 'en' }, include: ['contents'] })
  // @ts-expect-error vector was not asked for
  const nv: Float32Array = noVector.vector
  void [d, v, d2, m, bv, bd, gv, gv2, d3, plain, mid, mm, rv, rm, nv]
}

// ---- queryBatch in columns ----

async function columnResults(): Promise<void> {
  const cols = await index.queryBatch({ vectors: [[1, 2, 3]], layout: 'columns' })
  const offsets: Uint32Array = cols.offsets
  const ids: string[] = cols.ids
  const distances: Float32Array = cols.distances // present by default
  // @ts-expect-error metadata was not asked for
  const m: Array<Metadata | null> = cols.metadata
  const rich = await index.queryBatch({ vectors: [[1, 2, 3]], layout: 'columns', include: ['metadata', 'vector'] })
  const rm: Array<Metadata | null> = rich.metadata
  const rv: Float32Array = rich.vectors
  // @ts-expect-error distance was not asked for
  const rd: Float32Array = rich.distances
  // @ts-expect-error a columns result is no array of lists
  const notRows: QueryResultItem[][] = cols
  const rows: QueryResultItem[][] = await index.queryBatch({ vectors: [[1, 2, 3]], layout: 'rows' })
  // @ts-expect-error a typo in the layout does not compile
  void index.queryBatch({ vectors: [[1, 2, 3]], layout: 'column' })
  // A layout the compiler does not know gives either shape.
  const layout = Math.random() > 0.5 ? ('rows' as const) : ('columns' as const)
  const either = await index.queryBatch({ vectors: [[1, 2, 3]], layout })
  // @ts-expect-error it may be columns
  const notSure: QueryResultItem[][] = either
  void [offsets, ids, distances, m, rm, rv, rd, notRows, rows, notSure]
}

// ---- other option values ----

const ids = ['a', 'b'] as const
const include = ['metadata', 'vector'] as const
void index.get({ ids, include })
void index.delete({ ids })
void index.query({ vector: Object.freeze([1, 2, 3]), include })
void index.upsert({ items: Object.freeze([{ id: 'a', vector: [1, 2, 3] }]) })
void index.upsert({ ids, vectors: [Object.freeze([1, 2, 3]), new Float32Array(3)] })
// @ts-expect-error an unknown include field
void index.query({ vector: [1, 2, 3], include: ['distance', 'score'] })
// @ts-expect-error a bad metric
void client.createIndex({ indexName: 'a', indexKey: Client.generateKey(), metric: 'manhattan' })
// @ts-expect-error a bad index type
void client.createIndex({ indexName: 'a', indexKey: Client.generateKey(), indexType: 'ivfpq8' })
void client.createIndex({ indexName: 'a', indexKey: Client.generateKey(), indexType: 'ivfpq', pqDim: 12, pqBits: 8 })
// @ts-expect-error pqBits is 8
void client.createIndex({ indexName: 'a', indexKey: Client.generateKey(), indexType: 'ivfpq', pqBits: 4 })
void client.createIndex({ indexName: 'a', indexKey: Client.generateKey(), indexType: 'ivffp16', resident: 'codes' })
// @ts-expect-error resident is 'vectors' or 'codes'
void client.createIndex({ indexName: 'a', indexKey: Client.generateKey(), resident: 'disk' })
// @ts-expect-error topK is a number
void index.query({ vector: [1, 2, 3], topK: '10' })
// @ts-expect-error a misspelt option (an object literal's excess property)
void index.query({ vector: [1, 2, 3], topk: 10 })
const options: QueryOptions = { vector: [1], topK: 5 }
void index.query(options)

// ---- errors ----

const code: ErrorCode = 'ERR_INVALID_FILTER'
// @ts-expect-error not a ciphervec code
const notACode: ErrorCode = 'ERR_NOPE'
async function handle(): Promise<ErrorCode | undefined> {
  try {
    await index.count()
  } catch (e) {
    // @ts-expect-error `unknown` has no code until narrowed
    void e.code
    if (isCiphervecError(e)) {
      const c: ErrorCode = e.code
      const err: Error = e
      const typed: CiphervecError = e
      if (e.code === 'ERR_CLOSED') return c
      void [err, typed]
    }
  }
  return undefined
}

// ---- disposal ----

async function scoped(): Promise<number> {
  await using c = await Client.open({ storage: { kind: 'memory' } })
  const i = await c.createIndex({ indexName: 'a', indexKey: Client.generateKey() })
  return i.count()
}
const dispose: () => Promise<void> = client[Symbol.asyncDispose]

// ---- storage has no default ----

async function storageIsRequired(): Promise<void> {
  // @ts-expect-error leaving storage out would keep indexes in memory only
  await Client.open()
  // @ts-expect-error storage is required
  await Client.open({ threads: 2 })
  await Client.open({ storage: { kind: 'memory' }, clientKey: Client.generateKey() })
  // @ts-expect-error a client key is bytes
  await Client.open({ storage: { kind: 'memory' }, clientKey: 'secret' })
}

export { code, notACode, handle, readBack, results, scoped, dispose, storageIsRequired }
