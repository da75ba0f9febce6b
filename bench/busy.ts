// Event-loop delay while our own pool keeps every core busy: a client with one worker per
// core runs one large upsert, an exhaustive queryBatch (untrained index: every query scans
// every vector) and train(), with the workers at normal priority (CIPHERVEC_WORKER_NICE=0,
// "before") and at the default nice 10 ("after"). Each run is a child process, alternating
// before/after/before/after..., so both variants see the same machine (which is shared:
// `uptime` is printed at the start and the end).
//
// Per call: a 1 ms interval timer starts 20 ms before it, and the gaps between its ticks from
// the call until the first tick after it settled give the worst delay and the p99 gap. Also
// per call: its duration (a throughput cost of the lower priority would show there) and, from
// Linux schedstat, how the worst gap splits into the JS thread running (code on it: ours
// converting arguments or results, or V8) and waiting, runnable, for a CPU (the scheduler's
// doing), and how long it waited for a CPU during the whole call.
//
//   npm run bench:busy
//   env: BENCH_DATA (default ../shared/data/glove50.base.fbin; missing → 400k generated
//        50-d vectors), ROUNDS (5: before/after pairs), QUERIES (2000), NLISTS (1024),
//        ITERS (10), THREADS (number of cores)
import { spawnSync } from 'node:child_process'
import { existsSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { Client } from '../index.js'

const config = {
  data: process.env.BENCH_DATA
    ? path.resolve(process.env.BENCH_DATA)
    : path.resolve(__dirname, '../../shared/data/glove50.base.fbin'),
  rounds: Number(process.env.ROUNDS ?? 5),
  queries: Number(process.env.QUERIES ?? 2000),
  nLists: Number(process.env.NLISTS ?? 1024),
  iters: Number(process.env.ITERS ?? 10),
  threads: Number(process.env.THREADS ?? os.availableParallelism()),
}

const CALLS = ['upsert', 'queryBatch', 'train'] as const
type CallName = (typeof CALLS)[number]

interface Measured {
  worstMs: number
  /** Of the worst gap: how long the JS thread ran, and how long it waited runnable for a CPU. */
  worstRanMs: number
  worstWaitedMs: number
  p99Ms: number
  durationMs: number
  /** The JS thread's time runnable but waiting for a CPU during the whole call. */
  waitedMs: number
}

interface ChildResult {
  data: string
  n: number
  dim: number
  /** Nice values of the pool threads (ciphervec-*), to confirm the variant took effect. */
  poolNice: number[]
  calls: Record<CallName, Measured>
}

// ---------------------------------------------------------------------------------------------
// Child: one client, three measured calls.

/** .fbin: little-endian int32 rows, int32 cols, then rows × cols float32, row-major. */
function readFbin(file: string, maxRows = Infinity): { rows: number; cols: number; data: Float32Array } {
  const buf = readFileSync(file)
  const rows = Math.min(buf.readInt32LE(0), maxRows)
  const cols = buf.readInt32LE(4)
  // Copied: a Float32Array needs a 4-aligned offset, which the file's buffer need not have.
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 8, buf.byteOffset + 8 + rows * cols * 4))
  return { rows, cols, data }
}

function generated(rows: number, cols: number, seed: number): Float32Array {
  let a = seed >>> 0
  const out = new Float32Array(rows * cols)
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5
  }
  return out
}

/** The JS thread's CPU time and wait for a CPU so far (ms); NaN without Linux schedstat. */
const jsThread = (() => {
  try {
    const fd = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r')
    const buf = Buffer.alloc(128)
    return () => {
      const [ran, waited] = buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0)).split(' ').map(Number)
      return { ran: ran / 1e6, waited: waited / 1e6 }
    }
  } catch {
    return () => ({ ran: NaN, waited: NaN })
  }
})()

async function measure(call: () => Promise<unknown>): Promise<Measured> {
  const gaps: number[] = []
  let last = { wall: performance.now(), ...jsThread() }
  let worst = { wall: 0, ran: 0, waited: 0 }
  let measuring = false
  let onTick: (() => void) | null = null
  const timer = setInterval(() => {
    const now = { wall: performance.now(), ...jsThread() }
    if (measuring) {
      const gap = now.wall - last.wall
      gaps.push(gap)
      if (gap > worst.wall) worst = { wall: gap, ran: now.ran - last.ran, waited: now.waited - last.waited }
    }
    last = now
    onTick?.()
  }, 1)
  await new Promise((resolve) => setTimeout(resolve, 20))
  measuring = true
  last = { wall: performance.now(), ...jsThread() }
  const start = last
  await call()
  const durationMs = performance.now() - start.wall
  // The first tick after the call settled closes the gap a block at its end would be in.
  await new Promise<void>((resolve) => (onTick = resolve))
  clearInterval(timer)
  gaps.sort((a, b) => a - b)
  return {
    worstMs: worst.wall,
    worstRanMs: worst.ran,
    worstWaitedMs: worst.waited,
    p99Ms: gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * 0.99))],
    durationMs,
    waitedMs: jsThread().waited - start.waited,
  }
}

