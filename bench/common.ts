// What the FAISS-comparing benchmarks share: the .fbin/.ibin data files, a seeded PRNG, and
// FAISS itself (bench/faiss_*.py in bench/.venv as line-oriented servers).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import type { Writable } from 'node:stream'

export const ROOT = path.resolve(__dirname, '..')

// ---------------------------------------------------------------------------------------------
// Data

export interface Matrix<T extends Float32Array | Int32Array> {
  rows: number
  cols: number
  data: T
}

export interface Dataset {
  name: string
  /** Files FAISS reads (the same bytes ciphervec got). */
  files: { base: string; query: string; gt: string }
  base: Matrix<Float32Array>
  query: Matrix<Float32Array>
  gt: Matrix<Int32Array>
}

/** .fbin/.ibin: little-endian int32 rows, int32 cols, then rows × cols values, row-major. */
function readBin(file: string): { rows: number; cols: number; buffer: ArrayBuffer } {
  const buf = readFileSync(file)
  const rows = buf.readInt32LE(0)
  const cols = buf.readInt32LE(4)
  // Copy into a fresh buffer: a typed array view needs a 4-aligned offset, the file's need not be.
  const buffer = new Uint8Array(buf.buffer, buf.byteOffset + 8, rows * cols * 4).slice().buffer
  return { rows, cols, buffer }
}

export function readF32(file: string): Matrix<Float32Array> {
  const { rows, cols, buffer } = readBin(file)
  return { rows, cols, data: new Float32Array(buffer) }
}

export function readI32(file: string): Matrix<Int32Array> {
  const { rows, cols, buffer } = readBin(file)
  return { rows, cols, data: new Int32Array(buffer) }
}

export function writeBin(file: string, m: Matrix<Float32Array> | Matrix<Int32Array>): void {
  const header = Buffer.alloc(8)
  header.writeInt32LE(m.rows, 0)
  header.writeInt32LE(m.cols, 4)
  writeFileSync(file, Buffer.concat([header, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength)]))
}

/** A base file's query and ground-truth files beside it (`x.base.fbin` → `x.query.fbin`, `x.gt.ibin`). */
export function siblings(baseFile: string): Dataset['files'] {
  const stem = baseFile.replace(/\.base\.fbin$/, '')
  return { base: baseFile, query: `${stem}.query.fbin`, gt: `${stem}.gt.ibin` }
}

/** The data set of `files`, or null if one of them is missing. */
export function readDataset(name: string, files: Dataset['files']): Dataset | null {
  if (!Object.values(files).every((f) => existsSync(f))) return null
  return { name, files, base: readF32(files.base), query: readF32(files.query), gt: readI32(files.gt) }
}

/** Writes a generated data set to its files, so that FAISS reads the same bytes. */
export function writeDataset(ds: Dataset): void {
  writeBin(ds.files.base, ds.base)
  writeBin(ds.files.query, ds.query)
  writeBin(ds.files.gt, ds.gt)
}

/** Recall@10: the mean share of each query's true 10 nearest (ground-truth row ids) among its
 * results (ids are the row indices as strings). */
export function recallAt10(found: { id: string }[][], gt: Matrix<Int32Array>): number {
  let hits = 0
  found.forEach((rows, q) => {
    const truth = new Set(Array.from(gt.data.subarray(q * gt.cols, q * gt.cols + 10)))
    for (const r of rows.slice(0, 10)) if (truth.has(Number(r.id))) hits++
  })
  return hits / (10 * found.length)
}

/** The tests' deterministic PRNG (mulberry32), so a generated run can be repeated. */
export { rng } from '../__test__/helpers.js'

/** A standard normal sample (Box–Muller). */
export function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next())
}

// ---------------------------------------------------------------------------------------------
// FAISS

const VENV = path.join(ROOT, 'bench', '.venv')
const PYTHON = path.join(VENV, 'bin', 'python')
/** The FAISS version BENCHMARKS.md compares with. */
const FAISS = 'faiss-cpu==1.15.1'
/** usearch's Python wheel: the same C++ HNSW as its Node addon (bench:types). */
const USEARCH = 'usearch==2.26.6'

/** Creates bench/.venv with faiss-cpu, usearch and numpy unless it already imports them. */
function ensureVenv(): boolean {
  const ok = () => existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import faiss, numpy, usearch'], { stdio: 'ignore' }).status === 0
  if (ok()) return true
  console.log(`[faiss] creating bench/.venv (pip install ${FAISS} ${USEARCH} numpy) ...`)
  const steps: [string, string[]][] = [
    ['python3', ['-m', 'venv', VENV]],
    [path.join(VENV, 'bin', 'pip'), ['install', '--quiet', FAISS, USEARCH, 'numpy']],
  ]
  for (const [cmd, args] of steps) {
    if (spawnSync(cmd, args, { stdio: 'inherit' }).status !== 0) return false
  }
  return ok()
}

/** What faiss_ivf.py is started with. */
export interface FaissSetup {
  enabled: boolean
  nLists: number
  iters: number
  seed: number
  /** The server script in bench/ (default faiss_ivf.py). */
  script?: string
}

/** bench/faiss_ivf.py on one data set, answering one JSON request per line. */
export class FaissServer {
  private constructor(
    private readonly stdin: Writable,
    private readonly lines: AsyncIterator<string>,
  ) {}

  /** Starts faiss_ivf.py on the dataset's files; null (with a message) if FAISS is unavailable. */
  static async start(ds: Dataset, setup: FaissSetup): Promise<FaissServer | null> {
    if (!setup.enabled) {
      console.log('[faiss] skipped (BENCH_FAISS=0)')
      return null
    }
    if (!ensureVenv()) {
      console.log('[faiss] SKIPPED: could not create bench/.venv with faiss-cpu, usearch and numpy (see the pip output above)')
      return null
    }
    const script = path.join(ROOT, 'bench', setup.script ?? 'faiss_ivf.py')
    const opts = ['--nlist', setup.nLists, '--iters', setup.iters, '--seed', setup.seed, '--queries', ds.query.rows].map(String)
    // stderr (progress) goes straight to the terminal; stdout carries the JSON replies.
    const child = spawn(PYTHON, [script, ds.files.base, ds.files.query, ds.files.gt, ...opts], { stdio: ['pipe', 'pipe', 'inherit'] })
    const server = new FaissServer(child.stdin, createInterface({ input: child.stdout })[Symbol.asyncIterator]())
    await server.next() // {"ready": true} once the data is loaded
    return server
  }

  private async next<T>(): Promise<T> {
    const { value, done } = await this.lines.next()
    if (done) throw new Error('faiss_ivf.py exited early (see its output above)')
    const reply = JSON.parse(value) as T & { error?: string }
    if (reply.error) throw new Error(`faiss_ivf.py: ${reply.error}`)
    return reply
  }

  /** One request of the script's protocol (see its docstring), and its reply. */
  request<T>(req: { op: string } & Record<string, string | number>): Promise<T> {
    this.stdin.write(`${JSON.stringify(req)}\n`)
    return this.next<T>()
  }

  close(): void {
    this.stdin.end()
  }
}
