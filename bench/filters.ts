// Filtered-query benchmark: recall@10 and QPS of filtered queries at selectivities 50%, 5%,
// 0.5% and 0.05% on a trained index, against exact filtered ground truth computed here by
// brute force over the matching items. Run: `npm run bench:filters`.
// Env: BENCH_DATA (default ../shared/data/glove50.base.fbin), BENCH_NLIST (1024),
// BENCH_THREADS (2), BENCH_QUERIES (200).
import { readFileSync, existsSync } from 'node:fs'
import { resolve } from 'node:path'

import { Client, type Filter } from '../index.js'

const root = resolve(__dirname, '..')
const dataPath = process.env.BENCH_DATA ?? resolve(root, '../shared/data/glove50.base.fbin')
const queryPath = dataPath.replace('.base.', '.query.')
const nList = Number(process.env.BENCH_NLIST ?? 1024)
const threads = Number(process.env.BENCH_THREADS ?? 2)
const nQueries = Number(process.env.BENCH_QUERIES ?? 200)
/** Buckets 0..1999; "bucket < t" matches t/2000 of the items, unrelated to the vectors. The
 * `name` forms ask for the same items by the bucket's name (`'b7'`): string equalities, which the
 * metadata index answers exactly (no filter run per candidate). */
const SELECTIVITIES: Array<[string, number, 'range' | 'name']> = [
  ['50%', 1000, 'range'],
  ['5%', 100, 'range'],
  ['5%', 100, 'name'],
  ['0.5%', 10, 'range'],
  ['0.5%', 10, 'name'],
  ['0.05%', 1, 'range'],
  ['0.05%', 1, 'name'],
]

function readFbin(path: string): { n: number; dim: number; data: Float32Array } {
  const buf = readFileSync(path)
  const n = buf.readInt32LE(0)
  const dim = buf.readInt32LE(4)
  return { n, dim, data: new Float32Array(buf.buffer.slice(buf.byteOffset + 8, buf.byteOffset + 8 + n * dim * 4)) }
}

function generated(n: number, dim: number, seed: number): Float32Array {
  let s = seed >>> 0
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)
  const centres = Array.from({ length: 1000 }, () => Float32Array.from({ length: dim }, () => next() * 2 - 1))
  const out = new Float32Array(n * dim)
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(next() * 1000)]
    for (let j = 0; j < dim; j++) out[i * dim + j] = c[j] + 0.2 * (next() - 0.5)
  }
  return out
}

const bucketOf = (i: number) => (i * 7919) % 2000

/** Queries per second of `batch` (all the queries in one call), repeated for at least half a
 * second so that fast filters are timed over more than a few milliseconds. */
async function batchQps(batch: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  let calls = 0
  while (performance.now() - t0 < 500 || calls < 2) {
    await batch()
    calls++
  }
  return (calls * nQueries) / ((performance.now() - t0) / 1000)
}

function exactTop10(base: Float32Array, dim: number, matching: number[], q: Float32Array): Set<string> {
  const scored = matching.map((i) => {
    let d = 0
    for (let j = 0; j < dim; j++) d += (base[i * dim + j] - q[j]) ** 2
    return [d, i] as const
  })
  scored.sort((a, b) => a[0] - b[0])
  return new Set(scored.slice(0, 10).map(([, i]) => String(i)))
}

async function main() {
  let base: Float32Array
  let queries: Float32Array
  let dim: number
  if (existsSync(dataPath) && existsSync(queryPath)) {
    const b = readFbin(dataPath)
    const q = readFbin(queryPath)
    ;[base, dim, queries] = [b.data, b.dim, q.data.subarray(0, nQueries * q.dim)]
    console.log(`data: ${dataPath} (${b.n} x ${dim}), ${nQueries} queries`)
  } else {
    dim = 50
    base = generated(100_000, dim, 1)
    queries = generated(nQueries, dim, 2)
    console.log(`data: ${dataPath} not found; generated 100000 x ${dim} clustered vectors`)
  }
  const n = base.length / dim
  const client = await Client.open({ storage: { kind: 'memory' }, threads })
  const index = await client.createIndex({ indexName: 'bench', indexKey: Client.generateKey(), dimension: dim, autoTrain: false })
  const ids = Array.from({ length: n }, (_, i) => String(i))
  await index.upsert({ ids, vectors: base, metadata: ids.map((_, i) => ({ bucket: bucketOf(i), name: `b${bucketOf(i)}` })) })
  const trained = await index.train({ nLists: nList, maxIters: 20, tolerance: 0, seed: 1 })
  console.log(`trained ${trained.nLists} lists in ${trained.seconds.toFixed(1)} s; threads ${threads}`)
  console.log('| selectivity | matching | recall@10 | QPS (queryBatch) | QPS (single) | unfiltered QPS (batch) |')
  console.log('|---|---|---|---|---|---|')
  const unfiltered = await batchQps(() => index.queryBatch({ vectors: queries, topK: 10 }))
  let t0: number
  for (const [label, below, form] of SELECTIVITIES) {
    const names = Array.from({ length: below }, (_, b) => `b${b}`)
    const filters: Filter = form === 'range' ? { bucket: { $lt: below } } : below === 1 ? { name: 'b0' } : { name: { $in: names } }
    const matching = ids.map((_, i) => i).filter((i) => bucketOf(i) < below)
    const results = await index.queryBatch({ vectors: queries, topK: 10, filters })
    const qps = await batchQps(() => index.queryBatch({ vectors: queries, topK: 10, filters }))
    t0 = performance.now()
    for (let qi = 0; qi < Math.min(nQueries, 100); qi++) {
      await index.query({ vector: queries.subarray(qi * dim, (qi + 1) * dim), topK: 10, filters })
    }
    const singleQps = Math.min(nQueries, 100) / ((performance.now() - t0) / 1000)
    let found = 0
    results.forEach((hits, qi) => {
      const truth = exactTop10(base, dim, matching, queries.subarray(qi * dim, (qi + 1) * dim))
      found += hits.filter((h) => truth.has(h.id)).length
    })
    const recall = found / (10 * nQueries)
    console.log(`| ${label} ${form === 'range' ? '`bucket < t`' : '`name` equality'} | ${matching.length} | ${recall.toFixed(3)} | ${qps.toFixed(0)} | ${singleQps.toFixed(0)} | ${unfiltered.toFixed(0)} |`)
  }
  await client.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
