// client.backup({ path }): a consistent copy of the whole store as a new disk store, taken
// while writes go on; it opens as a disk store, loads with the indexes' keys, and holds only
// ciphertext.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, describe, it } from 'node:test'

import { Client, type EncryptedIndex } from '../index.js'
import { randomVectors, rejectsWithCode, row } from './helpers.js'
import { sharedPostgres } from './postgres.js'

const DIM = 8
const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ciphervec-backup-'))
  dirs.push(d)
  return d
}

/** A path in a new temporary directory that does not exist yet. */
const freshPath = () => join(tempDir(), 'backup')

/** Batch `b`: `size` items `b<b>-<i>`, each tagged `{ batch: b }`. */
function batch(b: number, size: number) {
  const vectors = randomVectors(size, DIM, 1000 + b)
  return Array.from({ length: size }, (_, i) => ({ id: `b${b}-${i}`, vector: row(vectors, DIM, i), metadata: { batch: b } }))
}

async function queryAll(index: EncryptedIndex, queries: Float32Array) {
  const out = []
  for (let q = 0; q < queries.length / DIM; q++) {
    const r = await index.query({ vector: row(queries, DIM, q), topK: 10, include: ['distance'] })
    out.push(r.map((x) => [x.id, x.distance]))
  }
  return out
}

