// Training benchmark: ciphervec `train()` (defaults and chosen variants) vs FAISS k-means + add,
// on glove50 and a generated 384-d clustered set, in one invocation with the rounds alternated
// (FAISS, then each ciphervec variant, then again), so every ratio compares runs that saw the
// same load on the shared machine. Run with `npm run bench:train`; options in BENCHMARKS.md.
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Client, type TrainOptions } from '../index.js'
import { type Dataset, FaissServer, gaussian, readDataset, rng, ROOT, siblings, writeDataset } from './common.js'

const SEED = 1
const TOP_K = 10

const config = {
  /** glove50 base file (its .query/.gt siblings beside it); missing → skipped. */
  glove: process.env.BENCH_DATA ? path.resolve(process.env.BENCH_DATA) : path.resolve(ROOT, '../shared/data/glove50.base.fbin'),
  sets: (process.env.BENCH_SETS ?? 'glove50,clustered384').split(','),
  nLists: Number(process.env.BENCH_NLIST ?? 1024),
  threads: Number(process.env.BENCH_THREADS ?? 2),
  rounds: Number(process.env.BENCH_ROUNDS ?? 2),
  queries: Number(process.env.BENCH_QUERIES ?? 2000),
  /** ciphervec variants: `defaults`, `minibatch:P` (P passes), `lloyd:I` (I iterations, tolerance 0), `lloyd` (its defaults). */
  variants: (process.env.BENCH_VARIANTS ?? 'defaults,lloyd:20').split(','),
  faiss: process.env.BENCH_FAISS !== '0',
  out: process.env.BENCH_OUT,
}

// ---------------------------------------------------------------------------------------------
// Data

function glove(): Dataset | null {
  const ds = readDataset('glove50', siblings(config.glove))
  if (!ds) console.log(`NOTE: ${config.glove} not found: glove50 skipped`)
  return ds
}

/** 100,000 × 384 unit vectors in a two-level hierarchy (100 topics × 100 sub-topics of ~10
 * vectors each), like sentence embeddings: far more sub-topics than lists, so lists cut through
 * them and recall depends on nProbes. Ground truth is an
 * exhaustive (exact) ciphervec query of an untrained index. Written to bench/data/ so FAISS
 * reads the same bytes. */
async function clustered384(client: Client): Promise<Dataset> {
  const [n, nq, dim, topics, subs] = [100_000, Math.min(config.queries, 2000), 384, 100, 100]
  const next = rng(SEED)
  const centres = new Float32Array(topics * subs * dim)
  for (let t = 0; t < topics; t++) {
    const topic = Float32Array.from({ length: dim }, () => gaussian(next))
    for (let s = 0; s < subs; s++) {
      for (let j = 0; j < dim; j++) centres[(t * subs + s) * dim + j] = topic[j] + 0.6 * gaussian(next)
    }
  }
  const points = (count: number) => {
    const out = new Float32Array(count * dim)
    for (let i = 0; i < count; i++) {
      const c = Math.floor(next() * topics * subs)
      let norm = 0
      for (let j = 0; j < dim; j++) {
        const v = centres[c * dim + j] + 1.0 * gaussian(next)
        out[i * dim + j] = v
        norm += v * v
      }
      const inv = 1 / Math.sqrt(norm)
      for (let j = 0; j < dim; j++) out[i * dim + j] *= inv
    }
    return out
  }
  const base = points(n)
  const query = points(nq)
  const index = await client.createIndex({ indexName: 'gt384', indexKey: Client.generateKey(), dimension: dim, autoTrain: false })
  await index.upsert({ ids: Array.from({ length: n }, (_, i) => String(i)), vectors: base })
  const found = await index.queryBatch({ vectors: query, topK: 100 })
  await index.deleteIndex()
  const gt = new Int32Array(nq * 100)
  found.forEach((rows, q) => rows.forEach((r, j) => (gt[q * 100 + j] = Number(r.id))))
  const dir = path.join(ROOT, 'bench', 'data')
  mkdirSync(dir, { recursive: true })
  const files = { base: path.join(dir, 'clustered384.base.fbin'), query: path.join(dir, 'clustered384.query.fbin'), gt: path.join(dir, 'clustered384.gt.ibin') }
  const ds: Dataset = {
    name: 'clustered384',
    files,
    base: { rows: n, cols: dim, data: base },
    query: { rows: nq, cols: dim, data: query },
    gt: { rows: nq, cols: 100, data: gt },
  }
  writeDataset(ds)
  return ds
}

// ---------------------------------------------------------------------------------------------
// ciphervec

function options(variant: string): TrainOptions {
  const [name, arg] = variant.split(':')
  const base: TrainOptions = { nLists: config.nLists, seed: SEED }
  if (name === 'defaults') return base
  if (name === 'minibatch') return { ...base, algorithm: 'minibatch', ...(arg ? { maxIters: Number(arg) } : {}) }
  if (name === 'lloyd') return { ...base, algorithm: 'lloyd', ...(arg ? { maxIters: Number(arg), tolerance: 0 } : {}) }
  throw new Error(`unknown variant ${variant}`)
}

