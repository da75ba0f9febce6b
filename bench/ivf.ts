// IVF benchmark: ciphervec vs FAISS IndexIVFFlat on the same data, in one invocation.
// Run with `npm run bench`; options in the README-style comment on `config` below and in
// BENCHMARKS.md. The machine is shared and noisy, so only ratios from one run mean much:
// that is why both systems run here, back to back, instead of comparing with old numbers.
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Client, type EncryptedIndex, type IndexType, type QueryResultItem, type TrainResult } from '../index.js'
import { type Dataset, FaissServer, gaussian, type Matrix, readDataset, recallAt10, rng, ROOT, siblings, writeDataset } from './common.js'

const TOP_K = 10
const SEED = 1
const WARMUP_QUERIES = 200

/** Options from the environment (defaults match BENCHMARKS.md). */
const config = {
  // A path given in BENCH_DATA is taken relative to the working directory, as shells expect;
  // the default is the shared data set beside the repository.
  data: process.env.BENCH_DATA ? path.resolve(process.env.BENCH_DATA) : path.resolve(ROOT, '../shared/data/glove50.base.fbin'),
  nLists: Number(process.env.BENCH_NLIST ?? 1024),
  iters: Number(process.env.BENCH_ITERS ?? 20),
  threads: Number(process.env.BENCH_THREADS ?? 2),
  /** ciphervec's index type; default the library's ('ivfsq8'). `ivfflat` compares like for like with IndexIVFFlat. */
  indexType: process.env.BENCH_TYPE as IndexType | undefined,
  queries: Number(process.env.BENCH_QUERIES ?? 10_000),
  single: Number(process.env.BENCH_SINGLE ?? 1000),
  probes: (process.env.BENCH_PROBES ?? '16,32,48,64,128').split(',').map(Number),
  /** Set to 0 to run ciphervec alone. */
  faiss: process.env.BENCH_FAISS !== '0',
  /** Optional path for the raw results as JSON. */
  out: process.env.BENCH_OUT,
}

// ---------------------------------------------------------------------------------------------
// Data

function loadDataset(): Dataset {
  const files = siblings(config.data)
  return readDataset(path.basename(files.base), files) ?? syntheticDataset()
}

/** `n` points scattered around random ones of `centres` (clustered, like real embeddings). The
 * spread is large enough that clusters overlap, so IVF recall depends on nProbes. */
function clustered(n: number, dim: number, centres: Float32Array, next: () => number): Float32Array {
  const k = centres.length / dim
  const out = new Float32Array(n * dim)
  for (let i = 0; i < n; i++) {
    const c = Math.floor(next() * k)
    for (let j = 0; j < dim; j++) out[i * dim + j] = centres[c * dim + j] + 0.5 * gaussian(next)
  }
  return out
}

/** Exact top-`k` row indices per query (the same shape as the glove50 ground truth). Keeps a
 * sorted top-k by insertion: sorting all n distances per query would dominate the run. */
function bruteForceGt(base: Float32Array, queries: Float32Array, dim: number, k: number): Int32Array {
  const n = base.length / dim
  const nq = queries.length / dim
  const gt = new Int32Array(nq * k)
  const bestD = new Float64Array(k)
  const bestI = new Int32Array(k)
  for (let q = 0; q < nq; q++) {
    bestD.fill(Infinity)
    for (let i = 0; i < n; i++) {
      let s = 0
      for (let j = 0; j < dim; j++) s += (base[i * dim + j] - queries[q * dim + j]) ** 2
      if (s >= bestD[k - 1]) continue
      let p = k - 1
      for (; p > 0 && bestD[p - 1] > s; p--) {
        bestD[p] = bestD[p - 1]
        bestI[p] = bestI[p - 1]
      }
      bestD[p] = s
      bestI[p] = i
    }
    gt.set(bestI, q * k)
  }
  return gt
}

/** Fallback when the real files are missing: 100k × 50 around 1000 centres, written to
 * bench/data/ so FAISS reads exactly the same vectors. */
