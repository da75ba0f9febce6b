// The PostgreSQL test harness (scripts/postgres.mjs) itself, on servers of its own: TLS and
// plain TCP on one server, LISTEN/NOTIFY, immediate stop and restart, a killed postmaster, and
// no server outliving the process that started it.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import pg from 'pg'

import type { PostgresServer } from '../scripts/postgres.mjs'
import { sharedPostgres } from './postgres.js'

const SCRIPT = join(__dirname, '..', 'scripts', 'postgres.mjs')
const harness = () => import('../scripts/postgres.mjs')

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Polls (at most 200 × 50 ms) until `done()`; the caller asserts the outcome. */
async function poll(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 50))
}

async function query<T extends pg.QueryResultRow>(config: pg.ClientConfig, sql: string): Promise<T[]> {
  const client = new pg.Client(config)
  await client.connect()
  try {
    return (await client.query<T>(sql)).rows
  } finally {
    await client.end()
  }
}

async function connectError(config: pg.ClientConfig): Promise<NodeJS.ErrnoException> {
  const client = new pg.Client(config)
  try {
    await client.connect()
  } catch (e) {
    return e as NodeJS.ErrnoException
  } finally {
    await client.end().catch(() => {})
  }
  assert.fail('expected the connection to fail')
}

const SSL_IN_USE = 'SELECT ssl, current_database() AS db FROM pg_stat_ssl WHERE pid = pg_backend_pid()'

describe('PostgreSQL harness: one TLS server', () => {
  let server: PostgresServer
  let ca: string
  before(async () => {
    server = await (await harness()).startPostgres({ tls: true })
    ca = readFileSync(server.caFile!, 'utf8')
  })
  after(() => server?.stop())

  it('serves the test database over plain TCP (sslmode=disable)', async () => {
    assert.match(server.url, /^postgres:\/\/postgres:[0-9a-f]+@127\.0\.0\.1:\d+\/ciphervec_test$/)
    const rows = await query<{ ssl: boolean; db: string }>({ connectionString: `${server.url}?sslmode=disable` }, SSL_IN_USE)
    assert.deepEqual(rows, [{ ssl: false, db: 'ciphervec_test' }])
    const admin = await query<{ db: string }>({ connectionString: server.adminUrl }, 'SELECT current_database() AS db')
    assert.deepEqual(admin, [{ db: 'postgres' }])
  })

  it('serves TLS verified against its CA, by IP and by name (verify-full)', async () => {
    const byIp = await query({ connectionString: server.url, ssl: { ca } }, SSL_IN_USE)
    assert.deepEqual(byIp, [{ ssl: true, db: 'ciphervec_test' }])
    const byName = await query({ connectionString: server.url.replace('127.0.0.1', 'localhost'), ssl: { ca } }, SSL_IN_USE)
    assert.deepEqual(byName, [{ ssl: true, db: 'ciphervec_test' }])
    assert.ok(server.tlsUrl?.includes('sslmode=verify-full'))
    assert.deepEqual(await query({ connectionString: server.tlsUrl }, SSL_IN_USE), [{ ssl: true, db: 'ciphervec_test' }])
  })

  it('fails TLS verification without the CA and for a name not in the certificate', async () => {
    const noCa = await connectError({ connectionString: server.url, ssl: {} })
    assert.match(String(noCa.code), /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/)
    const wrongName = await connectError({ connectionString: server.url, ssl: { ca, servername: 'wrong.example' } })
    assert.equal(wrongName.code, 'ERR_TLS_CERT_ALTNAME_INVALID')
  })

  it('needs the password over TCP', async () => {
    const e = await connectError({ connectionString: server.url.replace(/:[0-9a-f]+@/, ':wrong@') })
    assert.equal(e.code, '28P01') // invalid_password
  })

  it('delivers LISTEN/NOTIFY', async () => {
    const listener = new pg.Client({ connectionString: server.url, ssl: { ca } })
    await listener.connect()
    try {
      const got = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve))
      await listener.query('LISTEN cv_changes')
      await query({ connectionString: server.url }, "SELECT pg_notify('cv_changes', '7:1')")
      const n = await got
      assert.equal(n.channel, 'cv_changes')
      assert.equal(n.payload, '7:1')
    } finally {
      await listener.end()
    }
  })

  it('stops immediately, refuses connections, and restarts on the same data and port', async () => {
    const c = new pg.Client({ connectionString: server.url })
    await c.connect()
    // Acknowledged commits survive an immediate stop: the harness keeps synchronous_commit on.
    await c.query('CREATE TABLE survives (id int PRIMARY KEY)')
    await c.query('INSERT INTO survives SELECT generate_series(1, 100)')
    for (let i = 101; i <= 600; i++) await c.query('INSERT INTO survives VALUES ($1)', [i]) // 500 commits
    const cut = new Promise<Error>((resolve) => c.on('error', resolve))
    const { port, pid } = server

    await server.stop({ mode: 'immediate' })
    assert.equal(server.running, false)
    assert.equal(alive(pid), false)
    assert.ok(existsSync(server.dataDir), 'stop({ mode }) keeps the data')
    assert.ok((await cut) instanceof Error, 'the open connection is cut')
    await c.end().catch(() => {})
    assert.equal((await connectError({ connectionString: server.url })).code, 'ECONNREFUSED')

    await server.restart()
    assert.equal(server.running, true)
    assert.equal(server.port, port)
    assert.notEqual(server.pid, pid)
    const rows = await query<{ n: string }>({ connectionString: server.url }, 'SELECT count(*) AS n FROM survives')
    assert.deepEqual(rows, [{ n: '600' }])
  })

  it('restarts after its postmaster is SIGKILLed', async () => {
    const { pid } = server
    assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'postgres', 'pid is the postmaster')
    process.kill(pid, 'SIGKILL')
    await poll(() => !server.running)
    assert.equal(server.running, false)
    assert.equal((await connectError({ connectionString: server.url })).code, 'ECONNREFUSED')
    await server.restart()
    const rows = await query<{ n: string }>({ connectionString: server.url, ssl: { ca } }, 'SELECT count(*) AS n FROM survives')
    assert.deepEqual(rows, [{ n: '600' }])
  })

  it('cleanup never removes the dir of a running server, even one whose creator looks dead', async () => {
    const { cleanupStaleDirs } = await harness()
    assert.ok(!(await cleanupStaleDirs()).includes(server.baseDir))
    // A pid that just exited stands in for a dead creator; the postmaster still runs.
    const gone = spawn('true')
    await new Promise((r) => gone.on('exit', r))
    const ownerFile = join(server.baseDir, 'owner.pid')
    const owner = readFileSync(ownerFile, 'utf8')
    writeFileSync(ownerFile, String(gone.pid))
    try {
      assert.ok(!(await cleanupStaleDirs()).includes(server.baseDir))
      assert.ok(existsSync(server.dataDir))
    } finally {
      writeFileSync(ownerFile, owner)
    }
  })

  it('stop() ends the server and removes its temp dir', async () => {
    const { pid, baseDir } = server
    await server.stop()
    assert.equal(alive(pid), false)
    assert.equal(existsSync(baseDir), false)
    await assert.rejects(server.restart(), /stopped for good/)
  })
})

