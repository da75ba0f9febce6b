// IVF training from Node: recall, exactness, the event loop, abort, progress, and writes
// during training.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { monitorEventLoopDelay } from 'node:perf_hooks'

import { Client, type EncryptedIndex } from '../index.js'
import { bruteForce, rejectsWithCode, rng, row } from './helpers.js'

/** `n` points around `clusters` random centres: a stand-in for real embeddings. */
function clustered(n: number, dim: number, clusters: number, seed: number): Float32Array {
  const next = rng(seed)
  const centres = Array.from({ length: clusters }, () => Array.from({ length: dim }, () => next() * 2 - 1))
  const out = new Float32Array(n * dim)
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(next() * clusters)]
    for (let j = 0; j < dim; j++) out[i * dim + j] = c[j] + 0.3 * (next() - 0.5)
  }
  return out
}

async function filled(n: number, dim: number, seed = 1): Promise<{ index: EncryptedIndex; data: Float32Array }> {
  const client = await Client.open({ threads: 2 })
  const index = await client.createIndex({ indexName: 'ivf', indexKey: Client.generateKey(), dimension: dim })
  const data = clustered(n, dim, 100, seed)
  await index.upsert({ ids: Array.from({ length: n }, (_, i) => String(i)), vectors: data })
  return { index, data }
}

