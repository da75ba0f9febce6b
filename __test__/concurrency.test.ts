// Many promises at once lose nothing; heavy work never blocks the event loop.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { monitorEventLoopDelay } from 'node:perf_hooks'

import { Client } from '../index.js'
import { randomVectors, row } from './helpers.js'

describe('concurrency', () => {
  it('64 concurrent upserts, queries and deletes lose nothing', async () => {
    const client = await Client.open({ threads: 2 })
    const index = await client.createIndex({ indexName: 'c', indexKey: Client.generateKey(), dimension: 8 })
    const perBatch = 50
    const ops: Promise<unknown>[] = []
    for (let b = 0; b < 64; b++) {
      const ids = Array.from({ length: perBatch }, (_, i) => `b${b}-${i}`)
      ops.push(index.upsert({ ids, vectors: randomVectors(perBatch, 8, b + 1), metadata: ids.map((id) => ({ id })) }))
      ops.push(index.query({ vector: row(randomVectors(1, 8, 1000 + b), 8, 0), topK: 5 }))
    }
    await Promise.all(ops)
    assert.equal(await index.count(), 64 * perBatch)

    // Delete every odd batch while upserting new items and querying, all at once.
    const mixed: Promise<unknown>[] = []
    for (let b = 0; b < 64; b++) {
      if (b % 2) mixed.push(index.delete({ ids: Array.from({ length: perBatch }, (_, i) => `b${b}-${i}`) }))
      mixed.push(index.upsert({ items: [{ id: `new-${b}`, vector: row(randomVectors(1, 8, 5000 + b), 8, 0) }] }))
      mixed.push(index.queryBatch({ vectors: randomVectors(4, 8, 9000 + b), topK: 3 }))
    }
    const results = await Promise.all(mixed)
    const deleted = results.filter((r): r is { deletedCount: number } => typeof r === 'object' && r !== null && 'deletedCount' in r)
    assert.equal(deleted.reduce((s, r) => s + r.deletedCount, 0), 32 * perBatch)

    const ids = new Set(await index.listIds())
    assert.equal(ids.size, 32 * perBatch + 64)
    for (let b = 0; b < 64; b++) {
      assert.equal(ids.has(`b${b}-0`), b % 2 === 0)
      assert.ok(ids.has(`new-${b}`))
    }
    // Every surviving item is intact: its metadata matches and an exact query finds it first.
    const sample = (await index.get({ ids: ['b0-7', 'b62-49', 'new-5'], include: ['metadata', 'vector'] }))
    assert.deepEqual(sample[0].metadata, { id: 'b0-7' })
    for (const item of sample) {
      const [hit] = await index.query({ vector: item.vector!, topK: 1 })
      assert.equal(hit.id, item.id)
    }
  })

  it('the event loop keeps ticking during a 100k upsert and an exhaustive query batch', async () => {
    const dim = 64
    const n = 100_000
    const client = await Client.open({ threads: 2 })
    const index = await client.createIndex({ indexName: 'big', indexKey: Client.generateKey(), dimension: dim })
    const ids = Array.from({ length: n }, (_, i) => String(i))
    const vectors = randomVectors(n, dim, 3)
    const queries = randomVectors(200, dim, 4)

    const h = monitorEventLoopDelay({ resolution: 1 })
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    h.enable()
    // The histogram only sees delays once its timer is armed: let it tick before the work,
    // so the synchronous argument conversion of the upsert call is measured too.
    await new Promise((resolve) => setTimeout(resolve, 20))
    const started = performance.now()
    await index.upsert({ ids, vectors })
    const results = await index.queryBatch({ vectors: queries, topK: 10 })
    const elapsed = performance.now() - started
    h.disable()
    clearInterval(timer)

    assert.equal(await index.count(), n)
    assert.equal(results.length, 200)
    const worstMs = h.max / 1e6
    // The work takes far longer than one tick; the loop must have kept running throughout.
    assert.ok(elapsed > 100, `work took only ${elapsed.toFixed(0)} ms, too short to test anything`)
    assert.ok(ticks > elapsed / 20, `only ${ticks} timer ticks in ${elapsed.toFixed(0)} ms`)
    assert.ok(worstMs < 20, `worst event-loop delay ${worstMs.toFixed(1)} ms (work took ${elapsed.toFixed(0)} ms)`)
  })
})