function poolNice(): number[] {
  const nice: number[] = []
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1')
    const close = stat.lastIndexOf(')')
    // Field 19 of stat; the fields after the name start at field 3.
    if (stat.slice(stat.indexOf('(') + 1, close).startsWith('ciphervec-')) nice.push(Number(stat.slice(close + 2).split(' ')[16]))
  }
  return nice
}

async function child(): Promise<void> {
  const found = existsSync(config.data)
  const base = found ? readFbin(config.data) : { rows: 400_000, cols: 50, data: generated(400_000, 50, 1) }
  const queryFile = config.data.replace(/\.base\.fbin$/, '.query.fbin')
  const queries =
    found && existsSync(queryFile) ? readFbin(queryFile, config.queries).data : generated(config.queries, base.cols, 2)
  const ids = Array.from({ length: base.rows }, (_, i) => String(i))

  const client = await Client.open({ storage: { kind: 'memory' }, threads: config.threads })
  const index = await client.createIndex({
    indexName: 'busy',
    indexKey: Client.generateKey(),
    dimension: base.cols,
    autoTrain: false,
  })
  const calls = {} as Record<CallName, Measured>
  calls.upsert = await measure(() => index.upsert({ ids, vectors: base.data }))
  // Untrained: every query scans all vectors.
  calls.queryBatch = await measure(() => index.queryBatch({ vectors: queries, topK: 10 }))
  calls.train = await measure(() => index.train({ nLists: config.nLists, maxIters: config.iters, tolerance: 0, seed: 1 }))
  const result: ChildResult = {
    data: found ? path.basename(config.data) : 'generated (data file not found)',
    n: base.rows,
    dim: base.cols,
    poolNice: poolNice(),
    calls,
  }
  await client.close()
  console.log(JSON.stringify(result))
}

// ---------------------------------------------------------------------------------------------
// Parent: alternate the variants, then one table.

const VARIANTS: Array<{ name: string; env: Record<string, string> }> = [
  { name: 'before (CIPHERVEC_WORKER_NICE=0)', env: { CIPHERVEC_WORKER_NICE: '0' } },
  { name: 'after (default, nice 10)', env: {} },
]

function runChild(env: Record<string, string>): ChildResult {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, BUSY_CHILD: '1', ...env }
  if (!('CIPHERVEC_WORKER_NICE' in env)) delete childEnv.CIPHERVEC_WORKER_NICE
  const r = spawnSync(process.execPath, [...process.execArgv, __filename], { env: childEnv, encoding: 'utf8', maxBuffer: 1 << 24 })
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult
}

const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function parent(): Promise<void> {
  const started = performance.now()
  console.log(`start: ${uptime()}`)
  console.log(
    `${os.availableParallelism()} cores; client threads ${config.threads}; ${config.rounds} rounds of before/after; ` +
      `queryBatch of ${config.queries} exhaustive queries; train nLists ${config.nLists}, ${config.iters} iterations`,
  )
  const runs: ChildResult[][] = VARIANTS.map(() => [])
  for (let round = 0; round < config.rounds; round++) {
    VARIANTS.forEach((v, i) => {
      const r = runChild(v.env)
      runs[i].push(r)
      const line = CALLS.map((c) => `${c} worst ${r.calls[c].worstMs.toFixed(1)} ms in ${(r.calls[c].durationMs / 1000).toFixed(2)} s`)
      console.log(`round ${round + 1}, ${v.name}, pool nice ${[...new Set(r.poolNice)].join('/')}: ${line.join('; ')}`)
    })
  }
  const first = runs[0][0]
  console.log(`\ndata: ${first.data}, ${first.n} × ${first.dim}\n`)
  const fmt = (xs: number[], digits: number) => xs.map((x) => x.toFixed(digits)).join(', ')
  console.log(
    '| call | workers | worst gap, ms (median; each run) | in the worst gap: JS thread running / waiting for a CPU, ms (median) ' +
      '| p99 gap, ms (median) | JS thread waiting for a CPU in all, ms (median) | duration, s (median; each run) |',
  )
  console.log('|---|---|---|---|---|---|---|')
  for (const c of CALLS) {
    VARIANTS.forEach((v, i) => {
      const m = runs[i].map((r) => r.calls[c])
      const worst = m.map((x) => x.worstMs)
      const seconds = m.map((x) => x.durationMs / 1000)
      console.log(
        `| ${c} | ${v.name} | ${median(worst).toFixed(1)} (${fmt(worst, 1)}) | ` +
          `${median(m.map((x) => x.worstRanMs)).toFixed(1)} / ${median(m.map((x) => x.worstWaitedMs)).toFixed(1)} | ` +
          `${median(m.map((x) => x.p99Ms)).toFixed(1)} | ${median(m.map((x) => x.waitedMs)).toFixed(0)} | ` +
          `${median(seconds).toFixed(2)} (${fmt(seconds, 2)}) |`,
      )
    })
  }
  console.log(`\nend: ${uptime()}; ${((performance.now() - started) / 1000).toFixed(0)} s in all`)
}

;(process.env.BUSY_CHILD ? child() : parent()).catch((e) => {
  console.error(e)
  process.exit(1)
})
