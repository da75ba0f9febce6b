// Metadata filters end to end: operators through query, queryBatch and queryMetadata, typed
// errors, and selective filters on a trained index. (The full operator table and the
// proptest against a reference evaluator live in crates/ciphervec-core/tests.)
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { Client, type EncryptedIndex, type Filter, type MetadataInput } from '../index.js'
import { rejectsWithCode } from './helpers.js'

const DOCS: Array<MetadataInput | undefined> = [
  { lang: 'en', year: 2020, tags: ['a', 'b'], loc: { city: 'Oslo' }, date: '2024-05-01T00:00:00Z' },
  { lang: 'de', year: 2021.0, tags: ['b'], loc: { city: 'Bonn' }, date: '2023-01-15T00:00:00Z' },
  { lang: 'EN', year: 2019, tags: [], score: null },
  { lang: 'fr', year: '2020', tags: ['c', 'a'] },
  undefined,
]

async function fixture(unindexedFields?: string[]): Promise<EncryptedIndex> {
  const client = await Client.open({ storage: { kind: 'memory' } })
  const index = await client.createIndex({ indexName: 'f', indexKey: Client.generateKey(), autoTrain: false, unindexedFields })
  await index.upsert({ items: DOCS.map((metadata, i) => ({ id: `d${i}`, vector: [i, 0], ...(metadata ? { metadata } : {}) })) })
  return index
}

async function ids(index: EncryptedIndex, filters: Filter): Promise<string[]> {
  const viaQuery = (await index.query({ vector: [0, 0], topK: 10, filters })).map((h) => h.id).sort()
  const viaMetadata = (await index.queryMetadata({ filters })).map((h) => h.id)
  assert.deepEqual(viaMetadata, viaQuery, `query and queryMetadata disagree for ${JSON.stringify(filters)}`)
  return viaQuery
}

