#!/usr/bin/env node
// node scripts/check-glibc.mjs [file.node ...]   (npm run check:glibc)
//
// Fails if a built addon needs a newer glibc than the floor the package promises (2.17): reads
// the dynamic symbol table with `objdump -T` and prints every symbol whose GLIBC_x.y version is
// above the floor (and any GLIBC_PRIVATE one, which no other glibc is bound to have). Without
// arguments it checks every `*.linux-*-gnu.node` at the package root.
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const FLOOR = process.env.GLIBC_FLOOR ?? '2.17'
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

const parse = (v) => v.split('.').map(Number)
const cmp = (a, b) => {
  const [x, y] = [parse(a), parse(b)]
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d) return d
  }
  return 0
}

let files = process.argv.slice(2)
if (files.length === 0) {
  files = readdirSync(root).filter((f) => /\.linux-[^.]+-gnu[^.]*\.node$/.test(f)).map((f) => join(root, f))
  if (files.length === 0) {
    console.error(`check-glibc: no *.linux-*-gnu.node in ${root}; build first (npm run build:portable)`)
    process.exit(1)
  }
}

let failed = false
for (const file of files) {
  const out = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 << 20 })
  const versions = new Map() // version -> symbols
  for (const line of out.split('\n')) {
    // e.g. "0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.34) pthread_create"
    const m = /\(?\bGLIBC_([0-9][0-9.]*|PRIVATE)\)?\s+(\S+)\s*$/.exec(line)
    if (!m) continue
    if (!versions.has(m[1])) versions.set(m[1], [])
    versions.get(m[1]).push(m[2])
  }
  const numeric = [...versions.keys()].filter((v) => v !== 'PRIVATE').sort(cmp)
  const max = numeric.at(-1) ?? '(none)'
  const bad = [...versions].filter(([v]) => v === 'PRIVATE' || cmp(v, FLOOR) > 0)
  if (bad.length === 0) {
    console.log(`check-glibc: ${file}: ok, newest symbol version GLIBC_${max} <= ${FLOOR} (${numeric.length} versions)`)
    continue
  }
  failed = true
  console.error(`check-glibc: ${file}: needs glibc ${max}, above the ${FLOOR} floor:`)
  for (const [v, syms] of bad.sort(([a], [b]) => cmp(a === 'PRIVATE' ? '999' : a, b === 'PRIVATE' ? '999' : b))) {
    console.error(`  GLIBC_${v}: ${[...new Set(syms)].sort().join(', ')}`)
  }
}
if (failed) {
  console.error('check-glibc: build the published binary with `npm run build:portable` (cargo zigbuild, glibc 2.17)')
  process.exit(1)
}
