// One pass through what a service does, phase by phase, for A/B runs of two builds: upsert the
// glove50 base into a disk store, train, a query batch, single queries, a filtered batch, close,
// load in the same process. Prints one JSON line of seconds per phase (and recall@10 of the
// batch, so a faster build that answers differently shows; and resident MB after the load).
//
// Run: `npm run bench:phases`. Env: CIPHERVEC_BUILD (directory holding the build's index.js,
// default this checkout), BENCH_DATA (default ../shared/data/glove50), BENCH_THREADS (2),
// BENCH_NLIST (1024), BENCH_ITERS (10), BENCH_PROBES (32).
// An A/B of two checkouts alternates fresh processes, e.g.
//   for i in 1 2 3; do for b in /old /new; do CIPHERVEC_BUILD=$b npm run -s bench:phases; done; done
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const build = resolve(process.env.CIPHERVEC_BUILD ?? resolve(__dirname, '..'))
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Client } = require(join(build, 'index.js')) as typeof import('../index.js')

const base = process.env.BENCH_DATA ?? resolve(__dirname, '../../shared/data/glove50')
const threads = Number(process.env.BENCH_THREADS ?? 2)
const nLists = Number(process.env.BENCH_NLIST ?? 1024)
const maxIters = Number(process.env.BENCH_ITERS ?? 10)
const nProbes = Number(process.env.BENCH_PROBES ?? 32)

function matrix(path: string): { rows: number; cols: number; data: Buffer } {
  const buf = readFileSync(path)
  return { rows: buf.readInt32LE(0), cols: buf.readInt32LE(4), data: buf.subarray(8) }
}

function floats(m: { data: Buffer }): Float32Array {
  const copy = Buffer.from(m.data)
  return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4)
}

async function main() {
  const b = matrix(`${base}.base.fbin`)
  const q = matrix(`${base}.query.fbin`)
  const gt = matrix(`${base}.gt.ibin`)
  const vectors = floats(b)
  const queries = floats(q)
  const truth = new Int32Array(Buffer.from(gt.data).buffer)
  const dim = b.cols
  const ids = Array.from({ length: b.rows }, (_, i) => String(i))
  const metadata = ids.map((_, i) => ({ bucket: i % 10 }))
  const dir = mkdtempSync(join(tmpdir(), 'ciphervec-phases-'))
  const key = Client.generateKey()
  const secs: Record<string, number> = {}
  const time = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    const out = await f()
    secs[name] = Number(((performance.now() - t0) / 1000).toFixed(3))
    return out
  }
  try {
    let client = await Client.open({ storage: { kind: 'disk', path: dir }, threads })
    let index = await client.createIndex({ indexName: 'phases', indexKey: key, dimension: dim, autoTrain: false })
    await time('upsert', async () => {
      const batch = 10_000
      for (let at = 0; at < b.rows; at += batch) {
        const end = Math.min(at + batch, b.rows)
        const items = []
        for (let i = at; i < end; i++) {
          items.push({ id: ids[i], vector: vectors.subarray(i * dim, (i + 1) * dim), metadata: metadata[i] })
        }
        await index.upsert({ items })
      }
    })
    await time('train', () => index.train({ nLists, maxIters }))
    const hits = await time('queryBatch', () => index.queryBatch({ vectors: queries, topK: 10, nProbes, include: [] }))
    let found = 0
    hits.forEach((row, qi) => {
      const want = new Set(Array.from(truth.subarray(qi * gt.cols, qi * gt.cols + 10), String))
      found += row.filter((h) => want.has(h.id)).length
    })
    const single = 1000
    await time('query1000', async () => {
      for (let i = 0; i < single; i++) {
        await index.query({ vector: queries.subarray(i * dim, (i + 1) * dim), topK: 10, nProbes, include: [] })
      }
    })
    await time('filteredBatch', () =>
      index.queryBatch({ vectors: queries.subarray(0, 1000 * dim), topK: 10, nProbes, filters: { bucket: 3 }, include: [] }),
    )
    await time('close', () => client.close())
    client = await Client.open({ storage: { kind: 'disk', path: dir }, threads })
    index = await time('load', () => client.loadIndex({ indexName: 'phases', indexKey: key }))
    if ((await index.count()) !== b.rows) throw new Error('the loaded index lost items')
    // Resident memory with the loaded index (the JS copies of the data set count in both builds).
    const rssMB = Math.round(process.memoryUsage().rss / 2 ** 20)
    await client.close()
    const recall = Number((found / (q.rows * 10)).toFixed(4))
    console.log(JSON.stringify({ build, ...secs, recall, rssMB }))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
