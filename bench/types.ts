// Index-type benchmark: every ciphervec index type against FAISS's IVF code formats (on the
// same coarse quantizer size), FAISS HNSW32 and usearch HNSW (M 16), on glove50 and a generated
// 384-d set, in one invocation, each ciphervec type right after its FAISS counterpart so the
// ratios compare runs that saw the same load. Run with `npm run bench:types`; options below
// and in BENCHMARKS.md ("Index types").
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Client, type IndexType, type QueryResult, type Resident } from '../index.js'
import { type Dataset, FaissServer, recallAt10, ROOT } from './common.js'
import { clustered384, glove } from './datasets.js'

const SEED = 1
const TOP_K = 10
const TARGET = 0.95

const list = (v: string | undefined, d: string) => (v ?? d).split(',').filter(Boolean)
const config = {
  glove: process.env.BENCH_DATA ? path.resolve(process.env.BENCH_DATA) : path.resolve(ROOT, '../shared/data/glove50.base.fbin'),
  sets: list(process.env.BENCH_SETS, 'glove50,clustered384'),
  nLists: Number(process.env.BENCH_NLIST ?? 1024),
  threads: Number(process.env.BENCH_THREADS ?? 2),
  queries: Number(process.env.BENCH_QUERIES ?? 2000),
  single: Number(process.env.BENCH_SINGLE ?? 300),
  /** Batch timings per setting and system; the best is reported (one ~0.1 s batch is at
   * the mercy of whatever else the shared machine runs at that moment). */
  repeat: Number(process.env.BENCH_REPEAT ?? 3),
  probes: list(process.env.BENCH_PROBES, '8,16,24,32,48,64,96,128').map(Number),
  /** efSearch (FAISS HNSW) / expansion (usearch) sweep. */
  ef: list(process.env.BENCH_EF, '16,24,32,48,64,96,128,192,256').map(Number),
  /** ciphervec index types; `type@R` queries with rerank R instead of the type's default,
   * `ivfpq/M` uses M sub-vectors (pqDim), `type:codes` keeps only codes resident. */
  types: list(process.env.BENCH_TYPES, 'ivfflat,ivfsq8,ivffp16,ivfsq8@2,ivfsq8:codes'),
  /** FAISS / usearch kinds, see bench/faiss_types.py; '' runs ciphervec alone. */
  kinds: list(process.env.BENCH_KINDS, 'flat,sq8,fp16,pq,hnsw,usearch'),
  out: process.env.BENCH_OUT,
}

/** One sweep setting of one system. */
interface Row {
  set: string
  system: string
  param: number
  recall: number
  qps1: number
  qpsN: number
  singleUs: number
  /** Resident bytes of the index (ciphervec: its working set; FAISS: serialized size; usearch: memory_usage). */
  bytes: number
  /** ciphervec: train() (k-means, assignment, codes, sealing); FAISS IVF: k-means + codes + add; HNSW: graph build. */
  buildSeconds: number
}

const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ')

