// The main job: an encrypted index of 100k vectors with metadata on the embedded disk store —
// ingest, exact queries, IVF training, trained and filtered queries with their recall, then a
// restart (reopen + load). Run with `npm run demo`; DEMO_PATH sets the directory
// (default ./demo-data, recreated on every run).
import { rmSync } from 'node:fs'

import { Client } from '../index.js'

const N = Number(process.env.DEMO_N ?? 100_000)
const DIM = Number(process.env.DEMO_DIM ?? 128)
const QUERIES = 1_000
const PATH = process.env.DEMO_PATH ?? 'demo-data'

/** Clustered data: real embeddings are clustered, uniform noise would make IVF look bad. */
function clustered(n: number, dim: number, seed: number): Float32Array {
  let s = seed >>> 0
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)
  const centres = Array.from({ length: 500 }, () => Float32Array.from({ length: dim }, () => next() * 2 - 1))
  const out = new Float32Array(n * dim)
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(next() * centres.length)]
    for (let j = 0; j < dim; j++) out[i * dim + j] = c[j] + 0.25 * (next() - 0.5)
  }
  return out
}

const secs = (t0: number) => ((performance.now() - t0) / 1000).toFixed(2)

async function main() {
  rmSync(PATH, { recursive: true, force: true })
  const indexKey = Client.generateKey()
  const client = await Client.open({ storage: { kind: 'disk', path: PATH } })
  const index = await client.createIndex({ indexName: 'demo', indexKey, dimension: DIM, autoTrain: false })
  const vectors = clustered(N, DIM, 42)
  const ids = Array.from({ length: N }, (_, i) => `doc-${i}`)
  const langs = ['en', 'de', 'fr', 'ja']
  const metadata = ids.map((_, i) => ({ lang: langs[i % 4], year: 2000 + (i % 25) }))

  let t0 = performance.now()
  await index.upsert({ ids, vectors, metadata })
  console.log(`ingest   ${N} vectors (dim ${DIM}) + metadata, sealed with AES-256-GCM, fsynced to ${PATH}/: ${secs(t0)} s`)

  const queries = clustered(QUERIES, DIM, 7)
  t0 = performance.now()
  const exact = await index.queryBatch({ vectors: queries, topK: 10 })
  const exactS = (performance.now() - t0) / 1000
  console.log(`exact    ${QUERIES} top-10 queries (exhaustive scan): ${exactS.toFixed(2)} s, ${(QUERIES / exactS).toFixed(0)} QPS`)

  t0 = performance.now()
  const trained = await index.train({ onProgress: (p) => p.iteration % 10 === 0 && console.log(`         k-means iteration ${p.iteration}, inertia ${p.inertia.toFixed(1)}`) })
  console.log(`train    ${trained.nLists} lists, ${trained.iterations} iterations on ${trained.trainedOn} vectors: ${secs(t0)} s`)

  t0 = performance.now()
  const ivf = await index.queryBatch({ vectors: queries, topK: 10 })
  const ivfS = (performance.now() - t0) / 1000
  let hits = 0
  ivf.forEach((res, q) => {
    const truth = new Set(exact[q].map((h) => h.id))
    hits += res.filter((h) => truth.has(h.id)).length
  })
  console.log(`ivf      ${QUERIES} top-10 queries (default nProbes): ${ivfS.toFixed(2)} s, ${(QUERIES / ivfS).toFixed(0)} QPS, recall@10 ${(hits / (10 * QUERIES)).toFixed(3)} vs exact`)

  t0 = performance.now()
  for (let i = 0; i < 200; i++) await index.query({ vector: queries.subarray(i * DIM, (i + 1) * DIM), topK: 10 })
  console.log(`single   query latency (trained): ${((performance.now() - t0) / 200).toFixed(3)} ms`)

  t0 = performance.now()
  const filtered = await index.queryBatch({ vectors: queries, topK: 10, filters: { lang: 'ja', year: { $gte: 2020 } } })
  const ok = filtered.every((res) => res.length === 10)
  console.log(`filtered ${QUERIES} queries with { lang: 'ja', year: { $gte: 2020 } } (5% of items): ${secs(t0)} s, all returned 10: ${ok}`)

  const [top] = await index.query({ vector: queries.subarray(0, DIM), topK: 1, include: ['distance', 'metadata'] })
  console.log(`result   ${top.id} at distance ${top.distance?.toFixed(4)} with metadata ${JSON.stringify(top.metadata)}`)
  await client.close()

  t0 = performance.now()
  const reopened = await Client.open({ storage: { kind: 'disk', path: PATH } })
  const loaded = await reopened.loadIndex({ indexName: 'demo', indexKey, autoTrain: false })
  const [again] = await loaded.query({ vector: queries.subarray(0, DIM), topK: 1 })
  console.log(`restart  reopen + load (authenticate and decrypt every record): ${secs(t0)} s; ${await loaded.count()} items, trained: ${loaded.isTrained()}, same top hit: ${again.id === top.id}`)
  await reopened.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
