// Bad input gets a typed error and changes nothing stored.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { Client, type ClientOptions, type EncryptedIndex } from '../index.js'
import { rejectsWithCode } from './helpers.js'

async function seeded(): Promise<{ client: Client; index: EncryptedIndex; key: Uint8Array }> {
  const client = await Client.open({ storage: { kind: 'memory' } })
  const key = Client.generateKey()
  const index = await client.createIndex({ indexName: 'e', indexKey: key })
  await index.upsert({ items: [{ id: 'keep', vector: [1, 2, 3], metadata: { v: 1 } }] })
  return { client, index, key }
}

async function assertUnchanged(index: EncryptedIndex) {
  assert.equal(await index.count(), 1)
  assert.deepEqual(await index.get({ ids: ['keep'] }), [{ id: 'keep', metadata: { v: 1 }, vector: new Float32Array([1, 2, 3]) }])
  assert.equal(index.dimension, 3)
}

describe('typed errors', () => {
  const badUpserts: Array<[string, string, (i: EncryptedIndex) => Promise<unknown>]> = [
    ['NaN', 'ERR_INVALID_VECTOR', (i) => i.upsert({ items: [{ id: 'n', vector: [1, NaN, 3] }] })],
    ['Infinity', 'ERR_INVALID_VECTOR', (i) => i.upsert({ items: [{ id: 'n', vector: new Float32Array([1, Infinity, 3]) }] })],
    ['float32 overflow', 'ERR_INVALID_VECTOR', (i) => i.upsert({ items: [{ id: 'n', vector: [1, 1e39, 3] }] })],
    ['empty vector', 'ERR_INVALID_VECTOR', (i) => i.upsert({ items: [{ id: 'n', vector: [] }] })],
    ['wrong dimension', 'ERR_DIMENSION_MISMATCH', (i) => i.upsert({ items: [{ id: 'n', vector: [1, 2] }] })],
    ['mixed dimensions in one batch', 'ERR_DIMENSION_MISMATCH', (i) => i.upsert({ items: [{ id: 'n', vector: [1, 2, 3] }, { id: 'm', vector: [1, 2] }] })],
    ['empty id', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({ items: [{ id: 'ok', vector: [1, 2, 3] }, { id: '', vector: [1, 2, 3] }] })],
    ['huge id', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({ items: [{ id: 'x'.repeat(1025), vector: [1, 2, 3] }] })],
    ['ids/vectors length mismatch', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({ ids: ['a', 'b'], vectors: [[1, 2, 3]] })],
    ['flat vectors not divisible', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({ ids: ['a', 'b'], vectors: new Float32Array(5) })],
    ['metadata length mismatch', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({ ids: ['a'], vectors: [[1, 2, 3]], metadata: [null, null] })],
    ['contents length mismatch', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({ ids: ['a'], vectors: [[1, 2, 3]], contents: [] })],
    // @ts-expect-error (the types refuse it too) ids need vectors
    ['ids without vectors', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({ ids: ['a'] })],
    // @ts-expect-error one form at a time
    ['both forms at once', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({ items: [], ids: ['a'], vectors: [[1, 2, 3]] })],
    // @ts-expect-error items or ids + vectors
    ['neither form', 'ERR_INVALID_ARGUMENT', (i) => i.upsert({})],
  ]
  for (const [name, code, call] of badUpserts) {
    it(`upsert with ${name} rejects with ${code} and stores nothing`, async () => {
      const { index } = await seeded()
      const err = await rejectsWithCode(call(index), code)
      assert.ok(err.message.length > 10, 'the message explains the problem')
      await assertUnchanged(index)
    })
  }

  const badQueries: Array<[string, string, (i: EncryptedIndex) => Promise<unknown>]> = [
    ['topK 0', 'ERR_INVALID_ARGUMENT', (i) => i.query({ vector: [1, 2, 3], topK: 0 })],
    ['topK huge', 'ERR_INVALID_ARGUMENT', (i) => i.query({ vector: [1, 2, 3], topK: 1e9 })],
    ['topK fractional', 'ERR_INVALID_ARGUMENT', (i) => i.query({ vector: [1, 2, 3], topK: 1.5 })],
    ['topK negative', 'ERR_INVALID_ARGUMENT', (i) => i.queryBatch({ vectors: [[1, 2, 3]], topK: -1 })],
    ['NaN query', 'ERR_INVALID_VECTOR', (i) => i.query({ vector: [NaN, 2, 3] })],
    ['wrong query dimension', 'ERR_DIMENSION_MISMATCH', (i) => i.query({ vector: [1, 2] })],
    ['wrong dimension in a batch', 'ERR_DIMENSION_MISMATCH', (i) => i.queryBatch({ vectors: [[1, 2, 3], [1, 2]] })],
    ['empty id in get', 'ERR_INVALID_ARGUMENT', (i) => i.get({ ids: [''] })],
    ['empty id in delete', 'ERR_INVALID_ARGUMENT', (i) => i.delete({ ids: ['keep', ''] })],
  ]
  for (const [name, code, call] of badQueries) {
    it(`${name} rejects with ${code}`, async () => {
      const { index } = await seeded()
      await rejectsWithCode(call(index), code)
      await assertUnchanged(index)
    })
  }

  it('keys of the wrong length reject with ERR_INVALID_KEY', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    for (const len of [0, 16, 31, 33]) {
      await rejectsWithCode(client.createIndex({ indexName: 'k', indexKey: new Uint8Array(len) }), 'ERR_INVALID_KEY')
    }
    assert.deepEqual(await client.listIndexes(), [])
  })

  it('a wrong key finds no index (names are keyed by it) and the message holds no key bytes', async () => {
    const { client, index, key } = await seeded()
    const wrong = Client.generateKey()
    const err = await rejectsWithCode(client.loadIndex({ indexName: 'e', indexKey: wrong }), 'ERR_INDEX_NOT_FOUND')
    assert.match(err.message, /another key/)
    for (const k of [key, wrong]) {
      assert.ok(!err.message.includes(Buffer.from(k).toString('hex')))
      assert.ok(!err.message.includes(Buffer.from(k).toString('base64')))
    }
    await assertUnchanged(index)
  })

  it('bad option values reject with ERR_INVALID_ARGUMENT', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    await rejectsWithCode(client.createIndex({ indexName: '', indexKey: Client.generateKey() }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(client.createIndex({ indexName: 'd', indexKey: Client.generateKey(), dimension: 0 }), 'ERR_INVALID_ARGUMENT')
    await rejectsWithCode(client.createIndex({ indexName: 'd', indexKey: Client.generateKey(), dimension: 2.5 }), 'ERR_INVALID_ARGUMENT')
  })

  it('cosine rejects zero vectors', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'c', indexKey: Client.generateKey(), metric: 'cosine' })
    await rejectsWithCode(index.upsert({ items: [{ id: 'z', vector: [0, 0] }] }), 'ERR_INVALID_VECTOR')
    await index.upsert({ items: [{ id: 'a', vector: [1, 0] }] })
    await rejectsWithCode(index.query({ vector: [0, 0] }), 'ERR_INVALID_VECTOR')
    assert.equal(await index.count(), 1)
  })

  it('values of the wrong JS type inside arrays reject with ERR_INVALID_ARGUMENT naming their position', async () => {
    const { index } = await seeded()
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => index.upsert({ items: [{ id: 'ok', vector: [1, 2, 3] }, { id: 5 as unknown as string, vector: [1, 2, 3] }] }), /id at position 1 is not a string/],
      [() => index.upsert({ ids: ['a', 'b'], vectors: [[1, 2, 3], [1, '2' as unknown as number, 3]] }), /position 1 has a string at position 1/],
      [() => index.upsert({ items: [{ id: 'a', vector: [1, 2, 3] }, null as unknown as { id: string; vector: number[] }] }), /item at position 1 is null/],
      [() => index.upsert({ ids: ['a'], vectors: [[1, 2, 3]], contents: [5 as unknown as string] }), /contents of the item at position 0 is a number/],
      [() => index.query({ vector: 'abc' as unknown as number[] }), /query vector is a string/],
      [() => index.queryBatch({ vectors: [[1, 2, 3], { length: 3 } as unknown as number[]] }), /position 1 is an object/],
      [() => index.get({ ids: ['keep', 7 as unknown as string] }), /id at position 1 is not a string/],
      [() => index.delete({ ids: ['keep', null as unknown as string] }), /id at position 1 is not a string/],
    ]
    for (const [call, message] of cases) {
      const err = await rejectsWithCode(call, 'ERR_INVALID_ARGUMENT')
      assert.match(err.message, message)
    }
    await assertUnchanged(index)
  })

  // Option values of the wrong JS type, which napi's own conversion refuses: they reject (never
  // throw) with ERR_INVALID_ARGUMENT, naming the option and what it should be.
  const wrongTypes: Array<[string, (c: Client, i: EncryptedIndex) => Promise<unknown>, RegExp]> = [
    ["query topK: 'x'", (_, i) => i.query({ vector: [1, 2, 3], topK: 'x' as unknown as number }), /^query: option topK is a string, expected a number$/],
    ['query include of an unknown field', (_, i) => i.query({ vector: [1, 2, 3], include: ['score' as 'distance'] }), /query: option include is "score", expected one of 'distance', 'metadata', 'contents', 'vector'/],
    ['query include not an array', (_, i) => i.query({ vector: [1, 2, 3], include: 'distance' as unknown as [] }), /query: option include is a string, expected an array/],
    ['query without vector', (_, i) => i.query({} as unknown as { vector: number[] }), /query: option vector is required/],
    ['query without options', (_, i) => i.query(undefined as unknown as { vector: number[] }), /query takes an options object, got undefined/],
    ['queryBatch topK: {}', (_, i) => i.queryBatch({ vectors: [[1, 2, 3]], topK: {} as number }), /queryBatch: option topK is an object, expected a number/],
    ["queryBatch consistency: 'weird'", (_, i) => i.queryBatch({ vectors: [[1, 2, 3]], consistency: 'weird' as 'strong' }), /queryBatch: option consistency is "weird", expected one of 'eventual', 'strong'/],
    ["queryMetadata ascending: 'yes'", (_, i) => i.queryMetadata({ filters: {}, ascending: 'yes' as unknown as boolean }), /queryMetadata: option ascending is a string, expected true or false/],
    ['upsert with a string', (_, i) => i.upsert('items' as unknown as { items: [] }), /upsert takes an options object, got a string/],
    ['get include of an unknown field', (_, i) => i.get({ ids: ['keep'], include: ['score' as 'vector'] }), /get: option include is "score"/],
    ['delete without ids', (_, i) => i.delete({} as { ids: string[] }), /delete: option ids is required/],
    ["count consistency: 'weird'", (_, i) => i.count({ consistency: 'weird' as 'strong' }), /count: option consistency is "weird"/],
    ["listIds with a number", (_, i) => i.listIds(5 as unknown as undefined), /listIds takes an options object, got a number/],
    ["train nLists: '4'", (_, i) => i.train({ nLists: '4' as unknown as number }), /train: option nLists is a string, expected a number/],
    ['train onProgress not a function', (_, i) => i.train({ onProgress: 5 as unknown as () => void }), /train: option onProgress is not a function/],
    ['train signal not an AbortSignal', (_, i) => i.train({ signal: {} as AbortSignal }), /train: option signal is not an AbortSignal/],
    ["createIndex metric: 'bogus'", (c) => c.createIndex({ indexName: 'm', indexKey: Client.generateKey(), metric: 'bogus' as 'cosine' }), /createIndex: option metric is "bogus", expected one of 'euclidean', 'squared_euclidean', 'cosine'/],
    ['createIndex indexName: 5', (c) => c.createIndex({ indexName: 5 as unknown as string, indexKey: Client.generateKey() }), /createIndex: option indexName is a number, expected a string/],
    ['createIndex autoTrain: "yes"', (c) => c.createIndex({ indexName: 'm', indexKey: Client.generateKey(), autoTrain: 'yes' as unknown as boolean }), /createIndex: option autoTrain is a string, expected true or false or AutoTrainOptions/],
    ['loadIndex without indexKey', (c) => c.loadIndex({ indexName: 'e' } as { indexName: string; indexKey: Uint8Array }), /loadIndex: option indexKey is required/],
    ["Client.open storage.kind: 'cloud'", () => Client.open({ storage: { kind: 'cloud' as 'memory' } }), /Client\.open: option storage\.kind is "cloud", expected one of 'memory', 'disk', 'postgres'/],
    ['Client.open storage: 5', () => Client.open({ storage: 5 as unknown as { kind: 'memory' } }), /Client\.open: option storage is a number, expected an object/],
    ["Client.open threads: '2'", () => Client.open({ storage: { kind: 'memory' }, threads: '2' as unknown as number }), /Client\.open: option threads is a string, expected a number/],
    // No default storage: leaving it out must not silently keep indexes in memory only.
    ['Client.open()', () => (Client.open as () => Promise<Client>)(), /Client\.open needs a storage option: \{ kind: 'disk', path \}/],
    ['Client.open({ threads: 2 })', () => Client.open({ threads: 2 } as unknown as ClientOptions), /Client\.open needs a storage option/],
    ['Client.open clientKey: "k"', () => Client.open({ storage: { kind: 'memory' }, clientKey: 'k' as unknown as Uint8Array }), /Client\.open: option clientKey is a string/],
  ]
  for (const [name, call, message] of wrongTypes) {
    it(`${name} rejects with ERR_INVALID_ARGUMENT naming the option`, async () => {
      const { client, index } = await seeded()
      let promise: Promise<unknown> | undefined
      assert.doesNotThrow(() => {
        promise = call(client, index)
      }, 'a wrong option type rejects instead of throwing')
      const err = await rejectsWithCode(promise!, 'ERR_INVALID_ARGUMENT')
      assert.match(err.message, message)
      await assertUnchanged(index)
    })
  }

  const unknownNames: Array<[string, (c: Client, i: EncryptedIndex) => Promise<unknown>, RegExp]> = [
    ['query topk', (_, i) => i.query({ vector: [1, 2, 3], topk: 10 } as { vector: number[] }), /^query: unknown option topk \(did you mean topK\?\)$/],
    ['queryBatch limit', (_, i) => i.queryBatch({ vectors: [[1, 2, 3]], limit: 3 } as { vectors: number[][] }), /queryBatch: unknown option limit; the options are vectors, topK, nProbes, rerank, filters, include, consistency/],
    ['queryMetadata filter', (_, i) => i.queryMetadata({ filters: {}, filter: { a: 1 } } as { filters: {} }), /queryMetadata: unknown option filter;/],
    ['upsert item', (_, i) => i.upsert({ item: [] } as unknown as { items: [] }), /upsert: unknown option item;/],
    ['get includes', (_, i) => i.get({ ids: ['keep'], includes: ['vector'] } as { ids: string[] }), /get: unknown option includes;/],
    ['count consistancy', (_, i) => i.count({ consistancy: 'strong' } as {}), /count: unknown option consistancy;/],
    ['train nlists', (_, i) => i.train({ nlists: 4 } as {}), /train: unknown option nlists \(did you mean nLists\?\)/],
    ['createIndex metirc', (c) => c.createIndex({ indexName: 'm', indexKey: Client.generateKey(), metirc: 'cosine' } as { indexName: string; indexKey: Uint8Array }), /createIndex: unknown option metirc;/],
    ['createIndex autoTrain.treshold', (c) => c.createIndex({ indexName: 'm', indexKey: Client.generateKey(), autoTrain: { treshold: 5 } as {} }), /createIndex: unknown option autoTrain\.treshold; the options are threshold/],
    ['Client.open storage.pth', () => Client.open({ storage: { kind: 'memory', pth: '/x' } as { kind: 'memory' } }), /Client\.open: unknown option storage\.pth;/],
  ]
  for (const [name, call, message] of unknownNames) {
    it(`an unknown option name (${name}) rejects with ERR_INVALID_ARGUMENT naming it`, async () => {
      const { client, index } = await seeded()
      const err = await rejectsWithCode(() => call(client, index), 'ERR_INVALID_ARGUMENT')
      assert.match(err.message, message)
      await assertUnchanged(index)
    })
  }

  it('only own enumerable names are options: inherited and non-enumerable ones are not checked', async () => {
    const { index } = await seeded()
    const options = Object.create({ inherited: true }) as { vector: number[]; topK: number }
    options.vector = [1, 2, 3]
    options.topK = 1
    Object.defineProperty(options, 'hidden', { value: 1, enumerable: false })
    assert.deepEqual((await index.query(options)).map((h) => h.id), ['keep'])
    assert.equal(await index.count({ consistency: undefined }), 1)
  })

  it('a wrong option type never puts the value of a string where a key belongs into the message', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const secret = 'a3f1c2d4e5b6a7980112233445566778899aabbccddeeff00112233445566778'
    const err = await rejectsWithCode(client.createIndex({ indexName: 'k', indexKey: secret as unknown as Uint8Array }), 'ERR_INVALID_ARGUMENT')
    assert.match(err.message, /createIndex: option indexKey is a string, expected a Uint8Array/)
    assert.ok(!err.message.includes(secret))
  })
})
