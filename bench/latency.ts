// The fixed cost of one async call from Node (issue 16: single-query latency), same-run A/B of
// two builds of the addon on one glove50 index trained with the defaults:
//   (i)   `await index.count()` round trips (the async path with no work),
//   (ii)  single `await index.query({ vector, topK: 10 })` latency (sequential calls),
//   (iii) the throughput of 64 single queries kept in flight at once,
// each after a warm-up, with median / p90 / p99 per call. While (iii) runs, a 1 ms timer's
// worst gap shows whether the event loop ever waited.
//
// Each measured run is a child process loading one build; the runs alternate (A B, B A, A B,
// ...), so both builds see the same machine (shared and noisy: `uptime` is printed at the
// start and the end), and only the same-run ratios mean much. The index is built once (upsert
// of the 390k base vectors, `train()` with no options) into a disk store under bench/data/,
// and every run loads that same store, so both builds query identical lists.
//
//   npm run bench:latency
//   env: LATENCY_A   directory of the "before" build (index.js, binding.js, missing-binding.js,
//                    package.json, the .node file and a node_modules symlink); without it only
//                    the worktree's build is measured
//        LATENCY_B   directory of the "after" build (default: this checkout)
//        ROUNDS (3: runs of each build), COUNTS (5000), QUERIES (3000), CONCURRENT (64),
//        CONCURRENT_QUERIES (12800), WARMUP (500), BENCH_DATA (default
//        ../shared/data/glove50.base.fbin)
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

import type * as Ciphervec from '../index.js'
import { type Dataset, readDataset, ROOT, siblings } from './common.js'

const config = {
  data: process.env.BENCH_DATA ? path.resolve(process.env.BENCH_DATA) : path.resolve(ROOT, '../shared/data/glove50.base.fbin'),
  a: process.env.LATENCY_A ? path.resolve(process.env.LATENCY_A) : undefined,
  b: path.resolve(process.env.LATENCY_B ?? ROOT),
  rounds: Number(process.env.ROUNDS ?? 3),
  counts: Number(process.env.COUNTS ?? 5000),
  queries: Number(process.env.QUERIES ?? 3000),
  concurrent: Number(process.env.CONCURRENT ?? 64),
  concurrentQueries: Number(process.env.CONCURRENT_QUERIES ?? 12_800),
  warmup: Number(process.env.WARMUP ?? 500),
}

const STORE = path.join(ROOT, 'bench', 'data', 'latency-store')
const KEY_FILE = path.join(ROOT, 'bench', 'data', 'latency-store.key')
const INDEX_NAME = 'glove50'
const TOP_K = 10

interface Latency {
  meanUs: number
  medianUs: number
  p90Us: number
  p99Us: number
}

interface ChildResult {
  build: string
  items: number
  nLists: number
  /** With the JS thread's CPU time per call (Linux schedstat; NaN elsewhere): its own cost, which load on the machine does not change. */
  count: Latency & { jsCpuUs: number }
  query: Latency & { recallAt10: number }
  /** The worst gap of a 1 ms timer while the queries ran, and of it how long the JS thread
   * ran (our conversions, V8) and waited runnable for a CPU (the scheduler); and the p99 gap. */
  concurrent: {
    qps: number
    worstTimerGapMs: number
    worstRanMs: number
    worstWaitedMs: number
    p99GapMs: number
    /** Per query, the JS thread's CPU time and its time runnable waiting for a CPU. */
    jsRanUs: number
    jsWaitedUs: number
    /** The process's CPU time (user + system, every thread) per query. */
    cpuUs: number
    /** Threads of the process after the queries (tokio's blocking pool grows with them). */
    threads: number
  }
}

// ---------------------------------------------------------------------------------------------
// Child: one build, one loaded index, the three measurements.

function load(dir: string): typeof Ciphervec {
  return createRequire(path.join(dir, 'package.json'))(path.join(dir, 'binding.js')) as typeof Ciphervec
}

function dataset(): Dataset {
  const ds = readDataset('glove50', siblings(config.data))
  if (!ds) throw new Error(`${config.data} (or its .query/.gt siblings) not found: see /work/shared/data/README.md`)
  return ds
}

const row = (ds: Dataset, i: number) => ds.query.data.subarray(i * ds.query.cols, (i + 1) * ds.query.cols)

function summary(us: number[]): Latency {
  const s = Float64Array.from(us).sort()
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]
  return { meanUs: s.reduce((a, b) => a + b, 0) / s.length, medianUs: at(0.5), p90Us: at(0.9), p99Us: at(0.99) }
}

/** The JS thread's CPU time and time runnable waiting for a CPU so far (µs), NaN without Linux schedstat. */
function jsThread(): { ran: number; waited: number } {
  try {
    const [ran, waited] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'latin1').split(' ').map(Number)
    return { ran: ran / 1000, waited: waited / 1000 }
  } catch {
    return { ran: NaN, waited: NaN }
  }
}
const jsCpuUs = () => jsThread().ran

async function timed(n: number, call: (i: number) => Promise<unknown>): Promise<number[]> {
  const us = new Array<number>(n)
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await call(i)
    us[i] = (performance.now() - t0) * 1000
  }
  return us
}

