// A child process for the multi-process PostgreSQL tests: one Client and one index, driven by
// the parent over IPC (see ../pg-procs.ts, `Worker`). Requests are `{ id, op, args }`; answers
// `{ id, ok, value | error: { code, message } }`. Loops running in the background report
// `{ event: 'ack' }` after each upsert promise resolved (never before), and
// `{ event: 'failure' }` for any call that rejected.
import { Client, type EncryptedIndex } from '../../index.js'
import { batchOf } from '../pg-procs.js'

let client: Client | undefined
let index: EncryptedIndex | undefined
let training: AbortController | undefined
const loops = new Map<string, { stop: boolean; done: Promise<unknown> }>()

function send(m: unknown): void {
  // A parent that is gone (a test that failed and moved on) is no reason to crash.
  if (process.connected) process.send!(m, undefined, undefined, () => {})
}

function errorOf(e: unknown): { code?: string; message: string } {
  const err = e as Error & { code?: string }
  return { code: err?.code, message: err?.message ?? String(e) }
}

function idx(): EncryptedIndex {
  if (!index) throw new Error('no index open (call open first)')
  return index
}

interface WriteLoopArgs {
  tag: string
  /** Ids `${prefix}-b${k}-i${j}`, or with `sameIds` `${prefix}-i${j}` in every batch. */
  prefix: string
  sameIds?: boolean
  startBatch?: number
  /** Batches to write; omitted: until stopped (or killed). */
  batches?: number
  batchSize: number
  dim: number
  /** Salt of the vectors (`vectorFor(id, dim, writer)`) and `metadata.writer`. */
  writer: string
  /** Also write ids `${overlapPrefix}-b${k}-i${j}` (j < overlap) in batch k. */
  overlap?: number
  overlapPrefix?: string
  /** After each upsert, query (eventual) and check the batch is readable at once. */
  readBack?: boolean
  /** Wall-clock time (ms since the epoch) to start at, so that two children start together. */
  startAt?: number
}

async function writeLoop(a: WriteLoopArgs, state: { stop: boolean }): Promise<{ acked: number; failed: number }> {
  let acked = 0
  let failed = 0
  const end = a.batches === undefined ? Infinity : (a.startBatch ?? 0) + a.batches
  if (a.startAt) await new Promise((r) => setTimeout(r, Math.max(0, a.startAt! - Date.now())))
  for (let k = a.startBatch ?? 0; k < end && !state.stop; k++) {
    const ids = Array.from({ length: a.batchSize }, (_, j) => (a.sameIds ? `${a.prefix}-i${j}` : `${a.prefix}-b${k}-i${j}`))
    for (let j = 0; j < (a.overlap ?? 0); j++) ids.push(`${a.overlapPrefix}-b${k}-i${j}`)
    const batch = batchOf(ids, a.dim, a.writer, { batch: k })
    try {
      await idx().upsert(batch)
    } catch (e) {
      failed++
      send({ event: 'failure', tag: a.tag, op: 'upsert', batch: k, ids, ...errorOf(e) })
      continue
    }
    acked++
    send({ event: 'ack', tag: a.tag, batch: k, ids })
    if (a.readBack) {
      // A process reads its own writes, eventual consistency or not.
      try {
        const got = await idx().get({ ids: [ids[0], ids[ids.length - 1]], include: ['metadata'] })
        if (got.length !== 2) throw Object.assign(new Error(`own write of batch ${k} not readable: got ${got.length} of 2`), { code: 'TEST_OWN_WRITE' })
        await idx().query({ vector: batch.vectors.subarray(0, a.dim), topK: 5, nProbes: 4 })
      } catch (e) {
        send({ event: 'failure', tag: a.tag, op: 'readBack', batch: k, ...errorOf(e) })
      }
    }
  }
  return { acked, failed }
}

interface QueryLoopArgs {
  tag: string
  dim: number
  nProbes?: number
  /** Fewer hits than this is a failure (the index holds at least that many items). */
  minHits?: number
}

