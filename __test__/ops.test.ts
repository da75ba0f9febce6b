// The ops API: listIndexes after a restart (client key), iterate over every item, and
// AbortSignal on loadIndex / upsert / queryBatch.
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'

import { Client, type EncryptedIndex } from '../index.js'
import { randomVectors, rejectsWithCode, row } from './helpers.js'

const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ciphervec-ops-'))
  dirs.push(d)
  return d
}

async function filled(n: number, dim = 8): Promise<{ client: Client; index: EncryptedIndex; flat: Float32Array }> {
  const client = await Client.open({ storage: { kind: 'memory' } })
  const index = await client.createIndex({ indexName: 'ops', indexKey: Client.generateKey(), dimension: dim })
  const flat = randomVectors(n, dim, 7)
  const ids = Array.from({ length: n }, (_, i) => `id-${i}`)
  await index.upsert({ ids, vectors: flat, metadata: ids.map((_, i) => ({ i })) })
  return { client, index, flat }
}

describe('listIndexes after a restart', () => {
  it('lists every index of the store with the client key, before any is loaded', async () => {
    const path = tempDir()
    const clientKey = Client.generateKey()
    const [k1, k2] = [Client.generateKey(), Client.generateKey()]
    {
      await using client = await Client.open({ storage: { kind: 'disk', path }, clientKey })
      await client.createIndex({ indexName: 'docs', indexKey: k1 })
      await client.createIndex({ indexName: 'tenant-7', indexKey: k2 })
    }
    {
      await using client = await Client.open({ storage: { kind: 'disk', path }, clientKey })
      assert.deepEqual(await client.listIndexes(), ['docs', 'tenant-7'])
      await (await client.loadIndex({ indexName: 'tenant-7', indexKey: k2 })).deleteIndex()
      assert.deepEqual(await client.listIndexes(), ['docs'])
    }
    {
      await using client = await Client.open({ storage: { kind: 'disk', path } })
      assert.deepEqual(await client.listIndexes(), [], 'without the client key, only what this client opened')
    }
    const wrong = await rejectsWithCode(
      Client.open({ storage: { kind: 'disk', path }, clientKey: Client.generateKey() }),
      'ERR_WRONG_KEY',
    )
    assert.match(wrong.message, /client key/)
    await rejectsWithCode(Client.open({ storage: { kind: 'disk', path }, clientKey: new Uint8Array(16) }), 'ERR_INVALID_KEY')
    await using client = await Client.open({ storage: { kind: 'disk', path }, clientKey })
    assert.deepEqual(await client.listIndexes(), ['docs'], 'the refused opens changed nothing')
  })
})

describe('iterate', () => {
  it('yields every item exactly once, in batches of batchSize, as get returns them', async () => {
    const { index, flat } = await filled(2_345)
    const seen = new Map<string, number>()
    const sizes: number[] = []
    for await (const batch of index.iterate({ batchSize: 500, include: ['vector', 'metadata'] })) {
      sizes.push(batch.length)
      for (const item of batch) {
        const i = Number(item.id.slice(3))
        assert.deepEqual(item.metadata, { i })
        assert.deepEqual(item.vector, row(flat, 8, i))
        assert.equal(item.contents, undefined, 'only what include asks for')
        seen.set(item.id, (seen.get(item.id) ?? 0) + 1)
      }
    }
    assert.equal(seen.size, 2_345)
    assert.ok([...seen.values()].every((n) => n === 1), 'no item twice')
    assert.deepEqual(sizes, [500, 500, 500, 500, 345])
  })

  it('skips items deleted meanwhile and leaves out items added after the start', async () => {
    const { index } = await filled(1_000)
    const it = index.iterate({ batchSize: 100, include: [] })
    const first = await it.next()
    assert.equal(first.done, false)
    const firstIds = new Set(first.value!.map((x) => x.id))
    const rest = Array.from({ length: 1_000 }, (_, i) => `id-${i}`).filter((id) => !firstIds.has(id))
    await index.delete({ ids: rest.slice(0, 400) })
    await index.upsert({ items: [{ id: 'late', vector: new Float32Array(8) }] })
    const ids = [...firstIds]
    for await (const batch of it) ids.push(...batch.map((x) => x.id))
    assert.equal(ids.length, 600)
    assert.deepEqual(new Set(ids), new Set([...firstIds, ...rest.slice(400)]))
  })

  it('serves concurrent next() calls without overlap, stops at break, rejects bad options', async () => {
    const { index } = await filled(300)
    const it = index.iterate({ batchSize: 100, include: [] })
    const results = await Promise.all([it.next(), it.next(), it.next(), it.next()])
    const ids = results.flatMap((r) => (r.done ? [] : r.value.map((x) => x.id)))
    assert.equal(new Set(ids).size, 300)
    assert.equal(results.filter((r) => r.done).length, 1)

    let batches = 0
    for await (const batch of index.iterate({ batchSize: 10 })) {
      assert.equal(batch.length, 10)
      if (++batches === 2) break
    }
    assert.equal(batches, 2)
    const ended = index.iterate({ batchSize: 10 })
    await ended.next()
    assert.deepEqual(await ended.return?.(), { done: true, value: undefined })
    assert.equal((await ended.next()).done, true, 'return() ends it')

    for (const batchSize of [0, 10_001, 1.5]) {
      const bad = index.iterate({ batchSize })
      await rejectsWithCode(bad.next(), 'ERR_INVALID_ARGUMENT')
    }
    // @ts-expect-error a misspelt option
    await rejectsWithCode(index.iterate({ batchsize: 10 }).next(), 'ERR_INVALID_ARGUMENT')
    const empty = await Client.open({ storage: { kind: 'memory' } })
    const none = await empty.createIndex({ indexName: 'e', indexKey: Client.generateKey() })
    assert.deepEqual(await none.iterate().next(), { done: true, value: undefined })
  })
})