async function ciphervec(ds: Dataset, variant: string): Promise<Row[]> {
  // `type[/pqDim][:resident][@rerank]`, e.g. `ivfsq8:codes`, `ivfpq/48@8`.
  const [typed, r] = variant.split('@') as [string, string | undefined]
  const [shaped, resident = 'vectors'] = typed.split(':') as [string, Resident | undefined]
  const [indexType, m] = shaped.split('/') as [IndexType, string | undefined]
  const pqDim = m === undefined ? undefined : Number(m)
  const rerank = r === undefined ? undefined : Number(r)
  const ids = Array.from({ length: ds.base.rows }, (_, i) => String(i))
  const build = async (client: Client) => {
    const index = await client.createIndex({ indexName: indexType, indexKey: Client.generateKey(), dimension: ds.base.cols, autoTrain: false, indexType, resident, pqDim })
    await index.upsert({ ids, vectors: ds.base.data })
    const t0 = performance.now()
    await index.train({ nLists: config.nLists, seed: SEED })
    return { index, seconds: (performance.now() - t0) / 1000 }
  }
  const many = await Client.open({ storage: { kind: 'memory' }, threads: config.threads })
  const one = await Client.open({ storage: { kind: 'memory' }, threads: 1 })
  const main = await build(many)
  const single = await build(one)
  const bytes = (await main.index.stats()).memory.totalBytes
  const q = ds.query.data
  const rows: Row[] = []
  await main.index.queryBatch({ vectors: q, topK: TOP_K, nProbes: config.probes[0] }) // warm-up
  await single.index.queryBatch({ vectors: q, topK: TOP_K, nProbes: config.probes[0] })
  for (const nProbes of config.probes) {
    let found: QueryResult[][] = []
    let [qpsN, qps1] = [0, 0]
    for (let r = 0; r < config.repeat; r++) {
      let t0 = performance.now()
      found = await main.index.queryBatch({ vectors: q, topK: TOP_K, nProbes, rerank })
      qpsN = Math.max(qpsN, ds.query.rows / ((performance.now() - t0) / 1000))
      t0 = performance.now()
      await single.index.queryBatch({ vectors: q, topK: TOP_K, nProbes, rerank })
      qps1 = Math.max(qps1, ds.query.rows / ((performance.now() - t0) / 1000))
    }
    const n = Math.min(config.single, ds.query.rows)
    const t0 = performance.now()
    for (let i = 0; i < n; i++) await main.index.query({ vector: q.subarray(i * ds.query.cols, (i + 1) * ds.query.cols), topK: TOP_K, nProbes, rerank })
    const singleUs = ((performance.now() - t0) * 1000) / n
    rows.push({ set: ds.name, system: `cv ${variant}`, param: nProbes, recall: recallAt10(found, ds.gt), qps1, qpsN, singleUs, bytes, buildSeconds: main.seconds })
    print(rows.at(-1)!)
  }
  await many.close()
  await one.close()
  return rows
}

async function faissKind(ds: Dataset, faiss: FaissServer, kind: string, quantizerSeconds: number): Promise<Row[]> {
  const b = await faiss.request<{ seconds: number; bytes: number }>({ op: 'build', kind, threads: config.threads })
  const hnsw = kind === 'hnsw' || kind === 'usearch'
  const params = hnsw ? config.ef : config.probes
  const name = kind === 'usearch' ? 'usearch HNSW M16' : kind === 'hnsw' ? 'FAISS HNSW32' : `FAISS IVF ${kind === 'pq' ? 'PQ+refine' : kind.toUpperCase()}`
  const rows: Row[] = []
  await faiss.request({ op: 'batch', param: params[0], threads: config.threads }) // warm-up
  for (const param of params) {
    let n = { qps: 0, recall: 0 }
    let o = { qps: 0 }
    for (let r = 0; r < config.repeat; r++) {
      const a = await faiss.request<{ qps: number; recall: number }>({ op: 'batch', param, threads: config.threads })
      const b = await faiss.request<{ qps: number }>({ op: 'batch', param, threads: 1 })
      n = { qps: Math.max(n.qps, a.qps), recall: a.recall }
      o = { qps: Math.max(o.qps, b.qps) }
    }
    const s = await faiss.request<{ us: number }>({ op: 'single', param, n: config.single })
    rows.push({ set: ds.name, system: name, param, recall: n.recall, qps1: o.qps, qpsN: n.qps, singleUs: s.us, bytes: b.bytes, buildSeconds: b.seconds + (hnsw ? 0 : quantizerSeconds) })
    print(rows.at(-1)!)
  }
  return rows
}

const fmt = (x: number, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })

function print(r: Row): void {
  console.log(`  ${r.system.padEnd(22)} ${String(r.param).padStart(4)}: recall ${r.recall.toFixed(4)}, QPS 1t ${fmt(r.qps1)}, ${config.threads}t ${fmt(r.qpsN)}, single ${fmt(r.singleUs)} µs, ${fmt(r.bytes / 2 ** 20, 1)} MB, build ${r.buildSeconds.toFixed(1)} s`)
}

