// How long each call holds the JS thread, per input form, at 100k items (and 1M ids).
//
// For every call: a 1 ms interval timer starts 20 ms before it (so the measurement does not
// begin in the tick a monitor is armed, which `monitorEventLoopDelay` misses), and the
// longest gap between two ticks while the call runs is its worst block of the event loop.
// `sync` is the time the call itself takes to return its promise, `whole call` the time until
// it settles. Each case runs `RUNS` times on a fresh index; the table shows the median and
// the worst run.
//
//   npm run bench:blocking            (RUNS=5 N=100000 DIM=128 by default)
import { Client, type EncryptedIndex, type VectorItem } from '../index.js'

const RUNS = Number(process.env.RUNS ?? 5)
const N = Number(process.env.N ?? 100_000)
const DIM = Number(process.env.DIM ?? 128)
const QUERIES = Number(process.env.QUERIES ?? 10_000)

function randomFlat(n: number, dim: number, seed: number): Float32Array {
  let a = seed >>> 0
  const out = new Float32Array(n * dim)
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5
  }
  return out
}

const flat = randomFlat(N, DIM, 1)
const rows: number[][] = Array.from({ length: N }, (_, i) => Array.from(flat.subarray(i * DIM, (i + 1) * DIM)))
const ids = Array.from({ length: N }, (_, i) => `doc-${i}`)
const millionIds = Array.from({ length: 1_000_000 }, (_, i) => `doc-${i}`)
const metadata = ids.map((_, i) => ({ tenant: `t${i % 50}`, year: 2000 + (i % 25), tags: ['a', 'b'] }))
const queryFlat = randomFlat(QUERIES, DIM, 2)
const queryRows = Array.from({ length: QUERIES }, (_, i) => Array.from(queryFlat.subarray(i * DIM, (i + 1) * DIM)))

type Case = {
  name: string
  setup?: (index: EncryptedIndex) => Promise<void>
  call: (index: EncryptedIndex, input: unknown) => Promise<unknown>
  /** Builds the call's input before the timed part (building 100k items is the caller's cost). */
  input?: () => unknown
}

const filled = async (index: EncryptedIndex) => {
  await index.upsert({ ids, vectors: flat })
}

const cases: Case[] = [
  { name: `upsert ids + flat Float32Array (${N} × ${DIM})`, call: (i) => i.upsert({ ids, vectors: flat }) },
  { name: `upsert ids + number[][]`, call: (i) => i.upsert({ ids, vectors: rows }) },
  { name: `upsert ids + flat + metadata column`, call: (i) => i.upsert({ ids, vectors: flat, metadata }) },
  {
    name: `upsert items (Float32Array vectors, metadata)`,
    input: () => ids.map((id, k) => ({ id, vector: flat.subarray(k * DIM, (k + 1) * DIM), metadata: metadata[k] })),
    call: (i, items) => i.upsert({ items: items as VectorItem[] }),
  },
  {
    name: `upsert items (number[] vectors, metadata)`,
    input: () => ids.map((id, k) => ({ id, vector: rows[k], metadata: metadata[k] })),
    call: (i, items) => i.upsert({ items: items as VectorItem[] }),
  },
  { name: `queryBatch ${QUERIES} number[] queries (topK 10)`, setup: filled, call: (i) => i.queryBatch({ vectors: queryRows, topK: 10 }) },
  { name: `queryBatch ${QUERIES} as one flat Float32Array`, setup: filled, call: (i) => i.queryBatch({ vectors: queryFlat, topK: 10 }) },
  { name: `get ${N} ids (ids only)`, setup: filled, call: (i) => i.get({ ids, include: [] }) },
  { name: `get 1M ids (ids only)`, setup: filled, call: (i) => i.get({ ids: millionIds, include: [] }) },
  { name: `delete ${N} ids`, setup: filled, call: (i) => i.delete({ ids }) },
  { name: `delete 1M ids`, setup: filled, call: (i) => i.delete({ ids: millionIds }) },
]

async function measure(c: Case): Promise<{ block: number; sync: number; total: number }> {
  const client = await Client.open({ storage: { kind: 'memory' } })
  const index = await client.createIndex({ indexName: 'b', indexKey: Client.generateKey(), dimension: DIM, autoTrain: false })
  if (c.setup) await c.setup(index)
  const input = c.input?.()
  let last = performance.now()
  let worst = 0
  const timer = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last)
    last = now
  }, 1)
  await new Promise((r) => setTimeout(r, 20))
  worst = 0
  last = performance.now()
  const t0 = performance.now()
  const p = c.call(index, input)
  const sync = performance.now() - t0
  await p
  const total = performance.now() - t0
  // One more tick after the promise settled, so a block at the end (results converted to JS)
  // counts too.
  await new Promise((r) => setTimeout(r, 2))
  clearInterval(timer)
  await client.close()
  return { block: worst, sync, total }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  console.log(`| call | worst block, median (ms) | worst block, max (ms) | sync part, median (ms) | whole call, median (ms) |`)
  console.log(`|---|---|---|---|---|`)
  for (const c of cases) {
    const runs = []
    for (let r = 0; r < RUNS; r++) runs.push(await measure(c))
    const blocks = runs.map((r) => r.block)
    const syncs = runs.map((r) => r.sync)
    const totals = runs.map((r) => r.total)
    console.log(
      `| ${c.name} | ${median(blocks).toFixed(1)} | ${Math.max(...blocks).toFixed(1)} | ${median(syncs).toFixed(1)} | ${median(totals).toFixed(0)} |`,
    )
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
