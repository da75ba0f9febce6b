// Shared helpers for the Node tests (not a test file itself: node --test only runs *.test.ts).
import assert from 'node:assert/strict'
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs'
import { GCProfiler } from 'node:v8'

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` random vectors of dimension `dim`, values in [-1, 1), as one flat Float32Array. */
export function randomVectors(n: number, dim: number, seed = 1): Float32Array {
  const next = rng(seed)
  const out = new Float32Array(n * dim)
  for (let i = 0; i < out.length; i++) out[i] = next() * 2 - 1
  return out
}

export function row(flat: Float32Array, dim: number, i: number): Float32Array {
  return flat.subarray(i * dim, (i + 1) * dim)
}

export type MetricName = 'euclidean' | 'squared_euclidean' | 'cosine'

/** Reference distance in float64, written independently of the Rust kernels. */
export function distance(metric: MetricName, a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sq = 0
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    sq += (a[i] - b[i]) ** 2
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  if (metric === 'euclidean') return Math.sqrt(sq)
  if (metric === 'squared_euclidean') return sq
  return 1 - dot / Math.sqrt(na * nb)
}

/** Exact top-k ids by brute force. */
export function bruteForce(metric: MetricName, flat: Float32Array, dim: number, q: ArrayLike<number>, k: number) {
  const n = flat.length / dim
  const scored = Array.from({ length: n }, (_, i) => ({ id: String(i), d: distance(metric, q, row(flat, dim, i)) }))
  scored.sort((x, y) => x.d - y.d)
  return scored.slice(0, k)
}

/** Asserts that a promise rejects (or a call throws) with an Error carrying `code`. */
export async function rejectsWithCode(p: Promise<unknown> | (() => unknown), code: string): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`)
    assert.equal((e as Error & { code?: string }).code, code, `wrong code; message: ${(e as Error).message}`)
    return e as Error
  }
  assert.fail(`expected rejection with ${code}, but it resolved`)
}

// ---- The JS thread, measured in what other processes' load does not change ----
//
// The machine is shared: another process can take the JS thread's core for tens of ms at any
// moment, so a wall-clock gap between two timer ticks says as much about the neighbours as
// about us. Linux keeps per-thread scheduler statistics: /proc/self/task/<tid>/schedstat holds
// the nanoseconds a thread ran on a CPU, the nanoseconds it waited runnable for one, and its
// timeslices. The event-loop tests bound the JS thread's CPU time between two timer ticks (or
// within one slice): how long our code, and V8 on its behalf, kept the loop busy. Load does
// not lengthen that; it only adds waiting. The rest of a gap is reported, not bounded:
//  - the wait for a CPU: load, and behind our own pool the pool's priority, which is checked
//    on its own (`workerPriority`);
//  - sleep: under two busy loops per core plus a cargo build the JS thread slept up to ~80 ms
//    within one gap (V8's parallel GC, for one, waits for helper threads queued behind the
//    load), so sleep cannot be bounded either. A JS thread asleep in our code (on a lock a
//    worker holds, say) is therefore not caught by these tests, only shown in their messages.
// The kernel's count of a running thread's CPU time lags by up to a scheduler tick (~4 ms
// here); the bounds leave room for that.

/** Reads "<ns on a CPU> <ns waiting for a CPU> <slices>" from a schedstat file (at offset 0). */
function readSchedstat(fd: number, buf: Buffer): [ranNs: number, waitedNs: number] {
  const n = readSync(fd, buf, 0, buf.length, 0)
  const [ran, waited] = buf.toString('latin1', 0, n).split(' ').map(Number)
  return [ran, waited]
}

/** The JS thread's schedstat, kept open: a positioned read costs ~3 µs, fine every 1 ms. */
const js = (() => {
  try {
    // The JS thread is the process's first thread, so its thread id is the process id.
    const fd = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r')
    const buf = Buffer.alloc(128)
    // All zeros when the kernel keeps no scheduler statistics (CONFIG_SCHED_INFO off).
    if (readSchedstat(fd, buf)[0] > 0) return { fd, buf }
    closeSync(fd)
  } catch {
    // Not Linux, or no /proc.
  }
  return null
})()

/** Why the load-independent measures cannot run here, or false (for `it(..., { skip })`). */
export const noSchedstat: string | false =
  js === null && 'needs per-thread scheduler statistics (Linux /proc/self/task/<tid>/schedstat)'

/** The JS thread at one instant: wall time, and its CPU time and wait for a CPU so far (ms). */
export interface JsThreadTime {
  wall: number
  ran: number
  waited: number
}

export function jsThreadTime(): JsThreadTime {
  if (js === null) throw new Error(String(noSchedstat))
  // Retry if the thread was preempted between the readings, so that the wall time and the
  // wait belong to the same instant.
  for (;;) {
    const [ran, waited] = readSchedstat(js.fd, js.buf)
    const wall = performance.now()
    if (readSchedstat(js.fd, js.buf)[1] === waited) return { wall, ran: ran / 1e6, waited: waited / 1e6 }
  }
}