/** Each system at its first setting reaching the target recall, with ratios against FAISS. */
function summary(ds: Dataset, rows: Row[]): void {
  const systems = [...new Set(rows.map((r) => r.system))]
  const at = new Map(systems.map((s) => [s, rows.find((r) => r.system === s && r.recall >= TARGET)]))
  const ref = (name: string) => at.get(name)
  const ivfFlat = ref('FAISS IVF FLAT')
  const bestIvfCode = ['FAISS IVF SQ8', 'FAISS IVF FP16', 'FAISS IVF PQ+refine'].map(ref).filter((r): r is Row => !!r).sort((a, b) => b.qps1 - a.qps1)[0]
  const hnsw = ref('FAISS HNSW32')
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}×` : '—')
  console.log(`\n### ${ds.name}: ${ds.base.rows} × ${ds.base.cols}, ${ds.query.rows} queries, nLists ${config.nLists}, top-${TOP_K}, first setting with recall@10 ≥ ${TARGET}\n`)
  console.log('| system | setting | recall@10 | QPS 1t | QPS 2t | single µs | index MB | build s | 1t vs FAISS IVFFlat | 1t vs best FAISS IVF code | 1t vs HNSW32 | MB vs HNSW32 | build vs HNSW32 |')
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const s of systems) {
    const r = at.get(s)
    if (!r) {
      console.log(`| ${s} | none reaches ${TARGET} | | | | | | | | | | | |`)
      continue
    }
    console.log(
      `| ${s} | ${r.param} | ${r.recall.toFixed(4)} | ${fmt(r.qps1)} | ${fmt(r.qpsN)} | ${fmt(r.singleUs)} | ${fmt(r.bytes / 2 ** 20, 1)} | ${r.buildSeconds.toFixed(1)} | ${ratio(r.qps1, ivfFlat?.qps1)} | ${ratio(r.qps1, bestIvfCode?.qps1)} | ${ratio(r.qps1, hnsw?.qps1)} | ${ratio(r.bytes, hnsw?.bytes)} | ${ratio(r.buildSeconds, hnsw?.buildSeconds)} |`,
    )
  }
  if (bestIvfCode) console.log(`\nbest FAISS IVF code format at ${TARGET} (1 thread): ${bestIvfCode.system}`)
}

async function main(): Promise<void> {
  console.log(`types bench: ${os.cpus().length} cpus, load ${loadavg()}, node ${process.version}, nLists ${config.nLists}, threads ${config.threads}, types ${config.types.join(' ')}, kinds ${config.kinds.join(' ')}`)
  const all: Row[] = []
  const gtClient = await Client.open({ storage: { kind: 'memory' }, threads: config.threads })
  for (const set of config.sets) {
    const ds = set === 'glove50' ? glove(config.glove) : await clustered384(gtClient, config.queries)
    if (!ds) continue
    if (config.queries < ds.query.rows) {
      ds.query = { ...ds.query, rows: config.queries, data: ds.query.data.subarray(0, config.queries * ds.query.cols) }
      ds.gt = { ...ds.gt, rows: config.queries }
    }
    console.log(`\n${ds.name}: ${ds.base.rows} × ${ds.base.cols}, ${ds.query.rows} queries; load ${loadavg()}`)
    const faiss = config.kinds.length ? await FaissServer.start(ds, { enabled: true, nLists: config.nLists, iters: 20, seed: SEED, script: 'faiss_types.py' }) : null
    const quantizer = faiss ? await faiss.request<{ seconds: number }>({ op: 'quantizer', threads: config.threads }) : null
    const rows: Row[] = []
    // Each ciphervec type right after its FAISS counterpart; the other kinds after them.
    const pairs: [string | null, string | null][] = [['flat', 'ivfflat'], ['sq8', 'ivfsq8'], ['fp16', 'ivffp16'], ['pq', 'ivfpq']]
    for (const kind of config.kinds) if (!pairs.some(([k]) => k === kind)) pairs.push([kind, null])
    for (const t of config.types) if (!pairs.some(([, x]) => x === t)) pairs.push([null, t])
    for (const [kind, type] of pairs) {
      if (kind && faiss && quantizer && config.kinds.includes(kind)) rows.push(...(await faissKind(ds, faiss, kind, quantizer.seconds)))
      if (type && config.types.includes(type)) rows.push(...(await ciphervec(ds, type)))
    }
    faiss?.close()
    summary(ds, rows)
    all.push(...rows)
  }
  await gtClient.close()
  console.log(`\nload at the end ${loadavg()}`)
  if (config.out) writeFileSync(config.out, JSON.stringify(all, null, 2))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
