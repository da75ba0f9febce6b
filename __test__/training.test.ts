// IVF training from Node: recall, exactness, the event loop, abort, progress, and writes
// during training.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'

import { Client, type EncryptedIndex } from '../index.js'
import {
  bruteForce,
  cpuOffJsThreadMs,
  describeWatch,
  noSchedstat,
  rejectsWithCode,
  rng,
  row,
  threadSamples,
  watchLoop,
  workerPriority,
  type ThreadSample,
} from './helpers.js'

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
  const client = await Client.open({ storage: { kind: 'memory' }, threads: 2 })
  const index = await client.createIndex({ indexName: 'ivf', indexKey: Client.generateKey(), dimension: dim, autoTrain: false })
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

  it("algorithm 'minibatch': recall@10 >= 0.95, one report per pass, the same lists for the same seed, and an abort", async () => {
    const dim = 32
    const { index, data } = await filled(50_000, dim, 5)
    const reports: { iteration: number; maxIters: number }[] = []
    const result = await index.train({ algorithm: 'minibatch', seed: 7, onProgress: (p) => reports.push(p) })
    // 4 passes by default, then one Lloyd iteration: one report each.
    assert.equal(result.iterations, 5)
    assert.deepEqual(reports.map((r) => r.iteration), [1, 2, 3, 4, 5])
    assert.ok(reports.every((r) => r.maxIters === 5))
    const queries = clustered(100, dim, 100, 1).map((x) => x + 0.01)
    let found = 0
    const firstHits: string[][] = []
    for (let qi = 0; qi < 100; qi++) {
      const q = row(queries, dim, qi)
      const truth = new Set(bruteForce('euclidean', data, dim, q, 10).map((h) => h.id))
      const hits = (await index.query({ vector: q, topK: 10 })).map((h) => h.id)
      firstHits.push(hits)
      found += hits.filter((id) => truth.has(id)).length
    }
    assert.ok(found / 1000 >= 0.95, `recall@10 ${found / 1000} at the default nProbes`)

    // The same data and seed on a client with another thread count: the same centroids, so the
    // same inertia and the same answers.
    const client = await Client.open({ storage: { kind: 'memory' }, threads: 1 })
    const other = await client.createIndex({ indexName: 'ivf1', indexKey: Client.generateKey(), dimension: dim, autoTrain: false })
    await other.upsert({ ids: Array.from({ length: data.length / dim }, (_, i) => String(i)), vectors: data })
    const again = await other.train({ algorithm: 'minibatch', seed: 7 })
    assert.equal(again.inertia, result.inertia)
    for (let qi = 0; qi < 100; qi += 10) {
      const hits = (await other.query({ vector: row(queries, dim, qi), topK: 10 })).map((h) => h.id)
      assert.deepEqual(hits, firstHits[qi])
    }
    const different = await other.train({ algorithm: 'minibatch', seed: 8 })
    assert.notEqual(different.inertia, result.inertia)

    // An abort during the passes rejects and leaves the trained lists in place.
    const controller = new AbortController()
    const run = other.train({
      algorithm: 'minibatch',
      maxIters: 10_000,
      tolerance: 0,
      signal: controller.signal,
      onProgress: (p) => p.iteration === 2 && controller.abort(),
    })
    await rejectsWithCode(run, 'ERR_ABORTED')
    assert.equal(other.isTrained(), true)
    assert.equal(other.isTraining(), false)
    await client.close()
  })

  it('keeps the event loop responsive during a multi-second training run', { skip: noSchedstat }, async (t) => {
    // ~250 G multiply-adds of Lloyd iterations: about a second on two cores with AVX-512
    // kernels, so the loop is watched for a while however fast the CPU is.
    const { index } = await filled(50_000, 64, 2)
    const before = threadSamples()
    const { value, watch } = await watchLoop(() => index.train({ nLists: 512, maxIters: 150, tolerance: 0 }))
    const priority = workerPriority(before, threadSamples())
    t.diagnostic(describeWatch(watch))
    assert.equal(value.iterations, 150)
    assert.ok(watch.elapsedMs > 500, `training took only ${watch.elapsedMs.toFixed(0)} ms`)
    // CPU time of the JS thread between two timer ticks: load does not lengthen it.
    assert.ok(watch.worstRanMs < 20, `the JS thread was kept busy during training: ${describeWatch(watch)}`)
    // How long the JS thread waits for a CPU behind the pool is the pool's priority.
    assert.ok(
      priority.loweredMs >= 0.9 * (priority.loweredMs + priority.normalMs),
      `${priority.loweredMs.toFixed(0)} ms of CPU off the JS thread ran at nice >= ${priority.nice}, ` +
        `${priority.normalMs.toFixed(0)} ms above it: ${priority.busiest.join(', ')}`,
    )
  })

  it('reports progress once per iteration and aborts within a k-means block, leaving the index as it was', { skip: noSchedstat }, async (t) => {
    // 2048 lists of 64 dimensions make an iteration ~150 ms of CPU time here: large against
    // the scheduler's accounting of a running thread, which lags by up to a tick (4 ms).
    const dim = 64
    const { index, data } = await filled(50_000, dim, 3)
    const iterations: number[] = []
    const controller = new AbortController()
    // CPU time of every thread but the JS thread: at the start, at the abort and at the end.
    // Work done after the abort is the measure, not milliseconds: the machine's load
    // stretches the latter, not the former.
    let atAbort: ThreadSample[] = []
    let abortedAt = 0
    let lateCallbacks = 0
    let tooLate: (e: Error) => void = () => {}
    const ignored = new Promise<never>((_, reject) => (tooLate = reject))
    const start = threadSamples()
    const run = index.train({
      nLists: 2048,
      maxIters: 10_000,
      tolerance: 0,
      signal: controller.signal,
      onProgress: (p) => {
        iterations.push(p.iteration)
        assert.equal(p.maxIters, 10_000)
        assert.ok(p.inertia > 0)
        if (p.iteration === 5) {
          atAbort = threadSamples()
          abortedAt = performance.now()
          controller.abort()
        } else if (abortedAt > 0 && ++lateCallbacks > 3) {
          // Iterations reported after the abort: the last may have been under way (or queued
          // for this thread), more mean the abort was not seen. Fail now rather than after
          // 10,000 iterations.
          tooLate(new Error(`${lateCallbacks} iterations were reported after the abort`))
        }
      },
    })
    assert.equal(index.isTraining(), true)
    assert.equal(index.trainingState(), 'training')
    await rejectsWithCode(Promise.race([run, ignored]), 'ERR_ABORTED')
    const latency = performance.now() - abortedAt
    const end = threadSamples()
    // The abort is polled in every assignment block, so after it each pool thread finishes at
    // most its current block: an iteration is ~200 such blocks here. Five iterations' CPU
    // time (or more: some may have run before their callbacks did) calibrates that on this
    // machine; a quarter of an iteration allows for the accounting lag of each pool thread.
    const perIteration = cpuOffJsThreadMs(start, atAbort) / 5
    const afterAbort = cpuOffJsThreadMs(atAbort, end)
    t.diagnostic(
      `after abort(): rejected in ${latency.toFixed(1)} ms (wall clock), ${afterAbort.toFixed(1)} ms of CPU off the JS ` +
        `thread, against ${perIteration.toFixed(1)} ms per iteration; ${lateCallbacks} iterations reported after it`,
    )
    assert.ok(
      afterAbort < 0.25 * perIteration,
      `${afterAbort.toFixed(1)} ms of CPU ran after the abort, against ${perIteration.toFixed(1)} ms per k-means iteration`,
    )
    assert.deepEqual(iterations.slice(0, 5), [1, 2, 3, 4, 5])
    assert.equal(index.isTraining(), false)
    assert.equal(index.isTrained(), false)
    const [hit] = await index.query({ vector: row(data, dim, 7), topK: 1 })
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
    await rejectsWithCode(index.train({ algorithm: 'kmeans' as unknown as 'lloyd' }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(index.train({ algorithm: 'minibatch', batchSize: 0 }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(index.train({ algorithm: 'minibatch', maxIters: 0 }), 'ERR_INVALID_ARGUMENT')
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
        const client = await Client.open({ storage: { kind: 'memory' } })
        const index = await client.createIndex({ indexName: 'p', indexKey: Client.generateKey(), autoTrain: false })
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

describe('auto-training', () => {
  async function until(cond: () => boolean, what: string) {
    const deadline = Date.now() + 60_000
    while (!cond()) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  it('starts in the background at the threshold and says so in the upsert result', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'a', indexKey: Client.generateKey(), autoTrain: { threshold: 1000 } })
    const data = clustered(1000, 8, 10, 9)
    const ids = Array.from({ length: 1000 }, (_, i) => String(i))
    const first = await index.upsert({ ids: ids.slice(0, 999), vectors: data.subarray(0, 999 * 8) })
    assert.equal(first.trainingTriggered, false)
    const second = await index.upsert({ ids: ids.slice(999), vectors: data.subarray(999 * 8) })
    assert.equal(second.trainingTriggered, true)
    await until(() => index.isTrained() && !index.isTraining(), 'auto-training')
    assert.ok(index.nLists > 1)
    const [hit] = await index.query({ vector: row(data, 8, 5), topK: 1 })
    assert.equal(hit.id, '5')
  })

  it('is off with autoTrain: false and with CIPHERVEC_AUTO_TRAIN_DISABLED', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'off', indexKey: Client.generateKey(), autoTrain: false })
    const r = await index.upsert({ ids: Array.from({ length: 12_000 }, (_, i) => String(i)), vectors: clustered(12_000, 4, 10, 1) })
    assert.equal(r.trainingTriggered, false)
    assert.equal(index.isTraining(), false)

    const script = `
      const { Client } = require(${JSON.stringify(require.resolve('../index.js'))})
      ;(async () => {
        const client = await Client.open({ storage: { kind: 'memory' } })
        const index = await client.createIndex({ indexName: 'e', indexKey: Client.generateKey() })
        const n = Number(process.argv[1]), v = new Float32Array(n * 4).map(() => Math.random())
        const r = await index.upsert({ ids: Array.from({ length: n }, (_, i) => String(i)), vectors: v })
        console.log(JSON.stringify(r))
      })()`
    const run = (n: number, env: Record<string, string>) => {
      const child = spawnSync(process.execPath, ['-e', script, String(n)], { env: { ...process.env, ...env }, timeout: 60_000, encoding: 'utf8' })
      assert.equal(child.status, 0, child.stderr)
      return JSON.parse(child.stdout).trainingTriggered as boolean
    }
    assert.equal(run(12_000, { CIPHERVEC_AUTO_TRAIN_DISABLED: '1' }), false)
    assert.equal(run(600, { CIPHERVEC_RETRAIN_THRESHOLD: '500' }), true)
    assert.equal(run(400, { CIPHERVEC_RETRAIN_THRESHOLD: '500' }), false)
    assert.equal(run(10_000, {}), true, 'default threshold is 10,000')
  })

  it('warns once when querying an untrained index of more than 50,000 vectors', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const client = await Client.open({ storage: { kind: 'memory' } })
      const index = await client.createIndex({ indexName: 'w', indexKey: Client.generateKey(), autoTrain: false })
      const n = 50_001
      await index.upsert({ ids: Array.from({ length: n }, (_, i) => String(i)), vectors: clustered(n, 4, 10, 2) })
      await index.query({ vector: [0, 0, 0, 0], topK: 1 })
      await index.queryBatch({ vectors: [[0, 0, 0, 0]], topK: 1 })
      await new Promise((resolve) => setImmediate(resolve))
      const ours = warnings.filter((w) => (w as Error & { code?: string }).code === 'CIPHERVEC_UNTRAINED_INDEX')
      assert.equal(ours.length, 1)
      assert.match(ours[0].message, /train\(\)/)
    } finally {
      process.off('warning', onWarning)
    }
  })
})
