// PostgreSQL storage shared by several processes (children/pg-worker.ts, driven over IPC):
// concurrent writers, writers SIGKILLed mid-write, training while others read and write, and
// the database stopped mid-ingest. Every deadline here is a liveness bound (fail instead of
// hang), never a speed assertion: the machine is shared.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { after, before, describe, it, type TestContext } from 'node:test'
import pg from 'pg'

import { Client, type GetResultItem, type IncludeField, type StorageOptions } from '../index.js'
import type { PostgresServer } from '../scripts/postgres.mjs'
import { rejectsWithCode } from './helpers.js'
import { batchOf, ChildError, eventually, killAll, sleep, vectorFor, within, Worker, type AckEvent } from './pg-procs.js'
import { sharedPostgres, type SharedPostgres } from './postgres.js'

const prefix = () => `cvp_${randomBytes(5).toString('hex')}`

const clients: Client[] = []
async function openClient(storage: Omit<StorageOptions, 'kind'>, consistency?: 'eventual' | 'strong') {
  const client = await Client.open({ storage: { kind: 'postgres', ...storage }, consistency })
  clients.push(client)
  return client
}

after(async () => {
  await killAll()
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
})

/** Starts a worker and opens the index in it. */
async function worker(name: string, storage: Omit<StorageOptions, 'kind'>, indexName: string, key: Uint8Array): Promise<Worker> {
  const w = new Worker(name)
  await w.call('open', { storage: { kind: 'postgres', ...storage }, indexName, key })
  return w
}

const sorted = (ids: Iterable<string>) => [...ids].sort()

/** Items by id, for comparing `get` results across processes. */
function byId(items: GetResultItem[]): Map<string, GetResultItem> {
  return new Map(items.map((i) => [i.id, { ...i, vector: i.vector && Float32Array.from(i.vector) }]))
}

/** The batch of an id `${prefix}-b${k}-i${j}`. */
const batchKey = (id: string) => id.slice(0, id.lastIndexOf('-i'))

/** Asserts every batch in `ids` is whole (`size` items) and every acknowledged batch is there. */
function assertBatches(ids: string[], size: number, acked: Iterable<string>, filter: (id: string) => boolean) {
  const counts = new Map<string, number>()
  for (const id of ids) if (filter(id)) counts.set(batchKey(id), (counts.get(batchKey(id)) ?? 0) + 1)
  for (const [b, n] of counts) assert.equal(n, size, `batch ${b} is half-written: ${n} of ${size} items`)
  for (const b of acked) assert.equal(counts.get(b), size, `acknowledged batch ${b} is missing`)
  return counts
}

/** Sends `signal` to the postmaster and every process it started (its backends and helpers). */
function signalServer(server: PostgresServer, signal: 'SIGSTOP' | 'SIGCONT'): void {
  const children = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === server.pid
      } catch {
        return false // gone meanwhile
      }
    })
    .map(Number)
  // Stopping: the postmaster first, so that it starts no one new; resuming: it last.
  const order = signal === 'SIGSTOP' ? [server.pid, ...children] : [...children, server.pid]
  for (const pid of order) {
    try {
      process.kill(pid, signal)
    } catch {
      // exited meanwhile
    }
  }
}

