#!/usr/bin/env node
// node scripts/pack-install-test.mjs   (npm run test:pack; part of `npm test`, after the build)
//
// Installs the package as a user gets it: packs the main and platform tarballs
// (scripts/pack.mjs), installs both into an empty project in a temp dir with `npm install
// --offline` (no registry: the main package's only dependency is the optional platform package,
// and @langchain/core is an optional peer) and a PATH of node's directory, /usr/bin and /bin only
// (no cargo, no rustc: nothing may build), with no npm_* variables from `npm run`. Then, in
// that project: the install printed no install-scripts warning and the installed package.json
// has no scripts; CommonJS and ESM consumers open a memory client, upsert, query and get the
// nearest id; the installed binary passes check-glibc; and with the platform package removed,
// loading `ciphervec` throws the error that names the platform and what to do.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const work = mkdtempSync(join(tmpdir(), 'ciphervec-pack-'))
const project = join(work, 'project')
const nodeDir = dirname(process.execPath)
const PATH = [...new Set([nodeDir, '/usr/bin', '/bin'])].join(delimiter)
// The environment of a user's shell: no npm_* variables `npm run` set, no cargo on PATH.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))
Object.assign(env, { PATH, npm_config_update_notifier: 'false' })
let installOutput = ''

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: project, env, encoding: 'utf8', ...opts })
  if (r.error) throw r.error
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

const usage = `
const assert = require('node:assert/strict')
module.exports = async function usage({ Client }) {
  const client = await Client.open({ storage: { kind: 'memory' } })
  const index = await client.createIndex({ indexName: 'docs', indexKey: Client.generateKey(), metric: 'euclidean' })
  await index.upsert({
    items: [
      { id: 'a', vector: [1, 0, 0, 0] },
      { id: 'b', vector: [0, 1, 0, 0] },
      { id: 'c', vector: [0, 0, 1, 0] },
      { id: 'd', vector: [0, 0, 0.9, 0.4] },
    ],
  })
  const hits = await index.query({ vector: Float32Array.from([0.1, 0.05, 0.95, 0]), topK: 2 })
  assert.deepEqual(hits.map((h) => h.id), ['c', 'd'])
  assert.equal(await index.count(), 4)
  await client.close()
  return 'ok'
}
`

before(() => {
  for (const tool of ['cargo', 'rustc']) {
    for (const dir of PATH.split(delimiter)) assert.ok(!existsSync(join(dir, tool)), `${tool} is in ${dir}: the install test's PATH must not have it`)
  }
  const tarballs = execFileSync(process.execPath, [join(root, 'scripts', 'pack.mjs'), '--out', join(work, 'pack')], { encoding: 'utf8' })
    .trim()
    .split('\n')
  assert.equal(tarballs.length, 2, `expected the main and one platform tarball, got ${tarballs.join(', ')}`)
  execFileSync('mkdir', [project])
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  writeFileSync(join(project, 'usage.cjs'), usage)
  const r = sh('npm', ['install', '--offline', '--no-audit', '--no-fund', ...tarballs])
  installOutput = r.out
  console.log(`# npm install output:\n${r.out.replace(/^/gm, '#   ')}`)
  assert.equal(r.status, 0, `npm install failed:\n${r.out}`)
})

after(() => {
  if (!process.env.CIPHERVEC_KEEP_PACK_TEST) rmSync(work, { recursive: true, force: true })
  else console.log(`# kept ${work}`)
})

test('the install prints no install-scripts warning, and the installed package has no scripts', () => {
  assert.doesNotMatch(installOutput, /install.scripts|allowScripts|prepare/i)
  const installed = JSON.parse(readFileSync(join(project, 'node_modules', 'ciphervec', 'package.json'), 'utf8'))
  for (const key of ['scripts', 'devDependencies']) assert.equal(installed[key], undefined, `${key} in the published package.json`)
  assert.deepEqual(Object.keys(installed.optionalDependencies), ['ciphervec-linux-x64-gnu'])
  assert.equal(installed.optionalDependencies['ciphervec-linux-x64-gnu'], installed.version)
  assert.ok(existsSync(join(project, 'node_modules', 'ciphervec-linux-x64-gnu', 'ciphervec.linux-x64-gnu.node')))
  assert.ok(!existsSync(join(project, 'node_modules', 'ciphervec', 'ciphervec.linux-x64-gnu.node')), 'the binary is in the platform package only')
})

test('the installed binary needs glibc <= 2.17', () => {
  const r = sh(process.execPath, [join(root, 'scripts', 'check-glibc.mjs'), join(project, 'node_modules', 'ciphervec-linux-x64-gnu', 'ciphervec.linux-x64-gnu.node')])
  assert.equal(r.status, 0, r.out)
})

test('CommonJS: require("ciphervec") upserts and queries', () => {
  const r = sh(process.execPath, ['-e', `require('./usage.cjs')(require('ciphervec')).then(console.log, (e) => { console.error(e); process.exit(1) })`])
  assert.equal(r.status, 0, r.out)
  assert.equal(r.out.trim(), 'ok')
})

test('ESM: import { Client } from "ciphervec" upserts and queries; ciphervec/langchain resolves', () => {
  const script = `import { Client } from 'ciphervec'
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
require.resolve('ciphervec/langchain')
console.log(await require('./usage.cjs')({ Client }))`
  const r = sh(process.execPath, ['--input-type=module', '-e', script])
  assert.equal(r.status, 0, r.out)
  assert.equal(r.out.trim(), 'ok')
})

test('without the platform package, loading ciphervec throws an error that says what to do', () => {
  const pkgDir = join(project, 'node_modules', 'ciphervec-linux-x64-gnu')
  renameSync(pkgDir, `${pkgDir}.away`)
  try {
    for (const [what, args] of [
      ['require', ['-e', `try { require('ciphervec') } catch (e) { console.log(JSON.stringify({ message: e.message })); process.exit(0) } process.exit(3)`]],
      ['import', ['--input-type=module', '-e', `try { await import('ciphervec') } catch (e) { console.log(JSON.stringify({ message: e.message })); process.exit(0) } process.exit(3)`]],
    ]) {
      const r = sh(process.execPath, args)
      assert.equal(r.status, 0, `${what} did not throw:\n${r.out}`)
      const { message } = JSON.parse(r.out)
      assert.match(message, /no native binary could be loaded for linux-x64-gnu/)
      assert.ok(message.includes(`Node ${process.version}`), message)
      assert.ok(message.includes(`ABI ${process.versions.modules}`), message)
      assert.ok(message.includes('linux/x64'), message)
      assert.ok(message.includes('`ciphervec-linux-x64-gnu`'), message)
      assert.match(message, /--omit=optional/)
      assert.match(message, /--no-optional/)
      assert.match(message, /build from source: with a Rust toolchain/)
      assert.doesNotMatch(message, /npm has a bug/)
    }
  } finally {
    renameSync(`${pkgDir}.away`, pkgDir)
  }
})
