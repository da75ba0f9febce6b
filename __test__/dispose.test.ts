// `await using client = await Client.open({ storage: { kind: 'memory' } })` closes the client at the end of the scope.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'

import { Client, type EncryptedIndex } from '../index.js'
import { rejectsWithCode } from './helpers.js'

describe('Client[Symbol.asyncDispose]', () => {
  it('closes the client at the end of an `await using` scope: later calls reject with ERR_CLOSED', async () => {
    let client: Client
    let index: EncryptedIndex
    {
      await using c = await Client.open({ storage: { kind: 'memory' } })
      client = c
      index = await c.createIndex({ indexName: 'd', indexKey: Client.generateKey() })
      await index.upsert({ items: [{ id: 'a', vector: [1, 2, 3] }] })
      assert.equal(await index.count(), 1)
    }
    await rejectsWithCode(index.count(), 'ERR_CLOSED')
    await rejectsWithCode(index.query({ vector: [1, 2, 3] }), 'ERR_CLOSED')
    await rejectsWithCode(client.listIndexes(), 'ERR_CLOSED')
  })

  it('closes it when the scope throws too, and releases a disk store for the next client', async () => {
    const path = mkdtempSync(join(tmpdir(), 'ciphervec-dispose-'))
    try {
      const key = Client.generateKey()
      await assert.rejects(async () => {
        await using client = await Client.open({ storage: { kind: 'disk', path } })
        const index = await client.createIndex({ indexName: 'd', indexKey: key })
        await index.upsert({ items: [{ id: 'a', vector: [1, 2, 3] }] })
        throw new Error('the scope failed')
      }, /the scope failed/)
      // The lock is gone: without the dispose this would reject with ERR_LOCKED.
      await using again = await Client.open({ storage: { kind: 'disk', path } })
      const index = await again.loadIndex({ indexName: 'd', indexKey: key })
      assert.equal(await index.count(), 1)
    } finally {
      rmSync(path, { recursive: true, force: true })
    }
  })

  it('is a method of the prototype like close, and disposing twice is harmless', async () => {
    assert.equal(typeof Object.getOwnPropertyDescriptor(Client.prototype, Symbol.asyncDispose)?.value, 'function')
    const client = await Client.open({ storage: { kind: 'memory' } })
    assert.equal(await client[Symbol.asyncDispose](), undefined)
    await client[Symbol.asyncDispose]()
    await rejectsWithCode(client.listIndexes(), 'ERR_CLOSED')
  })
})
