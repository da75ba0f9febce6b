// Disk storage: survives restarts and kill -9, one process at a time, nothing but ciphertext
// in the files.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { after, describe, it } from 'node:test'

import { Client, type Filter, type MetadataInput } from '../index.js'
import { rejectsWithCode } from './helpers.js'

const ADDON = JSON.stringify(require.resolve('../index.js'))
const dirs: string[] = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ciphervec-disk-'))
  dirs.push(d)
  return d
}

/** Runs `body` in a child Node process with `Client`, `path`, `key` in scope; returns stdout. */
function child(path: string, key: Uint8Array, body: string): string {
  const script = `
    const { Client } = require(${ADDON})
    const path = ${JSON.stringify(path)}, key = Buffer.from(${JSON.stringify(Buffer.from(key).toString('hex'))}, 'hex')
    ;(async () => { ${body} })().catch((e) => { console.log('ERROR ' + e.code + ' ' + e.message); process.exit(3) })`
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.signal, null, r.stderr)
  return r.stdout.trim()
}

/** A fresh tmpfs of `size` (e.g. '3M'), or undefined with the test skipped when not root. */
function mountTmpfs(t: { skip: (message: string) => void }, size: string): string | undefined {
  const mnt = tempDir()
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt], { stdio: 'pipe' })
    return mnt
  } catch {
    t.skip('needs root (to mount a small tmpfs); CI runs as root')
    return undefined
  }
}

/** Sets or clears a file's immutable flag (`+i` / `-i`); false with the test skipped when that is not possible. */
function chattr(t: { skip: (message: string) => void }, flag: '+i' | '-i', file: string): boolean {
  try {
    if (process.getuid?.() !== 0) throw new Error('not root')
    execFileSync('chattr', [flag, file], { stdio: 'pipe' })
    return true
  } catch {
    t.skip('needs root and chattr on a file system with the immutable flag (ext4); CI runs as root')
    return false
  }
}

/** A deterministic vector for an id, so any item can be checked for intactness. */
function vectorOf(id: string, dim = 8): Float32Array {
  let h = 0
  for (const c of id) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0
  return Float32Array.from({ length: dim }, (_, j) => Math.sin(h + j * 1.7))
}

