// queryBatch result layouts, rows against columns, in the same run: the whole call and the JS
// thread's busy time inside it (event-loop utilisation: building results runs there and does
// not scale with the pool), per case, alternating the layouts.
//
// Run: `npm run bench:results`. Env: BENCH_DATA (default ../shared/data/glove50),
// BENCH_THREADS (2), BENCH_ROUNDS (5), BENCH_QUERIES (10000).
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { resolve } from 'node:path'

import { Client, type IncludeField, type QueryLayout } from '../index.js'

const base = process.env.BENCH_DATA ?? resolve(__dirname, '../../shared/data/glove50')
const threads = Number(process.env.BENCH_THREADS ?? 2)
const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
const nQueries = Number(process.env.BENCH_QUERIES ?? 10_000)

function floats(path: string): { rows: number; cols: number; data: Float32Array } {
  const buf = readFileSync(path)
  const copy = Buffer.from(buf.subarray(8))
  return { rows: buf.readInt32LE(0), cols: buf.readInt32LE(4), data: new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4) }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  const b = floats(`${base}.base.fbin`)
  const q = floats(`${base}.query.fbin`)
  const dim = b.cols
  const queries = q.data.subarray(0, Math.min(nQueries, q.rows) * dim)
  const client = await Client.open({ storage: { kind: 'memory' }, threads })
  const index = await client.createIndex({ indexName: 'results', indexKey: Client.generateKey(), dimension: dim, autoTrain: false })
  const ids = Array.from({ length: b.rows }, (_, i) => `doc-${i}`)
  await index.upsert({ ids, vectors: b.data, metadata: ids.map((_, i) => ({ bucket: i % 10, year: 2000 + (i % 25) })) })
  await index.train({ nLists: 1024, seed: 1 })

  const cases: Array<{ name: string; topK: number; nProbes: number; include: IncludeField[] }> = [
    { name: 'topK 10, nProbes 8', topK: 10, nProbes: 8, include: ['distance'] },
    { name: 'topK 100, nProbes 8', topK: 100, nProbes: 8, include: ['distance'] },
    { name: 'topK 10, nProbes 8, + metadata', topK: 10, nProbes: 8, include: ['distance', 'metadata'] },
    { name: 'topK 10, nProbes 8, + vector', topK: 10, nProbes: 8, include: ['distance', 'vector'] },
    { name: 'topK 10, nProbes 64 (default)', topK: 10, nProbes: 64, include: ['distance'] },
  ]
  const layouts: QueryLayout[] = ['rows', 'columns']
  console.log(`${b.rows} × ${dim}, ${queries.length / dim} queries per batch, ${threads} threads, ${rounds} rounds (median)`)
  console.log('| case | rows: call ms | rows: JS thread ms | columns: call ms | columns: JS thread ms | call columns/rows | JS thread columns/rows | results |')
  console.log('|---|---|---|---|---|---|---|---|')
  for (const c of cases) {
    const call: Record<string, number[]> = { rows: [], columns: [] }
    const busy: Record<string, number[]> = { rows: [], columns: [] }
    let results = 0
    for (let r = 0; r < rounds + 1; r++) {
      for (const layout of r % 2 === 0 ? layouts : [...layouts].reverse()) {
        const t0 = performance.now()
        const u0 = performance.eventLoopUtilization()
        const out = await index.queryBatch({ vectors: queries, topK: c.topK, nProbes: c.nProbes, include: c.include, layout })
        const u = performance.eventLoopUtilization(u0)
        const ms = performance.now() - t0
        results = Array.isArray(out) ? out.reduce((a, l) => a + l.length, 0) : out.ids.length
        if (r > 0) {
          // Round 0 warms both paths up.
          call[layout].push(ms)
          busy[layout].push(u.active)
        }
      }
    }
    const [cr, cc, br, bc] = [median(call.rows), median(call.columns), median(busy.rows), median(busy.columns)]
    console.log(
      `| ${c.name} | ${cr.toFixed(0)} | ${br.toFixed(0)} | ${cc.toFixed(0)} | ${bc.toFixed(0)} | ${(cc / cr).toFixed(2)}× | ${(bc / br).toFixed(2)}× | ${results} |`,
    )
  }
  await client.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