function syntheticDataset(): Dataset {
  const [n, dim, k, gtK] = [100_000, 50, 1000, 100]
  const nq = Math.min(config.queries, 1000) // brute force in JS: keep it to seconds
  console.log(`NOTE: ${config.data} not found: using SYNTHETIC clustered data (${n} × ${dim}, ${k} centres, ${nq} queries, brute-force ground truth)`)
  const next = rng(SEED)
  const centres = new Float32Array(k * dim).map(() => next() * 2 - 1)
  const base = clustered(n, dim, centres, next)
  const query = clustered(nq, dim, centres, next)
  const gt = bruteForceGt(base, query, dim, gtK)
  const dir = path.join(ROOT, 'bench', 'data')
  mkdirSync(dir, { recursive: true })
  const files = siblings(path.join(dir, 'synthetic.base.fbin'))
  const ds: Dataset = {
    name: 'synthetic (clustered, generated)',
    files,
    base: { rows: n, cols: dim, data: base },
    query: { rows: nq, cols: dim, data: query },
    gt: { rows: nq, cols: gtK, data: gt },
  }
  writeDataset(ds)
  return ds
}

// ---------------------------------------------------------------------------------------------
// FAISS: a Python child process that answers one JSON request per line, so its measurements
// can be interleaved with ciphervec's (both then see the same load on the shared machine).

interface FaissTrain {
  version: string
  trainSeconds: number
  addSeconds: number
  inertia: number
  iterations: number
  /** FAISS's own timer of the k-means loop (no sampling). */
  loopSeconds: number | null
}

// ---------------------------------------------------------------------------------------------
// ciphervec measurements

/** One nProbes setting, for either system. */
interface SweepRow {
  nProbes: number
  recall: number
  qpsBatchN: number
  qpsBatch1: number
  singleUs: number
}

/** Training, comparable across systems. */
interface TrainRow {
  /** ciphervec: train() (k-means + assign + re-seal all); FAISS: k-means + add. */
  seconds: number
  /** The same on one thread. */
  seconds1: number
  /** k-means alone. */
  kmeansSeconds: number
  inertia: number
  iterations: number
}

interface TrainPhases {
  /** Sampling + k-means++ seeding + first iteration. */
  toFirstIter: number
  /** Mean seconds per later k-means iteration. */
  perIter: number
  /** Last iteration → resolved: last centroid update, assigning and re-sealing every item. */
  install: number
}

/** Costs outside the search itself, to explain the single-query and batch numbers. */
interface Overheads {
  /** Mean µs of `await index.count()`: the async Node ↔ Rust round trip with no work. */
  roundTripUs: number
  /** Mean µs of a single query at nProbes 1, topK 1 (round trip + centroid scan). */
  tinyQueryUs: number
  /** queryBatch over all queries at nProbes 1 on the 1-thread client, seconds per topK. */
  batchSecondsByTopK: Record<number, number>
  /** Estimated cost of one result object ({ id, distance }) from the topK difference. */
  perResultNs: number
}

interface CiphervecResult {
  ingestSeconds: number
  train: TrainRow
  trainedOn: number
  phases: TrainPhases
  rss: { start: number; afterIngest: number; afterTrain: number }
  /** Recall of the 1-thread index, which must equal the N-thread one (training is seeded). */
  recall1: number[]
  overheads: Overheads
  sweep: SweepRow[]
}

interface FaissResult {
  version: string
  train: TrainRow
  addSeconds: number
  sweep: SweepRow[]
}

/** Other work on the (shared) machine skews timings: print the load with every run. */
const loadavg = (): string => `load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`

const secondsSince = (t0: number): number => (performance.now() - t0) / 1000

/** Creates a client + index with `threads` workers and ingests all base vectors in one call. */
async function ingest(ds: Dataset, threads: number): Promise<{ index: EncryptedIndex; seconds: number }> {
  const client = await Client.open({ storage: { kind: 'memory' }, threads })
  // Training is measured explicitly: no automatic run racing it.
  const index = await client.createIndex({ indexName: `bench-${threads}`, indexKey: Client.generateKey(), dimension: ds.base.cols, autoTrain: false, indexType: config.indexType })
  const ids = Array.from({ length: ds.base.rows }, (_, i) => String(i))
  const t0 = performance.now()
  await index.upsert({ ids, vectors: ds.base.data })
  return { index, seconds: secondsSince(t0) }
}

