// Helpers for the PostgreSQL tests that run several processes (not a test file itself):
// deterministic items every process can rebuild from an id, a child process driven over IPC
// (children/pg-worker.ts), and liveness deadlines.
import { fork, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'

import { rng } from './helpers.js'

export const ROOT = join(__dirname, '..')
const WORKER = join(__dirname, 'children', 'pg-worker.ts')

/** FNV-1a of a string: a seed per id. */
export function hashOf(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0
  return h
}

/** The vector a writer (`salt`) gives `id`: any process rebuilds it to check an item whole. */
export function vectorFor(id: string, dim: number, salt = ''): Float32Array {
  const next = rng(hashOf(`${salt}/${id}`))
  return Float32Array.from({ length: dim }, () => next() * 2 - 1)
}

/** Ids, flat vectors and metadata of one batch written by `writer`. */
export function batchOf(ids: string[], dim: number, writer: string, extra: Record<string, unknown> = {}) {
  const vectors = new Float32Array(ids.length * dim)
  ids.forEach((id, i) => vectors.set(vectorFor(id, dim, writer), i * dim))
  return { ids, vectors, metadata: ids.map((id) => ({ writer, id, ...extra })) }
}

/** Polls `check` until it returns a value other than undefined; fails after `deadlineMs`
 * (a liveness bound only, so that a bug fails the test instead of hanging it). */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, deadlineMs = 60_000): Promise<T> {
  const end = Date.now() + deadlineMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > end) throw new Error(`${what}: not reached within the ${deadlineMs} ms liveness deadline (last error: ${String(last)})`)
    await sleep(25)
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Races `p` against a liveness deadline. */
export async function within<T>(what: string, p: Promise<T>, deadlineMs = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within the ${deadlineMs} ms liveness deadline`)), deadlineMs)
  })
  try {
    return await Promise.race([p, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** An error a child reported, with its `code`. */
export class ChildError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message)
  }
}

export interface AckEvent {
  event: 'ack'
  tag: string
  batch: number
  ids: string[]
}
export interface FailureEvent {
  event: 'failure'
  tag: string
  op: string
  batch?: number
  ids?: string[]
  code?: string
  message: string
}
export interface ProgressEvent {
  event: 'progress'
  iteration: number
}
export type WorkerEvent = AckEvent | FailureEvent | ProgressEvent

/** Every live worker of this test process, killed by `killAll` (call it in `after`). */
const workers = new Set<Worker>()

/** A child process (children/pg-worker.ts) with one client and one index, driven over IPC. */
export class Worker extends EventEmitter {
  readonly proc: ChildProcess
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly acks: AckEvent[] = []
  readonly failures: FailureEvent[] = []
  private next = 1
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>()
  private stderr = ''

  constructor(readonly name: string) {
    super()
    this.proc = fork(WORKER, [name], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    })
    workers.add(this)
    this.proc.stderr!.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-8000)
    })
    this.proc.on('message', (m: any) => {
      if (m.event) {
        if (m.event === 'ack') this.acks.push(m)
        if (m.event === 'failure') this.failures.push(m)
        this.emit(m.event, m)
        return
      }
      const p = this.pending.get(m.id)
      if (!p) return
      this.pending.delete(m.id)
      if (m.ok) p.resolve(m.value)
      else p.reject(new ChildError(`${this.name}: ${m.error.message}`, m.error.code))
    })
    // 'close', not 'exit': every message the child sent before it died has been handled then.
    this.exited = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        workers.delete(this)
        for (const p of this.pending.values()) {
          p.reject(new Error(`${this.name} exited (${code ?? signal}) before answering; stderr: ${this.stderr}`))
        }
        this.pending.clear()
        resolve({ code, signal })
      })
    })
  }

  /** Runs `op` in the child; rejects with a ChildError carrying the child's error code, or
   * after `deadlineMs` (a liveness bound: a hung child fails the test instead of hanging it). */
  call<T = any>(op: string, args: Record<string, unknown> = {}, deadlineMs = 120_000): Promise<T> {
    const id = this.next++
    const answer = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.proc.send({ id, op, args }, (e) => {
        if (e && this.pending.delete(id)) reject(e)
      })
    })
    return within(`${this.name} ${op}`, answer, deadlineMs)
  }

  /** Resolves with the first event of `kind` for which `pred` holds. */
  waitFor<E extends WorkerEvent>(kind: E['event'], pred: (e: E) => boolean = () => true): Promise<E> {
    return new Promise((resolve, reject) => {
      const on = (e: E) => {
        if (!pred(e)) return
        this.off(kind, on)
        this.proc.off('close', gone)
        resolve(e)
      }
      const gone = () => {
        this.off(kind, on)
        reject(new Error(`${this.name} exited while waiting for '${kind}'; stderr: ${this.stderr}`))
      }
      this.on(kind, on)
      this.proc.once('close', gone)
    })
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<unknown> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal)
    return this.exited
  }

  /** Asks the child to close its client and exit; kills it if it does not. */
  async close(): Promise<void> {
    try {
      await within(`${this.name} close`, this.call('exit'), 30_000)
    } catch {
      // exited before answering, or did not answer
    }
    await within(`${this.name} exit`, this.exited, 30_000).catch(() => this.kill())
  }
}

/** Kills every worker still running (SIGKILL, by their own pids). */
export async function killAll(): Promise<void> {
  await Promise.all([...workers].map((w) => w.kill()))
}