/** What the JS thread did between two instants (ms): it ran, waited for a CPU, or slept. */
export interface Span {
  wallMs: number
  ranMs: number
  waitedMs: number
  sleptMs: number
  /** V8's garbage-collection pauses inside the span (ms, wall time), where measured. */
  gcMs?: number
}

export function span(a: JsThreadTime, b: JsThreadTime): Span {
  const wallMs = b.wall - a.wall
  const ranMs = b.ran - a.ran
  const waitedMs = b.waited - a.waited
  return { wallMs, ranMs, waitedMs, sleptMs: Math.max(0, wallMs - ranMs - waitedMs) }
}

export function describeSpan(s: Span): string {
  const gc = s.gcMs === undefined ? '' : ` (${s.gcMs.toFixed(1)} of it collecting garbage)`
  return `${s.wallMs.toFixed(1)} ms = ${s.ranMs.toFixed(1)} running + ${s.waitedMs.toFixed(1)} waiting for a CPU + ${s.sleptMs.toFixed(1)} asleep${gc}`
}

/**
 * The CPU time of a span that is the code's own: its running time less V8's collection pauses
 * inside it. A pause is wall time (part of it waiting for V8's helper threads), so this can
 * only under-count the code's share, never hide a long piece behind a short pause.
 */
export function ownMs(s: Span): number {
  return Math.max(0, s.ranMs - (s.gcMs ?? 0))
}

export interface LoopWatch {
  /** Timer ticks from the start of the work to the first tick after it settled (at least 1). */
  ticks: number
  /** The most CPU time the JS thread used between two ticks (ms): the longest the loop was
   * kept busy by this process. Other processes' load does not change it. */
  worstRanMs: number
  /** The most the JS thread slept between two ticks (ms); grows with load, for messages. */
  worstSleptMs: number
  /** The gap that was longest by the clock, split up; grows with load, for messages. */
  worstGap: Span
  /** Wall time of the work (ms). */
  elapsedMs: number
}

/**
 * Runs `work` under a 1 ms interval timer and measures every gap between its ticks. The timer
 * starts 20 ms early (so the first gap does not begin in the tick it is armed in) and the
 * measurement ends at the first tick after `work` settled, so every instant of the work,
 * including its synchronous start and its last result slice, lies in some gap.
 */
export async function watchLoop<T>(work: () => Promise<T>): Promise<{ value: T; watch: LoopWatch }> {
  let last = jsThreadTime()
  let measuring = false
  let ticks = 0
  let onTick: (() => void) | null = null
  const watch: LoopWatch = {
    ticks: 0,
    worstRanMs: 0,
    worstSleptMs: 0,
    worstGap: { wallMs: 0, ranMs: 0, waitedMs: 0, sleptMs: 0 },
    elapsedMs: 0,
  }
  const timer = setInterval(() => {
    const now = jsThreadTime()
    if (measuring) {
      ticks++
      const gap = span(last, now)
      watch.worstRanMs = Math.max(watch.worstRanMs, gap.ranMs)
      watch.worstSleptMs = Math.max(watch.worstSleptMs, gap.sleptMs)
      if (gap.wallMs > watch.worstGap.wallMs) watch.worstGap = gap
    }
    last = now
    onTick?.()
  }, 1)
  try {
    await new Promise((resolve) => setTimeout(resolve, 20))
    measuring = true
    last = jsThreadTime()
    const started = last.wall
    const value = await work()
    watch.elapsedMs = performance.now() - started
    await new Promise<void>((resolve) => (onTick = resolve))
    watch.ticks = ticks
    return { value, watch }
  } finally {
    clearInterval(timer)
  }
}

/** One line for assertion messages and test diagnostics. */
export function describeWatch(w: LoopWatch): string {
  return (
    `most CPU time between two ticks ${w.worstRanMs.toFixed(1)} ms; worst timer gap ${describeSpan(w.worstGap)}; ` +
    `most asleep in a gap ${w.worstSleptMs.toFixed(1)} ms; ${w.ticks} ticks in ${w.elapsedMs.toFixed(0)} ms`
  )
}

/** Burns `ms` of the JS thread's own CPU time (not wall time: preemption does not shorten it). */
export function burnCpu(ms: number): void {
  if (js === null) throw new Error(String(noSchedstat))
  const until = readSchedstat(js.fd, js.buf)[0] + ms * 1e6
  while (readSchedstat(js.fd, js.buf)[0] < until);
}

// ---- Every thread of the process ----

export interface ThreadSample {
  tid: number
  name: string
  nice: number
  /** CPU time so far (ms). */
  ranMs: number
}

