// Full-text (BM25) benchmark on the WordNet 3.1 glosses (117,791 short texts; issue 17): on one
// run, (a) durable ingest of every gloss into an index with `textFields: ['contents', 'title']`
// against the same ingest without text fields, (b) loadIndex of both from their disk stores (fresh
// child processes, median of BENCH_LOADS), (c) the working set by structure (`stats().memory`),
// (d) latency of single `queryMetadata({ text, topK: 10 })` calls and their throughput with
// BENCH_CONCURRENCY promises in flight, (e) a hybrid `query({ vector, text, topK: 10 })` against
// a plain vector query on the same index; then top-10 agreement with a reference BM25 in Python
// (bench/bm25_reference.py in bench/.venv: our formula written out independently, and
// rank_bm25's BM25Okapi as it is), over the same tokens.
// Run: `npm run bench:text`. Env: BENCH_QUERIES (500), BENCH_CONCURRENCY (8), BENCH_INGESTS (3),
// BENCH_LOADS (5), BENCH_REFERENCE (1; 0 skips Python).
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { Client, type EncryptedIndex, type MemoryStats } from '../index.js'
import { rng, ROOT } from './common.js'
import { type Gloss, wordnetGlosses } from './datasets.js'

const nQueries = Number(process.env.BENCH_QUERIES ?? 500)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8)
const nIngests = Number(process.env.BENCH_INGESTS ?? 3)
const nLoads = Number(process.env.BENCH_LOADS ?? 5)
const withReference = process.env.BENCH_REFERENCE !== '0'
const DIM = 8
const BATCH = 10_000
const SEED = 17
const DATA = path.join(ROOT, 'bench', 'data')
const VENV = path.join(ROOT, 'bench', '.venv')
const PYTHON = path.join(VENV, 'bin', 'python')
/** The reference's packages, pinned. snowballstemmer 2.2.0 stems all 80,518 distinct words of
 * this corpus as rust-stemmers 1.2.0 does (checked once, word by word); 3.0.x does not: Snowball
 * 3.0 changed English (157 of them differ: "organization" organ → organiz, "added" ad → add,
 * "biologist" biologist → biolog, ...). */
const PY_PACKAGES = ['rank-bm25==0.2.2', 'snowballstemmer==2.2.0']

/** Lucene's English stopwords, as in crates/ciphervec-core/src/meta/text/analyzer.rs (only to
 * pick the queries' content words here; the reference has its own copy). */
const STOPWORDS = new Set(
  'a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with'.split(' '),
)

/** A cheap deterministic vector per id (FNV-1a of the id seeds the PRNG): the benchmark is about
 * text; the vectors only make hybrid queries possible. */
function vectorOf(id: string): Float32Array {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  const next = rng(h >>> 0)
  return Float32Array.from({ length: DIM }, () => next() * 2 - 1)
}

interface Query {
  text: string
  /** The gloss it was taken from (its vector is the hybrid query's). */
  source: string
}

/** 2–4 content words (not stopwords) of random glosses, in their order, fixed seed. */
function makeQueries(docs: Gloss[]): Query[] {
  const next = rng(SEED)
  const out: Query[] = []
  while (out.length < nQueries) {
    const doc = docs[Math.floor(next() * docs.length)]
    const words = doc.contents.split(/[^\p{L}\p{N}]+/u).filter((w) => w !== '' && !STOPWORDS.has(w.toLowerCase()))
    if (words.length < 2) continue
    const k = Math.min(words.length, 2 + Math.floor(next() * 3))
    const picked = new Set<number>()
    while (picked.size < k) picked.add(Math.floor(next() * words.length))
    out.push({ text: [...picked].sort((a, b) => a - b).map((i) => words[i]).join(' '), source: doc.id })
  }
  return out
}