describe('disk storage', () => {
  it('survives a restart: items, trained state and query results are identical', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const out = child(path, key, `
      const client = await Client.open({ storage: { kind: 'disk', path } })
      const index = await client.createIndex({ indexName: 'docs', indexKey: key, autoTrain: false })
      const n = 3000, dim = 8
      const v = new Float32Array(n * dim).map((_, i) => Math.sin(i * 0.37))
      const ids = Array.from({ length: n }, (_, i) => 'id-' + i)
      await index.upsert({ ids, vectors: v, metadata: ids.map((id, i) => ({ i, tag: i % 3 === 0 ? 'x' : 'y' })) })
      await index.train({ nLists: 32, seed: 7 })
      await index.delete({ ids: ['id-5'] })
      const res = await index.query({ vector: v.subarray(0, dim), topK: 5, nProbes: 4, filters: { tag: 'x' } })
      await client.close()
      console.log(JSON.stringify(res))`)
    const before = JSON.parse(out)
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.loadIndex({ indexName: 'docs', indexKey: key })
    assert.equal(await index.count(), 2999)
    assert.equal(index.isTrained(), true)
    assert.equal(index.nLists, 32)
    const v0 = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i * 0.37))
    assert.deepEqual(await index.query({ vector: v0, topK: 5, nProbes: 4, filters: { tag: 'x' } }), before)
    assert.deepEqual(await index.get({ ids: ['id-5'] }), [])
    assert.deepEqual((await index.get({ ids: ['id-3'], include: ['metadata'] }))[0].metadata, { i: 3, tag: 'x' })
    await rejectsWithCode(client.loadIndex({ indexName: 'docs', indexKey: Client.generateKey() }), 'ERR_INDEX_NOT_FOUND')
    await client.close()
  })

  it('compact(): packed, overwritten, deleted and re-added items all survive a restart exactly', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.createIndex({ indexName: 'c', indexKey: key, dimension: 8, autoTrain: false })
    const ids = Array.from({ length: 2000 }, (_, i) => `id${i}`)
    await index.upsert({ items: ids.map((id) => ({ id, vector: vectorOf(id), metadata: { v: 1 } })) })
    await index.compact()
    assert.equal(index.isCompacting(), false)
    // After packing: overwrite 0–9, delete 5–19, bring 7 back.
    await index.upsert({ items: ids.slice(0, 10).map((id) => ({ id, vector: vectorOf(id + 'x'), metadata: { v: 2 } })) })
    await index.delete({ ids: ids.slice(5, 20) })
    await index.upsert({ items: [{ id: 'id7', vector: vectorOf('id7'), metadata: { v: 3 } }] })
    await client.close()
    for (let round = 0; round < 2; round++) {
      const again = await Client.open({ storage: { kind: 'disk', path } })
      const reloaded = await again.loadIndex({ indexName: 'c', indexKey: key })
      assert.equal(await reloaded.count(), 2000 - 15 + 1)
      const got = await reloaded.get({ ids: ['id0', 'id5', 'id7', 'id19', 'id20'], include: ['vector', 'metadata'] })
      assert.deepEqual(
        got.map((g) => [g.id, g.metadata?.v, Array.from(g.vector!)]),
        [
          ['id0', 2, Array.from(vectorOf('id0x'))],
          ['id7', 3, Array.from(vectorOf('id7'))],
          ['id20', 1, Array.from(vectorOf('id20'))],
        ],
      )
      // The second round reloads what this compaction wrote.
      if (round === 0) await reloaded.compact()
      await again.close()
    }
  })

  it('metadata of every JSON shape comes back exactly, loose and packed, and filters see it after a restart', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const shapes: MetadataInput[] = [
      { s: 'plain', n: 0, f: 0.5, neg: -7, big: 2 ** 53 - 1, tiny: 5e-324, t: true, z: null },
      { 'ünï 😀': 'ñ', '': '', esc: 'a"b\\c\n\t', long: 'x'.repeat(5000) },
      { nested: { a: [1, [2, [3, { deep: 'yes' }]]], b: {}, c: [] }, tags: ['red', 'green'] },
      { zb: 1, za: 2, m: { y: 1, x: 2 } },
      {},
    ]
    const sorted = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(sorted)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]))
          : v
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.createIndex({ indexName: 'm', indexKey: key, dimension: 8, autoTrain: false })
    const ids = shapes.map((_, i) => `m${i}`)
    await index.upsert({ items: ids.map((id, i) => ({ id, vector: vectorOf(id), metadata: shapes[i] })) })
    await client.close()
    for (const stage of ['loose', 'packed']) {
      const again = await Client.open({ storage: { kind: 'disk', path } })
      const reloaded = await again.loadIndex({ indexName: 'm', indexKey: key })
      const got = await reloaded.get({ ids, include: ['metadata'] })
      assert.deepEqual(got.map((g) => g.metadata), shapes.map(sorted), stage)
      assert.deepEqual(Object.keys(got[3].metadata!), ['m', 'za', 'zb'], `${stage}: keys come back sorted`)
      const match = async (filters: Filter) =>
        (await reloaded.query({ vector: vectorOf('m0'), topK: 10, filters })).map((r) => r.id).sort()
      assert.deepEqual(await match({ 'nested.a.1.1.0': 3 }), ['m2'], stage)
      assert.deepEqual(await match({ tags: 'green' }), ['m2'], stage)
      assert.deepEqual(await match({ big: { $gte: 2 ** 53 - 1 } }), ['m0'], stage)
      assert.deepEqual(await match({ 'ünï 😀': { $in: ['ñ'] } }), ['m1'], stage)
      assert.deepEqual(await match({ 'm.x': 2, neg: { $exists: false } }), ['m3'], stage)
      if (stage === 'loose') await reloaded.compact()
      await again.close()
    }
  })

  it('compact() and deleteIndex() give the space they free back: the file shrinks, nothing stored is lost', async () => {
    const path = tempDir()
    const size = () => readdirSync(path).reduce((sum, f) => sum + statSync(join(path, f)).size, 0)
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const small = await client.createIndex({ indexName: 'small', indexKey: key, dimension: 8, autoTrain: false })
    await small.upsert({ items: ['x', 'y'].map((id) => ({ id, vector: vectorOf(id), metadata: { id } })) })
    const big = await client.createIndex({ indexName: 'big', indexKey: key, dimension: 256, autoTrain: false })
    const dim = 256
    for (let b = 0; b < 8; b++) {
      const ids = Array.from({ length: 5000 }, (_, i) => `b${b}-${i}`)
      const vectors = Float32Array.from({ length: ids.length * dim }, (_, j) => Math.sin(b * 7919 + j))
      await big.upsert({ ids, vectors })
    }
    // 40k × 1 KiB vectors: ~42 MB sealed, stored loose.
    const loose = size()
    await big.compact()
    const packed = size()
    assert.ok(packed < 60e6 && packed < loose / 2, `after compact(): ${packed} bytes (before: ${loose})`)
    await big.deleteIndex()
    const rest = size()
    assert.ok(rest < 8e6, `after deleteIndex(): ${rest} bytes`)
    await client.close()
    const reopened = await Client.open({ storage: { kind: 'disk', path } })
    await rejectsWithCode(reopened.loadIndex({ indexName: 'big', indexKey: key }), 'ERR_INDEX_NOT_FOUND')
    const again = await reopened.loadIndex({ indexName: 'small', indexKey: key, autoTrain: false })
    const items = await again.get({ ids: ['x', 'y'], include: ['vector', 'metadata'] })
    assert.deepEqual(items.map((it) => [it.id, Array.from(it.vector!), it.metadata]), ['x', 'y'].map((id) => [id, Array.from(vectorOf(id)), { id }]))
    await reopened.close()
  })

  it('one process at a time: a second one gets ERR_LOCKED until the first closes', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'disk', path } })
    await client.createIndex({ indexName: 'x', indexKey: key })
    const attempt = `const c = await Client.open({ storage: { kind: 'disk', path } }); console.log('opened'); await c.close()`
    const locked = child(path, key, attempt)
    assert.match(locked, /^ERROR ERR_LOCKED /)
    await rejectsWithCode(Client.open({ storage: { kind: 'disk', path } }), 'ERR_LOCKED')
    await client.close()
    assert.equal(child(path, key, attempt), 'opened')
  })

  it('bad paths are typed errors', async () => {
    await rejectsWithCode(Client.open({ storage: { kind: 'disk' } }), 'ERR_INVALID_ARGUMENT')
    const file = join(tempDir(), 'a-file')
    require('node:fs').writeFileSync(file, 'x')
    await rejectsWithCode(Client.open({ storage: { kind: 'disk', path: join(file, 'sub') } }), 'ERR_IO')
  })

  it('the files hold no plaintext id, metadata string or vector bytes', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.createIndex({ indexName: 'secret-index-name', indexKey: key })
    const vector = Float32Array.from({ length: 16 }, (_, i) => 0.123456 + i * 1.5)
    await index.upsert({
      items: Array.from({ length: 50 }, (_, i) => ({
        id: `patient-QZX-${i}`,
        vector: i === 0 ? vector : vectorOf(`p${i}`, 16),
        metadata: { ward: 'oncology-ward-secret', n: i },
        contents: 'diagnosis text nobody may read',
      })),
    })
    await client.close()
    const files = readdirSync(path).map((f) => readFileSync(join(path, f)))
    assert.ok(files.length > 0 && files.some((f) => f.length > 50 * 100))
    const vecBytes = Buffer.from(vector.buffer)
    const needles = ['patient-QZX', 'oncology-ward-secret', 'diagnosis text', 'secret-index-name', 'ward'].map((s) => Buffer.from(s))
    needles.push(Buffer.from(key))
    for (let i = 0; i + 8 <= vecBytes.length; i += 8) needles.push(vecBytes.subarray(i, i + 8))
    for (const f of files) for (const n of needles) assert.equal(f.indexOf(n), -1, `found ${JSON.stringify(n.toString('latin1'))} in a store file`)
  })

  it('kill -9 at random points during ingest, 20 times: every acknowledged batch is intact, no batch is half-written', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const batch = 50
    const writer = `
      const { Client } = require(${ADDON})
      ;(async () => {
        const key = Buffer.from(process.argv[1], 'hex')
        const client = await Client.open({ storage: { kind: 'disk', path: ${JSON.stringify(path)} } })
        let index
        try { index = await client.loadIndex({ indexName: 'crash', indexKey: key, autoTrain: false }) }
        catch { index = await client.createIndex({ indexName: 'crash', indexKey: key, dimension: 8, autoTrain: false }) }
        const vectorOf = ${vectorOf.toString()}
        for (let b = Number(process.argv[2]); ; b++) {
          const ids = Array.from({ length: ${batch} }, (_, i) => 'b' + b + '-' + i)
          await index.upsert({ items: ids.map((id) => ({ id, vector: vectorOf(id), metadata: { b } })) })
          process.stdout.write('ack ' + b + '\\n')
        }
      })()`
    let nextBatch = 0
    const acked = new Set<number>()
    for (let round = 0; round < 20; round++) {
      const proc = spawn(process.execPath, ['-e', writer, Buffer.from(key).toString('hex'), String(nextBatch)])
      let out = ''
      proc.stdout.on('data', (d) => (out += d))
      const killAfterAcks = 1 + Math.floor(Math.random() * 6)
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          const n = out.split('\n').filter((l) => l.startsWith('ack ')).length
          if (n >= killAfterAcks || proc.exitCode !== null) {
            clearInterval(poll)
            // A random extra delay lands the kill anywhere inside the next batch's commit.
            setTimeout(() => { proc.kill('SIGKILL'); resolve() }, Math.random() * 15)
          }
        }, 1)
      })
      await new Promise((resolve) => proc.once('exit', resolve))
      for (const line of out.split('\n')) if (line.startsWith('ack ')) acked.add(Number(line.slice(4)))
      nextBatch = Math.max(nextBatch, ...acked) + 2
    }
    assert.ok(acked.size >= 20, `only ${acked.size} batches acknowledged over 20 runs`)
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.loadIndex({ indexName: 'crash', indexKey: key, autoTrain: false })
    const ids = await index.listIds()
    const byBatch = new Map<number, number>()
    for (const id of ids) {
      const b = Number(id.slice(1, id.indexOf('-')))
      byBatch.set(b, (byBatch.get(b) ?? 0) + 1)
    }
    for (const [b, n] of byBatch) assert.equal(n, batch, `batch ${b} is half-written (${n} of ${batch} items)`)
    for (const b of acked) assert.equal(byBatch.get(b), batch, `acknowledged batch ${b} is missing`)
    assert.equal(await index.count(), ids.length)
    const items = await index.get({ ids, include: ['vector', 'metadata'] })
    for (const it of items) {
      assert.deepEqual(it.vector, vectorOf(it.id), `${it.id} has a wrong vector`)
      assert.equal(it.metadata?.b, Number(it.id.slice(1, it.id.indexOf('-'))))
    }
    await client.close()
  })

  it('kill -9 during compact() and the file shrink after it, 6 times: every acknowledged item is intact', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const n = 40_000
    const dim = 256
    // Each round overwrites every item (so the compaction frees ~40 MB and the file shrinks
    // afterwards), then compacts and is killed at a random point of the compaction or shrink.
    const worker = `
      const { Client } = require(${ADDON})
      ;(async () => {
        const [key, round] = [Buffer.from(process.argv[1], 'hex'), Number(process.argv[2])]
        const client = await Client.open({ storage: { kind: 'disk', path: ${JSON.stringify(path)} } })
        let index
        try { index = await client.loadIndex({ indexName: 'k', indexKey: key, autoTrain: false }) }
        catch { index = await client.createIndex({ indexName: 'k', indexKey: key, dimension: ${dim}, autoTrain: false }) }
        const ids = Array.from({ length: ${n} }, (_, i) => 'id-' + i)
        for (let s = 0; s < ${n}; s += 10000) {
          const vectors = new Float32Array(10000 * ${dim}).map((_, j) => round * 1000 + s + Math.floor(j / ${dim}))
          await index.upsert({ ids: ids.slice(s, s + 10000), vectors })
        }
        process.stdout.write('acked ' + round + '\\n')
        const started = performance.now()
        await index.compact()
        process.stdout.write('compacted in ' + (performance.now() - started) + ' ms\\n')
        await client.close()
      })()`
    // Round 0 runs to the end and measures how long compact() (with the shrink) takes on this
    // machine; each later round is killed at another fraction of that time after compact()
    // starts, so kills land inside it whatever the machine's speed.
    const fractions = [0.1, 0.26, 0.42, 0.58, 0.74, 0.9]
    let compactMs = 0
    let lastAcked = -1
    let killedInside = 0
    for (let round = 0; round <= fractions.length; round++) {
      const proc = spawn(process.execPath, ['-e', worker, Buffer.from(key).toString('hex'), String(round)])
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      let out = ''
      proc.stdout.on('data', (d) => (out += d))
      proc.stderr.on('data', (d) => (out += d))
      if (round > 0) {
        await new Promise<void>((resolve) => {
          const poll = setInterval(() => {
            if (out.includes('acked ') || proc.exitCode !== null) {
              clearInterval(poll)
              setTimeout(() => { proc.kill('SIGKILL'); resolve() }, fractions[round - 1] * compactMs)
            }
          }, 1)
        })
      }
      await exited
      assert.ok(out.includes('acked ' + round), out)
      lastAcked = round
      if (round === 0) {
        const measured = /compacted in ([\d.]+) ms/.exec(out)
        assert.ok(measured, `round 0 runs to the end: ${out}`)
        compactMs = Number(measured[1])
      } else if (!out.includes('compacted')) killedInside++
    }
    assert.ok(killedInside >= 1, `no kill landed inside a compaction (round 0's took ${compactMs} ms)`)
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.loadIndex({ indexName: 'k', indexKey: key, autoTrain: false })
    assert.equal(await index.count(), n)
    const probe = Array.from({ length: 200 }, (_, i) => 'id-' + i * 199)
    for (const it of await index.get({ ids: probe, include: ['vector'] })) {
      const i = Number(it.id.slice(3))
      assert.equal(it.vector![0], lastAcked * 1000 + i, it.id)
      assert.equal(it.vector![dim - 1], lastAcked * 1000 + i, it.id)
    }
    // Whatever the kills interrupted, the store can be compacted and shrunk again.
    await index.compact()
    assert.ok(statSync(join(path, 'ciphervec.redb')).size < 80e6)
    await client.close()
  })

  it('single flipped bytes anywhere in the file: typed errors or intact data, never a crash or a wrong or missing item, also when writing', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const n = 1000
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.createIndex({ indexName: 'flip', indexKey: key, dimension: 8, autoTrain: false })
    const ids = Array.from({ length: n }, (_, i) => `id${i}`)
    await index.upsert({ items: ids.map((id) => ({ id, vector: vectorOf(id) })) })
    // Half the items packed into segments, half loose records, one tombstone: every kind of entry.
    await index.compact()
    await index.upsert({ items: ids.slice(0, n / 2).map((id) => ({ id, vector: vectorOf(id) })) })
    await index.upsert({ items: [{ id: 'gone', vector: vectorOf('gone') }] })
    await index.compact()
    await index.upsert({ items: ids.slice(0, n / 2).map((id) => ({ id, vector: vectorOf(id) })) })
    await index.delete({ ids: ['gone'] })
    await client.close()
    const file = join(path, 'ciphervec.redb')
    const original = readFileSync(file)
    const check = `
      const vectorOf = ${vectorOf.toString()}
      const c = await Client.open({ storage: { kind: 'disk', path } })
      const i = await c.loadIndex({ indexName: 'flip', indexKey: key, autoTrain: false })
      const ids = Array.from({ length: ${n} }, (_, k) => 'id' + k)
      const items = await i.get({ ids, include: ['vector'] })
      const wrong = items.filter((it) => it.vector.some((x, j) => x !== vectorOf(it.id)[j])).length
      if (items.length !== ${n} || wrong !== 0) return console.log('WRONG ' + items.length + ' items, ' + wrong + ' wrong vectors')
      // Then writes, which walk parts of the file reads never do: they work or are refused.
      try {
        await i.upsert({ items: [{ id: 'new', vector: vectorOf('new') }] })
        await i.compact()
        console.log('OK')
      } catch (e) {
        console.log(['ERR_CORRUPT', 'ERR_INTEGRITY'].includes(e.code) ? 'OK' : 'WRITE ' + e.code + ' ' + e.message)
      }`
    const outcomes: Record<string, number> = {}
    for (let t = 0; t < 40; t++) {
      const bad = Buffer.from(original)
      const offset = Math.floor(Math.random() * bad.length)
      bad[offset] ^= 1 << Math.floor(Math.random() * 8)
      writeFileSync(file, bad)
      const out = child(path, key, check)
      const code = out.startsWith('ERROR ') ? out.split(' ')[1] : out
      // redb's file header (first page) holds its format version without a checksum, so a flip
      // there can read as another storage format, which is reported as such.
      const allowed = ['OK', 'ERR_INTEGRITY', 'ERR_CORRUPT', ...(offset < 4096 ? ['ERR_UNSUPPORTED_FORMAT'] : [])]
      assert.ok(allowed.includes(code), `flip at byte ${offset}: ${out}`)
      outcomes[code] = (outcomes[code] ?? 0) + 1
    }
    assert.ok((outcomes.ERR_INTEGRITY ?? 0) + (outcomes.ERR_CORRUPT ?? 0) > 0, `no flip was detected: ${JSON.stringify(outcomes)}`)
    writeFileSync(file, original.subarray(0, original.length >> 1))
    assert.match(child(path, key, `await Client.open({ storage: { kind: 'disk', path } }); console.log('opened')`), /^ERROR ERR_CORRUPT /)
  })

  it('a full disk is ERR_IO with the OS reason; the index stays consistent and writes resume once space is freed', async (t) => {
    const mnt = mountTmpfs(t, '3M')
    if (!mnt) return
    try {
      const path = join(mnt, 'db')
      const key = Client.generateKey()
      const client = await Client.open({ storage: { kind: 'disk', path } })
      const index = await client.createIndex({ indexName: 'full', indexKey: key, dimension: 64, autoTrain: false })
      let acked = 0
      let failure: (Error & { code?: string }) | undefined
      for (let b = 0; b < 1000 && !failure; b++) {
        const ids = Array.from({ length: 200 }, (_, i) => `b${b}-${i}`)
        await index.upsert({ ids, vectors: new Float32Array(200 * 64).fill(b) }).then(() => acked++, (e) => (failure = e))
      }
      assert.equal(failure?.code, 'ERR_IO')
      assert.match(failure!.message, /No space left on device/)
      assert.equal(await index.count(), acked * 200, 'the failed batch left no trace in memory')
      execFileSync('mount', ['-o', 'remount,size=64M', mnt])
      await index.upsert({ ids: ['after'], vectors: new Float32Array(64).fill(-1) })
      await client.close()
      const reopened = await Client.open({ storage: { kind: 'disk', path } })
      const again = await reopened.loadIndex({ indexName: 'full', indexKey: key, autoTrain: false })
      assert.equal(await again.count(), acked * 200 + 1, 'every acknowledged write, and nothing else, survived')
      const [last] = await again.get({ ids: [`b${acked - 1}-7`], include: ['vector'] })
      assert.deepEqual(Array.from(last.vector!.subarray(0, 2)), [acked - 1, acked - 1])
      await reopened.close()
    } finally {
      execFileSync('umount', [mnt])
    }
  })

  it('a background compaction that fails on a full disk is a warning on the next call, and the next due write retries it', async (t) => {
    const mnt = mountTmpfs(t, '96M')
    if (!mnt) return
    const warnings: Array<Error & { code?: string }> = []
    const onWarning = (w: Error & { code?: string }) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const path = join(mnt, 'db')
      const key = Client.generateKey()
      const client = await Client.open({ storage: { kind: 'disk', path } })
      const index = await client.createIndex({ indexName: 'bg', indexKey: key, dimension: 32, autoTrain: false })
      const dim = 32
      const put = (from: number, n: number) =>
        index.upsert({
          ids: Array.from({ length: n }, (_, i) => `i${from + i}`),
          vectors: new Float32Array(n * dim).map((_, j) => Math.sin(from * dim + j)),
        })
      const minimum = 65_536 // AUTO_COMPACT_MIN: loose entries that make a compaction due
      for (let from = 0; from < minimum - 1; from += 5000) await put(from, Math.min(5000, minimum - 1 - from))
      assert.equal(index.isCompacting(), false)
      // Leave 1 MiB free: enough for one small write, not for rewriting 65k items.
      const fs = require('node:fs')
      const st = fs.statfsSync(mnt)
      const used = (st.blocks - st.bfree) * st.bsize
      execFileSync('mount', ['-o', `remount,size=${used + (1 << 20)}`, mnt])
      await put(minimum - 1, 1)
      const settle = async () => {
        while (index.isCompacting()) await new Promise((r) => setTimeout(r, 20))
        await new Promise((r) => setImmediate(r))
      }
      await settle()
      const failures = () => warnings.filter((w) => w.code === 'CIPHERVEC_BACKGROUND_FAILURE')
      assert.equal(failures().length, 0, 'nothing is reported before the next call')
      await index.query({ vector: new Float32Array(dim).fill(0.1), topK: 1 })
      await settle()
      assert.equal(failures().length, 1)
      assert.equal(failures()[0].name, 'CiphervecWarning')
      assert.match(failures()[0].message, /background compaction of index 'bg' failed \(ERR_IO: .*No space left on device/)
      await index.query({ vector: new Float32Array(dim).fill(0.1), topK: 1 })
      await settle()
      assert.equal(failures().length, 1, 'reported once')
      assert.equal(await index.count(), minimum, 'the failed compaction changed nothing')

      execFileSync('mount', ['-o', 'remount,size=96M', mnt])
      await put(minimum, 1)
      await settle()
      await index.query({ vector: new Float32Array(dim).fill(0.1), topK: 1 })
      await settle()
      assert.equal(failures().length, 1, 'the retry succeeded')
      await client.close()
      const reopened = await Client.open({ storage: { kind: 'disk', path } })
      const again = await reopened.loadIndex({ indexName: 'bg', indexKey: key, autoTrain: false })
      assert.equal(await again.count(), minimum + 1)
      await reopened.close()
    } finally {
      process.off('warning', onWarning)
      execFileSync('umount', [mnt])
    }
  })

  it('an OS error (an immutable store file) is ERR_IO before and after the first write, and writes resume once it clears', async (t) => {
    const path = tempDir()
    const key = Client.generateKey()
    const file = join(path, 'ciphervec.redb')
    const item = (id: string) => ({ items: [{ id, vector: vectorOf(id, 4) }] })
    const first = await Client.open({ storage: { kind: 'disk', path } })
    await (await first.createIndex({ indexName: 'p', indexKey: key, dimension: 4, autoTrain: false })).upsert(item('a'))
    await first.close()
    // A new session: its first write runs the integrity check, which now meets the error.
    const client = await Client.open({ storage: { kind: 'disk', path } })
    const index = await client.loadIndex({ indexName: 'p', indexKey: key, autoTrain: false })
    if (!chattr(t, '+i', file)) return
    try {
      for (let attempt = 0; attempt < 3; attempt++) await rejectsWithCode(index.upsert(item('x')), 'ERR_IO')
    } finally {
      chattr(t, '-i', file)
    }
    await index.upsert(item('b'))
    // The check has passed: now a commit meets it.
    chattr(t, '+i', file)
    try {
      for (let attempt = 0; attempt < 3; attempt++) await rejectsWithCode(index.upsert(item('y')), 'ERR_IO')
      await rejectsWithCode(index.compact(), 'ERR_IO')
    } finally {
      chattr(t, '-i', file)
    }
    await index.upsert(item('c'))
    assert.equal(await index.count(), 3)
    await client.close()
    const again = await Client.open({ storage: { kind: 'disk', path } })
    const reloaded = await again.loadIndex({ indexName: 'p', indexKey: key, autoTrain: false })
    assert.deepEqual((await reloaded.listIds()).sort(), ['a', 'b', 'c'])
    await again.close()
  })

  it('swapped pages: every load and create is ERR_CORRUPT or ERR_INTEGRITY, never "not found"; closing succeeds without writing', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'disk', path } })
    for (const name of ['a', 'b']) {
      const index = await client.createIndex({ indexName: name, indexKey: key, dimension: 4, autoTrain: false })
      await index.upsert({ items: Array.from({ length: 50 }, (_, i) => ({ id: name + i, vector: [i, 1, 2, 3], metadata: { k: i } })) })
    }
    await client.close()
    // Every pair of pages after the file header (which has no checksum; see the next test),
    // swapped in turn, in one child process: a crash fails the test.
    const out = child(path, key, `
      const fs = require('node:fs')
      const file = path + '/ciphervec.redb'
      const clean = fs.readFileSync(file)
      const pages = clean.length / 4096
      const outcomes = []
      const attempt = async (p) => { try { await p; return 'ok' } catch (e) { return e.code } }
      for (let p = 1; p < pages; p++) for (let q = p + 1; q < pages; q++) {
        const bad = Buffer.from(clean)
        clean.copy(bad, p * 4096, q * 4096, (q + 1) * 4096)
        clean.copy(bad, q * 4096, p * 4096, (p + 1) * 4096)
        fs.writeFileSync(file, bad)
        const o = { swap: p + '/' + q }
        // Two sessions: one that only reads (then closing is its only write), one that writes.
        let c
        try { c = await Client.open({ storage: { kind: 'disk', path } }) } catch (e) { o.open = e.code; outcomes.push(o); continue }
        o.loadA = await attempt(c.loadIndex({ indexName: 'a', indexKey: key }))
        o.loadB = await attempt(c.loadIndex({ indexName: 'b', indexKey: key }))
        o.createA = await attempt(c.createIndex({ indexName: 'a', indexKey: key }))
        o.close = await attempt(c.close())
        fs.writeFileSync(file, bad)
        c = await Client.open({ storage: { kind: 'disk', path } })
        o.createNew = await attempt(c.createIndex({ indexName: 'new', indexKey: key }))
        const before = fs.readFileSync(file)
        o.closeAfterWrite = await attempt(c.close())
        o.closeWrote = !before.equals(fs.readFileSync(file))
        outcomes.push(o)
      }
      console.log(JSON.stringify(outcomes))`)
    const outcomes: Array<Record<string, string | boolean>> = JSON.parse(out)
    assert.ok(outcomes.length > 100, `${outcomes.length} swaps`)
    const damage = ['ERR_CORRUPT', 'ERR_INTEGRITY']
    const wrong: string[] = []
    const expect = (ok: boolean, what: string, o: object) => ok || wrong.push(`${what}: ${JSON.stringify(o)}`)
    for (const o of outcomes) {
      if (o.open) {
        expect([...damage, 'ERR_UNSUPPORTED_FORMAT'].includes(o.open as string), 'open', o)
        continue
      }
      for (const load of [o.loadA, o.loadB]) expect(['ok', ...damage].includes(load as string), 'load', o)
      expect(['ERR_INDEX_EXISTS', ...damage].includes(o.createA as string), 'create over an existing index', o)
      expect(['ok', ...damage].includes(o.createNew as string), 'create', o)
      expect(o.close === 'ok' && o.closeAfterWrite === 'ok', 'close', o)
      // Writes were refused: closing must not write either.
      if (o.createNew !== 'ok') expect(o.closeWrote === false, 'close wrote', o)
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${outcomes.length} swaps`)
    const detected = outcomes.filter((o) => !o.open && [o.loadA, o.loadB].some((l) => damage.includes(l as string)))
    assert.ok(detected.length > 0, 'no swap was detected by a load')
  })

  it('damage to the file header (its first page) is ERR_CORRUPT', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'disk', path } })
    await client.createIndex({ indexName: 'h', indexKey: key })
    await client.close()
    const file = join(path, 'ciphervec.redb')
    const clean = readFileSync(file)
    const damaged = [Buffer.from(clean).fill(0x55, 0, 64), Buffer.from(clean).fill(0, 0, 4096), Buffer.from(clean).fill(0xff, 0, 16)]
    for (const bad of damaged) {
      writeFileSync(file, bad)
      await rejectsWithCode(Client.open({ storage: { kind: 'disk', path } }), 'ERR_CORRUPT')
      assert.ok(readFileSync(file).equals(bad), 'the damaged file is left as it was')
    }
  })

  it('an empty or too short store file is ERR_CORRUPT at open, never re-created as an empty store', async () => {
    const path = tempDir()
    const key = Client.generateKey()
    const client = await Client.open({ storage: { kind: 'disk', path } })
    await (await client.createIndex({ indexName: 'e', indexKey: key, dimension: 4 })).upsert({ items: [{ id: 'x', vector: vectorOf('x', 4) }] })
    await client.close()
    const file = join(path, 'ciphervec.redb')
    const clean = readFileSync(file)
    for (const bad of [Buffer.alloc(0), clean.subarray(0, 5), clean.subarray(0, 100), Buffer.from('not a store')]) {
      writeFileSync(file, bad)
      for (let attempt = 0; attempt < 2; attempt++) {
        await rejectsWithCode(Client.open({ storage: { kind: 'disk', path } }), 'ERR_CORRUPT')
      }
      assert.ok(readFileSync(file).equals(bad), `a ${bad.length}-byte file is left as it was`)
    }
  })

  it('kill -9 while stores are created: a store file is there complete or not at all, and every directory opens', async () => {
    const base = tempDir()
    const creator = `
      const { Client } = require(${ADDON})
      ;(async () => {
        for (let i = Number(process.argv[1]); ; i++) {
          process.stdout.write('start ' + i + '\\n')
          await (await Client.open({ storage: { kind: 'disk', path: ${JSON.stringify(base)} + '/' + i } })).close()
        }
      })()`
    // redb's magic number: a file without it at the start is not a complete redb file.
    const magic = Buffer.from([0x72, 0x65, 0x64, 0x62, 0x1a, 0x0a, 0xa9, 0x0d, 0x0a])
    let next = 0
    let interrupted = 0
    for (let round = 0; round < 20; round++) {
      const proc = spawn(process.execPath, ['-e', creator, String(next)])
      let out = ''
      proc.stdout.on('data', (d) => (out += d))
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (out.split('\n').filter((l) => l.startsWith('start ')).length >= 2 || proc.exitCode !== null) {
            clearInterval(poll)
            setTimeout(() => { proc.kill('SIGKILL'); resolve() }, Math.random() * 20)
          }
        }, 1)
      })
      await exited
      const started = out.split('\n').filter((l) => l.startsWith('start ')).map((l) => Number(l.slice(6)))
      for (const i of started) {
        const file = join(base, String(i), 'ciphervec.redb')
        let bytes: Buffer | undefined
        try { bytes = readFileSync(file) } catch { interrupted++; continue }
        assert.ok(bytes.length >= 4096 && bytes.subarray(0, magic.length).equals(magic), `round ${round}: store ${i} is incomplete (${bytes.length} bytes)`)
      }
      next = Math.max(next, ...started) + 1
    }
    assert.ok(interrupted > 0, 'no kill landed inside a creation')
    for (const d of readdirSync(base)) {
      await (await Client.open({ storage: { kind: 'disk', path: join(base, d) } })).close()
      assert.deepEqual(readdirSync(join(base, d)), ['ciphervec.redb'], 'leftovers of interrupted creations are removed')
    }
  })
})
