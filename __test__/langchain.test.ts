// `ciphervec/langchain`: the LangChain.js VectorStore, imported by the package's own name (so
// through the exports map, from the compiled dist/langchain.js that `npm run build` makes).
// Embeddings: LangChain's FakeEmbeddings (every text the same vector), a hashed bag of words
// (texts that share words are near) and a table of hand-made vectors (exact distances).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { after, describe, it } from 'node:test'

import { Document, type DocumentInterface } from '@langchain/core/documents'
import { Embeddings } from '@langchain/core/embeddings'
import { FakeEmbeddings } from '@langchain/core/utils/testing'
import { VectorStore, VectorStoreRetriever, type VectorStoreRetrieverInput } from '@langchain/core/vectorstores'
import { CiphervecStore, distanceToScore, type CiphervecOpenArgs } from 'ciphervec/langchain'

import { Client, type DistanceMetric } from '../index.js'
import { distance, rejectsWithCode } from './helpers.js'

const run = promisify(execFile)
const root = resolve(__dirname, '..')
const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

/** A hashed bag of words, L2-normalised: texts sharing words are near, under every metric. */
class BagOfWords extends Embeddings {
  constructor(private readonly dimension = 512) {
    super({})
  }
  async embedDocuments(texts: string[]): Promise<number[][]> {
    return texts.map((t) => this.embed(t))
  }
  async embedQuery(text: string): Promise<number[]> {
    return this.embed(text)
  }
  private embed(text: string): number[] {
    const v = new Array<number>(this.dimension).fill(0)
    for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
      let h = 2166136261 // FNV-1a
      for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619)
      v[(h >>> 0) % this.dimension] += 1
    }
    const norm = Math.hypot(...v)
    return v.map((x) => x / norm)
  }
}

/** Embeds each text as the vector the table gives it (a test states its geometry exactly). */
class TableEmbeddings extends Embeddings {
  constructor(private readonly table: Record<string, number[]>) {
    super({})
  }
  async embedDocuments(texts: string[]): Promise<number[][]> {
    return texts.map((t) => this.lookup(t))
  }
  async embedQuery(text: string): Promise<number[]> {
    return this.lookup(text)
  }
  private lookup(text: string): number[] {
    const v = this.table[text]
    assert.ok(v, `no vector for '${text}'`)
    return v
  }
}

/**
 * LangChain.js 1.x's score-threshold retriever: `ScoreThresholdRetriever` of @langchain/classic
 * (not a dependency here) keeps the hits of `similaritySearchWithScore` scoring at least
 * `minSimilarityScore`, as this does. @langchain/core 1.x has no `similarity_score_threshold`
 * search type nor a separate relevance score: the store's score is what a threshold compares.
 */
class ThresholdRetriever extends VectorStoreRetriever<CiphervecStore> {
  constructor(
    fields: VectorStoreRetrieverInput<CiphervecStore>,
    private readonly minSimilarityScore: number,
  ) {
    super(fields)
  }
  async _getRelevantDocuments(query: string): Promise<DocumentInterface[]> {
    const hits = await this.vectorStore.similaritySearchWithScore(query, this.k, this.filter)
    return hits.filter(([, score]) => score >= this.minSimilarityScore).map(([doc]) => doc)
  }
}

const docs: DocumentInterface[] = [
  { pageContent: 'a red apple on the kitchen table', metadata: { kind: 'fruit', year: 2021, tags: ['red'] } },
  { pageContent: 'green apple and pear salad', metadata: { kind: 'fruit', year: 2019, tags: ['green'] } },
  { pageContent: 'a red sports car on the motorway', metadata: { kind: 'car', year: 2023, tags: ['red', 'fast'] } },
  { pageContent: 'an old green tractor in the field', metadata: { kind: 'car', year: 1980, tags: ['green'] } },
  { pageContent: 'bananas are yellow', metadata: { kind: 'fruit', year: 2020, loc: { city: 'Lima' } } },
]