/** train() with the shared parameters, timing its phases through onProgress. */
async function train(index: EncryptedIndex): Promise<{ result: TrainResult; phases: TrainPhases }> {
  const stamps: number[] = []
  const t0 = performance.now()
  const result = await index.train({
    nLists: config.nLists,
    maxIters: config.iters,
    tolerance: 0, // fixed iteration count, like FAISS
    seed: SEED,
    onProgress: () => stamps.push(performance.now()),
  })
  const end = performance.now()
  const first = stamps[0] ?? end
  const last = stamps[stamps.length - 1] ?? end
  return {
    result,
    phases: {
      toFirstIter: (first - t0) / 1000,
      perIter: stamps.length > 1 ? (last - first) / 1000 / (stamps.length - 1) : 0,
      install: (end - last) / 1000,
    },
  }
}

async function batchQps(index: EncryptedIndex, queries: Float32Array, nProbes: number, topK = TOP_K): Promise<{ qps: number; results: QueryResultItem[][] }> {
  const t0 = performance.now()
  const results = await index.queryBatch({ vectors: queries, topK, nProbes })
  return { qps: results.length / secondsSince(t0), results }
}

async function meanUs(n: number, call: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await call(i)
  return ((performance.now() - t0) * 1000) / n
}

const queryRow = (ds: Dataset, i: number): Float32Array => ds.query.data.subarray(i * ds.query.cols, (i + 1) * ds.query.cols)

/** Mean µs of sequential `await index.query` calls: includes the Node ↔ Rust round trip. */
function singleLatencyUs(index: EncryptedIndex, ds: Dataset, nProbes: number): Promise<number> {
  return meanUs(Math.min(config.single, ds.query.rows), (i) => index.query({ vector: queryRow(ds, i), topK: TOP_K, nProbes }))
}

/** Where time goes besides scanning lists: the async round trip and building result objects. */
async function measureOverheads(index: EncryptedIndex, one: EncryptedIndex, ds: Dataset): Promise<Overheads> {
  const n = Math.min(config.single, ds.query.rows)
  const roundTripUs = await meanUs(n, () => index.count())
  const tinyQueryUs = await meanUs(n, (i) => index.query({ vector: queryRow(ds, i), topK: 1, nProbes: 1 }))
  const batchSecondsByTopK: Record<number, number> = {}
  for (const topK of [1, 10, 100]) {
    batchSecondsByTopK[topK] = ds.query.rows / (await batchQps(one, ds.query.data, 1, topK)).qps
  }
  const perResultNs = ((batchSecondsByTopK[100] - batchSecondsByTopK[1]) * 1e9) / (99 * ds.query.rows)
  return { roundTripUs, tinyQueryUs, batchSecondsByTopK, perResultNs }
}

// ---------------------------------------------------------------------------------------------
// The run: ciphervec and FAISS step by step, each step back to back.

interface Indexes {
  main: EncryptedIndex
  /** On a 1-thread client: batch QPS at 1 thread needs its own pool. */
  one: EncryptedIndex
}

