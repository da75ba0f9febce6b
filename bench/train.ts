// Training benchmark: ciphervec `train()` (defaults and chosen variants) vs FAISS k-means + add,
// on glove50 and a generated 384-d clustered set, in one invocation with the rounds alternated
// (FAISS, then each ciphervec variant, then again), so every ratio compares runs that saw the
// same load on the shared machine. Run with `npm run bench:train`; options in BENCHMARKS.md.
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Client, type TrainOptions } from '../index.js'
import { type Dataset, FaissServer, recallAt10, ROOT } from './common.js'
import { clustered384, glove } from './datasets.js'

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
// ciphervec

function options(variant: string): TrainOptions {
  const [name, arg] = variant.split(':')
  const base: TrainOptions = { nLists: config.nLists, seed: SEED }
  if (name === 'defaults') return base
  if (name === 'minibatch') return { ...base, algorithm: 'minibatch', ...(arg ? { maxIters: Number(arg) } : {}) }
  if (name === 'lloyd') return { ...base, algorithm: 'lloyd', ...(arg ? { maxIters: Number(arg), tolerance: 0 } : {}) }
  throw new Error(`unknown variant ${variant}`)
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
  const rec = round === 1 ? recallAt10(await index.queryBatch({ vectors: q, topK: TOP_K }), ds.gt) : undefined
  await index.deleteIndex()
  return { set: ds.name, round, system: `cv ${variant}`, seconds, kmeansSeconds: (lastProgress - t0) / 1000, inertia: r.inertia, iterations: r.iterations, recall: rec, nProbes }
}

async function main(): Promise<void> {
  console.log(`train bench: ${os.cpus().length} cpus, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, nLists ${config.nLists}, threads ${config.threads}, variants ${config.variants.join(' ')}, rounds ${config.rounds}`)
  const client = await Client.open({ storage: { kind: 'memory' }, threads: config.threads })
  const rows: Row[] = []
  for (const set of config.sets) {
    const ds = set === 'glove50' ? glove(config.glove) : await clustered384(client, config.queries)
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
