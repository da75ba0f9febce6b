// Filtered-query benchmark: recall@10 and QPS of filtered queries at selectivities 50%, 5%,
// 0.5% and 0.05% on a trained index, against exact filtered ground truth computed here by
// brute force over the matching items. Run: `npm run bench:filters`.
// Then a tenant workload: 1,000 tenants of Zipf-distributed sizes (tenant r holds a share
// ∝ 1/r), queried with `{ tenant }` filters per band of tenant sizes.
// Env: BENCH_DATA (default ../shared/data/glove50.base.fbin), BENCH_NLIST (1024),
// BENCH_THREADS (2), BENCH_QUERIES (200), BENCH_NPROBES (the index's default),
// BENCH_SELECTIVITY_ONLY (set: skip the tenant workload and the load share).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { Client, type Filter } from '../index.js'

const root = resolve(__dirname, '..')
const dataPath = process.env.BENCH_DATA ?? resolve(root, '../shared/data/glove50.base.fbin')
const queryPath = dataPath.replace('.base.', '.query.')
const nList = Number(process.env.BENCH_NLIST ?? 1024)
const threads = Number(process.env.BENCH_THREADS ?? 2)
const nQueries = Number(process.env.BENCH_QUERIES ?? 200)
/** nProbes of every query (default: the index's own, 2·⌈√nLists⌉). */
const nProbes = process.env.BENCH_NPROBES ? Number(process.env.BENCH_NPROBES) : undefined
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

const TENANTS = 1000
/** Tenant ranks 1..TENANTS, drawn with probability ∝ 1/rank (Zipf, exponent 1) by a fixed
 * generator, so tenant 1 holds ~13 % of the items and tenant 1000 a few dozen. */