async function buildBoth(ds: Dataset, faiss: FaissServer | null): Promise<{ indexes: Indexes; c: Omit<CiphervecResult, 'sweep' | 'recall1' | 'overheads'>; f: Omit<FaissResult, 'sweep'> | null }> {
  const rssStart = process.memoryUsage().rss
  const main = await ingest(ds, config.threads)
  const rssIngest = process.memoryUsage().rss
  console.log(`[ciphervec] ingest ${ds.base.rows} vectors: ${main.seconds.toFixed(2)} s`)
  const { result: tr, phases } = await train(main.index)
  const rssTrain = process.memoryUsage().rss
  console.log(`[ciphervec] train ${config.threads} threads: ${tr.seconds.toFixed(2)} s, ${tr.iterations} iterations, inertia ${tr.inertia.toFixed(2)}, trained on ${tr.trainedOn}`)
  const ft = await faiss?.request<FaissTrain>({ op: 'train', threads: config.threads })
  if (ft) console.log(`[faiss] train ${config.threads} threads: k-means ${ft.trainSeconds.toFixed(2)} s + add ${ft.addSeconds.toFixed(2)} s, inertia ${ft.inertia.toFixed(2)}`)

  // Same seed and parameters give the same centroids: k-means is deterministic across thread counts.
  const one = await ingest(ds, 1)
  const { result: tr1 } = await train(one.index)
  console.log(`[ciphervec] train 1 thread: ${tr1.seconds.toFixed(2)} s, inertia ${tr1.inertia.toFixed(2)}`)
  const ft1 = await faiss?.request<FaissTrain>({ op: 'train', threads: 1 })
  if (ft1) console.log(`[faiss] train 1 thread: k-means ${ft1.trainSeconds.toFixed(2)} s + add ${ft1.addSeconds.toFixed(2)} s`)

  const c = {
    ingestSeconds: main.seconds,
    train: {
      seconds: tr.seconds,
      seconds1: tr1.seconds,
      kmeansSeconds: phases.toFirstIter + phases.perIter * (tr.iterations - 1),
      inertia: tr.inertia,
      iterations: tr.iterations,
    },
    trainedOn: tr.trainedOn,
    phases,
    rss: { start: rssStart, afterIngest: rssIngest, afterTrain: rssTrain },
  }
  const f =
    ft && ft1
      ? {
          version: ft.version,
          addSeconds: ft.addSeconds,
          train: {
            seconds: ft.trainSeconds + ft.addSeconds,
            seconds1: ft1.trainSeconds + ft1.addSeconds,
            kmeansSeconds: ft.trainSeconds,
            inertia: ft.inertia,
            iterations: ft.iterations,
          },
        }
      : null
  return { indexes: { main: main.index, one: one.index }, c, f }
}

/** Per nProbes: recall, batch QPS at N and 1 threads, single-query latency, for both systems. */
async function sweepBoth(ds: Dataset, ix: Indexes, faiss: FaissServer | null): Promise<{ c: SweepRow[]; recall1: number[]; f: SweepRow[] | null }> {
  const warmup = ds.query.data.subarray(0, WARMUP_QUERIES * ds.query.cols)
  await ix.main.queryBatch({ vectors: warmup, topK: TOP_K, nProbes: config.probes[0] })
  await ix.one.queryBatch({ vectors: warmup, topK: TOP_K, nProbes: config.probes[0] })
  const c: SweepRow[] = []
  const f: SweepRow[] = []
  const recall1: number[] = []
  for (const nProbes of config.probes) {
    const cN = await batchQps(ix.main, ds.query.data, nProbes)
    const fN = await faiss?.request<{ qps: number; recall: number }>({ op: 'batch', nprobe: nProbes, threads: config.threads })
    const c1 = await batchQps(ix.one, ds.query.data, nProbes)
    const f1 = await faiss?.request<{ qps: number }>({ op: 'batch', nprobe: nProbes, threads: 1 })
    const cS = await singleLatencyUs(ix.main, ds, nProbes)
    const fS = await faiss?.request<{ us: number }>({ op: 'single', nprobe: nProbes, n: config.single })
    c.push({ nProbes, recall: recallAt10(cN.results, ds.gt), qpsBatchN: cN.qps, qpsBatch1: c1.qps, singleUs: cS })
    recall1.push(recallAt10(c1.results, ds.gt))
    if (fN && f1 && fS) f.push({ nProbes, recall: fN.recall, qpsBatchN: fN.qps, qpsBatch1: f1.qps, singleUs: fS.us })
    console.log(`nProbes ${nProbes}: ${[c.at(-1), f.at(-1)].filter((r) => r).map((r, i) => `${i ? 'faiss' : 'ciphervec'} ${describeRow(r!)}`).join(' | ')}`)
  }
  return { c, recall1, f: faiss ? f : null }
}