describe('training', () => {
  it('reaches recall@10 >= 0.95 at the default nProbes and is exact with nProbes = nLists', async () => {
    const dim = 32
    const n = 50_000
    const { index, data } = await filled(n, dim)
    assert.equal(index.isTrained(), false)
    assert.equal(index.trainingState(), 'untrained')
    assert.equal(index.nLists, 1)
    const result = await index.train()
    assert.equal(result.nLists, 512, 'auto nLists for 50k vectors: largest power of two <= 4*sqrt(n)')
    assert.ok(result.iterations >= 1 && result.inertia > 0 && result.seconds > 0)
    assert.equal(index.isTrained(), true)
    assert.equal(index.trainingState(), 'trained')
    assert.equal(index.nLists, 512)

    const queries = clustered(100, dim, 100, 1).map((x) => x + 0.01)
    let found = 0
    let foundAll = 0
    for (let qi = 0; qi < 100; qi++) {
      const q = row(queries, dim, qi)
      const truth = new Set(bruteForce('euclidean', data, dim, q, 10).map((h) => h.id))
      const auto = await index.query({ vector: q, topK: 10 })
      const all = await index.query({ vector: q, topK: 10, nProbes: 512 })
      found += auto.filter((h) => truth.has(h.id)).length
      foundAll += all.filter((h) => truth.has(h.id)).length
    }
    assert.ok(found / 1000 >= 0.95, `recall@10 ${found / 1000} at the default nProbes`)
    assert.equal(foundAll / 1000, 1, 'nProbes = nLists is exact')
    const batch = await index.queryBatch({ vectors: queries.subarray(0, 5 * dim), topK: 10, nProbes: 512 })
    assert.equal(batch.length, 5)
  })

  it('keeps the event loop responsive during a multi-second training run', async () => {
    const { index } = await filled(50_000, 32, 2)
    const h = monitorEventLoopDelay({ resolution: 1 })
    h.enable()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const started = performance.now()
    let ticks = 0
    const timer = setInterval(() => ticks++, 5)
    const result = await index.train({ nLists: 512, maxIters: 60, tolerance: 0 })
    clearInterval(timer)
    h.disable()
    const elapsed = performance.now() - started
    assert.equal(result.iterations, 60)
    assert.ok(elapsed > 500, `training took only ${elapsed.toFixed(0)} ms`)
    assert.ok(ticks > elapsed / 20, `only ${ticks} ticks in ${elapsed.toFixed(0)} ms`)
    assert.ok(h.max / 1e6 < 20, `worst event-loop delay ${(h.max / 1e6).toFixed(1)} ms during ${elapsed.toFixed(0)} ms of training`)
  })

  it('reports progress once per iteration and aborts within 100 ms, leaving the index as it was', async () => {
    const { index, data } = await filled(50_000, 32, 3)
    const iterations: number[] = []
    const controller = new AbortController()
    let abortedAt = 0
    const run = index.train({
      nLists: 512,
      maxIters: 10_000,
      tolerance: 0,
      signal: controller.signal,
      onProgress: (p) => {
        iterations.push(p.iteration)
        assert.equal(p.maxIters, 10_000)
        assert.ok(p.inertia > 0)
        if (p.iteration === 5) {
          abortedAt = performance.now()
          controller.abort()
        }
      },
    })
    assert.equal(index.isTraining(), true)
    assert.equal(index.trainingState(), 'training')
    await rejectsWithCode(run, 'ERR_ABORTED')
    const latency = performance.now() - abortedAt
    assert.ok(latency < 100, `abort took ${latency.toFixed(0)} ms`)
    assert.deepEqual(iterations.slice(0, 5), [1, 2, 3, 4, 5])
    assert.equal(index.isTraining(), false)
    assert.equal(index.isTrained(), false)
    const [hit] = await index.query({ vector: row(data, 32, 7), topK: 1 })
    assert.equal(hit.id, '7')

    const already = new AbortController()
    already.abort()
    await rejectsWithCode(index.train({ signal: already.signal }), 'ERR_ABORTED')
  })

  it('rejects bad parameters, too few vectors and a second concurrent run with typed errors', async () => {
    const { index } = await filled(2_000, 8, 4)
    await rejectsWithCode(index.train({ nLists: 1024 }), 'ERR_INSUFFICIENT_VECTORS')
    await rejectsWithCode(index.train({ nLists: 0 }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(index.train({ nLists: 2.5 }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(index.train({ maxIters: -1 }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(index.train({ tolerance: -1 }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(index.query({ vector: new Float32Array(8), nProbes: 0 }), 'ERR_INVALID_ARGUMENT')
    const controller = new AbortController()
    const first = index.train({ nLists: 16, maxIters: 10_000, tolerance: 0, signal: controller.signal })
    await rejectsWithCode(index.train({ nLists: 16 }), 'ERR_TRAINING_IN_PROGRESS')
    controller.abort()
    await rejectsWithCode(first, 'ERR_ABORTED')
    assert.equal(index.isTrained(), false)
  })

  it('loses nothing written during training; deleted ids never come back', async () => {
    const dim = 16
    const { index } = await filled(30_000, dim, 5)
    const training = index.train({ nLists: 256, maxIters: 50, tolerance: 0 })
    const next = rng(55)
    const added: Array<[string, Float32Array]> = []
    const deleted: string[] = []
    let round = 0
    let done = false
    training.finally(() => (done = true))
    while (!done || round < 5) {
      const ops: Promise<unknown>[] = []
      for (let i = 0; i < 20; i++) {
        const v = Float32Array.from({ length: dim }, () => next() * 2 - 1)
        const id = `new-${round}-${i}`
        added.push([id, v])
        ops.push(index.upsert({ items: [{ id, vector: v }] }))
      }
      const gone = Array.from({ length: 10 }, (_, i) => String(round * 10 + i))
      deleted.push(...gone)
      ops.push(index.delete({ ids: gone }))
      ops.push(index.query({ vector: added[added.length - 1][1], topK: 3 }))
      await Promise.all(ops)
      round++
    }
    await training
    assert.equal(index.isTrained(), true)
    assert.equal(await index.count(), 30_000 + added.length - deleted.length)
    const got = await index.get({ ids: added.map(([id]) => id), include: [] })
    assert.equal(got.length, added.length)
    for (const [id, v] of added) {
      const [hit] = await index.query({ vector: v, topK: 1 })
      assert.equal(hit.id, id, `${id} is not found by its own vector`)
    }
    assert.deepEqual(await index.get({ ids: deleted }), [])
  })

  it('onProgress does not keep the process alive', () => {
    const script = `
      const { Client } = require(${JSON.stringify(require.resolve('../index.js'))})
      ;(async () => {
        const client = await Client.open()
        const index = await client.createIndex({ indexName: 'p', indexKey: Client.generateKey() })
        const n = 4000, dim = 8, v = new Float32Array(n * dim).map(() => Math.random())
        await index.upsert({ ids: Array.from({ length: n }, (_, i) => String(i)), vectors: v })
        let calls = 0
        await index.train({ nLists: 32, maxIters: 10, tolerance: 0, onProgress: () => calls++ })
        console.log('trained', calls)
      })()`
    const child = spawnSync(process.execPath, ['-e', script], { timeout: 30_000, encoding: 'utf8' })
    assert.equal(child.signal, null, `the child did not exit by itself: ${child.stderr}`)
    assert.equal(child.status, 0, child.stderr)
    const calls = Number(child.stdout.trim().split(' ')[1])
    assert.ok(calls >= 1 && calls <= 10, child.stdout)
  })
})