/** Builds the shared store once (a child of its own, before any measured run). */
async function prepare(dir: string): Promise<void> {
  const { Client } = load(dir)
  mkdirSync(path.dirname(STORE), { recursive: true })
  if (!existsSync(KEY_FILE)) writeFileSync(KEY_FILE, Client.generateKey(), { mode: 0o600 })
  const indexKey = readFileSync(KEY_FILE)
  const client = await Client.open({ storage: { kind: 'disk', path: STORE } })
  try {
    const existing = await client.loadIndex({ indexName: INDEX_NAME, indexKey }).catch((e) => {
      if (e.code === 'ERR_INDEX_NOT_FOUND') return null
      throw e
    })
    if (existing && existing.isTrained()) return
    if (existing) await existing.deleteIndex()
    const ds = dataset()
    const t0 = performance.now()
    const index = await client.createIndex({ indexName: INDEX_NAME, indexKey, dimension: ds.base.cols, autoTrain: false })
    await index.upsert({ ids: Array.from({ length: ds.base.rows }, (_, i) => String(i)), vectors: ds.base.data })
    const trained = await index.train()
    console.error(
      `prepared ${STORE}: ${ds.base.rows} items, nLists ${trained.nLists}, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    )
  } finally {
    await client.close()
  }
}

async function child(dir: string): Promise<ChildResult> {
  const { Client } = load(dir)
  const ds = dataset()
  const client = await Client.open({ storage: { kind: 'disk', path: STORE } })
  const index = await client.loadIndex({ indexName: INDEX_NAME, indexKey: readFileSync(KEY_FILE) })
  const nq = ds.query.rows
  const query = (i: number) => index.query({ vector: row(ds, i % nq), topK: TOP_K })

  await timed(config.warmup, () => index.count())
  await timed(config.warmup, query)
  const cpu0 = jsCpuUs()
  const count = { ...summary(await timed(config.counts, () => index.count())), jsCpuUs: (jsCpuUs() - cpu0) / config.counts }

  // Recall of the sequential queries' results, so both builds are seen to do the same work.
  const found: Array<Array<{ id: string }>> = []
  const queryUs = await timed(config.queries, async (i) => void (found[i] = await query(i)))
  let hits = 0
  found.forEach((rows, i) => {
    const truth = new Set(ds.gt.data.subarray((i % nq) * ds.gt.cols, (i % nq) * ds.gt.cols + TOP_K))
    for (const r of rows) if (truth.has(Number(r.id))) hits++
  })

  // `concurrent` loops, each awaiting one query at a time: that many always in flight.
  let next = 0
  const gaps: number[] = []
  let worst = { gap: 0, ran: 0, waited: 0 }
  let last = { at: performance.now(), ...jsThread() }
  const timer = setInterval(() => {
    const now = { at: performance.now(), ...jsThread() }
    const gap = now.at - last.at
    gaps.push(gap)
    if (gap > worst.gap) worst = { gap, ran: (now.ran - last.ran) / 1000, waited: (now.waited - last.waited) / 1000 }
    last = now
  }, 1)
  const t0 = performance.now()
  last = { at: t0, ...jsThread() }
  const js0 = last
  const cpu = process.cpuUsage()
  await Promise.all(
    Array.from({ length: config.concurrent }, async () => {
      while (next < config.concurrentQueries) await query(next++)
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const js1 = jsThread()
  const used = process.cpuUsage(cpu)
  clearInterval(timer)
  gaps.sort((a, b) => a - b)
  const threads = readdirSync('/proc/self/task').length

  const stats = await index.stats()
  await client.close()
  return {
    build: dir,
    items: stats.items,
    nLists: stats.nLists,
    count,
    query: { ...summary(queryUs), recallAt10: hits / (TOP_K * config.queries) },
    concurrent: {
      qps: config.concurrentQueries / seconds,
      worstTimerGapMs: worst.gap,
      worstRanMs: worst.ran,
      worstWaitedMs: worst.waited,
      p99GapMs: gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * 0.99))] ?? NaN,
      jsRanUs: (js1.ran - js0.ran) / config.concurrentQueries,
      jsWaitedUs: (js1.waited - js0.waited) / config.concurrentQueries,
      cpuUs: (used.user + used.system) / config.concurrentQueries,
      threads,
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Parent: prepare, alternate the builds, print every run and the medians and ratios.

function spawnChild(mode: 'prepare' | 'run', dir: string): string {
  const r = spawnSync(process.execPath, [...process.execArgv, __filename, `--${mode}`, dir], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (r.status !== 0) throw new Error(`${mode} child for ${dir} failed (${r.status ?? r.signal})`)
  return r.stdout
}

const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const f = (x: number, d = 0) => x.toFixed(d)

type Metric = { name: string; get: (r: ChildResult) => number; digits?: number }
const METRICS: Metric[] = [
  { name: 'count() median µs', get: (r) => r.count.medianUs, digits: 1 },
  { name: 'count() p90 µs', get: (r) => r.count.p90Us, digits: 1 },
  { name: 'count() p99 µs', get: (r) => r.count.p99Us, digits: 1 },
  { name: 'count() mean µs', get: (r) => r.count.meanUs, digits: 1 },
  { name: 'count() JS thread CPU µs per call', get: (r) => r.count.jsCpuUs, digits: 1 },
  { name: 'query median µs', get: (r) => r.query.medianUs },
  { name: 'query p90 µs', get: (r) => r.query.p90Us },
  { name: 'query p99 µs', get: (r) => r.query.p99Us },
  { name: 'query mean µs', get: (r) => r.query.meanUs },
  { name: `${config.concurrent} in flight: QPS`, get: (r) => r.concurrent.qps },
  { name: `${config.concurrent} in flight: worst 1 ms timer gap ms`, get: (r) => r.concurrent.worstTimerGapMs, digits: 1 },
  { name: `${config.concurrent} in flight: of the worst gap, JS thread running ms`, get: (r) => r.concurrent.worstRanMs, digits: 1 },
  { name: `${config.concurrent} in flight: of the worst gap, JS thread waiting for a CPU ms`, get: (r) => r.concurrent.worstWaitedMs, digits: 1 },
  { name: `${config.concurrent} in flight: p99 timer gap ms`, get: (r) => r.concurrent.p99GapMs, digits: 1 },
  { name: `${config.concurrent} in flight: JS thread CPU µs per query`, get: (r) => r.concurrent.jsRanUs, digits: 1 },
  { name: `${config.concurrent} in flight: JS thread waiting for a CPU µs per query`, get: (r) => r.concurrent.jsWaitedUs, digits: 1 },
  { name: `${config.concurrent} in flight: process CPU µs per query (all threads)`, get: (r) => r.concurrent.cpuUs },
  { name: `${config.concurrent} in flight: threads in the process afterwards`, get: (r) => r.concurrent.threads },
  { name: 'recall@10', get: (r) => r.query.recallAt10, digits: 4 },
]

function parent(): void {
  const started = performance.now()
  console.log(`start: ${uptime()}`)
  const builds = config.a ? { A: config.a, B: config.b } : { B: config.b }
  process.stderr.write(spawnChild('prepare', config.a ?? config.b))
  const runs: Record<string, ChildResult[]> = { A: [], B: [] }
  for (let round = 0; round < config.rounds; round++) {
    const order = Object.keys(builds)
    if (round % 2) order.reverse()
    for (const name of order) {
      const r = JSON.parse(spawnChild('run', builds[name as keyof typeof builds]!).trim().split('\n').pop()!) as ChildResult
      runs[name].push(r)
      console.log(
        `round ${round + 1} ${name}: count ${f(r.count.medianUs, 1)} µs median (p99 ${f(r.count.p99Us, 1)}, JS CPU ${f(r.count.jsCpuUs, 1)}), ` +
          `query ${f(r.query.medianUs)} µs median (p90 ${f(r.query.p90Us)}, p99 ${f(r.query.p99Us)}), ` +
          `${config.concurrent} in flight ${f(r.concurrent.qps)} QPS (worst timer gap ${f(r.concurrent.worstTimerGapMs, 1)} ms: ran ${f(r.concurrent.worstRanMs, 1)}, waited ${f(r.concurrent.worstWaitedMs, 1)}; p99 ${f(r.concurrent.p99GapMs, 1)}; ${r.concurrent.threads} threads), ` +
          `recall@10 ${f(r.query.recallAt10, 4)}`,
      )
    }
  }
  const first = runs.B[0]
  console.log(
    `\nglove50: ${first.items} items, nLists ${first.nLists}, topK ${TOP_K}, default nProbes; ` +
      `${config.counts} count() and ${config.queries} query calls, ${config.concurrentQueries} queries ${config.concurrent} at a time`,
  )
  for (const [name, dir] of Object.entries(builds)) console.log(`${name}: ${dir}`)
  console.log(`\n| measure | ${config.a ? 'A (median of runs) | B (median of runs) | B / A per round | B / A median |' : 'median of runs |'}`)
  console.log(`|---|${config.a ? '---|---|---|---|' : '---|'}`)
  for (const m of METRICS) {
    const b = runs.B.map(m.get)
    if (!config.a) {
      console.log(`| ${m.name} | ${f(median(b), m.digits)} |`)
      continue
    }
    const a = runs.A.map(m.get)
    const ratios = a.map((x, i) => b[i] / x)
    console.log(
      `| ${m.name} | ${f(median(a), m.digits)} | ${f(median(b), m.digits)} | ${ratios.map((x) => f(x, 2)).join(', ')} | ${f(median(ratios), 2)} |`,
    )
  }
  console.log(`\nend: ${uptime()}; ${((performance.now() - started) / 1000).toFixed(0)} s in all`)
}

const [mode, dir] = process.argv.slice(2)
if (mode === '--prepare') {
  prepare(dir).catch((e) => {
    console.error(e)
    process.exit(1)
  })
} else if (mode === '--run') {
  child(dir).then(
    (r) => console.log(JSON.stringify(r)),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
} else {
  parent()
}