const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`

/** Creates (or fills) the index `wordnet` in a new disk store: every gloss, BATCH per upsert;
 * the seconds of the upserts, then waits for background compactions and packs the rest. */
async function ingest(docs: Gloss[], text: boolean): Promise<{ dir: string; key: Uint8Array; seconds: number; memory: MemoryStats; count: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), `ciphervec-text-${text ? 'fts' : 'plain'}-`))
  const key = Client.generateKey()
  const client = await Client.open({ storage: { kind: 'disk', path: dir } })
  const index = await client.createIndex({
    indexName: 'wordnet',
    indexKey: key,
    dimension: DIM,
    autoTrain: false,
    ...(text ? { textFields: ['contents', 'title'] } : {}),
  })
  const vectors = new Float32Array(docs.length * DIM)
  docs.forEach((d, i) => vectors.set(vectorOf(d.id), i * DIM))
  const t0 = performance.now()
  for (let s = 0; s < docs.length; s += BATCH) {
    const part = docs.slice(s, s + BATCH)
    await index.upsert({
      ids: part.map((d) => d.id),
      vectors: vectors.subarray(s * DIM, (s + part.length) * DIM),
      metadata: part.map((d) => ({ title: d.title })),
      contents: part.map((d) => d.contents),
    })
  }
  const seconds = (performance.now() - t0) / 1000
  while (index.isCompacting()) await new Promise((r) => setTimeout(r, 50))
  await index.compact()
  const { memory } = await index.stats()
  const count = await index.count()
  await client.close()
  return { dir, key, seconds, memory, count }
}

/** Child process: opens the store, times one loadIndex, prints JSON. */
async function loadOnly(dir: string) {
  const key = Buffer.from(process.env.BENCH_KEY!, 'hex')
  const client = await Client.open({ storage: { kind: 'disk', path: dir } })
  const t0 = performance.now()
  const index = await client.loadIndex({ indexName: 'wordnet', indexKey: key })
  const seconds = (performance.now() - t0) / 1000
  const { memory } = await index.stats()
  console.log(JSON.stringify({ seconds, count: await index.count(), textIndexBytes: memory.textIndexBytes }))
  await client.close()
}

function loadInChild(dir: string, key: Uint8Array): { seconds: number; count: number; textIndexBytes: number } {
  const out = execFileSync(process.execPath, [...process.execArgv, __filename, 'load-only', dir], {
    env: { ...process.env, BENCH_KEY: Buffer.from(key).toString('hex') },
    encoding: 'utf8',
  })
  return JSON.parse(out.trim().split('\n').pop()!)
}

interface Timing {
  mean: number
  median: number
  p95: number
  qps: number
}

/** Sequential single calls (µs each: mean, median, p95), then the same calls with `concurrency` in
 * flight, repeated for at least a second (queries per second). */
async function time(calls: Array<() => Promise<unknown>>): Promise<Timing> {
  for (const call of calls.slice(0, 50)) await call() // warm-up
  const us: number[] = []
  for (const call of calls) {
    const t = performance.now()
    await call()
    us.push((performance.now() - t) * 1000)
  }
  us.sort((a, b) => a - b)
  let done = 0
  const t0 = performance.now()
  while (performance.now() - t0 < 1000 || done < calls.length) {
    let next = 0
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < calls.length) await calls[next++]()
      }),
    )
    done += calls.length
  }
  return { mean: us.reduce((a, b) => a + b, 0) / us.length, median: percentile(us, 0.5), p95: percentile(us, 0.95), qps: done / ((performance.now() - t0) / 1000) }
}

/** Creates bench/.venv if missing and installs the reference's packages unless it has them at
 * the pinned versions. */
function ensureVenv(): boolean {
  const check = `import rank_bm25, snowballstemmer; from importlib.metadata import version as v; assert [v('rank-bm25'), v('snowballstemmer')] == ${JSON.stringify(PY_PACKAGES.map((p) => p.split('==')[1]))}`
  const ok = () => existsSync(PYTHON) && spawnSync(PYTHON, ['-c', check], { stdio: 'ignore' }).status === 0
  if (ok()) return true
  console.log(`[reference] pip install ${PY_PACKAGES.join(' ')} into bench/.venv ...`)
  if (!existsSync(PYTHON) && spawnSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' }).status !== 0) return false
  if (spawnSync(path.join(VENV, 'bin', 'pip'), ['install', '--quiet', ...PY_PACKAGES], { stdio: 'inherit' }).status !== 0) return false
  return ok()
}

type Ranked = Array<[string, number]>

interface Reference {
  /** Per query: the top 10 by our formula, computed independently in Python. */
  own: Ranked[]
  /** Per query: that reference's score of each of our results (null: it holds no query term). */
  ownOfOurs: Array<Array<number | null>>
  /** Per query: the same with k1 = 1.2 exactly (ours stores k1 as f32): the largest relative
   * difference from our scores. */
  ownExactK1Diff: number
  /** Per query: rank_bm25's BM25Okapi top 10, as it is (its own idf). */
  okapi: Ranked[]
  /** rank_bm25's machinery with our idf (a BM25Okapi subclass): largest |score − own|. */
  rankBm25OwnIdfDiff: number
  /** Distinct terms, tokens and documents it indexed per field. */
  fields: Record<string, { terms: number; tokens: number; docs: number }>
  seconds: Record<string, number>
}

/** Runs bench/bm25_reference.py on the documents and queries (JSON files in bench/data). */
function reference(docs: Gloss[], queries: Query[], ours: Ranked[]): Reference | null {
  if (!ensureVenv()) {
    console.log('[reference] SKIPPED: could not set up bench/.venv with rank-bm25 and snowballstemmer (see the pip output above)')
    return null
  }
  const files = {
    docs: path.join(DATA, 'bm25.docs.json'),
    queries: path.join(DATA, 'bm25.queries.json'),
    ours: path.join(DATA, 'bm25.ours.json'),
    out: path.join(DATA, 'bm25.reference.json'),
  }
  writeFileSync(files.docs, JSON.stringify(docs.map((d) => [d.id, d.contents, d.title])))
  writeFileSync(files.queries, JSON.stringify(queries.map((q) => q.text)))
  writeFileSync(files.ours, JSON.stringify(ours))
  rmSync(files.out, { force: true })
  const script = path.join(ROOT, 'bench', 'bm25_reference.py')
  const r = spawnSync(PYTHON, [script, files.docs, files.queries, files.ours, files.out, '--k1', '1.2', '--b', '0.75'], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`bm25_reference.py exited with ${r.status}`)
  return JSON.parse(readFileSync(files.out, 'utf8')) as Reference
}

/** Same score within float rounding (sums taken in another order). */
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b))

function agreement(queries: Query[], ours: Ranked[], ref: Reference) {
  let overlapOwn = 0
  let overlapOkapi = 0
  let identicalOwn = 0
  let identicalOkapi = 0
  let differOkapi = 0
  let maxRel = 0
  let realMisses = 0
  const lines: string[] = []
  ours.forEach((mine, q) => {
    const own = ref.own[q]
    const okapi = ref.okapi[q]
    const denom = Math.max(1, Math.min(10, Math.max(mine.length, own.length)))
    const ownIds = new Set(own.map(([id]) => id))
    const okapiIds = new Set(okapi.map(([id]) => id))
    const hitsOwn = mine.filter(([id]) => ownIds.has(id)).length
    overlapOwn += hitsOwn / denom
    overlapOkapi += mine.filter(([id]) => okapiIds.has(id)).length / Math.max(1, Math.min(10, Math.max(mine.length, okapi.length)))
    if (mine.length === own.length && mine.every(([id], i) => id === own[i][0])) identicalOwn++
    if (mine.length === okapi.length && mine.every(([id], i) => id === okapi[i][0])) identicalOkapi++
    if (mine.some(([id]) => !okapiIds.has(id)) || okapi.length !== mine.length) differOkapi++
    mine.forEach(([id, score], i) => {
      const theirs = ref.ownOfOurs[q][i]
      const rel = theirs === null ? Infinity : Math.abs(score - theirs) / Math.max(1e-300, Math.abs(theirs))
      maxRel = Math.max(maxRel, rel)
      if (theirs === null || !close(score, theirs)) lines.push(`  query ${q} "${queries[q].text}": ${id} ours ${score} reference ${theirs}`)
    })
    // A result outside the reference's top 10 is a real disagreement only if the reference
    // scores it below its own 10th (not a tie broken by id after rounding).
    const tenth = own.length ? own[own.length - 1][1] : 0
    for (const [id, score] of mine) {
      if (!ownIds.has(id) && !close(score, tenth)) {
        realMisses++
        lines.push(`  query ${q} "${queries[q].text}": ours has ${id} (${score}) outside the reference's top 10 (10th: ${own[own.length - 1]?.[0]} ${tenth})`)
      }
    }
    if (mine.length !== own.length) lines.push(`  query ${q} "${queries[q].text}": ${mine.length} results, reference ${own.length}`)
  })
  const n = ours.length
  return { overlapOwn: overlapOwn / n, overlapOkapi: overlapOkapi / n, identicalOwn, identicalOkapi, differOkapi, maxRel, realMisses, lines }
}