describe('filters', () => {
  const cases: Array<[string, Filter, string[]]> = [
    ['{} matches all', {}, ['d0', 'd1', 'd2', 'd3', 'd4']],
    ['implicit equality, case-sensitive', { lang: 'en' }, ['d0']],
    ['20 equals 20.0 and strings are not numbers', { year: 2021 }, ['d1']],
    ['array field contains', { tags: 'a' }, ['d0', 'd3']],
    ['$in on an array field', { tags: { $in: ['c', 'zzz'] } }, ['d3']],
    ['$in: [] matches nothing', { tags: { $in: [] } }, []],
    ['$nin: [] matches everything', { tags: { $nin: [] } }, ['d0', 'd1', 'd2', 'd3', 'd4']],
    ['$nin includes items missing the field', { lang: { $nin: ['en', 'de'] } }, ['d2', 'd3', 'd4']],
    ['$ne excludes items missing the field', { lang: { $ne: 'en' } }, ['d1', 'd2', 'd3']],
    ['$gt only matches same-typed values', { year: { $gt: 2019 } }, ['d0', 'd1']],
    ['range with $gte/$lt', { year: { $gte: 2019, $lt: 2021 } }, ['d0', 'd2']],
    ['dot path', { 'loc.city': 'Bonn' }, ['d1']],
    ['ISO dates compare as strings', { date: { $gte: '2024-01-01T00:00:00Z' } }, ['d0']],
    ['$exists (null counts as present)', { score: { $exists: true } }, ['d2']],
    ['$and: [] is true', { $and: [] }, ['d0', 'd1', 'd2', 'd3', 'd4']],
    ['$or: [] is false', { $or: [] }, []],
    ['$or', { $or: [{ lang: 'fr' }, { 'loc.city': 'Oslo' }] }, ['d0', 'd3']],
    ['$nor includes items missing the fields', { $nor: [{ lang: 'en' }, { lang: 'de' }] }, ['d2', 'd3', 'd4']],
    ['field-level $not matches missing fields', { year: { $not: { $gte: 2020 } } }, ['d2', 'd3', 'd4']],
    ['$regex with options', { lang: { $regex: '^e', $options: 'i' } }, ['d0', 'd2']],
    ['$contains on strings and arrays', { $or: [{ 'loc.city': { $contains: 'sl' } }, { tags: { $contains: 'c' } }] }, ['d0', 'd3']],
  ]
  for (const [name, filters, expected] of cases) {
    it(name, async () => {
      assert.deepEqual(await ids(await fixture(), filters), expected)
      // Left out of the metadata index, the fields filter the same, item by item.
      assert.deepEqual(await ids(await fixture(['tags', 'loc', 'lang', 'year']), filters), expected, 'unindexed')
    })
  }

  it('queryBatch applies the filter to every query; queryMetadata orders and limits', async () => {
    const index = await fixture()
    const batch = await index.queryBatch({ vectors: [[0, 0], [4, 0]], topK: 2, filters: { tags: 'a' } })
    assert.deepEqual(batch.map((r) => r.map((h) => h.id)), [['d0', 'd3'], ['d3', 'd0']])
    const byYear = await index.queryMetadata({ filters: { year: { $exists: true } }, orderBy: 'year', ascending: false, topK: 2 })
    assert.deepEqual(byYear, [{ id: 'd1' }, { id: 'd0' }])
  })

  it('queryMetadata with include is a get by filter: the same items as get, page by page', async () => {
    for (const unindexed of [undefined, ['lang', 'year']]) {
      const index = await fixture(unindexed)
      const filters: Filter = { year: { $gte: 2019 } }
      const ids = (await index.queryMetadata({ filters })).map((h) => h.id)
      assert.deepEqual(ids, ['d0', 'd1', 'd2'])
      const items = await index.queryMetadata({ filters, include: ['metadata', 'contents', 'vector'] })
      assert.deepEqual(items, await index.get({ ids }))
      const page = await index.queryMetadata({ filters, include: ['metadata'], orderBy: 'year', ascending: false, topK: 1, offset: 1 })
      assert.deepEqual(page, [{ id: 'd0', metadata: DOCS[0] }])
      const after = await index.queryMetadata({ filters, include: ['vector'], afterId: 'd1' })
      assert.deepEqual(after.map((h) => [h.id, Array.from(h.vector)]), [['d2', [2, 0]]])
    }
  })

  it('a malformed filter rejects with ERR_INVALID_FILTER naming the bad node', async () => {
    const index = await fixture()
    // Filters the Filter type refuses, passed anyway (as JavaScript callers can).
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ year: { $foo: 1 } }, '$foo'],
      [{ $and: [{ a: 1 }, { b: { $gt: true } }] }, '$and[1].b.$gt'],
      [{ tags: { $in: 'a' } }, 'tags.$in'],
      [{ lang: { $regex: '(' } }, 'lang.$regex'],
    ]
    for (const [bogus, path] of bad) {
      const filters = bogus as Filter
      const err = await rejectsWithCode(index.query({ vector: [0, 0], filters }), 'ERR_INVALID_FILTER')
      assert.ok(err.message.includes(path), `${err.message} should name ${path}`)
      await rejectsWithCode(index.queryMetadata({ filters }), 'ERR_INVALID_FILTER')
    }
  })

  it('a selective filter on a trained index still returns topK matches', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 't', indexKey: Client.generateKey(), autoTrain: false })
    const n = 20_000
    const vectors = new Float32Array(n * 8).map((_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1)
    const ids = Array.from({ length: n }, (_, i) => String(i))
    await index.upsert({ ids, vectors, metadata: ids.map((_, i) => ({ tenant: `t${i % 1000}` })) })
    await index.train({ nLists: 128 })
    const hits = await index.query({ vector: vectors.subarray(0, 8), topK: 15, nProbes: 1, filters: { tenant: 't7' } })
    assert.equal(hits.length, 15, '20 items match, 15 asked: all 15 must come back even with nProbes 1')
    assert.ok(hits.every((h) => Number(h.id) % 1000 === 7))
  })
})