function describeRow(r: SweepRow): string {
  return `recall ${r.recall.toFixed(4)}, batch ${config.threads}t ${r.qpsBatchN.toFixed(0)}, 1t ${r.qpsBatch1.toFixed(0)}, single ${r.singleUs.toFixed(0)} µs`
}

// ---------------------------------------------------------------------------------------------
// Report

const fmt = (x: number, digits = 0): string => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a')
const mb = (bytes: number): string => `${fmt(bytes / 2 ** 20)} MB`

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

function trainTable(c: CiphervecResult, f: FaissResult | null): string {
  const t = config.threads
  const rows: [string, number, number | undefined, number][] = [
    [`train s, ${t} threads (cv: train(); FAISS: k-means + add)`, c.train.seconds, f?.train.seconds, 2],
    ['train s, 1 thread (same)', c.train.seconds1, f?.train.seconds1, 2],
    [`k-means only s, ${t} threads`, c.train.kmeansSeconds, f?.train.kmeansSeconds, 2],
    ['inertia (k-means objective, training sample)', c.train.inertia, f?.train.inertia, 2],
    ['iterations', c.train.iterations, f?.train.iterations, 0],
  ]
  return table(
    ['', 'ciphervec', `FAISS ${f?.version ?? '(skipped)'}`, 'ciphervec / FAISS'],
    rows.map(([name, a, b, d]) => [name, fmt(a, d), b === undefined ? '—' : fmt(b, d), b === undefined ? '—' : ratio(a, b)]),
  )
}

function sweepTable(c: SweepRow[], f: SweepRow[] | null): string {
  const t = config.threads
  const rows = c.map((r, i) => {
    const g = f?.[i]
    const pair = (a: number, b: number | undefined) => [fmt(a), b === undefined ? '—' : fmt(b), b === undefined ? '—' : ratio(a, b)]
    return [
      String(r.nProbes),
      fmt(r.recall, 4),
      g ? fmt(g.recall, 4) : '—',
      ...pair(r.qpsBatch1, g?.qpsBatch1),
      ...pair(r.qpsBatchN, g?.qpsBatchN),
      ...pair(1e6 / r.singleUs, g ? 1e6 / g.singleUs : undefined),
      fmt(r.singleUs),
      g ? fmt(g.singleUs) : '—',
    ]
  })
  return table(
    ['nProbes', 'recall cv', 'recall FAISS', 'QPS 1t cv', 'QPS 1t FAISS', 'ratio', `QPS ${t}t cv`, `QPS ${t}t FAISS`, 'ratio', 'single QPS cv', 'single QPS FAISS', 'ratio', 'single µs cv', 'single µs FAISS'],
    rows,
  )
}

/** The smallest nProbes whose recall@10 reaches `target`, or undefined. */
const firstAt = (sweep: SweepRow[], target: number): SweepRow | undefined => sweep.find((r) => r.recall >= target)

function equalRecallSummary(c: SweepRow[], f: SweepRow[] | null, target = 0.95): string {
  const a = firstAt(c, target)
  const b = f ? firstAt(f, target) : undefined
  const line = (name: string, r: SweepRow | undefined) =>
    r
      ? `  ${name}: nProbes ${r.nProbes} (recall ${fmt(r.recall, 4)}): ${fmt(r.qpsBatch1)} QPS batch 1t, ${fmt(r.qpsBatchN)} QPS batch ${config.threads}t, ${fmt(1e6 / r.singleUs)} QPS single (${fmt(r.singleUs)} µs)`
      : `  ${name}: no nProbes in the sweep reaches ${target}`
  const lines = [`QPS at recall@10 >= ${target}:`, line('ciphervec', a), f ? line('FAISS    ', b) : '  FAISS: skipped']
  if (a && b) {
    lines.push(`  ratio ciphervec/FAISS: batch 1t ${ratio(a.qpsBatch1, b.qpsBatch1)}, batch ${config.threads}t ${ratio(a.qpsBatchN, b.qpsBatchN)}, single ${ratio(b.singleUs, a.singleUs)}`)
  }
  return lines.join('\n')
}

