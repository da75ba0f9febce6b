// queryBatch with `layout: 'columns'`: the same results as the row layout, as typed arrays
// and flat arrays.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { Client, type EncryptedIndex, type QueryBatchColumns, type QueryResult } from '../index.js'
import { randomVectors, rejectsWithCode, row } from './helpers.js'

/** The row layout rebuilt from columns, to compare with what the row layout returns. */
function toRows(c: QueryBatchColumns, dim: number): Array<Array<Record<string, unknown>>> {
  const lists: Array<Array<Record<string, unknown>>> = []
  for (let q = 0; q + 1 < c.offsets.length; q++) {
    const list: Array<Record<string, unknown>> = []
    for (let i = c.offsets[q]; i < c.offsets[q + 1]; i++) {
      const r: Record<string, unknown> = { id: c.ids[i] }
      if (c.distances) r.distance = c.distances[i]
      if (c.scores) r.score = c.scores[i]
      if (c.metadata && c.metadata[i] !== null) r.metadata = c.metadata[i]
      if (c.contents && c.contents[i] !== null) r.contents = c.contents[i]
      if (c.vectors) r.vector = c.vectors.slice(i * dim, (i + 1) * dim)
      list.push(r)
    }
    lists.push(list)
  }
  return lists
}

describe("queryBatch with layout: 'columns'", () => {
  const dim = 16
  const n = 3000
  const flat = randomVectors(n, dim, 21)
  // Metadata on even items only, contents: text on every third, bytes on every fifth other.
  const items = Array.from({ length: n }, (_, i) => ({
    id: `doc-${i}`,
    vector: row(flat, dim, i),
    ...(i % 2 === 0 ? { metadata: { i, even: true } } : {}),
    ...(i % 3 === 0 ? { contents: `text ${i}` } : i % 5 === 0 ? { contents: Buffer.from([i % 256, 7]) } : {}),
  }))

  async function filled(train: boolean): Promise<EncryptedIndex> {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'c', indexKey: Client.generateKey(), dimension: dim, autoTrain: false })
    await index.upsert({ items })
    if (train) await index.train({ nLists: 16, seed: 3 })
    return index
  }

  for (const trained of [false, true]) {
    it(`${trained ? 'trained' : 'untrained'}: every column holds what the row layout returns, across result slices`, async () => {
      const index = await filled(trained)
      const queries = randomVectors(120, dim, 22)
      // 120 × 100 = 12,000 results: more than one slice of 8,192.
      const include = ['distance', 'metadata', 'contents', 'vector'] as const
      const rows = await index.queryBatch({ vectors: queries, topK: 100, nProbes: 4, include })
      const cols = await index.queryBatch({ vectors: queries, topK: 100, nProbes: 4, include, layout: 'columns' })
      assert.equal(cols.offsets.length, 121)
      assert.equal(cols.offsets[120], 12_000)
      assert.equal(cols.ids.length, 12_000)
      assert.ok(cols.distances instanceof Float32Array && cols.vectors instanceof Float32Array)
      assert.equal(cols.vectors.length, 12_000 * dim)
      assert.equal(cols.metadata.length, 12_000)
      assert.equal(cols.contents.length, 12_000)
      assert.ok(cols.contents.some((c) => Buffer.isBuffer(c)), 'byte contents come as Buffers')
      assert.ok(cols.contents.some((c) => c === null) && cols.metadata.some((m) => m === null))
      assert.deepEqual(toRows(cols, dim), rows)
      // Default include: ids and distances only.
      const bare = await index.queryBatch({ vectors: queries, topK: 5, layout: 'columns' })
      assert.deepEqual(Object.keys(bare), ['offsets', 'ids', 'distances'])
      const bareRows = await index.queryBatch({ vectors: queries, topK: 5 })
      assert.deepEqual(toRows(bare, dim), bareRows)
      // `layout: 'rows'` is the default.
      assert.deepEqual(await index.queryBatch({ vectors: queries, topK: 5, layout: 'rows' }), bareRows)
    })
  }

  it('filters, include: [] and an empty batch', async () => {
    const index = await filled(true)
    const queries = randomVectors(7, dim, 23)
    const filters = { even: true }
    const cols = await index.queryBatch({ vectors: queries, topK: 9, filters, include: ['metadata'], layout: 'columns' })
    assert.equal(cols.distances, undefined)
    assert.ok(cols.metadata.every((m) => m !== null && m.even === true))
    assert.deepEqual(toRows(cols, dim), await index.queryBatch({ vectors: queries, topK: 9, filters, include: ['metadata'] }))
    const none = await index.queryBatch({ vectors: queries, topK: 3, include: [], layout: 'columns' })
    assert.deepEqual(Object.keys(none), ['offsets', 'ids'])
    // A filter nothing matches: every query's range is empty.
    const nothing = await index.queryBatch({ vectors: queries, topK: 3, filters: { i: -1 }, layout: 'columns' })
    assert.deepEqual([...nothing.offsets], [0, 0, 0, 0, 0, 0, 0, 0])
    assert.deepEqual(nothing.ids, [])
    assert.equal(nothing.distances.length, 0)
    const empty = await index.queryBatch({ vectors: [], topK: 3, layout: 'columns' })
    assert.deepEqual([...empty.offsets], [0])
    assert.deepEqual(empty.ids, [])
  })

  it('a hybrid batch carries scores in the order of the row layout', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'h', indexKey: Client.generateKey(), dimension: 3, textFields: ['contents'] })
    const docs = ['the quick brown fox', 'dogs running in the park', 'cats sleep all day', 'blue whales swim', 'a dog runs fast']
    await index.upsert({ items: docs.map((contents, i) => ({ id: `d${i}`, vector: [i, 1, 0], contents })) })
    const vectors = [[4, 1, 0], [0, 1, 0], [2, 1, 0]]
    const texts = ['running dog', 'whales', 'cats']
    const rows = await index.queryBatch({ vectors, texts, topK: 4, include: ['distance', 'contents'] })
    const cols = await index.queryBatch({ vectors, texts, topK: 4, include: ['distance', 'contents'], layout: 'columns' })
    assert.ok(cols.scores instanceof Float64Array && cols.scores.length === cols.ids.length)
    assert.deepEqual(toRows(cols, 3), rows)
    assert.ok(rows.every((l) => l.every((r) => typeof r.score === 'number')))
  })

  it('an unknown layout is ERR_INVALID_ARGUMENT', async () => {
    const index = await filled(false)
    const e = await rejectsWithCode(
      () => index.queryBatch({ vectors: [row(flat, dim, 0)], layout: 'column' as 'columns' }),
      'ERR_INVALID_ARGUMENT',
    )
    assert.match(e.message, /layout is "column", expected one of 'rows', 'columns'/)
    // The row layout's result type is unchanged.
    const lists: QueryResult[][] = await index.queryBatch({ vectors: [row(flat, dim, 0)], topK: 1 })
    assert.equal(lists[0][0].id, 'doc-0')
  })
})