function zipfTenants(n: number): Int32Array {
  const cdf = new Float64Array(TENANTS)
  let sum = 0
  for (let r = 1; r <= TENANTS; r++) cdf[r - 1] = sum += 1 / r
  let s = 12345
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    const u = next() * sum
    let lo = 0
    let hi = TENANTS - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid] < u) lo = mid + 1
      else hi = mid
    }
    out[i] = lo + 1
  }
  return out
}

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
  const tenants = zipfTenants(n)
  await index.upsert({
    ids,
    vectors: base,
    metadata: ids.map((_, i) => ({ bucket: bucketOf(i), name: `b${bucketOf(i)}`, tenant: `t${tenants[i]}` })),
  })
  const trained = await index.train({ nLists: nList, maxIters: 20, tolerance: 0, seed: 1 })
  console.log(`trained ${trained.nLists} lists in ${trained.seconds.toFixed(1)} s; threads ${threads}`)
  const { memory } = await index.stats()
  const mb = (b: number) => (b / 1e6).toFixed(1)
  console.log(
    `memory: vectors ${mb(memory.vectorsBytes)} MB, codes ${mb(memory.codesBytes)} MB, metadata ${mb(memory.metadataBytes)} MB, ` +
      `metadata index ${mb(memory.metadataIndexBytes)} MB (${((100 * memory.metadataIndexBytes) / memory.vectorsBytes).toFixed(0)} % of the vectors)`,
  )
  console.log('| selectivity | matching | recall@10 | QPS (queryBatch) | QPS (single) | unfiltered QPS (batch) |')
  console.log('|---|---|---|---|---|---|')
  const unfiltered = await batchQps(() => index.queryBatch({ vectors: queries, topK: 10, nProbes }))
  {
    // The unfiltered row: the IVF's own recall at this nProbes, the bar for filtered recall.
    const all = ids.map((_, i) => i)
    const results = await index.queryBatch({ vectors: queries, topK: 10, nProbes })
    let found = 0
    results.forEach((hits, qi) => {
      const truth = exactTop10(base, dim, all, queries.subarray(qi * dim, (qi + 1) * dim))
      found += hits.filter((h) => truth.has(h.id)).length
    })
    console.log(`| none (unfiltered) | ${n} | ${(found / (10 * nQueries)).toFixed(3)} | ${unfiltered.toFixed(0)} | | ${unfiltered.toFixed(0)} |`)
  }
  let t0: number
  for (const [label, below, form] of SELECTIVITIES) {
    const names = Array.from({ length: below }, (_, b) => `b${b}`)
    const filters: Filter = form === 'range' ? { bucket: { $lt: below } } : below === 1 ? { name: 'b0' } : { name: { $in: names } }
    const matching = ids.map((_, i) => i).filter((i) => bucketOf(i) < below)
    const results = await index.queryBatch({ vectors: queries, topK: 10, filters, nProbes })
    const qps = await batchQps(() => index.queryBatch({ vectors: queries, topK: 10, filters, nProbes }))
    t0 = performance.now()
    for (let qi = 0; qi < Math.min(nQueries, 100); qi++) {
      await index.query({ vector: queries.subarray(qi * dim, (qi + 1) * dim), topK: 10, filters, nProbes })
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
  if (process.env.BENCH_SELECTIVITY_ONLY) return client.close()
  await tenantWorkload(index, base, dim, queries, tenants, unfiltered)
  await client.close()
  await loadShare(base, dim, ids, tenants)
}

/** The metadata index's share of `loadIndex`: the same items on disk, loaded by fresh clients
 * with every field indexed and with every field left out (`unindexedFields`), alternating. */
async function loadShare(base: Float32Array, dim: number, ids: string[], tenants: Int32Array): Promise<void> {
  const path = mkdtempSync(join(tmpdir(), 'ciphervec-bench-filters-'))
  try {
    const indexKey = Client.generateKey()
    const metadata = ids.map((_, i) => ({ bucket: bucketOf(i), name: `b${bucketOf(i)}`, tenant: `t${tenants[i]}` }))
    {
      const client = await Client.open({ storage: { kind: 'disk', path }, threads })
      for (const [indexName, unindexedFields] of [['indexed', []], ['unindexed', ['bucket', 'name', 'tenant']]] as const) {
        const index = await client.createIndex({ indexName, indexKey, dimension: dim, autoTrain: false, unindexedFields })
        await index.upsert({ ids, vectors: base, metadata })
        await index.compact()
      }
      await client.close()
    }
    const times: Record<string, number[]> = { indexed: [], unindexed: [] }
    for (let round = 0; round < 3; round++) {
      for (const indexName of ['indexed', 'unindexed']) {
        const client = await Client.open({ storage: { kind: 'disk', path }, threads })
        const t0 = performance.now()
        await client.loadIndex({ indexName, indexKey, autoTrain: false })
        times[indexName].push(performance.now() - t0)
        await client.close()
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
    const [withIndex, without] = [median(times.indexed), median(times.unindexed)]
    console.log(
      `\nloadIndex (disk, packed, ${ids.length} items, median of 3): every field indexed ${withIndex.toFixed(0)} ms, ` +
        `none ${without.toFixed(0)} ms: the metadata index is ${((100 * (withIndex - without)) / withIndex).toFixed(0)} % of the load`,
    )
  } finally {
    rmSync(path, { recursive: true, force: true })
  }
}

/** Per band of tenant ranks: 20 tenants spread over the band, each asked 10 queries in one
 * `queryBatch` with `{ tenant }`; QPS over all of them, recall@10 against each tenant's exact
 * top 10. */
async function tenantWorkload(
  index: Awaited<ReturnType<Client['createIndex']>>,
  base: Float32Array,
  dim: number,
  queries: Float32Array,
  tenants: Int32Array,
  unfiltered: number,
): Promise<void> {
  const members = new Map<number, number[]>()
  tenants.forEach((t, i) => {
    const list = members.get(t)
    if (list) list.push(i)
    else members.set(t, [i])
  })
  const n = tenants.length
  console.log(`\ntenant workload: ${TENANTS} tenants, Zipf sizes (largest ${members.get(1)?.length ?? 0} items, smallest ${Math.min(...[...members.values()].map((m) => m.length))})`)
  const perTenant = 10
  // The baseline in the same shape: batches of 10 queries, unfiltered.
  const shape = Array.from({ length: 20 }, (_, k) => queries.subarray(k * perTenant * dim, (k + 1) * perTenant * dim))
  const b0 = performance.now()
  let baseRounds = 0
  while (performance.now() - b0 < 500 || baseRounds < 2) {
    for (const vectors of shape) await index.queryBatch({ vectors, topK: 10 })
    baseRounds++
  }
  const unfilteredSmall = (baseRounds * shape.length * perTenant) / ((performance.now() - b0) / 1000)
  console.log(`unfiltered, batches of ${perTenant}: ${unfilteredSmall.toFixed(0)} QPS (batches of all queries: ${unfiltered.toFixed(0)})`)
  console.log('| tenant ranks | items per tenant (median) | share | recall@10 | QPS (queryBatch of 10 per tenant) | vs unfiltered (same batches) |')
  console.log('|---|---|---|---|---|---|')
  for (const [lo, hi] of [[1, 10], [11, 100], [101, 1000]] as const) {
    const picked = Array.from({ length: 20 }, (_, k) => lo + Math.floor((k * (hi - lo + 1)) / 20)).filter((t) => members.has(t))
    const batches = picked.map((t, k) => {
      const start = (k * perTenant) % Math.max(1, queries.length / dim - perTenant)
      return { t, vectors: queries.subarray(start * dim, (start + perTenant) * dim), start }
    })
    let found = 0
    for (const b of batches) {
      const res = await index.queryBatch({ vectors: b.vectors, topK: 10, filters: { tenant: `t${b.t}` } })
      res.forEach((hits, qi) => {
        const q = b.vectors.subarray(qi * dim, (qi + 1) * dim)
        const truth = exactTop10(base, dim, members.get(b.t)!, q)
        found += hits.filter((h) => truth.has(h.id)).length / Math.min(10, members.get(b.t)!.length)
      })
    }
    const t0 = performance.now()
    let rounds = 0
    while (performance.now() - t0 < 500 || rounds < 2) {
      for (const b of batches) await index.queryBatch({ vectors: b.vectors, topK: 10, filters: { tenant: `t${b.t}` } })
      rounds++
    }
    const qps = (rounds * batches.length * perTenant) / ((performance.now() - t0) / 1000)
    const sizes = picked.map((t) => members.get(t)!.length).sort((a, b) => a - b)
    const median = sizes[sizes.length >> 1]
    const recall = found / (batches.length * perTenant)
    console.log(`| ${lo}–${hi} | ${median} | ${((100 * median) / n).toFixed(3)} % | ${recall.toFixed(3)} | ${qps.toFixed(0)} | ${(qps / unfilteredSmall).toFixed(2)}× |`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
