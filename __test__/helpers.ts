// Shared helpers for the Node tests (not a test file itself: node --test only runs *.test.ts).
import assert from 'node:assert/strict'
import { monitorEventLoopDelay } from 'node:perf_hooks'

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

/**
 * Worst event-loop delay (ms) while `work` runs, measured with monitorEventLoopDelay. The
 * monitor is armed (one timer tick) before `work` starts so synchronous argument conversion
 * counts too. On a shared machine another process can preempt the JS thread, which no code
 * of ours can prevent; so the scenario runs up to `attempts` times and the best attempt is
 * returned with all of them. Blocking in our code would show in every attempt.
 */
export async function bestWorstDelay(
  attempts: number,
  work: () => Promise<void>,
): Promise<{ best: number; all: number[]; elapsedMs: number; ticks: number }> {
  const all: number[] = []
  let elapsedMs = 0
  let ticks = 0
  for (let a = 0; a < attempts; a++) {
    const h = monitorEventLoopDelay({ resolution: 1 })
    h.enable()
    await new Promise((resolve) => setTimeout(resolve, 20))
    let n = 0
    const timer = setInterval(() => n++, 1)
    const started = performance.now()
    await work()
    elapsedMs = performance.now() - started
    clearInterval(timer)
    h.disable()
    ticks = n
    all.push(h.max / 1e6)
    if (h.max / 1e6 < 20) break
  }
  return { best: Math.min(...all), all, elapsedMs, ticks }
}