/** Every thread of this process now. Threads that exit while being read are left out. */
export function threadSamples(): ThreadSample[] {
  const out: ThreadSample[] = []
  for (const entry of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${entry}/stat`, 'latin1')
      // "tid (name) state ppid ..."; the name may hold spaces and parentheses.
      const close = stat.lastIndexOf(')')
      const fields = stat.slice(close + 2).split(' ')
      const schedstat = readFileSync(`/proc/self/task/${entry}/schedstat`, 'latin1')
      out.push({
        tid: Number(entry),
        name: stat.slice(stat.indexOf('(') + 1, close),
        // Field 19 of stat; fields[] starts at field 3 (state).
        nice: Number(fields[16]),
        ranMs: Number(schedstat.split(' ')[0]) / 1e6,
      })
    } catch {
      // The thread exited between readdir and read.
    }
  }
  return out
}

/** CPU time (ms) every thread but the JS thread used between two samples. */
export function cpuOffJsThreadMs(before: ThreadSample[], after: ThreadSample[]): number {
  const start = new Map(before.map((t) => [t.tid, t.ranMs]))
  return after.filter((t) => t.tid !== process.pid).reduce((sum, t) => sum + t.ranMs - (start.get(t.tid) ?? 0), 0)
}

/** The nice value the library gives its worker threads: CIPHERVEC_WORKER_NICE (0-19) or 10. */
export function expectedWorkerNice(): number {
  const v = process.env.CIPHERVEC_WORKER_NICE?.trim() ?? ''
  const n = /^[+-]?\d+$/.test(v) ? Number(v) : NaN
  return n >= 0 && n <= 19 ? n : 10
}

/** CPU time off the JS thread, split by priority (see `workerPriority`). */
export interface PrioritySplit {
  /** The workers' nice value expected. */
  nice: number
  /** CPU time (ms) of threads at that nice value or lower priority. */
  loweredMs: number
  /** CPU time (ms) of threads above it, and the busiest of them (for messages). */
  normalMs: number
  busiest: string[]
}

/**
 * How the CPU time threads other than the JS thread used between two samples splits by
 * priority. The pool's work must run at the workers' nice value, so that the JS thread gets a
 * core as soon as it wakes while the pool keeps every core busy.
 */
export function workerPriority(before: ThreadSample[], after: ThreadSample[]): PrioritySplit {
  const nice = expectedWorkerNice()
  const start = new Map(before.map((t) => [t.tid, t.ranMs]))
  let lowered = 0
  let normal = 0
  const busiest: string[] = []
  // The library's threads only: its pool and background threads (`ciphervec-*`) and the
  // binding's tokio threads (`tokio-*`). Node's own (V8's garbage-collector helpers, named
  // `node`, and libuv's) are not the library's to lower, and collect more under load.
  const used = after
    .filter((t) => t.tid !== process.pid && (t.name.startsWith('ciphervec') || t.name.startsWith('tokio')))
    .map((t) => ({ ...t, used: t.ranMs - (start.get(t.tid) ?? 0) }))
    .sort((x, y) => y.used - x.used)
  for (const t of used) {
    if (t.nice >= nice) {
      lowered += t.used
    } else {
      normal += t.used
      if (busiest.length < 5 && t.used >= 1) busiest.push(`${t.name} (nice ${t.nice}) ${t.used.toFixed(0)} ms`)
    }
  }
  return { nice, loweredMs: lowered, normalMs: normal, busiest }
}

/**
 * What a call does on the JS thread, piece by piece: its own synchronous part, then every slice
 * it schedules with `setImmediate` (wrapped while the call runs; the addon looks the global up
 * for each slice). The slice that builds the first results runs in the call's completion
 * callback, not in a `setImmediate` turn, so it is not among them (`watchLoop` sees it).
 */
export async function sliceSpans(call: () => Promise<unknown>): Promise<Span[]> {
  const pieces: Span[] = []
  // Each piece also counts the garbage collections V8 ran inside it (`gcMs`): a full collection
  // of a large heap (the tests' fixtures are hundreds of MB) pauses whichever piece happens
  // to allocate when it is due, for a time set by the heap, not by the piece.
  const timePiece = (piece: () => void) => {
    const profiler = new GCProfiler()
    profiler.start()
    const start = jsThreadTime()
    try {
      piece()
    } finally {
      const s = span(start, jsThreadTime())
      const gcs = profiler.stop()?.statistics ?? []
      pieces.push({ ...s, gcMs: gcs.reduce((total, gc) => total + gc.cost / 1000, 0) })
    }
  }
  const original = globalThis.setImmediate
  const timed = (cb: (...args: unknown[]) => void, ...args: unknown[]) => original(() => timePiece(() => cb(...args)))
  globalThis.setImmediate = timed as unknown as typeof setImmediate
  try {
    let p: Promise<unknown> = Promise.resolve()
    timePiece(() => {
      p = call()
    })
    await p
  } finally {
    globalThis.setImmediate = original
  }
  return pieces
}