function recall(found: { id: string }[][], ds: Dataset): number {
  let hits = 0
  found.forEach((rows, q) => {
    const truth = new Set(Array.from(ds.gt.data.subarray(q * ds.gt.cols, q * ds.gt.cols + TOP_K)))
    for (const r of rows) if (truth.has(Number(r.id))) hits++
  })
  return hits / (TOP_K * found.length)
}

interface Row {
  set: string
  round: number
  system: string
  seconds: number
  kmeansSeconds?: number
  inertia: number
  iterations: number
  recall?: number
  nProbes: number
}

async function trainCiphervec(client: Client, ds: Dataset, variant: string, round: number): Promise<Row> {
  const name = `t${round}${variant.replace(/\W/g, '')}`
  const index = await client.createIndex({ indexName: name, indexKey: Client.generateKey(), dimension: ds.base.cols, autoTrain: false })
  await index.upsert({ ids: Array.from({ length: ds.base.rows }, (_, i) => String(i)), vectors: ds.base.data })
  let lastProgress = 0
  const t0 = performance.now()
  const r = await index.train({ ...options(variant), onProgress: () => (lastProgress = performance.now()) })
  const seconds = (performance.now() - t0) / 1000
  const nProbes = 2 * Math.ceil(Math.sqrt(r.nLists))
  const q = ds.query.data.subarray(0, config.queries * ds.query.cols)
  // Recall only in round 1: training is deterministic for a seed, so later rounds build the same lists.
  const rec = round === 1 ? recall(await index.queryBatch({ vectors: q, topK: TOP_K }), ds) : undefined
  await index.deleteIndex()
  return { set: ds.name, round, system: `cv ${variant}`, seconds, kmeansSeconds: (lastProgress - t0) / 1000, inertia: r.inertia, iterations: r.iterations, recall: rec, nProbes }
}

async function main(): Promise<void> {
  console.log(`train bench: ${os.cpus().length} cpus, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, nLists ${config.nLists}, threads ${config.threads}, variants ${config.variants.join(' ')}, rounds ${config.rounds}`)
  const client = await Client.open({ threads: config.threads })
  const rows: Row[] = []
  for (const set of config.sets) {
    const ds = set === 'glove50' ? glove() : await clustered384(client)
    if (!ds) continue
    console.log(`\n${ds.name}: ${ds.base.rows} × ${ds.base.cols}, ${Math.min(config.queries, ds.query.rows)} queries`)
    const faiss = await FaissServer.start(ds, { enabled: config.faiss, nLists: config.nLists, iters: 20, seed: SEED })
    for (let round = 1; round <= config.rounds; round++) {
      if (faiss) {
        const f = await faiss.request<{ trainSeconds: number; addSeconds: number; inertia: number; iterations: number }>({ op: 'train', threads: config.threads })
        const nProbes = 2 * Math.ceil(Math.sqrt(config.nLists))
        const rec = round === 1 ? (await faiss.request<{ recall: number }>({ op: 'batch', nprobe: nProbes, threads: config.threads })).recall : undefined
        const row = { set: ds.name, round, system: 'FAISS 20 it + add', seconds: f.trainSeconds + f.addSeconds, kmeansSeconds: f.trainSeconds, inertia: f.inertia, iterations: f.iterations, recall: rec, nProbes }
        rows.push(row)
        print(row)
      }
      for (const v of config.variants) {
        const row = await trainCiphervec(client, ds, v, round)
        rows.push(row)
        print(row)
      }
    }
    faiss?.close()
    summary(rows.filter((r) => r.set === ds.name))
  }
  console.log(`\nload at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  if (config.out) writeFileSync(config.out, JSON.stringify(rows, null, 2))
  await client.close()
}

function print(r: Row): void {
  const rec = r.recall === undefined ? '' : ` recall@10 ${r.recall.toFixed(4)} (nProbes ${r.nProbes})`
  console.log(`  round ${r.round} ${r.system.padEnd(18)} ${r.seconds.toFixed(2)} s (k-means ${r.kmeansSeconds?.toFixed(2)} s) inertia ${r.inertia.toFixed(2)} iterations ${r.iterations}${rec}`)
}

/** Same-round ratios against FAISS. */
function summary(rows: Row[]): void {
  console.log(`  ratios vs FAISS (same round): time, inertia`)
  for (const r of rows) {
    if (r.system.startsWith('FAISS')) continue
    const f = rows.find((x) => x.round === r.round && x.system.startsWith('FAISS'))
    if (!f) continue
    console.log(`  round ${r.round} ${r.system.padEnd(18)} time ${(r.seconds / f.seconds).toFixed(2)}× inertia ${(r.inertia / f.inertia).toFixed(4)}×`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
