// What a freshly started process pays: loading a trained disk index, the JS thread's longest
// slice while it upserts its first batch, and queries right after. Each figure comes from a
// new child process, as a restarted service would be; with BENCH_ADDONS="a.node,b.node" the
// children alternate between two builds of the addon (A B A B ...), so a build setting (the
// allocator's huge pages, say) is compared in one run.
//
//   npm run bench:fresh      Env: BENCH_DATA (default bench/data/clustered384.base.fbin),
//                            BENCH_RUNS (5 per build), BENCH_ADDONS (default: this build)
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

import { Client } from '../index.js'
import { ownMs, sliceSpans } from '../__test__/helpers.js'
import { readF32, ROOT } from './common.js'

const data = path.resolve(process.env.BENCH_DATA ?? path.join(ROOT, 'bench/data/clustered384.base.fbin'))
const runs = Number(process.env.BENCH_RUNS ?? 5)
const addons = (process.env.BENCH_ADDONS ?? '').split(',').filter(Boolean)
const store = path.join(ROOT, 'bench/.fresh', path.basename(data, '.fbin'))
const KEY = Buffer.alloc(32, 7)
const UPSERT = 50_000
const QUERIES = 2_000
const SINGLE = 500

function rssMb(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024
}

/** One measurement, in this (fresh) process; prints one JSON line. */
async function child(): Promise<void> {
  const base = readF32(data)
  const dim = base.cols
  const queries = base.data.subarray(0, QUERIES * dim)
  const rss0 = rssMb()
  const client = await Client.open({ storage: { kind: 'disk', path: store } })
  const t0 = performance.now()
  const index = await client.loadIndex({ indexName: 'fresh', indexKey: KEY })
  const loadMs = performance.now() - t0
  const loadRss = rssMb() - rss0
  // Queries right after the load, then warm (the best of three more rounds).
  const batch = async () => {
    const t = performance.now()
    await index.queryBatch({ vectors: queries, topK: 10, nProbes: 32 })
    return QUERIES / ((performance.now() - t) / 1000)
  }
  const single = async () => {
    const t = performance.now()
    for (let i = 0; i < SINGLE; i++) await index.query({ vector: queries.subarray(i * dim, (i + 1) * dim), topK: 10, nProbes: 32 })
    return SINGLE / ((performance.now() - t) / 1000)
  }
  const batchQps = await batch()
  const singleQps = await single()
  let [batchQpsWarm, singleQpsWarm] = [0, 0]
  for (let r = 0; r < 3; r++) {
    batchQpsWarm = Math.max(batchQpsWarm, await batch())
    singleQpsWarm = Math.max(singleQpsWarm, await single())
  }
  // A first upsert of new items into a memory index: fresh memory written on the JS thread.
  const memory = await Client.open({ storage: { kind: 'memory' } })
  const scratch = await memory.createIndex({ indexName: 'u', indexKey: KEY, dimension: dim, autoTrain: false })
  const ids = Array.from({ length: UPSERT }, (_, i) => `u${i}`)
  const t = performance.now()
  const pieces = await sliceSpans(() => scratch.upsert({ ids, vectors: base.data.subarray(0, UPSERT * dim) }))
  const upsertMs = performance.now() - t
  // The JS thread's own CPU time in its longest slice (V8's collection pauses taken out).
  const upsertWorstMs = Math.max(...pieces.map(ownMs))
  console.log(JSON.stringify({ loadMs, loadRss, batchQps, singleQps, batchQpsWarm, singleQpsWarm, upsertWorstMs, upsertMs }))
  await memory.close()
  await client.close()
}

async function build(): Promise<void> {
  const base = readF32(data)
  mkdirSync(store, { recursive: true })
  const client = await Client.open({ storage: { kind: 'disk', path: store } })
  const index = await client.createIndex({ indexName: 'fresh', indexKey: KEY, dimension: base.cols, autoTrain: false })
  const per = 10_000
  for (let s = 0; s < base.rows; s += per) {
    const e = Math.min(base.rows, s + per)
    const ids = Array.from({ length: e - s }, (_, i) => `doc-${s + i}`)
    await index.upsert({ ids, vectors: base.data.subarray(s * base.cols, e * base.cols) })
  }
  await index.train({ nLists: 1024 })
  await client.close()
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]

async function main(): Promise<void> {
  if (process.argv[2] === 'child') return child()
  if (!existsSync(store)) {
    console.log(`building ${store} from ${data} ...`)
    await build()
  }
  const builds = addons.length ? addons : ['']
  const results: Record<string, Record<string, number>[]> = Object.fromEntries(builds.map((b) => [b, []]))
  for (let r = 0; r < runs; r++) {
    for (const addon of builds) {
      const env = { ...process.env, ...(addon ? { NAPI_RS_NATIVE_LIBRARY_PATH: path.resolve(addon) } : {}) }
      const out = execFileSync(process.execPath, ['--import', 'tsx', __filename, 'child'], { env, encoding: 'utf8' })
      results[addon].push(JSON.parse(out.trim().split('\n').pop()!))
    }
  }
  const figures = Object.keys(results[builds[0]][0])
  console.log(`\n${path.basename(data)}, ${runs} fresh processes per build, medians (min-max)\n`)
  console.log(`| figure | ${builds.map((b) => b || 'this build').join(' | ')} |`)
  console.log(`|---|${builds.map(() => '---').join('|')}|`)
  for (const f of figures) {
    const cells = builds.map((b) => {
      const v = results[b].map((x) => x[f])
      return `${median(v).toFixed(1)} (${Math.min(...v).toFixed(1)}-${Math.max(...v).toFixed(1)})`
    })
    console.log(`| ${f} | ${cells.join(' | ')} |`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
