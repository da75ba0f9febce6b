// Index types with codes through the binding: createIndex({ indexType }), query's rerank,
// exact vectors from get, the type in stats() and after a reload, and bad input.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'

import { Client, type IndexType, type Resident } from '../index.js'
import { bruteForce, rejectsWithCode, rng, row } from './helpers.js'

const DIM = 24

/** `n` points around 40 centres, flat. */
function clustered(n: number, seed: number): Float32Array {
  const next = rng(seed)
  const centres = Array.from({ length: 40 }, () => Array.from({ length: DIM }, () => next() * 2 - 1))
  const out = new Float32Array(n * DIM)
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(next() * centres.length)]
    for (let j = 0; j < DIM; j++) out[i * DIM + j] = c[j] + 0.3 * (next() - 0.5)
  }
  return out
}

const data = clustered(4000, 1)
const queries = clustered(40, 2)
const ids = Array.from({ length: 4000 }, (_, i) => String(i))

async function trainedIndex(client: Client, indexType: IndexType, name: string = indexType, resident: Resident = 'vectors', pqDim?: number) {
  const index = await client.createIndex({ indexName: name, indexKey: Client.generateKey(), indexType, resident, autoTrain: false, pqDim })
  await index.upsert({ ids, vectors: data })
  await index.train({ nLists: 32, seed: 1 })
  return index
}