describe('client.backup', () => {
  it('taken during concurrent upserts: each batch is in it wholly or not at all; a quiet backup answers as the source', async () => {
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'disk', path: tempDir() } })
    const index = await client.createIndex({ indexName: 'live', indexKey: key, dimension: DIM, autoTrain: false })
    await index.upsert({ items: batch(-1, 2000) })
    const batches = 30
    const size = 25
    const writes = Array.from({ length: batches }, (_, b) => index.upsert({ items: batch(b, size) }))
    const during = freshPath()
    const result = await client.backup({ path: during })
    await Promise.all(writes)
    assert.equal(result.spaces, 1)
    assert.ok(result.entries >= 2000, JSON.stringify(result))
    assert.ok(result.bytes > 0)

    const quiet = freshPath()
    await client.backup({ path: quiet })
    const queries = randomVectors(20, DIM, 7)
    const expected = await queryAll(index, queries)
    const count = await index.count()
    await client.close()

    const copy = await Client.open({ storage: { kind: 'disk', path: during } })
    const loaded = await copy.loadIndex({ indexName: 'live', indexKey: key })
    let items = 2000
    for (let b = 0; b < batches; b++) {
      const got = await loaded.get({ ids: batch(b, size).map((x) => x.id), include: ['metadata'] })
      assert.ok(got.length === 0 || got.length === size, `batch ${b}: ${got.length} of its ${size} items`)
      for (const item of got) assert.deepEqual(item.metadata, { batch: b })
      items += got.length
    }
    assert.equal(await loaded.count(), items)
    await copy.close()

    const again = await Client.open({ storage: { kind: 'disk', path: quiet } })
    const reloaded = await again.loadIndex({ indexName: 'live', indexKey: key })
    assert.equal(await reloaded.count(), count)
    assert.deepEqual(await queryAll(reloaded, queries), expected)
    await again.close()
  })

  it('copies every index as ciphertext: the backup file holds no plaintext, and a trained index loads from it', async () => {
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'secret-index-name', indexKey: key, autoTrain: false })
    const vector = Float32Array.from({ length: 16 }, (_, i) => 0.123456 + i * 1.5)
    const others = randomVectors(400, 16, 3)
    await index.upsert({
      items: Array.from({ length: 400 }, (_, i) => ({
        id: `patient-QZX-${i}`,
        vector: i === 0 ? vector : row(others, 16, i),
        metadata: { ward: 'oncology-ward-secret', n: i },
        contents: 'diagnosis text nobody may read',
      })),
    })
    await index.train({ nLists: 4 })
    const second = await client.createIndex({ indexName: 'second', indexKey: Client.generateKey(), dimension: 4 })
    await second.upsert({ items: [{ id: 'x', vector: [1, 2, 3, 4] }] })
    const path = freshPath()
    const result = await client.backup({ path })
    assert.equal(result.spaces, 2)
    const files = readdirSync(path)
    assert.deepEqual(files, ['ciphervec.redb'])
    const file = readFileSync(join(path, files[0]))
    assert.equal(file.length, result.bytes)
    const vecBytes = Buffer.from(vector.buffer)
    const needles = ['patient-QZX', 'oncology-ward-secret', 'diagnosis text', 'secret-index-name', 'ward'].map((s) => Buffer.from(s))
    needles.push(Buffer.from(key))
    for (let i = 0; i + 8 <= vecBytes.length; i += 8) needles.push(vecBytes.subarray(i, i + 8))
    for (const n of needles) assert.equal(file.indexOf(n), -1, `found ${JSON.stringify(n.toString('latin1'))} in the backup`)

    const copy = await Client.open({ storage: { kind: 'disk', path } })
    const loaded = await copy.loadIndex({ indexName: 'secret-index-name', indexKey: key })
    assert.equal(loaded.trainingState(), 'trained')
    const [hit] = await loaded.query({ vector, topK: 1, include: ['metadata', 'contents'] })
    assert.deepEqual([hit.id, hit.metadata, hit.contents], ['patient-QZX-0', { ward: 'oncology-ward-secret', n: 0 }, 'diagnosis text nobody may read'])
    await copy.close()
    await client.close()
  })

  it('refuses a path holding a store, a non-empty directory or a file, changing nothing; a relative path and an empty directory work', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'i', indexKey: Client.generateKey(), dimension: 4 })
    await index.upsert({ items: [{ id: 'a', vector: [1, 2, 3, 4] }] })

    const store = tempDir()
    const other = await Client.open({ storage: { kind: 'disk', path: store } })
    await other.createIndex({ indexName: 'kept', indexKey: Client.generateKey(), dimension: 4 })
    await other.close()
    const before = readFileSync(join(store, 'ciphervec.redb'))
    await rejectsWithCode(client.backup({ path: store }), 'ERR_INVALID_ARGUMENT')
    assert.deepEqual(readdirSync(store), ['ciphervec.redb'])
    assert.ok(readFileSync(join(store, 'ciphervec.redb')).equals(before), 'the store there is untouched')

    const busy = tempDir()
    writeFileSync(join(busy, 'notes.txt'), 'mine')
    await rejectsWithCode(client.backup({ path: busy }), 'ERR_INVALID_ARGUMENT')
    assert.deepEqual(readdirSync(busy), ['notes.txt'])
    await rejectsWithCode(client.backup({ path: join(busy, 'notes.txt') }), 'ERR_INVALID_ARGUMENT')
    assert.equal(readFileSync(join(busy, 'notes.txt'), 'utf8'), 'mine')

    const empty = tempDir()
    mkdirSync(join(empty, 'inner'))
    assert.equal((await client.backup({ path: join(empty, 'inner') })).spaces, 1)
    const rel = relative(process.cwd(), freshPath())
    assert.ok(!rel.startsWith('/'))
    assert.equal((await client.backup({ path: rel })).spaces, 1)
    const copy = await Client.open({ storage: { kind: 'disk', path: rel } })
    await copy.close()
    await client.close()
  })

  it('rejects bad options with ERR_INVALID_ARGUMENT and a closed client with ERR_CLOSED, writing nothing', async () => {
    const client = await Client.open({ storage: { kind: 'memory' } })
    const path = freshPath()
    const bad = client.backup as (o: unknown) => Promise<unknown>
    for (const options of [undefined, 'dir', {}, { path: 5 }, { path, pth: path }, { path: '' }]) {
      await rejectsWithCode(bad.call(client, options), 'ERR_INVALID_ARGUMENT')
    }
    await client.close()
    await rejectsWithCode(client.backup({ path }), 'ERR_CLOSED')
    assert.throws(() => readdirSync(path), { code: 'ENOENT' })
  })

  it('a PostgreSQL store backs up to a disk store that loads', async () => {
    const { url } = await sharedPostgres()
    const key = Client.generateKey()
    const storage = { kind: 'postgres' as const, url, table: `cvb_${randomBytes(5).toString('hex')}` }
    const client = await Client.open({ storage })
    const index = await client.createIndex({ indexName: 'pg', indexKey: key, dimension: DIM, autoTrain: false })
    await index.upsert({ items: batch(0, 300) })
    await index.compact()
    await index.upsert({ items: batch(1, 20) })
    const writes = [2, 3, 4].map((b) => index.upsert({ items: batch(b, 20) }))
    const path = freshPath()
    await client.backup({ path })
    await Promise.all(writes)
    await client.close()
    const copy = await Client.open({ storage: { kind: 'disk', path } })
    const loaded = await copy.loadIndex({ indexName: 'pg', indexKey: key })
    assert.equal((await loaded.get({ ids: batch(1, 20).map((x) => x.id) })).length, 20)
    const n = await loaded.count()
    assert.ok(n >= 320 && n <= 380 && (n - 320) % 20 === 0, `${n} items`)
    await copy.close()
  })
})