describe('PostgreSQL harness: no server outlives its process', () => {
  it('stops when the Node process that started it is SIGKILLed, and its dir is then stale', async () => {
    const starter = `import { startPostgres } from ${JSON.stringify(pathToFileURL(SCRIPT).href)}
      const s = await startPostgres()
      console.log(JSON.stringify({ pid: s.pid, url: s.url, baseDir: s.baseDir }))
      setInterval(() => {}, 1 << 30)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', starter], { stdio: ['ignore', 'pipe', 'inherit'] })
    const exited = new Promise((r) => child.on('exit', r))
    let out = ''
    for await (const chunk of child.stdout) {
      out += chunk
      if (out.includes('\n')) break
    }
    const { pid, url, baseDir } = JSON.parse(out) as { pid: number; url: string; baseDir: string }
    assert.equal(alive(pid), true)
    assert.deepEqual(await query({ connectionString: url }, 'SELECT 1 AS one'), [{ one: 1 }])

    child.kill('SIGKILL')
    await exited
    await poll(() => !alive(pid))
    assert.equal(alive(pid), false, 'the postmaster is gone')
    assert.equal((await connectError({ connectionString: url })).code, 'ECONNREFUSED')
    // The killed process could not remove its dir; the next start's cleanup does.
    assert.ok(existsSync(baseDir))
    const { cleanupStaleDirs } = await harness()
    assert.ok((await cleanupStaleDirs()).includes(baseDir))
    assert.equal(existsSync(baseDir), false)
  })
})

describe('sharedPostgres()', () => {
  it('gives the run a server, once per process', async () => {
    const a = await sharedPostgres()
    assert.equal(await sharedPostgres(), a)
    const { rows } = await a.admin.query<{ one: number }>('SELECT 1 AS one')
    assert.deepEqual(rows, [{ one: 1 }])
    if (process.env.CIPHERVEC_TEST_POSTGRES_URL) assert.equal(a.url, process.env.CIPHERVEC_TEST_POSTGRES_URL)
  })
})
