// PostgreSQL storage in one process: the whole API over two clients sharing one table, options
// and connection errors, TLS, and nothing but ciphertext in any row the store writes.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'

import { Client, type EncryptedIndex, type StorageOptions } from '../index.js'
import { rejectsWithCode } from './helpers.js'
import { batchOf, eventually, vectorFor } from './pg-procs.js'
import { sharedPostgres, type SharedPostgres } from './postgres.js'

const DIM = 8

/** A table prefix of its own per test, so tests never see each other's rows. */
const prefix = () => `cvt_${randomBytes(5).toString('hex')}`

/** A port nothing listens on (it was free a moment ago). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

const clients: Client[] = []
async function open(storage: Partial<StorageOptions> & { url: string }, consistency?: 'eventual' | 'strong') {
  const client = await Client.open({ storage: { kind: 'postgres', ...storage }, consistency })
  clients.push(client)
  return client
}
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
})

const sortedIds = async (index: EncryptedIndex, consistency?: 'eventual' | 'strong') => (await index.listIds({ consistency })).sort()

describe('postgres storage, one process', () => {
  let server: SharedPostgres
  before(async () => {
    server = await sharedPostgres()
  })

  it('two clients on one table: every call works, B sees A at once with strong reads and later with eventual ones', async (t) => {
    const table = prefix()
    const a = await open({ url: server.url, table })
    const b = await open({ url: server.url, table, pollIntervalMs: 200 })
    const key = Client.generateKey()
    const ia = await a.createIndex({ indexName: 'shared', indexKey: key, dimension: DIM, autoTrain: false })
    const ib = await b.loadIndex({ indexName: 'shared', indexKey: key, autoTrain: false })
    assert.equal(ib.dimension, DIM)
    assert.equal(ib.metric, 'euclidean')
    await rejectsWithCode(b.createIndex({ indexName: 'shared', indexKey: key }), 'ERR_INDEX_EXISTS')
    await rejectsWithCode(b.loadIndex({ indexName: 'shared', indexKey: Client.generateKey() }), 'ERR_INDEX_NOT_FOUND')
    assert.deepEqual(await a.listIndexes(), ['shared'])

    // A writes; B's strong reads see it at once.
    const first = batchOf(Array.from({ length: 100 }, (_, i) => `a${i}`), DIM, 'A', { n: 0 })
    await ia.upsert({ ...first, metadata: first.metadata.map((m, i) => ({ ...m, n: i })), contents: first.ids.map((id) => `text of ${id}`) })
    assert.equal(await ia.count(), 100, 'A reads its own writes')
    assert.equal(await ib.count({ consistency: 'strong' }), 100)
    assert.deepEqual(await sortedIds(ib, 'strong'), [...first.ids].sort())
    const [got] = await ib.get({ ids: ['a7'], consistency: 'strong' })
    assert.deepEqual(got.vector, vectorFor('a7', DIM, 'A'))
    assert.deepEqual(got.metadata, { writer: 'A', id: 'a7', n: 7 })
    assert.equal(got.contents, 'text of a7')
    const [hit] = await ib.query({ vector: vectorFor('a42', DIM, 'A'), topK: 1, include: ['distance', 'metadata'], consistency: 'strong' })
    assert.equal(hit.id, 'a42')
    assert.equal(hit.distance, 0)
    assert.equal(hit.metadata?.n, 42)
    const matches = await ib.queryMetadata({ filters: { n: { $lt: 3 } }, consistency: 'strong' })
    assert.deepEqual(matches.map((m) => m.id), ['a0', 'a1', 'a2'])
    const batch = await ib.queryBatch({ vectors: [vectorFor('a1', DIM, 'A'), vectorFor('a2', DIM, 'A')], topK: 1, consistency: 'strong' })
    assert.deepEqual(batch.map((r) => r[0].id), ['a1', 'a2'])

    // A writes again; B's eventual reads catch up by themselves (the follower).
    const second = batchOf(Array.from({ length: 50 }, (_, i) => `late${i}`), DIM, 'A')
    await ia.upsert(second)
    const started = Date.now()
    await eventually('B eventually counts 150', async () => ((await ib.count()) === 150 ? true : undefined))
    t.diagnostic(`B's eventual count caught up after ${Date.now() - started} ms`)
    await eventually('B eventually gets late49', async () => ((await ib.get({ ids: ['late49'] })).length === 1 ? true : undefined))
    assert.equal((await ib.query({ vector: vectorFor('late3', DIM, 'A'), topK: 1 }))[0].id, 'late3')

    // B writes and reads its own writes with eventual reads; A sees them strongly.
    await ib.upsert({ items: [{ id: 'fromB', vector: vectorFor('fromB', DIM, 'B'), metadata: { writer: 'B' } }] })
    assert.equal((await ib.get({ ids: ['fromB'] })).length, 1)
    assert.deepEqual((await ia.get({ ids: ['fromB'], consistency: 'strong' }))[0].vector, vectorFor('fromB', DIM, 'B'))

    // Deletes.
    assert.deepEqual(await ia.delete({ ids: ['a0', 'a1', 'nope'] }), { deletedCount: 2 })
    assert.equal((await ib.get({ ids: ['a0', 'a1', 'a2'], consistency: 'strong' })).length, 1)
    assert.equal(await ib.count({ consistency: 'strong' }), 149)

    // A client whose reads default to strong.
    const c = await open({ url: server.url, table }, 'strong')
    const ic = await c.loadIndex({ indexName: 'shared', indexKey: key, autoTrain: false })
    await ia.upsert({ items: [{ id: 'forC', vector: vectorFor('forC', DIM, 'A') }] })
    assert.equal((await ic.get({ ids: ['forC'] })).length, 1, 'a strong client sees the write at once')
    assert.equal(await ic.count(), 150)

    // Training in A: B switches to the trained index (after a strong read at the latest).
    const trained = await ia.train({ nLists: 4, seed: 1 })
    assert.equal(trained.nLists, 4)
    assert.equal(ia.isTrained(), true)
    assert.equal(await ib.count({ consistency: 'strong' }), 150)
    assert.equal(ib.isTrained(), true)
    assert.equal(ib.nLists, 4)
    assert.equal(ib.trainingState(), 'trained')
    await eventually('C eventually trained', async () => (ic.isTrained() ? true : undefined))
    const q = vectorFor('probe', DIM, 'Q')
    const exact = async (i: EncryptedIndex) => (await i.query({ vector: q, topK: 10, nProbes: 4, consistency: 'strong' })).map((r) => r.id)
    assert.deepEqual(await exact(ib), await exact(ia))
    assert.deepEqual(await exact(ic), await exact(ia))

    // Compaction in B: nothing changes for anyone.
    const before = await sortedIds(ia, 'strong')
    await ib.compact()
    assert.deepEqual(await sortedIds(ia, 'strong'), before)
    assert.deepEqual(await exact(ia), await exact(ib))
    assert.deepEqual((await ia.get({ ids: ['a7'], consistency: 'strong' }))[0].metadata, { writer: 'A', id: 'a7', n: 7 })
    // A fresh client loads the compacted, trained index.
    const d = await open({ url: server.url, table })
    const id = await d.loadIndex({ indexName: 'shared', indexKey: key, autoTrain: false })
    assert.equal(id.isTrained(), true)
    assert.deepEqual(await sortedIds(id), before)

    // deleteIndex in A: A's handle is closed; B's next strong read finds the index gone.
    await ia.deleteIndex()
    await rejectsWithCode(ia.count(), 'ERR_CLOSED')
    await rejectsWithCode(ib.count({ consistency: 'strong' }), 'ERR_CLOSED')
    await rejectsWithCode(d.loadIndex({ indexName: 'shared', indexKey: key }), 'ERR_INDEX_NOT_FOUND')
    assert.deepEqual(await a.listIndexes(), [])
  })

  it('a write lock held elsewhere past lockTimeoutMs is ERR_LOCKED; reads go on; writes work once it is released', async () => {
    const table = prefix()
    const client = await open({ url: server.url, table, lockTimeoutMs: 500 })
    const key = Client.generateKey()
    const index = await client.createIndex({ indexName: 'locked', indexKey: key, dimension: DIM, autoTrain: false })
    await index.upsert(batchOf(['x0', 'x1'], DIM, 'L'))
    // Another session holds the index's row lock (what a writer in another process takes).
    const holder = new pg.Client({ connectionString: server.url })
    await holder.connect()
    try {
      await holder.query('BEGIN')
      const { rowCount } = await holder.query(`SELECT 1 FROM "${table}_spaces" FOR UPDATE`)
      assert.ok(rowCount && rowCount >= 1)
      await rejectsWithCode(index.upsert(batchOf(['y0', 'y1'], DIM, 'L')), 'ERR_LOCKED')
      await rejectsWithCode(index.delete({ ids: ['x0'] }), 'ERR_LOCKED')
      // Reads are not writes: eventual and strong ones both answer.
      assert.equal(await index.count(), 2)
      assert.equal(await index.count({ consistency: 'strong' }), 2)
      assert.equal((await index.query({ vector: vectorFor('x1', DIM, 'L'), topK: 1, consistency: 'strong' }))[0].id, 'x1')
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
    }
    // Nothing of the rejected calls was written; the next writes go through.
    assert.deepEqual(await sortedIds(index, 'strong'), ['x0', 'x1'])
    await index.upsert(batchOf(['y0', 'y1'], DIM, 'L'))
    assert.deepEqual(await index.delete({ ids: ['x0'] }), { deletedCount: 1 })
    const other = await open({ url: server.url, table })
    const reloaded = await other.loadIndex({ indexName: 'locked', indexKey: key })
    assert.deepEqual(await sortedIds(reloaded), ['x1', 'y0', 'y1'])
  })

  it('rejects bad storage options with ERR_INVALID_ARGUMENT', async () => {
    const bad: Array<[string, StorageOptions]> = [
      ['postgres without url', { kind: 'postgres' }],
      ['postgres with path', { kind: 'postgres', url: server.url, path: '/tmp/x' }],
      ['disk with url', { kind: 'disk', path: '/tmp/ciphervec-never-created', url: server.url }],
      ['disk with table', { kind: 'disk', path: '/tmp/ciphervec-never-created', table: 'abc' }],
      ['memory with url', { kind: 'memory', url: server.url }],
      ['uppercase table', { kind: 'postgres', url: server.url, table: 'Bad' }],
      ['table with a dash', { kind: 'postgres', url: server.url, table: 'bad-name' }],
      ['table with a quote', { kind: 'postgres', url: server.url, table: 'x"; DROP TABLE y; --' }],
      ['empty table', { kind: 'postgres', url: server.url, table: '' }],
      ['table starting with a digit', { kind: 'postgres', url: server.url, table: '1abc' }],
      ['table of 41 characters', { kind: 'postgres', url: server.url, table: 'a'.repeat(41) }],
      ['negative poolSize', { kind: 'postgres', url: server.url, poolSize: -1 }],
      ['fractional timeout', { kind: 'postgres', url: server.url, queryTimeoutMs: 1.5 }],
    ]
    for (const [what, storage] of bad) {
      const e = await rejectsWithCode(Client.open({ storage }), 'ERR_INVALID_ARGUMENT').catch((err) => {
        throw new Error(`${what}: ${err.message}`)
      })
      assert.ok(e.message.length > 0, what)
    }
    // The longest name allowed works.
    const ok = await open({ url: server.url, table: `t${'x'.repeat(29)}${randomBytes(5).toString('hex')}` })
    await ok.close()
  })

  it('an unreachable server is ERR_UNAVAILABLE, and the message holds no password', async () => {
    const port = await freePort()
    const password = 'pw-SECRET-3141592'
    const e = await rejectsWithCode(
      Client.open({ storage: { kind: 'postgres', url: `postgres://alice:${password}@127.0.0.1:${port}/db`, connectTimeoutMs: 2000 } }),
      'ERR_UNAVAILABLE',
    )
    assert.ok(!e.message.includes(password), `password in the message: ${e.message}`)
    assert.ok(!String(e.stack).includes(password))
    // A key=value connection string, too.
    const kv = await rejectsWithCode(
      Client.open({ storage: { kind: 'postgres', url: `host=127.0.0.1 port=${port} user=alice password=${password} dbname=db`, connectTimeoutMs: 2000 } }),
      'ERR_UNAVAILABLE',
    )
    assert.ok(!kv.message.includes(password), `password in the message: ${kv.message}`)
    // A wrong password on a live server: a typed error without the password either.
    const wrong = server.url.replace(/:[^:@/]+@/, `:${password}@`)
    const w = await Client.open({ storage: { kind: 'postgres', url: wrong, connectTimeoutMs: 5000 } }).then(
      () => assert.fail('opened with a wrong password'),
      (err: Error & { code?: string }) => err,
    )
    assert.match(String(w.code), /^ERR_/)
    assert.ok(!w.message.includes(password), `password in the message: ${w.message}`)
  })

  it('sslmode=verify-full against the harness CA works', async (t) => {
    if (!server.caFile) return t.skip('the server in CIPHERVEC_TEST_POSTGRES_URL has no CA (CIPHERVEC_TEST_POSTGRES_CA)')
    const table = prefix()
    const url = `${server.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(server.caFile)}`
    const client = await open({ url, table })
    const key = Client.generateKey()
    const index = await client.createIndex({ indexName: 'tls', indexKey: key, dimension: DIM })
    await index.upsert(batchOf(['x', 'y'], DIM, 'T'))
    // A second client over plain TCP sees the same rows.
    const plain = await open({ url: `${server.url}?sslmode=disable`, table })
    const other = await plain.loadIndex({ indexName: 'tls', indexKey: key })
    assert.deepEqual(await sortedIds(other), ['x', 'y'])
    // The connection really is TLS: the server says so for the store's sessions.
    const { rows } = await server.admin.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.datname = 'ciphervec_test'",
    )
    assert.ok(Number(rows[0].n) >= 1, 'no TLS session open')
    // A root file that does not exist is a typed error, not a connection without verification.
    const missing = `${server.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(server.caFile + '.missing')}`
    await rejectsWithCode(Client.open({ storage: { kind: 'postgres', url: missing, table } }), 'ERR_INVALID_ARGUMENT')
  })

  it('no row of any table the store created holds an id, metadata string, content, index name or vector bytes', async (t) => {
    const table = prefix()
    const client = await open({ url: server.url, table })
    const indexName = 'IdxName-OCELOT-5531'
    const index = await client.createIndex({ indexName, indexKey: Client.generateKey(), dimension: 16, autoTrain: false })
    const n = 120
    const ids = Array.from({ length: n }, (_, i) => `PlainId-ZEBRA-${1000 + i}`)
    const vectors = ids.map((id) => vectorFor(id, 16, 'scan'))
    const metaString = (i: number) => `MetaString-QUOKKA-${2000 + i}`
    const content = (i: number) => `Contents-NARWHAL-${3000 + i} diagnosis nobody may read`
    const item = (i: number) => ({
      id: ids[i],
      vector: vectors[i],
      metadata: { SecretKeyName_ALPACA: metaString(i), nested: { deep: `Nested-IBEX-${i}` } },
      contents: content(i),
    })

    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
    const needles: Array<[string, string]> = []
    const text = (s: string) => {
      needles.push([s, s.toLowerCase()])
      needles.push([`hex of ${s}`, hex(Buffer.from(s))]) // a bytea column prints \x<hex>
    }
    text(indexName)
    ids.forEach((id) => text(id))
    for (let i = 0; i < n; i++) {
      text(metaString(i))
      text(content(i))
      text(`Nested-IBEX-${i}`)
    }
    text('SecretKeyName_ALPACA')
    text('diagnosis nobody may read')
    vectors.forEach((v, i) => {
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
      needles.push([`vector ${i}`, hex(bytes)])
      // Also every 4-float piece, so that a vector split across columns would be found.
      for (let o = 0; o + 16 <= bytes.length; o += 16) needles.push([`vector ${i} bytes ${o}..${o + 16}`, hex(bytes.subarray(o, o + 16))])
    })

    /** Dumps every row of every `${table}_*` table and looks for every needle in it. */
    const scan = async (stage: string) => {
      // `admin` is on database `postgres`; the store's tables are in the test database.
      const db = new pg.Client({ connectionString: server.url })
      await db.connect()
      let dump = ''
      let rowCount = 0
      try {
        const { rows: tables } = await db.query<{ tablename: string }>(
          'SELECT tablename FROM pg_tables WHERE tablename LIKE $1 ORDER BY tablename',
          [`${table}\\_%`],
        )
        assert.deepEqual(
          tables.map((r) => r.tablename),
          ['_entries', '_log', '_schema', '_spaces'].map((s) => table + s),
        )
        for (const { tablename } of tables) {
          const { rows } = await db.query<{ t: string }>(`SELECT t::text AS t FROM "${tablename}" t`)
          rowCount += rows.length
          for (const r of rows) dump += r.t + '\n'
        }
      } finally {
        await db.end()
      }
      assert.ok(dump.length > n * 16 * 4 * 2, `${stage}: too little stored to scan: ${rowCount} rows, ${dump.length} chars`)
      // Blobs print as bytea hex, which is why every needle is also looked for in hex.
      assert.match(dump, /\\x[0-9a-f]{64}/)
      t.diagnostic(`${stage}: ${rowCount} rows, ${dump.length} characters scanned`)
      const lower = dump.toLowerCase()
      for (const [what, needle] of needles) assert.ok(!lower.includes(needle), `${stage}: found ${what} in the stored rows`)
    }

    // Loose records, tombstones and log entries.
    await index.upsert({ items: ids.map((_, i) => item(i)) })
    await index.delete({ ids: ids.slice(0, 10) })
    await index.upsert({ items: [item(0)] })
    await scan('after upsert and delete')
    // Packed segments.
    await index.compact()
    await scan('after compact')
    // Trained lists, then loose writes over them again.
    await index.train({ nLists: 4, seed: 3 })
    await index.upsert({ items: [item(1)] })
    await index.delete({ ids: [ids[2]] })
    assert.equal(await index.count(), n - 10 + 2) // ids[0] and ids[1] came back; ids[2] was gone already
    await scan('after train, upsert and delete')
  })
})