async function queryLoop(a: QueryLoopArgs, state: { stop: boolean }): Promise<{ queries: number; failed: number }> {
  let queries = 0
  let failed = 0
  let seed = 1
  while (!state.stop) {
    const vector = batchOf([`q${seed++}`], a.dim, 'query').vectors
    try {
      const hits = await idx().query({ vector, topK: 10, nProbes: a.nProbes ?? 4 })
      if (hits.length < (a.minHits ?? 0)) throw Object.assign(new Error(`a query returned ${hits.length} hits`), { code: 'TEST_TOO_FEW' })
      if (seed % 10 === 0) await idx().queryBatch({ vectors: [vector, vector], topK: 3 })
      if (seed % 25 === 0) await idx().count({ consistency: 'strong' })
      queries++
    } catch (e) {
      failed++
      send({ event: 'failure', tag: a.tag, op: 'query', ...errorOf(e) })
    }
  }
  return { queries, failed }
}

function startLoop(tag: string, run: (state: { stop: boolean }) => Promise<unknown>): void {
  if (loops.has(tag)) throw new Error(`loop ${tag} already runs`)
  const state = { stop: false, done: Promise.resolve() as Promise<unknown> }
  state.done = run(state)
  loops.set(tag, state)
}

const ops: Record<string, (args: any) => Promise<unknown> | unknown> = {
  async open(a: {
    storage: Record<string, unknown>
    consistency?: 'eventual' | 'strong'
    indexName: string
    key: Uint8Array
    create?: boolean
    dimension?: number
  }) {
    client = await Client.open({ storage: a.storage as any, consistency: a.consistency })
    const options = { indexName: a.indexName, indexKey: a.key, autoTrain: false }
    index = a.create ? await client.createIndex({ ...options, dimension: a.dimension }) : await client.loadIndex(options)
    return { pid: process.pid }
  },
  upsert: (a) => idx().upsert(a),
  get: (a) => idx().get(a),
  query: (a) => idx().query(a),
  queryBatch: (a) => idx().queryBatch(a),
  queryMetadata: (a) => idx().queryMetadata(a),
  count: (a) => idx().count(a),
  listIds: (a) => idx().listIds(a),
  delete: (a) => idx().delete(a),
  state: () => ({ isTrained: idx().isTrained(), isTraining: idx().isTraining(), nLists: idx().nLists, trainingState: idx().trainingState() }),
  async train(a: { options: Record<string, unknown>; abortable?: boolean; progress?: boolean }) {
    const controller = new AbortController()
    if (a.abortable) training = controller
    try {
      return await idx().train({
        ...a.options,
        signal: a.abortable ? controller.signal : undefined,
        onProgress: a.progress ? (p) => send({ event: 'progress', iteration: p.iteration }) : undefined,
      })
    } finally {
      if (training === controller) training = undefined
    }
  },
  abort() {
    if (!training) throw new Error('no abortable training runs')
    training.abort()
    return null
  },
  writeLoop(a: WriteLoopArgs) {
    startLoop(a.tag, (s) => writeLoop(a, s))
    return null
  },
  queryLoop(a: QueryLoopArgs) {
    startLoop(a.tag, (s) => queryLoop(a, s))
    return null
  },
  /** Stops a loop (after its current call) and answers with its summary. */
  async stopLoop(a: { tag: string }) {
    const loop = loops.get(a.tag)
    if (!loop) throw new Error(`no loop ${a.tag}`)
    loop.stop = true
    loops.delete(a.tag)
    return loop.done
  },
  /** Waits for a loop to end by itself. */
  async joinLoop(a: { tag: string }) {
    const loop = loops.get(a.tag)
    if (!loop) throw new Error(`no loop ${a.tag}`)
    const v = await loop.done
    loops.delete(a.tag)
    return v
  },
  async exit() {
    for (const loop of loops.values()) loop.stop = true
    await Promise.all([...loops.values()].map((l) => l.done.catch(() => {})))
    await client?.close()
    setImmediate(() => process.exit(0))
    return null
  },
}

process.on('message', (m: { id: number; op: string; args: any }) => {
  void (async () => {
    try {
      const op = ops[m.op]
      if (!op) throw new Error(`unknown op ${m.op}`)
      const value = await op(m.args ?? {})
      send({ id: m.id, ok: true, value })
    } catch (e) {
      send({ id: m.id, ok: false, error: errorOf(e) })
    }
  })()
})
// The parent gone (killed, or a test that crashed): nothing left to do.
process.on('disconnect', () => process.exit(0))
