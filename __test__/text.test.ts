// Full-text (BM25) search with queryMetadata({ text }) and hybrid query({ vector, text }),
// through the addon: results, options, errors, a reload.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'

import { Client, type EncryptedIndex } from '../index.js'
import { rejectsWithCode } from './helpers.js'

const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

const DOCS = [
  { id: 'fox', contents: 'The quick brown fox jumps over the lazy dog', title: 'Foxes', lang: 'en' },
  { id: 'dogs', contents: 'Dogs are running in the park; a dog runs fast', title: 'Running dogs', lang: 'en' },
  { id: 'cats', contents: 'Cats sleep all day long', title: 'Cats', lang: 'en' },
  { id: 'renard', contents: 'Le renard brun rapide saute', title: 'Renard', lang: 'fr' },
  { id: 'ocean', contents: 'Blue whales swim in the deep ocean', title: 42, lang: 'en' },
  { id: 'bytes', contents: new Uint8Array([100, 111, 103]), title: 'dog bytes', lang: 'en' },
]

async function docsIndex(client: Client, indexKey = Client.generateKey()): Promise<EncryptedIndex> {
  const index = await client.createIndex({ indexName: 'docs', indexKey, dimension: 3, textFields: ['contents', 'title'] })
  await index.upsert({
    items: DOCS.map((d, i) => ({ id: d.id, vector: [i, 1, 0], contents: d.contents, metadata: { title: d.title, lang: d.lang } })),
  })
  return index
}