async function open(embeddings: Embeddings = new BagOfWords(), options: Partial<CiphervecOpenArgs> = {}): Promise<CiphervecStore> {
  const client = await Client.open({ storage: { kind: 'memory' }, threads: 2 })
  return CiphervecStore.open(embeddings, { client, indexName: 'docs', indexKey: Client.generateKey(), ...options })
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ciphervec-langchain-'))
  dirs.push(d)
  return d
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('CiphervecStore', () => {
  it('is a LangChain VectorStore of type ciphervec', async () => {
    const store = await open()
    assert.ok(store instanceof VectorStore)
    assert.equal(store._vectorstoreType(), 'ciphervec')
    assert.equal(store.index.metric, 'cosine', 'open creates cosine indexes by default')
    // The store keeps no constructor arguments for serialisation (where a key could end up).
    assert.deepEqual(store.lc_kwargs, {})
    assert.equal(JSON.stringify(store).includes('type":"not_implemented'), true)
  })

  it('adds documents and finds the closest first, with its pageContent, metadata and id', async () => {
    const store = await open()
    const ids = await store.addDocuments(docs)
    assert.equal(ids.length, docs.length)
    ids.forEach((id) => assert.match(id, UUID))
    assert.equal(new Set(ids).size, ids.length)
    assert.equal(await store.index.count(), docs.length)

    const hits = await store.similaritySearchWithScore('red apple', 3)
    assert.equal(hits.length, 3)
    const [[first, score]] = hits
    assert.ok(first instanceof Document)
    assert.equal(first.pageContent, docs[0].pageContent)
    assert.deepEqual(first.metadata, docs[0].metadata)
    assert.equal(first.id, ids[0])
    assert.ok(score > 0 && score <= 1, `score ${score}`)
    assert.equal(hits[1][0].id, ids[1], 'then the other apple (one word of two in five, against one in seven for the red car)')

    const exact = await store.similaritySearchWithScore(docs[3].pageContent, 1)
    assert.equal(exact[0][0].id, ids[3])
    assert.ok(Math.abs(exact[0][1] - 1) < 1e-6, 'the same text scores 1 under cosine')

    const plain = await store.similaritySearch('yellow bananas', 1)
    assert.deepEqual(plain, [new Document({ id: ids[4], pageContent: docs[4].pageContent, metadata: docs[4].metadata })])
  })

  it('restricts searches with ciphervec filters', async () => {
    const store = await open()
    const ids = await store.addDocuments(docs)
    const kinds = async (filter: CiphervecStore['FilterType']) =>
      (await store.similaritySearch('red apple', 10, filter)).map((d) => d.metadata.kind as string)
    assert.deepEqual(await kinds({ kind: 'car' }), ['car', 'car'])
    const [car] = await store.similaritySearch('red apple', 1, { kind: 'car' })
    assert.equal(car.id, ids[2], 'the closest car, not the closest document')
    assert.deepEqual(
      (await store.similaritySearch('red apple', 10, { year: { $gte: 2020 }, tags: 'red' })).map((d) => d.id),
      [ids[0], ids[2]],
    )
    assert.deepEqual((await store.similaritySearch('apple', 10, { 'loc.city': 'Lima' })).map((d) => d.id), [ids[4]])
    assert.deepEqual(await store.similaritySearch('apple', 10, { kind: { $in: [] } }), [])
    assert.equal((await store.similaritySearch('apple', 10, {})).length, docs.length, '{} matches everything')
    // @ts-expect-error a misspelt operator does not compile, and rejects at run time too
    await rejectsWithCode(store.similaritySearch('apple', 10, { kind: { $bogus: 1 } }), 'ERR_INVALID_FILTER')
  })

  for (const metric of ['cosine', 'euclidean', 'squared_euclidean'] as DistanceMetric[]) {
    it(`scores are similarities that fall down the list, in their documented range (${metric})`, async () => {
      // The query is [1, 0]; the items lie at known angles and lengths around it.
      const table: Record<string, number[]> = {
        query: [1, 0],
        same: [1, 0],
        longer: [3, 0],
        near: [0.9, 0.2],
        right: [0, 1],
        opposite: [-1, 0],
        far: [-4, -3],
      }
      const embeddings = new TableEmbeddings(table)
      const store = await open(embeddings, { metric })
      const names = Object.keys(table).filter((n) => n !== 'query')
      await store.addDocuments(
        names.map((n) => ({ pageContent: n, metadata: {} })),
        { ids: names },
      )
      const hits = await store.similaritySearchWithScore('query', names.length)
      assert.equal(hits.length, names.length)
      for (const [doc, score] of hits) {
        const expected = distanceToScore(metric, distance(metric, table.query, table[doc.pageContent]))
        assert.ok(Math.abs(score - expected) < 1e-5, `${doc.pageContent}: score ${score}, expected ${expected}`)
        if (metric === 'cosine') assert.ok(score >= -1 - 1e-6 && score <= 1 + 1e-6, `${doc.pageContent}: ${score}`)
        else assert.ok(score > 0 && score <= 1, `${doc.pageContent}: ${score}`)
      }
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1][1] >= hits[i][1], `scores fall: ${hits.map((h) => h[1])}`)
      const score = Object.fromEntries(hits.map(([d, s]) => [d.pageContent, s]))
      assert.ok(Math.abs(score.same - 1) < 1e-6, 'the query itself scores 1')
      if (metric === 'cosine') {
        assert.ok(Math.abs(score.longer - 1) < 1e-6, 'cosine ignores length')
        assert.ok(Math.abs(score.right) < 1e-6, 'a right angle scores 0')
        assert.ok(Math.abs(score.opposite + 1) < 1e-6, 'the opposite direction scores -1')
      } else {
        const d = metric === 'euclidean' ? 2 : 4 // from [1, 0] to [3, 0]
        assert.ok(Math.abs(score.longer - 1 / (1 + d)) < 1e-6)
        assert.equal(hits.at(-1)?.[0].pageContent, 'far')
      }
    })
  }

  it('distanceToScore: the documented formulas', () => {
    assert.equal(distanceToScore('cosine', 0), 1)
    assert.equal(distanceToScore('cosine', 1), 0)
    assert.equal(distanceToScore('cosine', 2), -1)
    assert.equal(distanceToScore('euclidean', 0), 1)
    assert.equal(distanceToScore('euclidean', 1), 0.5)
    assert.equal(distanceToScore('squared_euclidean', 3), 0.25)
  })

  it('works with LangChain FakeEmbeddings (every text the same vector)', async () => {
    const store = await open(new FakeEmbeddings())
    const ids = await store.addDocuments([
      { pageContent: 'one', metadata: { n: 1 } },
      { pageContent: 'two', metadata: { n: 2 } },
    ])
    const hits = await store.similaritySearchWithScore('anything', 5)
    assert.deepEqual(hits.map(([d]) => d.id).sort(), [...ids].sort())
    hits.forEach(([, s]) => assert.ok(Math.abs(s - 1) < 1e-6))
    assert.deepEqual((await store.similaritySearch('anything', 5, { n: 2 })).map((d) => d.pageContent), ['two'])
  })

  it('takes ids from options, then from the documents, else makes UUIDs; an id added again replaces its document', async () => {
    const store = await open()
    assert.deepEqual(await store.addDocuments(docs.slice(0, 2), { ids: ['a', 'b'] }), ['a', 'b'])
    const own = await store.addDocuments([
      { id: 'c', pageContent: docs[2].pageContent, metadata: docs[2].metadata },
      { pageContent: docs[3].pageContent, metadata: docs[3].metadata },
    ])
    assert.equal(own[0], 'c')
    assert.match(own[1], UUID)
    assert.equal(await store.index.count(), 4)

    assert.deepEqual(await store.addDocuments([{ pageContent: 'bananas are yellow', metadata: { v: 2 } }], { ids: ['a'] }), ['a'])
    assert.equal(await store.index.count(), 4, 'replaced, not added')
    const [hit] = await store.similaritySearch('yellow bananas', 1)
    assert.deepEqual(hit, new Document({ id: 'a', pageContent: 'bananas are yellow', metadata: { v: 2 } }))

    assert.deepEqual(await store.addDocuments([]), [])
    assert.deepEqual(await store.addVectors([], []), [])
  })

  it('addVectors stores the vectors given; bad input rejects and writes nothing', async () => {
    const store = await open(new FakeEmbeddings(), { metric: 'euclidean' })
    const ids = await store.addVectors(
      [
        [0, 0, 1],
        [0, 2, 0],
      ],
      [
        { pageContent: 'up', metadata: { axis: 'z' } },
        { pageContent: 'side', metadata: { axis: 'y' } },
      ],
    )
    const got = await store.index.get({ ids })
    assert.deepEqual(
      got.map((g) => [Array.from(g.vector ?? []), g.contents, g.metadata]),
      [
        [[0, 0, 1], 'up', { axis: 'z' }],
        [[0, 2, 0], 'side', { axis: 'y' }],
      ],
    )
    const [[doc, score]] = await store.similaritySearchVectorWithScore([0, 1.5, 0], 1)
    assert.equal(doc.pageContent, 'side')
    assert.ok(Math.abs(score - 1 / 1.5) < 1e-6)

    const one = { pageContent: 'x', metadata: {} }
    await rejectsWithCode(store.addVectors([[1, 2, 3]], [one, one]), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(store.addVectors([[1, 2, 3]], [one], { ids: ['p', 'q'] }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(store.addVectors([[1, 2]], [one]), 'ERR_DIMENSION_MISMATCH')
    await rejectsWithCode(store.addVectors([[1, 2, 3], [1, 2]], [one, one]), 'ERR_DIMENSION_MISMATCH')
    await rejectsWithCode(store.addVectors([[1, NaN, 3]], [one]), 'ERR_INVALID_VECTOR')
    await rejectsWithCode(store.addVectors([[1, 2, 3]], [{ pageContent: 'x', metadata: { when: undefined } }]), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(store.similaritySearchVectorWithScore([1, 2, 3], 0), 'ERR_INVALID_ARGUMENT')
    assert.equal(await store.index.count(), 2)
  })

  it('reads items written by ciphervec itself: no contents is an empty pageContent, bytes are decoded as UTF-8', async () => {
    const store = await open(new TableEmbeddings({ q: [1, 0] }))
    await store.index.upsert({
      items: [
        { id: 'bare', vector: [1, 0] },
        { id: 'bytes', vector: [1, 0.1], contents: new TextEncoder().encode('héllo') },
      ],
    })
    const found = await store.similaritySearch('q', 2)
    assert.deepEqual(found, [
      new Document({ id: 'bare', pageContent: '', metadata: {} }),
      new Document({ id: 'bytes', pageContent: 'héllo', metadata: {} }),
    ])
  })

  it('searches an empty store', async () => {
    const store = await open()
    assert.deepEqual(await store.similaritySearch('anything', 4), [])
    assert.deepEqual(await store.maxMarginalRelevanceSearch('anything', { k: 4 }), [])
  })

  it('deletes by ids', async () => {
    const store = await open()
    const ids = await store.addDocuments(docs)
    await store.delete({ ids: [ids[0], ids[2], 'not-there'] })
    assert.deepEqual((await store.index.listIds()).sort(), [ids[1], ids[3], ids[4]].sort())
    assert.notEqual((await store.similaritySearch('red apple', 1))[0].id, ids[0])
    await store.delete({ ids: [] })
    assert.equal(await store.index.count(), 3)
  })

  it('deletes by filter, a page of ids at a time, until nothing matches', async () => {
    const store = await open(new FakeEmbeddings(), { deletePageSize: 7 })
    const n = 50
    await store.addDocuments(
      Array.from({ length: n + 20 }, (_, i) => ({ pageContent: `doc ${i}`, metadata: { group: i < n ? 'old' : 'new', i } })),
    )
    // Count the rounds: every queryMetadata call of the delete.
    const index = store.index
    const pages: number[] = []
    const queryMetadata = index.queryMetadata.bind(index)
    index.queryMetadata = async (options) => {
      const page = await queryMetadata(options)
      pages.push(page.length)
      return page
    }
    await store.delete({ filter: { group: 'old' } })
    assert.deepEqual(pages, [7, 7, 7, 7, 7, 7, 7, 1, 0], 'ceil(50 / 7) pages, then an empty one')
    assert.equal(await index.count(), 20)
    assert.deepEqual(await index.queryMetadata({ filters: { group: 'old' } }), [])
    const left = await store.similaritySearch('x', 100)
    assert.ok(left.every((d) => d.metadata.group === 'new'))

    await store.delete({ filter: { group: 'nobody' } })
    assert.equal(await index.count(), 20)
    await store.delete({ filter: {} })
    assert.equal(await index.count(), 0, '{} deletes everything')
  })

  it('deletes more matches than one queryMetadata call returns (10,000) with the default page size', async () => {
    const store = await open(new FakeEmbeddings(), { autoTrain: false })
    const n = 12_345
    const index = store.index
    await index.upsert({
      ids: Array.from({ length: n }, (_, i) => `id-${i}`),
      vectors: new Float32Array(n * 4).map((_, j) => (j % 4) + 1 + Math.floor(j / 4) / n),
      metadata: Array.from({ length: n }, (_, i) => ({ drop: i % 5 !== 0 })),
    })
    await store.delete({ filter: { drop: true } })
    assert.equal(await index.count(), Math.ceil(n / 5))
    assert.deepEqual(await index.queryMetadata({ filters: { drop: true } }), [])
  })

  it('rejects a delete without exactly one of ids and filter, and a bad deletePageSize', async () => {
    const store = await open()
    await store.addDocuments(docs)
    await rejectsWithCode(store.delete({} as { ids: string[] }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(store.delete({ ids: ['x'], filter: {} } as unknown as { ids: string[] }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(() => new CiphervecStore(new BagOfWords(), { index: store.index, deletePageSize: 0 }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(() => new CiphervecStore(new BagOfWords(), { index: store.index, deletePageSize: 10_001 }), 'ERR_INVALID_ARGUMENT')
    // @ts-expect-error a misspelt operator does not compile, and rejects at run time too
    await rejectsWithCode(store.delete({ filter: { kind: { $nope: 1 } } }), 'ERR_INVALID_FILTER')
    assert.equal(await store.index.count(), docs.length)
  })

  it('maximal marginal relevance picks diverse documents where similarity picks near-duplicates', async () => {
    // Three near-duplicates right by the query, two different documents a little further off.
    const table: Record<string, number[]> = {
      query: [1, 0, 0],
      'pie 1': [0.95, 0.3, 0],
      'pie 2': [0.95, 0.3, 0.01],
      'pie 3': [0.95, 0.3, -0.01],
      tart: [0.8, 0, 0.6],
      cider: [0.8, -0.6, 0],
    }
    const store = await open(new TableEmbeddings(table))
    const names = Object.keys(table).filter((n) => n !== 'query')
    await store.addDocuments(
      names.map((n) => ({ pageContent: n, metadata: { kind: n.startsWith('pie') ? 'pie' : 'other' } })),
      { ids: names },
    )
    const similar = (await store.similaritySearch('query', 3)).map((d) => d.id)
    assert.deepEqual(similar.sort(), ['pie 1', 'pie 2', 'pie 3'], 'similarity: the three near-duplicates')

    const mmr = await store.maxMarginalRelevanceSearch('query', { k: 3, fetchK: 5, lambda: 0.5 })
    assert.equal(mmr.length, 3)
    assert.ok(mmr[0] instanceof Document)
    assert.equal(mmr[0].metadata.kind, 'pie', 'the most similar document comes first')
    assert.deepEqual(mmr.slice(1).map((d) => d.id).sort(), ['cider', 'tart'], `mmr: ${mmr.map((d) => d.id)}`)
    assert.deepEqual(mmr[1].metadata, { kind: 'other' })
    assert.equal(mmr[1].pageContent, mmr[1].id)

    const relevance = await store.maxMarginalRelevanceSearch('query', { k: 3, fetchK: 5, lambda: 1 })
    assert.deepEqual(relevance.map((d) => d.id).sort(), ['pie 1', 'pie 2', 'pie 3'], 'lambda 1 is similarity order')
    const filtered = await store.maxMarginalRelevanceSearch('query', { k: 3, filter: { kind: 'pie' } })
    assert.deepEqual(filtered.map((d) => d.id).sort(), ['pie 1', 'pie 2', 'pie 3'], 'the filter applies to the fetch')
    const fewFetched = await store.maxMarginalRelevanceSearch('query', { k: 2, fetchK: 1 })
    assert.equal(fewFetched.length, 2, 'fetchK below k still fetches k')

    const retriever = store.asRetriever({ k: 3, searchType: 'mmr', searchKwargs: { fetchK: 5, lambda: 0.5 } })
    assert.deepEqual((await retriever.invoke('query')).map((d) => d.id), mmr.map((d) => d.id))
  })

  it('fromTexts and fromDocuments fill a new store or one around an open index', async () => {
    const client = await Client.open({ storage: { kind: 'memory' }, threads: 2 })
    const indexKey = Client.generateKey()
    const embeddings = new BagOfWords()
    const texts = ['a red apple', 'a green tractor', 'yellow bananas']

    const perText = await CiphervecStore.fromTexts(texts, [{ n: 0 }, { n: 1 }, { n: 2 }], embeddings, { client, indexName: 'texts', indexKey })
    assert.equal(perText.index.indexName, 'texts')
    const [tractor] = await perText.similaritySearch('tractor', 1)
    assert.deepEqual([tractor.pageContent, tractor.metadata], ['a green tractor', { n: 1 }])

    const shared = await CiphervecStore.fromTexts(texts, { source: 'list' }, embeddings, { client, indexName: 'shared', indexKey, metric: 'euclidean' })
    assert.equal(shared.index.metric, 'euclidean')
    const all = await shared.similaritySearch('apple', 3)
    assert.equal(all.length, 3)
    all.forEach((d) => assert.deepEqual(d.metadata, { source: 'list' }))

    const index = await client.createIndex({ indexName: 'existing', indexKey, metric: 'cosine' })
    const fromDocs = await CiphervecStore.fromDocuments(docs, embeddings, { index })
    assert.equal(fromDocs.index, index)
    assert.equal(await index.count(), docs.length)
    assert.deepEqual((await fromDocs.similaritySearch('bananas', 1))[0].metadata, docs[4].metadata)

    const opened = await CiphervecStore.fromDocuments(docs.slice(0, 2), embeddings, { client, indexName: 'existing', indexKey })
    assert.equal(await opened.index.count(), docs.length + 2, 'fromDocuments on an existing name adds to it')
  })

  it('opens or creates a disk index: the second open, after a restart, loads the same documents', async () => {
    const path = tempDir()
    const indexKey = Client.generateKey()
    const embeddings = new BagOfWords()

    const first = await Client.open({ storage: { kind: 'disk', path } })
    const created = await CiphervecStore.open(embeddings, { client: first, indexName: 'kb', indexKey })
    const ids = await created.addDocuments(docs)
    const sameProcess = await CiphervecStore.open(embeddings, { client: first, indexName: 'kb', indexKey })
    assert.equal(await sameProcess.index.count(), docs.length, 'a second open in the same client loads the index')
    await first.close()

    const second = await Client.open({ storage: { kind: 'disk', path } })
    const loaded = await CiphervecStore.open(embeddings, { client: second, indexName: 'kb', indexKey, metric: 'cosine', createIfMissing: false })
    assert.equal(await loaded.index.count(), docs.length)
    const [hit] = await loaded.similaritySearch('red apple', 1, { kind: 'fruit' })
    assert.deepEqual(hit, new Document({ id: ids[0], pageContent: docs[0].pageContent, metadata: docs[0].metadata }))

    await rejectsWithCode(CiphervecStore.open(embeddings, { client: second, indexName: 'kb', indexKey, metric: 'euclidean' }), 'ERR_INVALID_ARGUMENT')
    const dimension = loaded.index.dimension
    assert.equal(dimension, 512)
    await rejectsWithCode(CiphervecStore.open(embeddings, { client: second, indexName: 'kb', indexKey, dimension: 3 }), 'ERR_DIMENSION_MISMATCH')
    await rejectsWithCode(
      CiphervecStore.open(embeddings, { client: second, indexName: 'kb', indexKey: Client.generateKey(), createIfMissing: false }),
      'ERR_INDEX_NOT_FOUND',
    )
    await rejectsWithCode(CiphervecStore.open(embeddings, { client: second, indexName: 'missing', indexKey, createIfMissing: false }), 'ERR_INDEX_NOT_FOUND')
    await rejectsWithCode(CiphervecStore.open(embeddings, { client: second, indexName: 'short-key', indexKey: new Uint8Array(5) }), 'ERR_INVALID_KEY')
    await second.close()
  })

  it('opens the index another writer created between its load and its create', async () => {
    const client = await Client.open({ storage: { kind: 'memory' }, threads: 2 })
    const indexKey = Client.generateKey()
    let loads = 0
    // The first load misses; the other writer creates the index and writes to it right after.
    const racing = {
      loadIndex: async (options: Parameters<Client['loadIndex']>[0]) => {
        if (++loads > 1) return client.loadIndex(options)
        const theirs = await client.createIndex({ indexName: 'race', indexKey, metric: 'cosine' })
        await theirs.upsert({ items: [{ id: 'theirs', vector: [1, 0] }] })
        throw Object.assign(new Error('not found'), { code: 'ERR_INDEX_NOT_FOUND' })
      },
      createIndex: (options: Parameters<Client['createIndex']>[0]) => client.createIndex(options),
    }
    const store = await CiphervecStore.open(new FakeEmbeddings(), { client: racing as unknown as Client, indexName: 'race', indexKey })
    assert.equal(loads, 2)
    assert.deepEqual(await store.index.listIds(), ['theirs'])
  })

  it('asRetriever({ k }) and a score-threshold retriever return the expected documents', async () => {
    const store = await open()
    const ids = await store.addDocuments(docs)

    const retriever = store.asRetriever({ k: 2 })
    assert.ok(retriever.tags?.includes('ciphervec'))
    const got = await retriever.invoke('red apple')
    assert.deepEqual(got.map((d) => d.id), [ids[0], ids[1]])
    assert.equal(got[0].pageContent, docs[0].pageContent)
    const cars = store.asRetriever({ k: 5, filter: { kind: 'car' } })
    assert.deepEqual((await cars.invoke('red apple')).map((d) => d.id), [ids[2], ids[3]])
    assert.equal((await store.asRetriever(1).invoke('tractor'))[0].id, ids[3])

    // Scores of 'red apple' against the documents, to pick thresholds between them.
    const scores = (await store.similaritySearchWithScore('red apple', 5)).map(([, s]) => s)
    const threshold = (scores[1] + scores[2]) / 2
    const strict = new ThresholdRetriever({ vectorStore: store, k: 5 }, threshold)
    assert.deepEqual((await strict.invoke('red apple')).map((d) => d.id), [ids[0], ids[1]])
    const exact = new ThresholdRetriever({ vectorStore: store, k: 5 }, 0.999)
    assert.deepEqual((await exact.invoke(docs[1].pageContent)).map((d) => d.id), [ids[1]], 'only the same text scores ~1')
    const none = new ThresholdRetriever({ vectorStore: store, k: 5 }, 0.999)
    assert.deepEqual(await none.invoke('nothing like it at all'), [])
    // Among the cars only the red one shares a word with the query; the tractor scores 0.
    const cars2 = new ThresholdRetriever({ vectorStore: store, k: 5, filter: { kind: 'car' } }, 0.1)
    assert.deepEqual((await cars2.invoke('red apple')).map((d) => d.id), [ids[2]])
  })
})

describe('the ciphervec/langchain entry point', () => {
  const script = (body: string) => [
    `const embeddings = { embedDocuments: async (t) => t.map((s) => [s.length, 1]), embedQuery: async (s) => [s.length, 1] }`,
    `const client = await Client.open({ storage: { kind: 'memory' } })`,
    `const store = await CiphervecStore.open(embeddings, { client, indexName: 'x', indexKey: Client.generateKey(), metric: 'euclidean' })`,
    `await store.addDocuments([{ pageContent: 'ab', metadata: { m: 1 } }, { pageContent: 'abcdef', metadata: { m: 2 } }])`,
    `const [[doc, score]] = await store.similaritySearchWithScore('abc', 1)`,
    `console.log(JSON.stringify({ type: typeof CiphervecStore, content: doc.pageContent, metadata: doc.metadata, score }))`,
    body,
  ].join('\n')
  const expected = { type: 'function', content: 'ab', metadata: { m: 1 }, score: 0.5 }

  it('loads with require() from CommonJS', async () => {
    const source = `const { CiphervecStore } = require('ciphervec/langchain'); const { Client } = require('ciphervec');
      (async () => { ${script('process.exit(0)')} })().catch((e) => { console.error(e); process.exit(1) })`
    const { stdout } = await run(process.execPath, ['-e', source], { cwd: root })
    assert.deepEqual(JSON.parse(stdout), expected)
  })

  it('loads with import from an ES module', async () => {
    const source = `import { CiphervecStore } from 'ciphervec/langchain'; import { Client } from 'ciphervec'\n${script('process.exit(0)')}`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', source], { cwd: root })
    assert.deepEqual(JSON.parse(stdout), expected)
  })
})