describe('queryMetadata pages', () => {
  it('pages through more matches than topK allows, by offset or by the afterId cursor', async () => {
    const { index } = await filled(25_000)
    const all = (await index.listIds()).sort()
    const firstPage = await index.queryMetadata({ filters: {}, topK: 10_000 })
    assert.deepEqual(firstPage.map((m) => m.id), all.slice(0, 10_000), 'id order')
    const third = await index.queryMetadata({ filters: {}, topK: 10_000, offset: 20_000 })
    assert.deepEqual(third.map((m) => m.id), all.slice(20_000))
    const byField = await index.queryMetadata({ filters: { i: { $lt: 50 } }, orderBy: 'i', ascending: false, topK: 5, offset: 10 })
    assert.deepEqual(byField.map((m) => m.id), ['id-39', 'id-38', 'id-37', 'id-36', 'id-35'], 'field order, a page further on')
    const seen: string[] = []
    let afterId: string | undefined
    for (;;) {
      const page = await index.queryMetadata({ filters: { i: { $gte: 0 } }, topK: 10_000, afterId })
      if (page.length === 0) break
      seen.push(...page.map((m) => m.id))
      afterId = page[page.length - 1].id
      // Deleting what was read does not disturb the cursor.
      await index.delete({ ids: page.slice(0, 100).map((m) => m.id) })
    }
    assert.deepEqual(seen, all, 'every match once, in order')
    await rejectsWithCode(index.queryMetadata({ filters: {}, orderBy: 'i', afterId: 'id-1' }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(index.queryMetadata({ filters: {}, offset: -1 }), 'ERR_INVALID_ARGUMENT')
  })
})

describe('AbortSignal', () => {
  it('an aborted upsert writes nothing', async () => {
    const { index } = await filled(10)
    await rejectsWithCode(
      index.upsert({ items: [{ id: 'x', vector: new Float32Array(8) }], signal: AbortSignal.abort() }),
      'ERR_ABORTED',
    )
    // Aborted while its 10,000 items are read (a slice per event-loop turn): the write never starts.
    const controller = new AbortController()
    const flat = randomVectors(10_000, 8, 3)
    const ids = Array.from({ length: 10_000 }, (_, i) => `big-${i}`)
    const items = ids.map((id, i) => ({ id, vector: row(flat, 8, i) }))
    const upsert = index.upsert({ items, signal: controller.signal })
    controller.abort()
    const err = await rejectsWithCode(upsert, 'ERR_ABORTED')
    assert.match(err.message, /upsert of index 'ops' was aborted; the index is unchanged/)
    assert.equal(await index.count(), 10)
    assert.deepEqual(await index.get({ ids: ['x', 'big-0'] }), [])
    assert.equal((await index.upsert({ items: items.slice(0, 5) })).upsertedCount, 5, 'the index takes writes after')
  })

  it('an aborted queryBatch or loadIndex rejects; an unused signal keeps no listener', async () => {
    const { client, index, flat } = await filled(500)
    const vectors = Array.from({ length: 50 }, (_, i) => row(flat, 8, i))
    await rejectsWithCode(index.queryBatch({ vectors, signal: AbortSignal.abort() }), 'ERR_ABORTED')
    await rejectsWithCode(
      client.loadIndex({ indexName: 'ops', indexKey: Client.generateKey(), signal: AbortSignal.abort() }),
      'ERR_ABORTED',
    )
    const controller = new AbortController()
    for (let i = 0; i < 20; i++) {
      const lists = await index.queryBatch({ vectors, topK: 1, signal: controller.signal })
      assert.equal(lists[i][0].id, `id-${i}`)
    }
    await index.upsert({ items: [{ id: 'y', vector: new Float32Array(8) }], signal: controller.signal })
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'listeners are removed when calls settle')
    // @ts-expect-error a signal is an AbortSignal
    await rejectsWithCode(index.queryBatch({ vectors, signal: {} }), 'ERR_INVALID_ARGUMENT')
  })

  it('an aborted loadIndex opens nothing and the index loads afterwards', async () => {
    const path = tempDir()
    const indexKey = Client.generateKey()
    {
      await using client = await Client.open({ storage: { kind: 'disk', path } })
      const index = await client.createIndex({ indexName: 'big', indexKey })
      const n = 20_000
      const flat = randomVectors(n, 16, 5)
      await index.upsert({ ids: Array.from({ length: n }, (_, i) => `v${i}`), vectors: flat })
    }
    await using client = await Client.open({ storage: { kind: 'disk', path } })
    const err = await rejectsWithCode(client.loadIndex({ indexName: 'big', indexKey, signal: AbortSignal.abort() }), 'ERR_ABORTED')
    assert.match(err.message, /loadIndex of index 'big' was aborted/)
    assert.deepEqual(await client.listIndexes(), [], 'nothing was opened')
    const index = await client.loadIndex({ indexName: 'big', indexKey })
    assert.equal(await index.count(), 20_000)
  })
})