async function main() {
  const started = performance.now()
  console.log(`load: ${uptime()}`)
  const docs = wordnetGlosses()
  const chars = docs.reduce((s, d) => s + d.contents.length + d.title.length, 0)
  console.log(`corpus: WordNet 3.1 glosses, ${docs.length} documents, ${mb(chars)} of text (contents + title), mean ${(chars / docs.length).toFixed(0)} chars`)
  const queries = makeQueries(docs)
  const words = queries.reduce((s, q) => s + q.text.split(' ').length, 0)
  console.log(`queries: ${queries.length} (2–4 content words of random glosses, seed ${SEED}; mean ${(words / queries.length).toFixed(2)} words), e.g. ${queries.slice(0, 3).map((q) => `"${q.text}"`).join(', ')}`)

  // (a) ingest, alternating, nIngests times each; the last stores are kept for the loads.
  const runs: Record<'fts' | 'plain', Awaited<ReturnType<typeof ingest>>[]> = { fts: [], plain: [] }
  for (let rep = 0; rep < nIngests; rep++) {
    for (const kind of ['fts', 'plain'] as const) {
      const r = await ingest(docs, kind === 'fts')
      if (r.count !== docs.length) throw new Error(`count ${r.count} != ${docs.length}`)
      runs[kind].push(r)
      console.log(`ingest ${kind === 'fts' ? "textFields ['contents', 'title']" : 'no text fields'}: ${r.seconds.toFixed(2)} s`)
    }
  }
  for (const kind of ['fts', 'plain'] as const) for (const r of runs[kind].slice(0, -1)) rmSync(r.dir, { recursive: true, force: true })
  const fts = runs.fts[nIngests - 1]
  const plain = runs.plain[nIngests - 1]
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  try {
    const ing = (k: 'fts' | 'plain') => med(runs[k].map((r) => r.seconds))
    console.log(`\n### Ingest (durable upserts of ${BATCH} items each, disk store; median of ${nIngests}, alternating)\n`)
    console.log('| index | ingest s (median) | runs | items/s |')
    console.log('|---|---|---|---|')
    for (const k of ['plain', 'fts'] as const) {
      console.log(`| ${k === 'fts' ? "textFields ['contents', 'title']" : 'no text fields'} | ${ing(k).toFixed(2)} | ${runs[k].map((r) => r.seconds.toFixed(2)).join(', ')} | ${(docs.length / ing(k)).toFixed(0)} |`)
    }
    console.log(`ratio (with / without): ${(ing('fts') / ing('plain')).toFixed(2)}×`)

    // (b) loads in fresh processes, alternating.
    const loads: Record<'fts' | 'plain', number[]> = { fts: [], plain: [] }
    for (let i = 0; i < nLoads; i++) {
      for (const [k, r] of [['fts', fts], ['plain', plain]] as const) {
        const l = loadInChild(r.dir, r.key)
        if (l.count !== docs.length) throw new Error(`loaded ${l.count} != ${docs.length}`)
        if (k === 'plain' && l.textIndexBytes !== 0) throw new Error('text index without text fields')
        if (k === 'fts' && l.textIndexBytes === 0) throw new Error('no text index after load')
        loads[k].push(l.seconds)
      }
    }
    console.log(`\n### loadIndex from the packed disk store (fresh process each, median of ${nLoads})\n`)
    console.log('| index | loadIndex s (median) | runs |')
    console.log('|---|---|---|')
    for (const k of ['plain', 'fts'] as const) console.log(`| ${k === 'fts' ? 'with text fields' : 'no text fields'} | ${med(loads[k]).toFixed(3)} | ${loads[k].map((s) => s.toFixed(3)).join(', ')} |`)
    const share = 1 - med(loads.plain) / med(loads.fts)
    console.log(`ratio ${(med(loads.fts) / med(loads.plain)).toFixed(2)}×: the text index is ~${(share * 100).toFixed(0)} % of the load with text fields`)

    // (c) memory.
    console.log('\n### Working set (stats().memory, after ingest and compact)\n')
    console.log('| index | vectors | metadata | contents | ids | text index | total |')
    console.log('|---|---|---|---|---|---|---|')
    for (const [k, r] of [['no text fields', plain], ['with text fields', fts]] as const) {
      const m = r.memory
      console.log(`| ${k} | ${mb(m.vectorsBytes)} | ${mb(m.metadataBytes)} | ${mb(m.contentsBytes)} | ${mb(m.idsBytes)} | ${mb(m.textIndexBytes)} | ${mb(m.totalBytes)} |`)
    }
    console.log(`text index: ${(fts.memory.textIndexBytes / docs.length).toFixed(0)} bytes per document, ${(fts.memory.textIndexBytes / chars).toFixed(2)}× the text it indexes`)

    // (d), (e) queries on the index with text fields, loaded in this process.
    const client = await Client.open({ storage: { kind: 'disk', path: fts.dir } })
    const index: EncryptedIndex = await client.loadIndex({ indexName: 'wordnet', indexKey: fts.key })
    const ours: Ranked[] = []
    for (const q of queries) ours.push((await index.queryMetadata({ text: q.text, topK: 10 })).map((m) => [m.id, m.score!]))
    const rows: Array<[string, Timing]> = [
      ['queryMetadata({ text, topK: 10 })', await time(queries.map((q) => () => index.queryMetadata({ text: q.text, topK: 10 })))],
      ['queryMetadata({ text, requireAllTerms: true, topK: 10 })', await time(queries.map((q) => () => index.queryMetadata({ text: q.text, requireAllTerms: true, topK: 10 })))],
      ['query({ vector, topK: 10 }) (exact, untrained)', await time(queries.map((q) => () => index.query({ vector: vectorOf(q.source), topK: 10 })))],
      ['query({ vector, text, topK: 10 }) (hybrid)', await time(queries.map((q) => () => index.query({ vector: vectorOf(q.source), text: q.text, topK: 10 })))],
    ]
    await client.close()
    const matches = ours.map((r) => r.length)
    console.log(`\n### Queries (${queries.length}; single: sequential awaits from Node; QPS: ${concurrency} promises in flight)\n`)
    console.log('| call | mean µs | median µs | p95 µs | QPS ×' + concurrency + ' |')
    console.log('|---|---|---|---|---|')
    for (const [name, t] of rows) console.log(`| ${name} | ${t.mean.toFixed(0)} | ${t.median.toFixed(0)} | ${t.p95.toFixed(0)} | ${t.qps.toFixed(0)} |`)
    console.log(`hybrid / vector: median ${(rows[3][1].median / rows[2][1].median).toFixed(2)}×, QPS ${(rows[2][1].qps / rows[3][1].qps).toFixed(2)}× fewer; queries with < 10 text results: ${matches.filter((m) => m < 10).length}`)

    // Agreement with the reference.
    if (withReference) {
      const t0 = performance.now()
      const ref = reference(docs, queries, ours)
      if (ref) {
        const a = agreement(queries, ours, ref)
        console.log(`\n### Top-10 agreement with a reference BM25 (Python, same tokens; ${((performance.now() - t0) / 1000).toFixed(0)} s)\n`)
        console.log(`reference index: ${Object.entries(ref.fields).map(([f, s]) => `${f}: ${s.docs} docs, ${s.tokens} tokens, ${s.terms} terms`).join('; ')}`)
        console.log('| reference | mean top-10 overlap | identical top-10 lists (ids and order) | notes |')
        console.log('|---|---|---|---|')
        console.log(`| our formula, independent Python | ${a.overlapOwn.toFixed(4)} | ${a.identicalOwn} / ${queries.length} | max relative score difference ${a.maxRel.toExponential(1)}; results outside its top 10 that are not ties: ${a.realMisses} |`)
        console.log(`| rank_bm25 BM25Okapi (k1 1.2, b 0.75, ε 0.25) as is | ${a.overlapOkapi.toFixed(4)} | ${a.identicalOkapi} / ${queries.length} | ${a.differOkapi} queries with another set of 10; its idf ln((N − df + 0.5)/(df + 0.5)), floored at ε × mean idf |`)
        console.log(`rank_bm25 with our idf (subclass) vs the independent reference: max |Δscore| ${ref.rankBm25OwnIdfDiff.toExponential(1)}; with k1 = 1.2 exactly (ours keeps k1 as f32): max relative difference from ours ${ref.ownExactK1Diff.toExponential(1)}`)
        console.log(`reference seconds: ${Object.entries(ref.seconds).map(([k, s]) => `${k} ${s.toFixed(1)}`).join(', ')}`)
        if (a.lines.length) console.log(`disagreements (${a.lines.length}, first 30):\n${a.lines.slice(0, 30).join('\n')}`)
      }
    }
  } finally {
    rmSync(fts.dir, { recursive: true, force: true })
    rmSync(plain.dir, { recursive: true, force: true })
  }
  console.log(`\nload: ${uptime()}`)
  console.log(`bench:text took ${((performance.now() - started) / 1000).toFixed(0)} s`)
}

;(process.argv[2] === 'load-only' ? loadOnly(process.argv[3]) : main()).catch((e) => {
  console.error(e)
  process.exit(1)
})
