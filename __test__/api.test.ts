// Round trips of every method and include field, overwrite semantics, exact search
// against a brute-force reference for every metric.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { Client } from '../index.js'
import { bruteForce, randomVectors, rejectsWithCode, row, type MetricName } from './helpers.js'

describe('Client', () => {
  it('generates distinct 32-byte keys', () => {
    const a = Client.generateKey()
    const b = Client.generateKey()
    assert.ok(a instanceof Uint8Array)
    assert.equal(a.length, 32)
    assert.notDeepEqual(Buffer.from(a), Buffer.from(b))
  })

  it('creates, lists, loads and deletes indexes', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const key = Client.generateKey()
    const index = await client.createIndex({ indexName: 'docs', indexKey: key, dimension: 3 })
    assert.equal(index.indexName, 'docs')
    assert.equal(index.dimension, 3)
    assert.equal(index.metric, 'euclidean')
    await client.createIndex({ indexName: 'other', indexKey: Client.generateKey(), metric: 'cosine' })
    assert.deepEqual(await client.listIndexes(), ['docs', 'other'])
    await rejectsWithCode(client.createIndex({ indexName: 'docs', indexKey: key }), 'ERR_INDEX_EXISTS')
    await rejectsWithCode(client.loadIndex({ indexName: 'nope', indexKey: key }), 'ERR_INDEX_NOT_FOUND')

    await index.upsert({ items: [{ id: 'a', vector: [1, 2, 3] }] })
    const again = await client.loadIndex({ indexName: 'docs', indexKey: key })
    assert.equal(await again.count(), 1, 'a second handle sees the same data')

    await index.deleteIndex()
    assert.deepEqual(await client.listIndexes(), ['other'])
    await rejectsWithCode(index.count(), 'ERR_CLOSED')
    await rejectsWithCode(client.loadIndex({ indexName: 'docs', indexKey: key }), 'ERR_INDEX_NOT_FOUND')
    const fresh = await client.createIndex({ indexName: 'docs', indexKey: key })
    assert.equal(await fresh.count(), 0, 'a re-created index starts empty')
  })

  it('rejects everything with ERR_CLOSED after close()', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'x', indexKey: Client.generateKey() })
    await client.close()
    await rejectsWithCode(index.upsert({ items: [{ id: 'a', vector: [1] }] }), 'ERR_CLOSED')
    await rejectsWithCode(index.query({ vector: [1] }), 'ERR_CLOSED')
    await rejectsWithCode(client.listIndexes(), 'ERR_CLOSED')
    await rejectsWithCode(client.createIndex({ indexName: 'y', indexKey: Client.generateKey() }), 'ERR_CLOSED')
  })
})

