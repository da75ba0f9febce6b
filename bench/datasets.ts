// The benchmarks' data sets: glove50 (real word embeddings, shared data) and a generated 384-d
// clustered set shaped like sentence embeddings, with exact ground truth.
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { Client } from '../index.js'
import { type Dataset, gaussian, readDataset, rng, ROOT, siblings, writeDataset } from './common.js'

const SEED = 1

/** glove50 from `file` (its .query/.gt siblings beside it), or null with a note if missing. */
export function glove(file: string): Dataset | null {
  const ds = readDataset('glove50', siblings(file))
  if (!ds) console.log(`NOTE: ${file} not found: glove50 skipped`)
  return ds
}

/** 100,000 × 384 unit vectors in a two-level hierarchy (100 topics × 100 sub-topics of ~10
 * vectors each), like sentence embeddings: far more sub-topics than lists, so lists cut through
 * them and recall depends on nProbes. Ground truth is an
 * exhaustive (exact) ciphervec query of an untrained index. Written to bench/data/ so FAISS
 * reads the same bytes. */
export async function clustered384(client: Client, queries: number): Promise<Dataset> {
  const [n, nq, dim, topics, subs] = [100_000, Math.min(queries, 2000), 384, 100, 100]
  const dir = path.join(ROOT, 'bench', 'data')
  const files = { base: path.join(dir, 'clustered384.base.fbin'), query: path.join(dir, 'clustered384.query.fbin'), gt: path.join(dir, 'clustered384.gt.ibin') }
  // Generated once: the set is deterministic, and its ground truth costs an exhaustive scan.
  const cached = readDataset('clustered384', files)
  if (cached && cached.query.rows >= nq) return cached
  const next = rng(SEED)
  const centres = new Float32Array(topics * subs * dim)
  for (let t = 0; t < topics; t++) {
    const topic = Float32Array.from({ length: dim }, () => gaussian(next))
    for (let s = 0; s < subs; s++) {
      for (let j = 0; j < dim; j++) centres[(t * subs + s) * dim + j] = topic[j] + 0.6 * gaussian(next)
    }
  }
  const points = (count: number) => {
    const out = new Float32Array(count * dim)
    for (let i = 0; i < count; i++) {
      const c = Math.floor(next() * topics * subs)
      let norm = 0
      for (let j = 0; j < dim; j++) {
        const v = centres[c * dim + j] + 1.0 * gaussian(next)
        out[i * dim + j] = v
        norm += v * v
      }
      const inv = 1 / Math.sqrt(norm)
      for (let j = 0; j < dim; j++) out[i * dim + j] *= inv
    }
    return out
  }
  const base = points(n)
  const query = points(nq)
  const index = await client.createIndex({ indexName: 'gt384', indexKey: Client.generateKey(), dimension: dim, autoTrain: false })
  await index.upsert({ ids: Array.from({ length: n }, (_, i) => String(i)), vectors: base })
  const found = await index.queryBatch({ vectors: query, topK: 100 })
  await index.deleteIndex()
  const gt = new Int32Array(nq * 100)
  found.forEach((rows, q) => rows.forEach((r, j) => (gt[q * 100 + j] = Number(r.id))))
  mkdirSync(dir, { recursive: true })
  const ds: Dataset = {
    name: 'clustered384',
    files,
    base: { rows: n, cols: dim, data: base },
    query: { rows: nq, cols: dim, data: query },
    gt: { rows: nq, cols: 100, data: gt },
  }
  writeDataset(ds)
  return ds
}

