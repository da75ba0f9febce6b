// The main job: create an encrypted index, ingest 100k vectors with metadata, query, time it.
// Run with `npm run demo` (after `npm install`).
import { Client } from '../index.js'

const N = Number(process.env.DEMO_N ?? 100_000)
const DIM = Number(process.env.DEMO_DIM ?? 128)
const QUERIES = 1_000

function randomVectors(n: number, dim: number, seed: number): Float32Array {
  let s = seed >>> 0
  const out = new Float32Array(n * dim)
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s / 2 ** 31 - 1
  }
  return out
}

function ms(t0: number): string {
  return `${(performance.now() - t0).toFixed(0)} ms`
}

async function main() {
  const client = await Client.open({ storage: { kind: 'memory' } })
  const index = await client.createIndex({ indexName: 'demo', indexKey: Client.generateKey(), dimension: DIM })
  const vectors = randomVectors(N, DIM, 42)
  const ids = Array.from({ length: N }, (_, i) => `doc-${i}`)
  const langs = ['en', 'de', 'fr', 'ja']
  const metadata = ids.map((_, i) => ({ lang: langs[i % 4], year: 2000 + (i % 25) }))

  let t0 = performance.now()
  const { upsertedCount } = await index.upsert({ ids, vectors, metadata })
  const ingestMs = performance.now() - t0
  console.log(`ingest: ${upsertedCount} vectors of dimension ${DIM} sealed with AES-256-GCM in ${ingestMs.toFixed(0)} ms (${((upsertedCount / ingestMs) * 1000).toFixed(0)} vectors/s)`)

  const queries = randomVectors(QUERIES, DIM, 7)
  t0 = performance.now()
  await index.queryBatch({ vectors: queries, topK: 10 })
  const batchMs = performance.now() - t0
  console.log(`queryBatch: ${QUERIES} exact top-10 queries in ${batchMs.toFixed(0)} ms (${((QUERIES / batchMs) * 1000).toFixed(0)} QPS)`)

  t0 = performance.now()
  let hits = await index.query({ vector: queries.subarray(0, DIM), topK: 10, include: ['distance', 'metadata'] })
  for (let i = 1; i < 100; i++) hits = await index.query({ vector: queries.subarray(i * DIM, (i + 1) * DIM), topK: 10 })
  console.log(`query: 100 single exact queries, ${((performance.now() - t0) / 100).toFixed(2)} ms each`)

  t0 = performance.now()
  const got = await index.get({ ids: ids.slice(0, 1000), include: ['metadata', 'vector'] })
  console.log(`get: ${got.length} items with metadata and vectors in ${ms(t0)}`)
  console.log(`count: ${await index.count()}; top hit of the last query: ${hits[0].id} at distance ${hits[0].distance?.toFixed(4)}`)
  await client.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