describe('EncryptedIndex', () => {
  it('round-trips every field through upsert, get, query and listIds', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'rt', indexKey: Client.generateKey() })
    assert.equal(index.dimension, null, 'dimension is unknown until the first upsert')
    const res = await index.upsert({
      items: [
        { id: 'text', vector: new Float32Array([0.5, 1.5]), metadata: { lang: 'en', tags: ['a', 'b'], n: 2.5, nested: { ok: true } }, contents: 'hello' },
        { id: 'bytes', vector: [3, 4], contents: new Uint8Array([0, 255, 7]) },
        { id: 'bare', vector: [-1, -2] },
      ],
    })
    assert.deepEqual(res, { upsertedCount: 3, trainingTriggered: false })
    assert.equal(index.dimension, 2)

    const [t, b, bare] = await index.get({ ids: ['text', 'bytes', 'bare'] })
    assert.equal(t.id, 'text')
    assert.deepEqual(t.metadata, { lang: 'en', tags: ['a', 'b'], n: 2.5, nested: { ok: true } })
    assert.equal(t.contents, 'hello')
    assert.deepEqual(Array.from(t.vector!), [0.5, 1.5])
    assert.ok(Buffer.isBuffer(b.contents))
    assert.deepEqual([...(b.contents as Buffer)], [0, 255, 7])
    assert.equal(b.metadata, undefined)
    assert.deepEqual(bare, { id: 'bare', vector: new Float32Array([-1, -2]) })

    const onlyMeta = await index.get({ ids: ['text'], include: ['metadata'] })
    assert.deepEqual(onlyMeta, [{ id: 'text', metadata: { lang: 'en', tags: ['a', 'b'], n: 2.5, nested: { ok: true } } }])

    const hits = await index.query({ vector: [0.5, 1.5], topK: 2, include: ['distance', 'metadata', 'contents', 'vector'] })
    assert.equal(hits.length, 2)
    assert.equal(hits[0].id, 'text')
    assert.equal(hits[0].distance, 0)
    assert.equal(hits[0].contents, 'hello')
    assert.deepEqual(hits[0].metadata?.tags, ['a', 'b'])
    assert.deepEqual(Array.from(hits[0].vector!), [0.5, 1.5])
    const idsOnly = await index.query({ vector: [0.5, 1.5], topK: 1, include: [] })
    assert.deepEqual(idsOnly, [{ id: 'text' }])
    const defaults = await index.query({ vector: [3, 4] })
    assert.deepEqual(Object.keys(defaults[0]).sort(), ['distance', 'id'])
    assert.equal(defaults.length, 3, 'default topK (100) returns every item of a small index')

    assert.deepEqual((await index.listIds()).sort(), ['bare', 'bytes', 'text'])
    assert.equal(await index.count(), 3)
  })

  it('get skips missing ids and keeps the requested order', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'g', indexKey: Client.generateKey() })
    await index.upsert({ ids: ['a', 'b', 'c'], vectors: [[1], [2], [3]] })
    const got = await index.get({ ids: ['c', 'missing', 'a'], include: [] })
    assert.deepEqual(got, [{ id: 'c' }, { id: 'a' }])
  })

  it('upsert overwrites an existing id entirely; last occurrence in a batch wins', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'ow', indexKey: Client.generateKey() })
    await index.upsert({ items: [{ id: 'a', vector: [1, 1], metadata: { v: 1 }, contents: 'old' }] })
    await index.upsert({ items: [{ id: 'a', vector: [2, 2] }] })
    assert.deepEqual(await index.get({ ids: ['a'] }), [{ id: 'a', vector: new Float32Array([2, 2]) }])
    const r = await index.upsert({ items: [{ id: 'b', vector: [5, 5], contents: 'first' }, { id: 'b', vector: [6, 6], contents: 'second' }] })
    assert.equal(r.upsertedCount, 1)
    const [b] = await index.get({ ids: ['b'] })
    assert.equal(b.contents, 'second')
    assert.deepEqual(Array.from(b.vector!), [6, 6])
    assert.equal(await index.count(), 2)
  })

  it('delete removes items and reports how many existed', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'del', indexKey: Client.generateKey() })
    await index.upsert({ ids: ['a', 'b', 'c', 'd'], vectors: new Float32Array([0, 1, 2, 3]) })
    assert.deepEqual(await index.delete({ ids: ['a', 'c', 'zzz', 'a'] }), { deletedCount: 2 })
    assert.deepEqual((await index.listIds()).sort(), ['b', 'd'])
    const hits = await index.query({ vector: [0], topK: 10 })
    assert.deepEqual(hits.map((h) => h.id), ['b', 'd'])
    assert.deepEqual(await index.get({ ids: ['a', 'c'] }), [])
  })

  it('accepts the columnar form with a flat Float32Array, metadata and contents', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'col', indexKey: Client.generateKey(), dimension: 2 })
    await index.upsert({
      ids: ['x', 'y'],
      vectors: new Float32Array([1, 2, 3, 4]),
      metadata: [{ k: 'x' }, null],
      contents: [null, 'why'],
    })
    const got = await index.get({ ids: ['x', 'y'], include: ['metadata', 'contents', 'vector'] })
    assert.deepEqual(got, [
      { id: 'x', metadata: { k: 'x' }, vector: new Float32Array([1, 2]) },
      { id: 'y', contents: 'why', vector: new Float32Array([3, 4]) },
    ])
  })

  for (const metric of ['euclidean', 'squared_euclidean', 'cosine'] as MetricName[]) {
    it(`exact search matches brute force (${metric})`, async () => {
      const dim = 24
      const n = 3000
      const data = randomVectors(n, dim, 11)
      const queries = randomVectors(20, dim, 12)
      const client = await Client.open({ storage: { kind: 'memory' }, threads: 2 })
      const index = await client.createIndex({ indexName: metric, indexKey: Client.generateKey(), metric })
      await index.upsert({ ids: Array.from({ length: n }, (_, i) => String(i)), vectors: data })
      const k = 10
      const batch = await index.queryBatch({ vectors: queries, topK: k })
      for (let qi = 0; qi < 20; qi++) {
        const q = row(queries, dim, qi)
        const expected = bruteForce(metric, data, dim, q, k)
        const single = await index.query({ vector: q, topK: k })
        for (const got of [single, batch[qi]]) {
          assert.deepEqual(got.map((h) => h.id), expected.map((e) => e.id), `query ${qi}`)
          got.forEach((h, j) => assert.ok(Math.abs(h.distance! - expected[j].d) < 1e-4 * Math.max(1, expected[j].d)))
        }
      }
    })
  }
})