describe('full-text search', () => {
  it('ranks by BM25 over the text fields, with stemming, filters, fields and requireAllTerms', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await docsIndex(client)
    const hits = await index.queryMetadata({ text: 'running dog' })
    assert.equal(hits[0].id, 'dogs', 'stems: running ~ runs, dog ~ dogs')
    assert.deepEqual(new Set(hits.map((h) => h.id)), new Set(['dogs', 'fox', 'bytes']))
    assert.ok(hits.every((h) => typeof h.score === 'number' && h.score > 0))
    assert.ok(hits.every((h, i) => i === 0 || hits[i - 1].score! >= h.score!), 'best first')
    assert.deepEqual(
      (await index.queryMetadata({ text: 'dog', textFields: ['contents'] })).map((h) => h.id).sort(),
      ['dogs', 'fox'],
      'bytes contents are not text; its title is not searched here',
    )
    assert.deepEqual((await index.queryMetadata({ text: 'lazy dog', requireAllTerms: true })).map((h) => h.id), ['fox'])
    assert.deepEqual((await index.queryMetadata({ text: 'dog', filters: { lang: 'fr' } })).map((h) => h.id), [])
    assert.deepEqual((await index.queryMetadata({ text: 'whales' })).map((h) => h.id), ['ocean'])
    assert.deepEqual(await index.queryMetadata({ text: 'the of and' }), [], 'only stopwords')
    assert.equal((await index.queryMetadata({ text: 'dog', topK: 1 })).length, 1)
    // The metadata form is unchanged: { id } without a score.
    assert.deepEqual(await index.queryMetadata({ filters: { lang: 'fr' } }), [{ id: 'renard' }])
    // With include, each hit also carries the fields get returns, score kept, order kept.
    const rich = await index.queryMetadata({ text: 'running dog', include: ['metadata', 'contents'] })
    const items = await index.get({ ids: hits.map((h) => h.id), include: ['metadata', 'contents'] })
    assert.deepEqual(rich, hits.map((h, i) => ({ ...items[i], score: h.score })))
  })

  it('fuses vector and text rankings in a hybrid query', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await docsIndex(client)
    const vector = [5, 1, 0] // nearest: 'bytes' (5), 'ocean' (4), ...
    const textOnly = await index.query({ vector, text: 'running dog', alpha: 0, topK: 3, include: ['distance'] })
    const bm25 = await index.queryMetadata({ text: 'running dog', topK: 3 })
    assert.deepEqual(textOnly.map((r) => r.id), bm25.map((h) => h.id), 'alpha 0: the text ranking')
    const vectorOnly = await index.query({ vector, text: 'running dog', alpha: 1, topK: 3 })
    assert.deepEqual(vectorOnly.map((r) => r.id), (await index.query({ vector, topK: 3 })).map((r) => r.id))
    const both = await index.query({ vector, text: 'running dog', topK: 6, include: ['distance', 'metadata'] })
    for (const r of both) {
      assert.equal(typeof r.score, 'number')
      const i = DOCS.findIndex((d) => d.id === r.id)
      assert.ok(Math.abs(r.distance - Math.hypot(5 - i, 0, 0)) < 1e-5, `exact distance of ${r.id}`)
    }
    // rank 1 in both legs scores 2 / 61 at the default alpha 0.5 and rrfK 60.
    const top = await index.query({ vector: [1, 1, 0], text: 'running dog', topK: 1 })
    assert.equal(top[0].id, 'dogs')
    assert.ok(Math.abs(top[0].score! - 1 / 61) < 1e-12)
    assert.equal((await index.query({ vector, topK: 1 }))[0].score, undefined, 'no score without text')
    // queryBatch: one text per vector, each list as query gives it.
    const vectors = [vector, [1, 1, 0], [3, 1, 0]]
    const texts = ['running dog', 'whales', 'cats sleep']
    const lists = await index.queryBatch({ vectors, texts, topK: 4, alpha: 0.3, include: ['distance'] })
    for (let i = 0; i < vectors.length; i++) {
      assert.deepEqual(lists[i], await index.query({ vector: vectors[i], text: texts[i], topK: 4, alpha: 0.3, include: ['distance'] }))
    }
    await rejectsWithCode(index.queryBatch({ vectors, texts: ['x'] }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(index.queryBatch({ vectors, alpha: 0.2 }), 'ERR_INVALID_ARGUMENT')
  })

  it('keeps the text index through a reload, and rejects bad text input with typed errors', async () => {
    const path = mkdtempSync(join(tmpdir(), 'ciphervec-text-'))
    dirs.push(path)
    const indexKey = Client.generateKey()
    let before: unknown
    {
      await using client = await Client.open({ storage: { kind: 'disk', path } })
      const index = await docsIndex(client, indexKey)
      await index.delete({ ids: ['cats'] })
      before = await index.queryMetadata({ text: 'dog fox cats' })
    }
    await using client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.loadIndex({ indexName: 'docs', indexKey })
    assert.deepEqual(await index.queryMetadata({ text: 'dog fox cats' }), before)
    const { memory } = await index.stats()
    assert.ok(memory.textIndexBytes > 0 && memory.metadataIndexBytes > 0, JSON.stringify(memory))

    const plain = await client.createIndex({ indexName: 'plain', indexKey, dimension: 3 })
    const bad: Array<[string, () => Promise<unknown>]> = [
      ['no text fields', () => plain.queryMetadata({ text: 'x' })],
      ['unknown field', () => index.queryMetadata({ text: 'x', textFields: ['body'] })],
      ['empty text', () => index.queryMetadata({ text: '   ' })],
      ['text too long', () => index.queryMetadata({ text: 'word '.repeat(20_000) })],
      ['orderBy with text', () => index.queryMetadata({ text: 'x', orderBy: 'title' })],
      ['alpha above 1', () => index.query({ vector: [1, 1, 0], text: 'x', alpha: 2 })],
      ['alpha without text', () => index.query({ vector: [1, 1, 0], alpha: 0.5 })],
      ['requireAllTerms without text', () => index.queryMetadata({ filters: {}, requireAllTerms: true })],
      ['textFields twice', () => client.createIndex({ indexName: 'b', indexKey, textFields: ['a', 'a'] })],
      ['no textFields', () => client.createIndex({ indexName: 'b', indexKey, textFields: [] })],
      ['bm25.b above 1', () => client.createIndex({ indexName: 'b', indexKey, textFields: ['a'], bm25: { b: 2 } })],
      // @ts-expect-error a misspelt bm25 option
      ['bm25 typo', () => client.createIndex({ indexName: 'b', indexKey, textFields: ['a'], bm25: { k: 2 } })],
    ]
    for (const [what, call] of bad) {
      await rejectsWithCode(call(), 'ERR_INVALID_ARGUMENT').catch((e) => assert.fail(`${what}: ${e.message}`))
    }
    await rejectsWithCode(index.queryMetadata({} as { filters: {} }), 'ERR_INVALID_FILTER')
    assert.deepEqual(await client.listIndexes(), ['docs', 'plain'], 'no bad createIndex made an index')
  })
})