describe('postgres storage, many processes', () => {
  let shared: SharedPostgres
  before(async () => {
    shared = await sharedPostgres()
  })

  it('two writer processes and a reader: every acknowledged item everywhere, eventual reads converge, one version per id', async (t) => {
    const table = prefix()
    const storage = { url: shared.url, table, pollIntervalMs: 300 }
    const dim = 8
    const key = Client.generateKey()
    const parent = await openClient(storage)
    const index = await parent.createIndex({ indexName: 'three', indexKey: key, dimension: dim, autoTrain: false })
    const [a, b, r] = await Promise.all([
      worker('writer-A', storage, 'three', key),
      worker('writer-B', storage, 'three', key),
      worker('reader', storage, 'three', key),
    ])
    try {
      // Distinct ids per writer plus 20 ids per batch that both write.
      const startAt = Date.now() + 200
      const loop = (w: Worker, name: string) =>
        w.call('writeLoop', { tag: 'w', prefix: name, batches: 12, batchSize: 100, dim, writer: name, overlap: 20, overlapPrefix: 'ov', readBack: true, startAt })
      await r.call('queryLoop', { tag: 'q', dim })
      await Promise.all([loop(a, 'A'), loop(b, 'B')])
      const [sa, sb] = await Promise.all([a.call('joinLoop', { tag: 'w' }), b.call('joinLoop', { tag: 'w' })])
      const rq = await r.call('stopLoop', { tag: 'q' })
      t.diagnostic(`A ${JSON.stringify(sa)}, B ${JSON.stringify(sb)}, reader ${JSON.stringify(rq)}`)
      assert.deepEqual([...a.failures, ...b.failures, ...r.failures], [], 'no call may fail')
      assert.equal(a.acks.length + b.acks.length, 24)
      assert.ok(rq.queries > 0)
      const expected = sorted(new Set([...a.acks, ...b.acks].flatMap((e) => e.ids)))
      assert.equal(expected.length, 12 * (100 + 100 + 20))

      // Eventual reads converge everywhere (before any strong read, which would catch up at once).
      const started = Date.now()
      const converge = async (what: string, listIds: () => Promise<string[]>) =>
        eventually(`${what} eventually lists every acknowledged id`, async () => (sorted(await listIds()).join() === expected.join() ? true : undefined))
      await Promise.all([
        converge('reader', () => r.call('listIds', {})),
        converge('writer A', () => a.call('listIds', {})),
        converge('writer B', () => b.call('listIds', {})),
        converge('parent', () => index.listIds()),
      ])
      t.diagnostic(`eventual reads converged ${Date.now() - started} ms after the last write`)

      // Strong reads: the same set, and the same version of every item, in all four processes.
      const all = [a, b, r]
      for (const w of all) assert.deepEqual(sorted(await w.call('listIds', { consistency: 'strong' })), expected, w.name)
      assert.deepEqual(sorted(await index.listIds({ consistency: 'strong' })), expected)
      const reference = byId(await index.get({ ids: expected, include: ['metadata', 'vector'], consistency: 'strong' }))
      assert.equal(reference.size, expected.length)
      for (const w of all) {
        const got = byId(await w.call('get', { ids: expected, include: ['metadata', 'vector'], consistency: 'strong' }))
        assert.deepEqual(got, reference, `${w.name} holds other versions than the parent`)
      }
      // Each item is whole: its vector is the one its metadata's writer wrote.
      for (const item of reference.values()) assert.deepEqual(item.vector, vectorFor(item.id, dim, item.metadata!.writer as string), item.id)
      const shared = [...reference.values()].filter((i) => i.id.startsWith('ov-'))
      t.diagnostic(`overlapping ids: ${shared.filter((i) => i.metadata!.writer === 'A').length} from A, ${shared.filter((i) => i.metadata!.writer === 'B').length} from B`)
    } finally {
      await Promise.all([a.close(), b.close(), r.close()])
    }
  })

  it('two writers writing the same ids at once converge to the same items everywhere: the last batch committed, whole', async (t) => {
    const table = prefix()
    const storage = { url: shared.url, table, pollIntervalMs: 300 }
    const dim = 8
    const key = Client.generateKey()
    const parent = await openClient(storage)
    const index = await parent.createIndex({ indexName: 'same', indexKey: key, dimension: dim, autoTrain: false })
    const [a, b, r] = await Promise.all([
      worker('same-A', storage, 'same', key),
      worker('same-B', storage, 'same', key),
      worker('same-reader', storage, 'same', key),
    ])
    try {
      // Every batch of both writers writes the same 100 ids (metadata: writer and batch number).
      // Both start at the same instant (one clock on one machine), so their batches contend.
      const startAt = Date.now() + 200
      const loop = (w: Worker, writer: string) =>
        w.call('writeLoop', { tag: 'w', prefix: 'same', sameIds: true, batches: 20, batchSize: 100, dim, writer, startAt })
      const order: string[] = []
      a.on('ack', () => order.push('A'))
      b.on('ack', () => order.push('B'))
      await Promise.all([loop(a, 'A'), loop(b, 'B')])
      await Promise.all([a.call('joinLoop', { tag: 'w' }), b.call('joinLoop', { tag: 'w' })])
      assert.deepEqual([...a.failures, ...b.failures], [])
      assert.equal(a.acks.length + b.acks.length, 40)
      const ids = sorted(a.acks[0].ids)
      assert.equal(ids.length, 100)

      const full = { ids, include: ['metadata', 'vector'] as IncludeField[] }
      const reference = byId(await index.get({ ...full, consistency: 'strong' }))
      assert.equal(reference.size, ids.length)
      // Eventual reads in every process converge to it...
      const same = (m: Map<string, GetResultItem>) => {
        try {
          assert.deepEqual(m, reference)
          return true
        } catch {
          return undefined
        }
      }
      await Promise.all(
        [a, b, r].map((w) => eventually(`${w.name} eventually holds the final versions`, async () => same(byId(await w.call('get', full))))),
      )
      // ...and so do strong ones.
      for (const w of [a, b, r]) assert.deepEqual(byId(await w.call('get', { ...full, consistency: 'strong' })), reference, w.name)
      // Each item is whole, and all come from one batch: upserts are atomic and serialised, so
      // the last one committed wins for every id.
      const versions = new Set<string>()
      for (const item of reference.values()) {
        assert.deepEqual(item.vector, vectorFor(item.id, dim, item.metadata!.writer as string), `${item.id} is not whole`)
        versions.add(`${item.metadata!.writer} batch ${item.metadata!.batch}`)
      }
      assert.equal(versions.size, 1, `the items come from several batches: ${[...versions].join(', ')}`)
      t.diagnostic(`acknowledgements in the order received: ${order.join('')}; the items are ${[...versions][0]}`)
    } finally {
      await Promise.all([a.close(), b.close(), r.close()])
    }
  })

  it('a writer SIGKILLed at random points, 20 times: acknowledged batches are whole, no batch is half-written, the index keeps working', async (t) => {
    const table = prefix()
    const storage = { url: shared.url, table }
    const dim = 8
    const batchSize = 200
    const key = Client.generateKey()
    const parent = await openClient(storage, 'strong')
    const index = await parent.createIndex({ indexName: 'crash', indexKey: key, dimension: dim, autoTrain: false })
    const acked = new Set<string>()
    let unacknowledgedCommitted = 0
    let batchMs = 100
    const rounds = 20
    for (let round = 0; round < rounds; round++) {
      const w = await worker(`killed-${round}`, storage, 'crash', key)
      try {
        const times: number[] = []
        w.on('ack', () => times.push(performance.now()))
        const start = performance.now()
        await w.call('writeLoop', { tag: 'k', prefix: `r${round}`, batchSize, dim, writer: `r${round}` })
        // Kill after 0 to 3 acknowledged batches, at a random moment within the next one.
        const acks = Math.floor(Math.random() * 4)
        if (acks > 0) await within(`round ${round}: ${acks} acks`, w.waitFor<AckEvent>('ack', () => w.acks.length >= acks))
        await sleep(Math.random() * batchMs * 1.5)
        await w.kill('SIGKILL')
        if (times.length > 0) batchMs = (times[times.length - 1] - start) / times.length
      } finally {
        await w.kill()
      }
      assert.deepEqual(w.failures, [], `round ${round}: a write failed before the kill`)
      for (const e of w.acks) acked.add(batchKey(e.ids[0]))

      // Strong read: every batch whole or absent, every acknowledged one whole.
      const ids = await index.listIds()
      const counts = assertBatches(ids, batchSize, acked, (id) => id.startsWith('r'))
      const thisRound = [...counts.keys()].filter((b) => b.startsWith(`r${round}-`))
      unacknowledgedCommitted += thisRound.filter((b) => !acked.has(b)).length
      const items = await index.get({ ids: ids.filter((id) => id.startsWith(`r${round}-`)), include: ['metadata', 'vector'] })
      for (const item of items) {
        assert.deepEqual(item.vector, vectorFor(item.id, dim, `r${round}`), `${item.id} has a wrong vector`)
        assert.equal(`r${round}-b${item.metadata!.batch}`, batchKey(item.id))
      }
      t.diagnostic(`round ${round}: ${w.acks.length} acknowledged, ${thisRound.length} committed`)

      // The index keeps working: a write from the parent, and a load from a fresh client.
      await index.upsert({ items: [{ id: `probe-${round}`, vector: vectorFor(`probe-${round}`, dim) }] })
      const fresh = await Client.open({ storage: { kind: 'postgres', ...storage } })
      try {
        const loaded = await fresh.loadIndex({ indexName: 'crash', indexKey: key, autoTrain: false })
        assert.deepEqual(sorted(await loaded.listIds()), sorted([...ids, `probe-${round}`]))
      } finally {
        await fresh.close()
      }
    }
    t.diagnostic(`${acked.size} batches acknowledged; ${unacknowledgedCommitted} committed without an acknowledgement reaching the parent`)
    assert.ok(acked.size >= 5, `only ${acked.size} batches acknowledged in ${rounds} rounds`)
  })

  it('training in one process while another writes and queries: nothing lost, no failed query, identical results everywhere', async (t) => {
    const table = prefix()
    const storage = { url: shared.url, table, pollIntervalMs: 500 }
    const dim = 16
    const n = 20_000
    const key = Client.generateKey()
    const parent = await openClient(storage)
    const index = await parent.createIndex({ indexName: 'train', indexKey: key, dimension: dim, autoTrain: false })
    const baseIds = Array.from({ length: n }, (_, i) => `base-${i}`)
    let t0 = performance.now()
    for (let i = 0; i < n; i += 5000) await index.upsert(batchOf(baseIds.slice(i, i + 5000), dim, 'base'))
    t.diagnostic(`ingest of ${n}: ${(performance.now() - t0).toFixed(0)} ms`)
    t0 = performance.now()
    const [trainer, writer] = await Promise.all([worker('trainer', storage, 'train', key), worker('writer', storage, 'train', key)])
    t.diagnostic(`two children loaded it: ${(performance.now() - t0).toFixed(0)} ms`)
    try {
      // One training run at a time across processes: a long run in the trainer...
      // (nLists 512 over all 20k vectors, tolerance 0: ~10k iterations of a few ms each.)
      const long = trainer.call('train', { options: { nLists: 512, maxIters: 10_000, tolerance: 0, seed: 1 }, abortable: true, progress: true })
      long.catch(() => {}) // awaited below
      const ended = long.then(
        (r) => assert.fail(`the long run ended before the test could use it: ${JSON.stringify(r)}`),
        (e) => assert.fail(e),
      )
      await within('the long run reports progress', Promise.race([trainer.waitFor('progress'), ended]))
      // ...makes a second one in another process, or in this one, reject.
      await assert.rejects(writer.call('train', { options: { nLists: 8 } }), (e: ChildError) => {
        assert.equal(e.code, 'ERR_TRAINING_IN_PROGRESS', e.message)
        return true
      })
      await rejectsWithCode(index.train({ nLists: 8 }), 'ERR_TRAINING_IN_PROGRESS')
      await trainer.call('abort')
      await assert.rejects(long, (e: ChildError) => {
        assert.equal(e.code, 'ERR_ABORTED', e.message)
        return true
      })
      assert.equal((await trainer.call('state')).isTrained, false)
      await index.count({ consistency: 'strong' })
      assert.equal(index.isTrained(), false)

      // Now the real run, while the writer writes and queries and the parent queries.
      await writer.call('writeLoop', { tag: 'w', prefix: 'during', batchSize: 100, dim, writer: 'W', readBack: true })
      await writer.call('queryLoop', { tag: 'q', dim, nProbes: 4, minHits: 10 })
      let stopParent = false
      const parentFailures: string[] = []
      let parentQueries = 0
      const parentLoop = (async () => {
        for (let i = 0; !stopParent; i++) {
          try {
            const hits = await index.query({ vector: vectorFor(`pq${i}`, dim), topK: 10, nProbes: 4 })
            if (hits.length !== 10) parentFailures.push(`query ${i}: ${hits.length} hits`)
            parentQueries++
          } catch (e) {
            parentFailures.push(`query ${i}: ${(e as Error & { code?: string }).code} ${(e as Error).message}`)
          }
          await sleep(5)
        }
      })()
      const ackedBefore = writer.acks.length
      t0 = performance.now()
      const result = await trainer.call('train', { options: { nLists: 64, seed: 7, maxIters: 1000, tolerance: 0 } }, 300_000)
      t.diagnostic(`training: ${(performance.now() - t0).toFixed(0)} ms, ${result.iterations} iterations; ${writer.acks.length - ackedBefore} batches written meanwhile`)
      assert.equal(result.nLists, 64)
      // A few more writes after the commit, then stop.
      const after = writer.acks.length
      await within('writes after training', writer.waitFor<AckEvent>('ack', () => writer.acks.length >= after + 3))
      const ws = await writer.call('stopLoop', { tag: 'w' })
      const qs = await writer.call('stopLoop', { tag: 'q' })
      stopParent = true
      await parentLoop
      t.diagnostic(`writer ${JSON.stringify(ws)}, writer queries ${JSON.stringify(qs)}, parent queries ${parentQueries}`)
      assert.deepEqual(writer.failures, [], 'no write or query in the writer may fail')
      assert.deepEqual(parentFailures, [], 'no query in the parent may fail')
      assert.ok(writer.acks.length - ackedBefore >= 3)

      // No lost write: every acknowledged id, in every process.
      const expected = sorted([...baseIds, ...writer.acks.flatMap((e) => e.ids)])
      assert.deepEqual(sorted(await index.listIds({ consistency: 'strong' })), expected, 'parent')
      for (const w of [trainer, writer]) {
        assert.deepEqual(sorted(await w.call('listIds', { consistency: 'strong' })), expected, w.name)
        assert.deepEqual(await w.call('state'), { isTrained: true, isTraining: false, nLists: 64, trainingState: 'trained' }, w.name)
      }
      assert.equal(index.isTrained(), true)
      assert.equal(index.nLists, 64)

      // Identical answers to the same queries in all three processes (nProbes 4 of 64 lists:
      // the same lists, the same items in them).
      const queries = Array.from({ length: 8 }, (_, i) => vectorFor(`fixed-${i}`, dim))
      const ask = { vectors: queries, topK: 20, nProbes: 4, include: ['distance'], consistency: 'strong' } as const
      const mine = await index.queryBatch({ ...ask, include: [...ask.include] })
      assert.ok(mine.every((r) => r.length === 20))
      for (const w of [trainer, writer]) assert.deepEqual(await w.call('queryBatch', ask), mine, `${w.name} answers differently`)
      // Probes of a written-during-training item find it everywhere.
      const late = writer.acks[ackedBefore].ids[0]
      for (const w of [trainer, writer]) {
        const [hit] = await w.call('query', { vector: vectorFor(late, dim, 'W'), topK: 1, nProbes: 4, include: ['distance'] })
        assert.deepEqual(hit, { id: late, distance: 0 }, w.name)
      }
    } finally {
      await Promise.all([trainer.close(), writer.close()])
    }
  })

  it('a trainer SIGKILLed mid-run releases its claim: another process can train then, and the index is intact', async (t) => {
    const table = prefix()
    const storage = { url: shared.url, table }
    const dim = 16
    const key = Client.generateKey()
    const parent = await openClient(storage)
    const index = await parent.createIndex({ indexName: 'doomed', indexKey: key, dimension: dim, autoTrain: false })
    const ids = Array.from({ length: 4000 }, (_, i) => `v${i}`)
    await index.upsert(batchOf(ids, dim, 'V'))
    const doomed = await worker('doomed-trainer', storage, 'doomed', key)
    try {
      const long = doomed.call('train', { options: { nLists: 512, maxIters: 10_000, tolerance: 0, seed: 1 }, progress: true })
      long.catch(() => {}) // it dies
      await within('the doomed run reports progress', Promise.race([doomed.waitFor('progress'), long.then(() => assert.fail('the run ended'))]))
      await rejectsWithCode(index.train({ nLists: 8 }), 'ERR_TRAINING_IN_PROGRESS')
      await doomed.kill('SIGKILL')
    } finally {
      await doomed.kill()
    }
    // The claim goes with the dead process's connection, once the server notices it closed.
    let attempts = 0
    const result = await eventually('a train() after the kill', async () => {
      attempts++
      try {
        return await index.train({ nLists: 16, seed: 2 })
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_TRAINING_IN_PROGRESS') return undefined
        throw assert.fail(e as Error)
      }
    })
    t.diagnostic(`train() succeeded at attempt ${attempts}`)
    assert.equal(result.nLists, 16)
    const fresh = await openClient(storage)
    const loaded = await fresh.loadIndex({ indexName: 'doomed', indexKey: key, autoTrain: false })
    assert.equal(loaded.isTrained(), true)
    assert.equal(loaded.nLists, 16)
    assert.deepEqual(sorted(await loaded.listIds()), sorted(ids))
    const [hit] = await loaded.query({ vector: vectorFor('v123', dim, 'V'), topK: 1, nProbes: 16 })
    assert.equal(hit.id, 'v123')
  })

  describe('the database down mid-ingest (a private server)', () => {
    let server: PostgresServer
    before(async () => {
      const { startPostgres } = await import('../scripts/postgres.mjs')
      server = await startPostgres()
    })
    after(async () => {
      if (server) signalServer(server, 'SIGCONT')
      await server?.stop()
    })

    /**
     * An ingest loop runs in one client while `outage.begin()` takes the database away and
     * `outage.end()` brings it back; a reader in another client meanwhile. Rejections must be
     * ERR_UNAVAILABLE and come (a liveness bound, not a speed one); writes must resume by
     * themselves, in the same client; every acknowledged batch must be there afterwards, and
     * every other one all or nothing (a rejected write's outcome is unknown).
     */
    async function ingestThroughOutage(t: TestContext, outage: { begin(): Promise<void>; end(): Promise<void> }) {
      // A write whose row-lock statement is caught by the outage waits lockTimeoutMs +
      // queryTimeoutMs (the client cannot tell a silent server from a lock held elsewhere),
      // so lockTimeoutMs is small too: rejections come within seconds, well inside the
      // liveness deadlines.
      const storage = { url: server.url, table: prefix(), connectTimeoutMs: 2000, queryTimeoutMs: 2000, lockTimeoutMs: 4000, pollIntervalMs: 300 }
      const dim = 8
      const batchSize = 100
      const key = Client.generateKey()
      const wc = await openClient(storage)
      const rc = await openClient(storage)
      const index = await wc.createIndex({ indexName: 'down', indexKey: key, dimension: dim, autoTrain: false })
      const reader = await rc.loadIndex({ indexName: 'down', indexKey: key, autoTrain: false })

      type Outcome = { batch: string; phase: string; ok: boolean; ms: number; code?: string; message?: string }
      const outcomes: Outcome[] = []
      let phase = 'before'
      let stop = false
      const ingest = (async () => {
        for (let k = 0; !stop; k++) {
          const ids = Array.from({ length: batchSize }, (_, j) => `d-b${k}-i${j}`)
          const at = phase
          const t0 = performance.now()
          try {
            await within(`upsert of batch ${k}`, index.upsert(batchOf(ids, dim, 'D', { batch: k })))
            outcomes.push({ batch: `d-b${k}`, phase: at, ok: true, ms: performance.now() - t0 })
          } catch (e) {
            const err = e as Error & { code?: string }
            outcomes.push({ batch: `d-b${k}`, phase: at, ok: false, ms: performance.now() - t0, code: err.code, message: err.message })
            await sleep(50) // no busy loop while the server is away
          }
        }
      })()
      const count = (pred: (o: Outcome) => boolean) => outcomes.filter(pred).length
      try {
        await eventually('5 batches written', async () => (count((o) => o.ok) >= 5 ? true : undefined))
        await eventually('the reader has something', async () => ((await reader.count()) > 0 ? true : undefined))

        await outage.begin()
        phase = 'down'
        const down = outcomes.length
        await eventually('3 writes rejected while down', async () => (outcomes.slice(down).filter((o) => !o.ok).length >= 3 ? true : undefined))
        // While down: eventual reads are served from memory; strong reads cannot be.
        assert.ok((await within('an eventual count while down', reader.count())) > 0)
        const hits = await within('an eventual query while down', reader.query({ vector: vectorFor('d-b0-i0', dim, 'D'), topK: 5 }))
        assert.equal(hits.length, 5)
        assert.equal((await within('an eventual get while down', reader.get({ ids: ['d-b0-i0'] }))).length, 1)
        assert.equal((await within('a query in the writer', index.query({ vector: vectorFor('x', dim), topK: 3 }))).length, 3)
        await rejectsWithCode(within('a strong count while down', reader.count({ consistency: 'strong' })), 'ERR_UNAVAILABLE')
        await rejectsWithCode(
          within('a strong query while down', reader.query({ vector: vectorFor('x', dim), topK: 3, consistency: 'strong' })),
          'ERR_UNAVAILABLE',
        )
        await rejectsWithCode(within('a client opened while down', Client.open({ storage: { kind: 'postgres', ...storage } })), 'ERR_UNAVAILABLE')

        await outage.end()
        phase = 'after'
        const back = outcomes.length
        await eventually('5 writes after the outage', async () => (outcomes.slice(back).filter((o) => o.ok).length >= 5 ? true : undefined))
      } finally {
        stop = true
        await ingest
      }
      const failed = outcomes.filter((o) => !o.ok)
      t.diagnostic(
        `${outcomes.length} batches: ${count((o) => o.ok && o.phase === 'before')} acknowledged before the outage, ` +
          `${count((o) => o.ok && o.phase === 'down')} during it, ${count((o) => o.ok && o.phase === 'after')} after it; ` +
          `${failed.length} rejected (${count((o) => !o.ok && o.phase === 'after')} of them after it), ` +
          `the slowest rejection after ${Math.max(...failed.map((o) => o.ms)).toFixed(0)} ms`,
      )
      for (const o of failed) assert.equal(o.code, 'ERR_UNAVAILABLE', `batch ${o.batch} (${o.phase}) rejected with ${o.code}: ${o.message}`)

      // Every acknowledged batch is there, every other one all or nothing.
      const ids = await index.listIds({ consistency: 'strong' })
      const acked = outcomes.filter((o) => o.ok).map((o) => o.batch)
      const present = assertBatches(ids, batchSize, acked, () => true)
      t.diagnostic(`${failed.filter((o) => present.has(o.batch)).length} rejected batches were committed all the same`)
      const items = await index.get({ ids, include: ['metadata', 'vector'] })
      for (const item of items) {
        assert.deepEqual(item.vector, vectorFor(item.id, dim, 'D'), item.id)
        assert.equal(`d-b${item.metadata!.batch}`, batchKey(item.id))
      }
      // The reader follows again by itself (its listener and pool reconnect), and strongly.
      const expected = sorted(ids)
      await eventually('the reader eventually sees every write', async () => (sorted(await reader.listIds()).join() === expected.join() ? true : undefined))
      assert.deepEqual(sorted(await reader.listIds({ consistency: 'strong' })), expected)
      // And a fresh client loads it all.
      const fresh = await openClient(storage)
      const loaded = await fresh.loadIndex({ indexName: 'down', indexKey: key, autoTrain: false })
      assert.equal(await loaded.count(), ids.length)
    }

    it(
      "a snapshot whose BEGIN got no answer in time does not leave its connection in the pool inside that transaction",
      async () => {
        const table = prefix()
        const db = new pg.Client({ connectionString: server.url })
        await db.connect()
        const backends = async () =>
          (
            await db.query<{ pid: number; state: string; query: string; application_name: string }>(
              "SELECT pid, state, query, application_name FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            )
          ).rows
        let frozen = 0
        try {
          const a = await openClient({ url: server.url, table })
          const key = Client.generateKey()
          const ia = await a.createIndex({ indexName: 'r', indexKey: key, dimension: 2, autoTrain: false })
          await ia.upsert({ items: [{ id: 'a', vector: [1, 2] }] })
          // B: one pooled connection, a short query timeout, no polling (only LISTEN wake-ups).
          // Its backends are told apart by name: A's pool may open connections meanwhile.
          const bUrl = `${server.url}${server.url.includes('?') ? '&' : '?'}application_name=ciphervec-b`
          const b = await openClient({ url: bUrl, table, poolSize: 1, queryTimeoutMs: 1000, pollIntervalMs: 600_000 })
          const ib = await b.loadIndex({ indexName: 'r', indexKey: key, autoTrain: false })
          const mine = await eventually("B's two backends", async () => {
            const rows = (await backends()).filter((r) => r.application_name === 'ciphervec-b')
            return rows.length === 2 && rows.some((r) => r.query.startsWith('LISTEN')) ? rows : undefined
          })
          frozen = mine.find((r) => !r.query.startsWith('LISTEN'))!.pid
          // B's pooled connection stops answering (that backend only; B's listener still works).
          process.kill(frozen, 'SIGSTOP')
          // A commits; B's follower wakes and opens a snapshot, whose BEGIN gets no answer in time.
          await ia.upsert({ items: [{ id: 'b', vector: [3, 4] }] })
          await sleep(2500)
          process.kill(frozen, 'SIGCONT')
          frozen = 0
          await sleep(500)
          // B's next write must work (it may run on that connection).
          await ib.upsert({ items: [{ id: 'c', vector: [5, 6] }] })
          assert.deepEqual(sorted(await ia.listIds({ consistency: 'strong' })), ['a', 'b', 'c'])
        } finally {
          if (frozen) process.kill(frozen, 'SIGCONT')
          await db.end()
        }
      },
    )

    it('stopped (immediate shutdown) and restarted: ERR_UNAVAILABLE meanwhile, reads from memory, writes resume by themselves, nothing acknowledged lost', async (t) => {
      await ingestThroughOutage(t, {
        begin: () => server.stop({ mode: 'immediate' }),
        end: () => server.restart(),
      })
    })

    it('not answering (every server process SIGSTOPped) and resumed: the same, by the query and connect timeouts', async (t) => {
      await ingestThroughOutage(t, {
        begin: async () => signalServer(server, 'SIGSTOP'),
        end: async () => signalServer(server, 'SIGCONT'),
      })
    })
  })
})
