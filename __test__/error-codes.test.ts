// The `ErrorCode` union of index.d.ts, the core's codes and the `isCiphervecError` guard agree.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'

import { Client, isCiphervecError, type ErrorCode } from '../index.js'

const root = join(__dirname, '..')
const read = (path: string) => readFileSync(join(root, path), 'utf8')

/** The codes of the `ErrorCode` union in index.d.ts (as generated from src/types.d.ts). */
function unionCodes(): string[] {
  const dts = read('index.d.ts')
  const start = dts.indexOf('export type ErrorCode =')
  assert.ok(start >= 0, 'index.d.ts declares ErrorCode')
  const block = dts.slice(start, dts.indexOf('\n\n', start))
  return [...block.matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((m) => m[1])
}

/** The codes `Error::code` returns in the core (crates/ciphervec-core/src/error.rs). */
function coreCodes(): string[] {
  const rs = read('crates/ciphervec-core/src/error.rs')
  const body = rs.slice(rs.indexOf('pub fn code(&self)'), rs.indexOf('pub const CODES'))
  return [...body.matchAll(/=> "(ERR_[A-Z0-9_]+)"/g)].map((m) => m[1])
}

describe('ErrorCode', () => {
  it('lists exactly the codes the core returns, once each', () => {
    const union = unionCodes()
    const core = coreCodes()
    assert.ok(core.length >= 20, `found the core's codes (${core.length})`)
    assert.equal(new Set(union).size, union.length, 'no code twice')
    assert.deepEqual([...union].sort(), [...core].sort())
  })

  it('covers every ERR_ code the addon, the LangChain wrapper and the README use', () => {
    const union = new Set(unionCodes())
    const sources = [
      ...readdirSync(join(root, 'src')).filter((f) => /\.(rs|js)$/.test(f)).map((f) => `src/${f}`),
      'src-ts/langchain.ts',
      'README.md',
    ]
    for (const path of sources) {
      for (const [code] of read(path).matchAll(/\bERR_[A-Z0-9_]*[A-Z0-9]\b/g)) {
        assert.ok(union.has(code), `${path} uses ${code}, which ErrorCode does not list`)
      }
    }
  })
})

describe('isCiphervecError', () => {
  it('is true for every code of the union on an Error, and for real rejections', async () => {
    for (const code of unionCodes()) assert.equal(isCiphervecError(Object.assign(new Error('x'), { code })), true, code)
    const client = await Client.open({ storage: { kind: 'memory' } })
    const index = await client.createIndex({ indexName: 'g', indexKey: Client.generateKey() })
    const failures: unknown[] = await Promise.all([
      index.query({ vector: [1, 2, 3], topK: 0 }).catch((e: unknown) => e),
      index.queryMetadata({ filters: { a: { $in: 1 as unknown as [] } } }).catch((e: unknown) => e),
      client.createIndex({ indexName: 'g', indexKey: new Uint8Array(3) }).catch((e: unknown) => e),
    ])
    for (const e of failures) {
      assert.equal(isCiphervecError(e), true, String(e))
      if (isCiphervecError(e)) {
        const code: ErrorCode = e.code // narrowed: no cast needed
        assert.match(code, /^ERR_(INVALID_ARGUMENT|INVALID_FILTER|INVALID_KEY)$/)
      }
    }
    await client.close()
    const closed = await index.count().catch((e: unknown) => e)
    assert.ok(isCiphervecError(closed) && closed.code === 'ERR_CLOSED')
  })

  it('is false for anything else: other codes, non-errors, and an error whose code getter throws', () => {
    const throwing = new Error('x')
    Object.defineProperty(throwing, 'code', {
      get() {
        throw new Error('no code')
      },
    })
    const others: unknown[] = [
      new Error('plain'),
      Object.assign(new Error('node'), { code: 'ERR_INVALID_ARG_TYPE' }),
      Object.assign(new TypeError('napi'), { code: 'InvalidArg' }),
      Object.assign(new Error('lower'), { code: 'err_closed' }),
      Object.assign(new Error('not a string'), { code: 7 }),
      { code: 'ERR_CLOSED', message: 'an object, not an Error' },
      'ERR_CLOSED',
      null,
      undefined,
      42,
      throwing,
    ]
    for (const value of others) assert.equal(isCiphervecError(value), false, String(value))
  })
})
