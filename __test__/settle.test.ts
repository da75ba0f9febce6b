// How calls settle (src/task.rs): each runs on a worker thread and its result comes straight
// back to the JS thread, thousands at once, with every error's code; a call in flight keeps
// the process alive and a finished one does not; a worker thread ending with calls in flight
// takes nothing down with it.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { getEventListeners } from 'node:events'
import { describe, it } from 'node:test'
import { Worker } from 'node:worker_threads'

import { Client, type EncryptedIndex } from '../index.js'
import { randomVectors, rejectsWithCode, row } from './helpers.js'

const ADDON = JSON.stringify(require.resolve('../index.js'))

/** Runs `body` (CommonJS, `Client` in scope) in a fresh Node process. */
function node(body: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const script = `const { Client } = require(${ADDON});\n${body}`
  // The timeout only stops a hung child (the failure this file guards against), it bounds no measurement.
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 })
}

async function filled(n: number, dim: number): Promise<{ client: Client; index: EncryptedIndex; vectors: Float32Array }> {
  const client = await Client.open({ storage: { kind: 'memory' }, threads: 2 })
  const index = await client.createIndex({ indexName: 's', indexKey: Client.generateKey(), dimension: dim })
  const vectors = randomVectors(n, dim, 7)
  await index.upsert({ ids: Array.from({ length: n }, (_, i) => `v${i}`), vectors })
  return { client, index, vectors }
}

describe('settling calls', () => {
  it('4,000 calls in flight at once all settle, each with its own value or code', async () => {
    const { client, index, vectors } = await filled(500, 8)
    const controller = new AbortController()
    const aborted = AbortSignal.abort()
    const calls: Array<Promise<void>> = []
    for (let i = 0; i < 1000; i++) {
      calls.push(index.count().then((n) => assert.equal(n, 500)))
      calls.push(
        index.query({ vector: row(vectors, 8, i % 500), topK: 1 }).then((r) => assert.equal(r[0].id, `v${i % 500}`)),
      )
      // Errors found on the worker thread, on the JS thread, and an abort: codes as always.
      calls.push(rejectsWithCode(index.query({ vector: new Float32Array(3), topK: 1 }), 'ERR_DIMENSION_MISMATCH').then(() => {}))
      calls.push(
        i % 2
          ? rejectsWithCode(index.query({ vector: row(vectors, 8, 0), alpha: 0.5 }), 'ERR_INVALID_ARGUMENT').then(() => {})
          : rejectsWithCode(index.queryBatch({ vectors: row(vectors, 8, 0), signal: aborted }), 'ERR_ABORTED').then(() => {}),
      )
    }
    calls.push(index.queryBatch({ vectors: vectors.subarray(0, 80), topK: 1, signal: controller.signal }).then(() => {}))
    await Promise.all(calls)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'the listener went when the call settled')
    await client.close()
    await rejectsWithCode(index.count(), 'ERR_CLOSED')
  })

  it('a call in flight keeps the process alive until it settles; finished calls do not', () => {
    // Nothing awaits the last call: the process must still wait for it, then exit by itself
    // (the client is never closed either).
    const r = node(`
      ;(async () => {
        const client = await Client.open({ storage: { kind: 'memory' } })
        const index = await client.createIndex({ indexName: 'x', indexKey: Client.generateKey(), dimension: 2 })
        await index.upsert({ items: [{ id: 'a', vector: [1, 2] }] })
        for (let i = 0; i < 100; i++) await index.count()
        index.count().then((n) => console.log('settled ' + n))
      })().catch((e) => { console.log('ERROR ' + e.code); process.exit(3) })`)
    assert.equal(r.signal, null, `the process did not exit by itself: ${r.stderr}`)
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'settled 1')
  })

  it('worker threads: calls settle there, and ending one with calls in flight harms nothing', async () => {
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { Client } = require(${ADDON})
      ;(async () => {
        const client = await Client.open({ storage: { kind: 'memory' } })
        const index = await client.createIndex({ indexName: 'w', indexKey: Client.generateKey(), dimension: 4 })
        await index.upsert({ ids: Array.from({ length: 2000 }, (_, i) => 'i' + i), vectors: new Float32Array(8000).map(Math.random) })
        const n = await index.count()
        if (workerData.flood) {
          // Calls in flight when the thread is terminated.
          for (let i = 0; i < 200; i++) index.queryBatch({ vectors: new Float32Array(400).map(Math.random), topK: 10 }).catch(() => {})
        }
        parentPort.postMessage(n)
      })().catch((e) => parentPort.postMessage('ERROR ' + e.code + ' ' + e.message))`
    for (const flood of [false, true, true]) {
      const worker = new Worker(source, { eval: true, workerData: { flood } })
      const got = await new Promise((resolve, reject) => {
        worker.once('message', resolve)
        worker.once('error', reject)
      })
      assert.equal(got, 2000)
      if (flood) await worker.terminate()
      else await new Promise((resolve) => worker.once('exit', resolve))
    }
    // The main thread's calls still work after those environments went away.
    const { client, index } = await filled(10, 4)
    assert.equal(await index.count(), 10)
    await client.close()
  })
})