describe('index types', () => {
  for (const indexType of ['ivfsq8', 'ivffp16', 'ivfpq'] as const) {
    it(`${indexType}: high recall on defaults, exact with every list and enough re-ranking, exact vectors from get`, async () => {
      const client = await Client.open({ storage: { kind: 'memory' } })
      const index = await trainedIndex(client, indexType)
      const stats = await index.stats()
      assert.equal(stats.indexType, indexType)
      // Bytes per item: one per dimension, two, or one per sub-vector (one per two dimensions).
      const perItem = { ivfsq8: DIM, ivffp16: 2 * DIM, ivfpq: DIM / 2 }[indexType]
      assert.ok(stats.memory.codesBytes >= 4000 * perItem, JSON.stringify(stats.memory))

      let found = 0
      for (let q = 0; q < 40; q++) {
        const truth = new Set(bruteForce('euclidean', data, DIM, row(queries, DIM, q), 10).map((h) => h.id))
        const hits = await index.query({ vector: row(queries, DIM, q), topK: 10 })
        found += hits.filter((h) => truth.has(h.id)).length
      }
      assert.ok(found / 400 >= 0.95, `recall@10 ${found / 400}`)

      const batch = await index.queryBatch({ vectors: queries.subarray(0, 10 * DIM), topK: 10, nProbes: 32, rerank: 50 })
      for (let q = 0; q < 10; q++) {
        const exact = bruteForce('euclidean', data, DIM, row(queries, DIM, q), 10)
        assert.deepEqual(batch[q].map((h) => h.id), exact.map((h) => h.id))
        batch[q].forEach((h, i) => assert.ok(Math.abs(h.distance! - exact[i].d) < 1e-5, `${h.distance} vs ${exact[i].d}`))
      }

      const got = await index.get({ ids: ['7', '3999'], include: ['vector'] })
      assert.deepEqual(got[0].vector, row(data, DIM, 7))
      assert.deepEqual(got[1].vector, row(data, DIM, 3999))
      await client.close()
    })
  }

  it('a reloaded coded index keeps its type and answers the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciphervec-types-'))
    try {
      const key = Client.generateKey()
      let client = await Client.open({ storage: { kind: 'disk', path: dir } })
      const index = await client.createIndex({ indexName: 'docs', indexKey: key, indexType: 'ivfsq8', autoTrain: false })
      await index.upsert({ ids, vectors: data })
      await index.train({ nLists: 32, seed: 1 })
      const before = await index.queryBatch({ vectors: queries, topK: 10, nProbes: 4 })
      await client.close()
      client = await Client.open({ storage: { kind: 'disk', path: dir } })
      const loaded = await client.loadIndex({ indexName: 'docs', indexKey: key })
      assert.equal((await loaded.stats()).indexType, 'ivfsq8')
      assert.deepEqual(await loaded.queryBatch({ vectors: queries, topK: 10, nProbes: 4 }), before)
      await client.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('bad indexType and rerank values reject with ERR_INVALID_ARGUMENT and change nothing', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const key = Client.generateKey()
    for (const bad of ['ivfpq8', 'IVFSQ8', '']) {
      const err = await rejectsWithCode(client.createIndex({ indexName: 'x', indexKey: key, indexType: bad as IndexType }), 'ERR_INVALID_ARGUMENT')
      assert.match(err.message, /indexType/)
    }
    // Nothing was created under that name.
    await rejectsWithCode(client.loadIndex({ indexName: 'x', indexKey: key }), 'ERR_INDEX_NOT_FOUND')
    const index = await trainedIndex(client, 'ivfsq8', 'x')
    const before = await index.query({ vector: row(queries, DIM, 0), topK: 5 })
    for (const rerank of [0, 1.5, -1, 1001]) {
      const err = await rejectsWithCode(index.query({ vector: row(queries, DIM, 0), rerank }), 'ERR_INVALID_ARGUMENT')
      assert.match(err.message, /rerank/)
      await rejectsWithCode(index.queryBatch({ vectors: queries, rerank }), 'ERR_INVALID_ARGUMENT')
    }
    assert.deepEqual(await index.query({ vector: row(queries, DIM, 0), topK: 5 }), before)
    assert.equal(await index.count(), 4000)
    // rerank on a flat index is accepted and changes nothing.
    const flat = await trainedIndex(client, 'ivfflat')
    assert.deepEqual(await flat.query({ vector: row(queries, DIM, 0), rerank: 9 }), await flat.query({ vector: row(queries, DIM, 0) }))
    await client.close()
  })

  it("resident 'codes': only codes in memory, recall on defaults, exact vectors from the store after a reload", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciphervec-codes-'))
    try {
      const key = Client.generateKey()
      let client = await Client.open({ storage: { kind: 'disk', path: dir } })
      const index = await client.createIndex({ indexName: 'docs', indexKey: key, resident: 'codes', autoTrain: false })
      await index.upsert({ ids, vectors: data })
      await index.train({ nLists: 32, seed: 1 })
      await index.upsert({ items: [{ id: 'late', vector: row(queries, DIM, 0), metadata: { late: true } }] })
      const holdsOnlyCodes = async (stats: Awaited<ReturnType<typeof index.stats>>) => {
        assert.equal(stats.resident, 'codes')
        assert.equal(stats.memory.vectorsBytes, 0, JSON.stringify(stats.memory))
        assert.ok(stats.memory.codesBytes >= 4001 * DIM, JSON.stringify(stats.memory))
      }
      await holdsOnlyCodes(await index.stats())
      await client.close()
      client = await Client.open({ storage: { kind: 'disk', path: dir } })
      const loaded = await client.loadIndex({ indexName: 'docs', indexKey: key })
      await holdsOnlyCodes(await loaded.stats())
      let found = 0
      for (let q = 1; q < 40; q++) {
        const truth = new Set(bruteForce('euclidean', data, DIM, row(queries, DIM, q), 10).map((h) => h.id))
        const hits = await loaded.query({ vector: row(queries, DIM, q), topK: 10 })
        found += hits.filter((h) => truth.has(h.id)).length
      }
      assert.ok(found / 390 >= 0.95, `recall@10 ${found / 390}`)
      // Packed (written by training) and loose (written after it) vectors, exact.
      const got = await loaded.get({ ids: ['7', 'late', '3999'], include: ['vector', 'metadata'] })
      assert.deepEqual(got.map((g) => g.vector), [row(data, DIM, 7), row(queries, DIM, 0), row(data, DIM, 3999)])
      assert.deepEqual(got[1].metadata, { late: true })
      const [hit] = await loaded.query({ vector: row(data, DIM, 12), topK: 1, include: ['vector', 'distance'] })
      assert.equal(hit.id, '12')
      assert.deepEqual(hit.vector, row(data, DIM, 12))
      // The distance is the codes' (one byte per dimension), close to but not exactly 0.
      assert.ok(hit.distance! < 0.05, `${hit.distance}`)
      await client.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("'ivfpq': pqDim need not divide the dimension; bad pqDim and pqBits reject and change nothing", async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    // 24 dimensions in 7 sub-vectors: 7 bytes per item, exact with every list and enough re-ranking.
    const index = await trainedIndex(client, 'ivfpq', 'pq7', 'vectors', 7)
    const memory = (await index.stats()).memory
    assert.ok(memory.codesBytes >= 4000 * 7 && memory.codesBytes < 4000 * 12 + 200_000, JSON.stringify(memory))
    const exact = bruteForce('euclidean', data, DIM, row(queries, DIM, 3), 10)
    const hits = await index.query({ vector: row(queries, DIM, 3), topK: 10, nProbes: 32, rerank: 100 })
    assert.deepEqual(hits.map((h) => h.id), exact.map((h) => h.id))
    const key = Client.generateKey()
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ indexType: 'ivfpq', dimension: DIM, pqDim: DIM + 1 }, /pqDim 25 is more sub-vectors than the 24 dimensions/],
      [{ indexType: 'ivfpq', pqDim: 0 }, /pqDim/],
      [{ indexType: 'ivfpq', pqDim: 2.5 }, /pqDim/],
      [{ indexType: 'ivfpq', pqBits: 4 }, /pqBits must be 8/],
      [{ indexType: 'ivfsq8', pqDim: 8 }, /'ivfpq' only/],
    ]
    for (const [options, message] of cases) {
      const err = await rejectsWithCode(client.createIndex({ indexName: 'bad', indexKey: key, ...options }), 'ERR_INVALID_ARGUMENT')
      assert.match(err.message, message)
    }
    await rejectsWithCode(client.loadIndex({ indexName: 'bad', indexKey: key }), 'ERR_INDEX_NOT_FOUND')
    // Without a dimension, the first upsert fixes it: one too small for pqDim rejects and stores nothing.
    const later = await client.createIndex({ indexName: 'later', indexKey: key, indexType: 'ivfpq', pqDim: 30, autoTrain: false })
    const err = await rejectsWithCode(later.upsert({ ids: ['a'], vectors: [row(data, DIM, 0)] }), 'ERR_DIMENSION_MISMATCH')
    assert.match(err.message, /pqDim 30/)
    assert.equal(await later.count(), 0)
    await client.close()
  })

  it("bad resident values reject with ERR_INVALID_ARGUMENT, and 'codes' needs a type with codes", async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const key = Client.generateKey()
    for (const [resident, indexType] of [['code', 'ivfsq8'], ['Codes', 'ivfsq8'], ['codes', 'ivfflat']] as const) {
      const options = { indexName: 'x', indexKey: key, indexType, resident: resident as Resident }
      const err = await rejectsWithCode(client.createIndex(options), 'ERR_INVALID_ARGUMENT')
      assert.match(err.message, /resident/)
    }
    await rejectsWithCode(client.loadIndex({ indexName: 'x', indexKey: key }), 'ERR_INDEX_NOT_FOUND')
    await client.close()
  })
})
