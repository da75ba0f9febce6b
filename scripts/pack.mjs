#!/usr/bin/env node
// node scripts/pack.mjs [--out DIR]   (npm run pack; default DIR: target/pack)
//
// Packs what gets published, as tarballs in DIR:
// - one platform package per directory under npm/ (made by `napi create-npm-dirs` from
//   `napi.targets`): its package.json and README, and the binary its `main` names, taken from
//   the package root (where `npm run build:portable` writes it; a CI matrix job per target
//   would put each target's binary there, e.g. with `napi artifacts`);
// - the main package: package.json without `scripts` (so no `prepare` or install script),
//   `devDependencies`, `overrides`, `allowScripts` and `napi` (build config), and with `optionalDependencies` on every
//   platform package at the same version (what `napi pre-publish` adds), plus the `files`.
// Each package is staged in DIR/stage/<name> and packed there with `npm pack`; prints the
// tarball paths, one per line, main package first. Fails if a binary is missing or a platform
// package's version differs from the main one (`npx napi version` syncs them), or if a glibc
// binary fails scripts/check-glibc.mjs (e.g. the native `npm run build` one).
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const outArg = args.indexOf('--out')
const out = resolve(outArg >= 0 ? args[outArg + 1] : join(root, 'target', 'pack'))

const fail = (msg) => {
  console.error(`pack: ${msg}`)
  process.exit(1)
}
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'))
const main = readJson(join(root, 'package.json'))

rmSync(out, { recursive: true, force: true })
mkdirSync(join(out, 'stage'), { recursive: true })

function npmPack(dir) {
  const res = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], { cwd: dir, encoding: 'utf8' }),
  )
  return join(out, res[0].filename)
}

// The platform packages.
const npmDir = join(root, 'npm')
const platforms = readdirSync(npmDir).filter((d) => existsSync(join(npmDir, d, 'package.json')))
const targets = main.napi?.targets ?? []
if (platforms.length !== targets.length) {
  fail(`npm/ holds ${platforms.length} platform packages (${platforms.join(', ')}) for ${targets.length} napi.targets: run \`npx napi create-npm-dirs\``)
}
const optionalDependencies = {}
const tarballs = []
for (const dir of platforms) {
  const pkg = readJson(join(npmDir, dir, 'package.json'))
  if (pkg.version !== main.version) fail(`${pkg.name} is ${pkg.version}, ${main.name} is ${main.version}: run \`npx napi version\``)
  const binary = join(root, pkg.main)
  if (!existsSync(binary)) fail(`${pkg.main} is missing: build it first (npm run build:portable)`)
  // A native `npm run build` writes the same file name: never pack one above the glibc floor.
  if ((pkg.libc ?? []).includes('glibc')) {
    try {
      execFileSync(process.execPath, [join(root, 'scripts', 'check-glibc.mjs'), binary], { stdio: ['ignore', 'ignore', 'inherit'] })
    } catch {
      fail(`${pkg.main} needs a newer glibc than the published floor: build it with \`npm run build:portable\``)
    }
  }
  const stage = join(out, 'stage', pkg.name)
  mkdirSync(stage, { recursive: true })
  cpSync(join(npmDir, dir), stage, { recursive: true })
  cpSync(binary, join(stage, pkg.main))
  optionalDependencies[pkg.name] = pkg.version
  tarballs.push(npmPack(stage))
}

// The main package.
const stage = join(out, 'stage', main.name)
mkdirSync(stage, { recursive: true })
for (const f of [...main.files, 'README.md']) {
  if (/[*?]/.test(f)) fail(`glob in files (${f}): list the files by name`)
  if (!existsSync(join(root, f))) fail(`${f} is missing: build first (npm run build:portable)`)
  mkdirSync(dirname(join(stage, f)), { recursive: true })
  cpSync(join(root, f), join(stage, f), { recursive: statSync(join(root, f)).isDirectory() })
}
const published = { ...main, optionalDependencies: { ...main.optionalDependencies, ...optionalDependencies } }
for (const key of ['scripts', 'devDependencies', 'overrides', 'allowScripts', 'napi']) delete published[key]
writeFileSync(join(stage, 'package.json'), JSON.stringify(published, null, 2) + '\n')
tarballs.unshift(npmPack(stage))

for (const t of tarballs) console.log(t)
