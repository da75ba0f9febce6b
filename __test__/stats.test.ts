// index.stats(): what an operator sees of an index, as its items, training, compaction and
// deletes change it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { Client } from '../index.js'
import { rng } from './helpers.js'

describe('index.stats()', () => {
  it('follows items, training, compaction and deletes', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 's', indexKey: Client.generateKey(), metric: 'cosine', autoTrain: false })
    const empty = await index.stats()
    assert.deepEqual(
      { items: empty.items, dimension: empty.dimension, nLists: empty.nLists, state: empty.trainingState, metric: empty.metric },
      { items: 0, dimension: undefined, nLists: 1, state: 'untrained', metric: 'cosine' },
    )
    assert.equal(empty.listSizes, undefined)

    const next = rng(5)
    const dim = 16
    const vectors = new Float32Array(2000 * dim).map(() => next() - 0.5)
    const ids = Array.from({ length: 2000 }, (_, i) => `doc-${i}`)
    await index.upsert({ ids, vectors, metadata: ids.map((_, i) => ({ i })), contents: ids })
    const loose = await index.stats()
    assert.equal(loose.items, 2000)
    assert.equal(loose.dimension, dim)
    assert.equal(loose.looseEntries, 2000)
    assert.ok(loose.memory.vectorsBytes >= 2000 * dim * 4, JSON.stringify(loose.memory))
    assert.ok(loose.memory.idsBytes > 0 && loose.memory.metadataBytes > 0 && loose.memory.contentsBytes > 0, JSON.stringify(loose.memory))
    const m = loose.memory
    assert.equal(m.totalBytes, m.vectorsBytes + m.codesBytes + m.idsBytes + m.metadataBytes + m.contentsBytes + m.metadataIndexBytes + m.textIndexBytes + m.otherBytes)

    await index.train({ nLists: 32, seed: 1 })
    const trained = await index.stats()
    assert.equal(trained.trainingState, 'trained')
    assert.equal(trained.nLists, 32)
    const sizes = trained.listSizes!
    assert.ok(sizes.min <= sizes.median && sizes.median <= sizes.max, JSON.stringify(sizes))
    assert.ok(sizes.max * 32 >= 2000 && sizes.min * 32 <= 2000, JSON.stringify(sizes))
    assert.equal(trained.looseEntries, 0)
    assert.ok(trained.segments > 0)
    assert.equal(trained.memory.vectorsBytes, 2000 * dim * 4, 'held once, at exactly its size')

    await index.delete({ ids: ['doc-0'] })
    await index.upsert({ items: [{ id: 'new', vector: vectors.subarray(0, dim) }] })
    const after = await index.stats()
    assert.equal(after.items, 2000)
    assert.equal(after.looseEntries, 2, 'a tombstone and a loose record')
    await index.compact()
    assert.equal((await index.stats()).looseEntries, 0)

    await index.deleteIndex()
    await assert.rejects(index.stats(), (e: Error & { code?: string }) => e.code === 'ERR_CLOSED')
    client.close()
  })
})