function report(ds: Dataset, c: CiphervecResult, f: FaissResult | null): void {
  const p = c.phases
  const o = c.overheads
  const b = o.batchSecondsByTopK
  console.log(`\n## ${ds.name}: ${ds.base.rows} × ${ds.base.cols}, ${ds.query.rows} queries, nLists ${config.nLists}, ${config.iters} iterations, ${config.threads} threads, top-${TOP_K}\n`)
  console.log(`ciphervec ingest (one upsert of ${ds.base.rows}): ${fmt(c.ingestSeconds, 2)} s (${fmt(ds.base.rows / c.ingestSeconds)} vectors/s)`)
  console.log(`ciphervec RSS: ${mb(c.rss.start)} before ingest, ${mb(c.rss.afterIngest)} after ingest, ${mb(c.rss.afterTrain)} after training`)
  console.log(`ciphervec train() phases (${config.threads} threads): sample + seeding + 1st iteration ${fmt(p.toFirstIter, 2)} s, ${fmt(p.perIter * 1000)} ms per later iteration, last update + assign + re-seal all ${fmt(p.install, 2)} s; trained on ${c.trainedOn}`)
  console.log(`ciphervec overheads: count() round trip ${fmt(o.roundTripUs)} µs; query(nProbes 1, topK 1) ${fmt(o.tinyQueryUs)} µs; queryBatch 1t at nProbes 1 for topK 1/10/100: ${fmt(b[1], 2)}/${fmt(b[10], 2)}/${fmt(b[100], 2)} s (≈ ${fmt(o.perResultNs)} ns per result object)`)
  if (f) console.log(`FAISS add (assign + copy ${ds.base.rows}): ${fmt(f.addSeconds, 2)} s`)
  console.log('')
  console.log(trainTable(c, f))
  console.log('')
  console.log(sweepTable(c.sweep, f?.sweep ?? null))
  console.log(`\nQPS = queries per second; "1t"/"${config.threads}t" = queryBatch over all ${ds.query.rows} queries on a 1-/${config.threads}-thread client (FAISS: omp threads); single = ${Math.min(config.single, ds.query.rows)} sequential one-query calls (FAISS at 1 thread).`)
  const mismatch = c.sweep.filter((r, i) => Math.abs(r.recall - c.recall1[i]) > 1e-9)
  if (mismatch.length) console.log(`WARNING: the 1-thread ciphervec index has different recall at nProbes ${mismatch.map((r) => r.nProbes).join(', ')}: ${c.recall1.map((r) => fmt(r, 4)).join(', ')}`)
  console.log('')
  console.log(equalRecallSummary(c.sweep, f?.sweep ?? null))
}

async function main(): Promise<void> {
  const started = performance.now()
  const ds = loadDataset()
  if (config.queries < ds.query.rows) {
    ds.query = { ...ds.query, rows: config.queries, data: ds.query.data.subarray(0, config.queries * ds.query.cols) }
    ds.gt = { ...ds.gt, rows: config.queries }
  }
  console.log(`data: ${ds.name} (${ds.base.rows} × ${ds.base.cols}), ${ds.query.rows} queries; ${config.threads} threads; node ${process.version}; ${loadavg()}`)
  const faiss = await FaissServer.start(ds, { enabled: config.faiss, nLists: config.nLists, iters: config.iters, seed: SEED })
  try {
    const built = await buildBoth(ds, faiss)
    const swept = await sweepBoth(ds, built.indexes, faiss)
    const overheads = await measureOverheads(built.indexes.main, built.indexes.one, ds)
    const c: CiphervecResult = { ...built.c, sweep: swept.c, recall1: swept.recall1, overheads }
    const f: FaissResult | null = built.f && swept.f ? { ...built.f, sweep: swept.f } : null
    report(ds, c, f)
    if (config.out) writeFileSync(config.out, JSON.stringify({ config, dataset: ds.name, ciphervec: c, faiss: f }, null, 2))
  } finally {
    faiss?.close()
  }
  console.log(`\ntotal ${fmt(secondsSince(started))} s; ${loadavg()}`)
}

main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
