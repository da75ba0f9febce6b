// Reopen throughput: how fast loadIndex reads, authenticates and decrypts a disk index back
// into memory after a restart. Each load runs in a fresh child process (as a restarted service
// would), 3 times per thread count; the median is reported. Two stores: all packed (right
// after a compaction), then the same with half as many items again upserted as loose records
// (as much as a store holds before its next automatic compaction). The AES-only baseline for the same
// entries, and loads of an uncompacted store, are measured by
// `cargo run --release -p ciphervec-core --example load_profile` (BENCHMARKS.md).
// Run: `npm run bench:load`. Env: BENCH_DATA (default ../shared/data/glove50.base.fbin),
// BENCH_THREADS ("1,2").
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { Client } from '../index.js'

const dataPath = process.env.BENCH_DATA ?? resolve(__dirname, '../../shared/data/glove50.base.fbin')
const threadCounts = (process.env.BENCH_THREADS ?? '1,2').split(',').map(Number)

function vectors(): { n: number; dim: number; data: Float32Array } {
  if (!existsSync(dataPath)) {
    console.log(`${dataPath} not found: using 200000 generated 50-d vectors`)
    return { n: 200_000, dim: 50, data: new Float32Array(200_000 * 50).map((_, i) => Math.sin(i)) }
  }
  const buf = readFileSync(dataPath)
  const n = buf.readInt32LE(0)
  const dim = buf.readInt32LE(4)
  return { n, dim, data: new Float32Array(buf.buffer.slice(buf.byteOffset + 8, buf.byteOffset + 8 + n * dim * 4)) }
}

async function main() {
  const { n, dim, data } = vectors()
  const dir = mkdtempSync(join(tmpdir(), 'ciphervec-load-'))
  try {
    const key = Client.generateKey()
    const ids = Array.from({ length: n }, (_, i) => `doc-${i}`)
    const metadata = ids.map((_, i) => ({ lang: ['en', 'de', 'fr'][i % 3], year: 1990 + (i % 30) }))
    let t0 = performance.now()
    const writer = await Client.open({ storage: { kind: 'disk', path: dir } })
    const index = await writer.createIndex({ indexName: 'load', indexKey: key, dimension: dim, autoTrain: false })
    let slowest = 0
    for (let s = 0; s < n; s += 50_000) {
      const e = Math.min(n, s + 50_000)
      const t = performance.now()
      await index.upsert({ ids: ids.slice(s, e), vectors: data.subarray(s * dim, e * dim), metadata: metadata.slice(s, e) })
      slowest = Math.max(slowest, performance.now() - t)
    }
    const ingest = (performance.now() - t0) / 1000
    // Writes start background compactions; wait for the last, then pack what is left, so every
    // load below reads the same all-segment store (the steady state of a large index).
    while (index.isCompacting()) await new Promise((r) => setTimeout(r, 50))
    const fileBytes = () => statSync(join(dir, 'ciphervec.redb')).size
    const ingested = fileBytes()
    t0 = performance.now()
    await index.compact()
    const compact = (performance.now() - t0) / 1000
    await writer.close()
    const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`
    console.log(`data: ${n} x ${dim} with metadata; durable ingest in 50k batches ${ingest.toFixed(2)} s (${(n / ingest).toFixed(0)} items/s, background compactions included; slowest upsert ${(slowest / 1000).toFixed(2)} s); store file ${mb(ingested)}; final compact() (and file shrink) ${compact.toFixed(2)} s, store file ${mb(fileBytes())}`)
    console.log('GB/s: the packed store file (its sealed entries and the B-tree around them, nothing unused after the shrink) over the load time.')
    console.log('The file of the mixed store also holds pages redb set aside while it grew, so no GB/s for it: the core example measures its entries exactly.')
    console.log('| store | file | threads | loadIndex s | items/s | GB/s |')
    console.log('|---|---|---|---|---|---|')
    const loads = (store: string, count: number, perSecond: boolean) => {
      const bytes = fileBytes()
      for (const threads of threadCounts) {
        const runs = [0, 1, 2].map(() => {
          const out = execFileSync(process.execPath, [...process.execArgv, __filename, 'load-only', dir, String(threads)], {
            env: { ...process.env, BENCH_KEY: Buffer.from(key).toString('hex') },
            encoding: 'utf8',
          })
          const { seconds, count: loaded } = JSON.parse(out.trim().split('\n').pop()!)
          if (loaded !== count) throw new Error(`count mismatch after load: ${loaded} != ${count}`)
          return seconds as number
        })
        const s = runs.sort((a, b) => a - b)[1]
        console.log(`| ${store} | ${mb(bytes)} | ${threads} | ${s.toFixed(2)} (runs: ${runs.map((r) => r.toFixed(2)).join(', ')}) | ${(count / s).toFixed(0)} | ${perSecond ? (bytes / 1e9 / s).toFixed(2) : '-'} |`)
      }
    }
    loads(`${n} packed`, n, true)
    // Half as many items again, as loose records: below the automatic compaction threshold
    // (loose entries at least half the items), so they stay loose.
    const extra = Math.floor(n / 2)
    const again = await Client.open({ storage: { kind: 'disk', path: dir } })
    const reopened = await again.loadIndex({ indexName: 'load', indexKey: key, autoTrain: false })
    for (let s = 0; s < extra; s += 50_000) {
      const e = Math.min(extra, s + 50_000)
      const newIds = Array.from({ length: e - s }, (_, i) => `new-${s + i}`)
      await reopened.upsert({ ids: newIds, vectors: data.subarray(s * dim, e * dim), metadata: metadata.slice(s, e) })
    }
    if (reopened.isCompacting()) throw new Error('the loose records were compacted: the mixed store is not mixed')
    await again.close()
    loads(`${n} packed + ${extra} loose`, n + extra, false)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Child process: open the store, time one loadIndex, print JSON. */
async function loadOnly(dir: string, threads: number) {
  const key = Buffer.from(process.env.BENCH_KEY!, 'hex')
  const client = await Client.open({ storage: { kind: 'disk', path: dir }, threads })
  const t0 = performance.now()
  const loaded = await client.loadIndex({ indexName: 'load', indexKey: key, autoTrain: false })
  const seconds = (performance.now() - t0) / 1000
  console.log(JSON.stringify({ seconds, count: await loaded.count() }))
  await client.close()
}

;(process.argv[2] === 'load-only' ? loadOnly(process.argv[3], Number(process.argv[4])) : main()).catch((e) => {
  console.error(e)
  process.exit(1)
})
