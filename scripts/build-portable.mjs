#!/usr/bin/env node
// npm run build:portable [-- extra napi build args]
//
// Builds the release addon for linux-x64-gnu against glibc 2.17 (the published binary):
// `napi build --platform --release --no-const-enum -x --target x86_64-unknown-linux-gnu.2.17`,
// i.e. `cargo zigbuild`, which links with zig against glibc 2.17 symbol stubs and compiles the
// crates' C code (ring, mimalloc) with `zig cc` for the same floor. Writes the same
// `ciphervec.linux-x64-gnu.node`, `index.js` and `index.d.ts` as `npm run build`, then builds
// `dist/` (`npm run build:langchain`).
//
// The tools come from PyPI, pinned below: `cargo-zigbuild` (a prebuilt binary in a wheel) and
// `ziglang` (zig itself), installed once into a virtualenv at target/zig-venv (~450 MB, build
// output like the rest of target/, so `cargo clean` removes it too). Cargo's output goes to
// target/portable (see below). Needs `python3` with `venv`;
// ZIG_VENV=<dir> puts the virtualenv elsewhere (e.g. a CI cache).
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const GLIBC_FLOOR = '2.17'
const TARGET = `x86_64-unknown-linux-gnu.${GLIBC_FLOOR}`
const TOOLS = ['cargo-zigbuild==0.24.1', 'ziglang==0.17.1']

const venv = resolve(root, process.env.ZIG_VENV ?? 'target/zig-venv')
const bin = join(venv, 'bin')
const stamp = join(venv, 'ciphervec-tools.txt')

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts })
  if (r.error) throw new Error(`build:portable: cannot run ${cmd}: ${r.error.message}`)
  if (r.status !== 0) process.exit(r.status ?? 1)
}

// (Re)install the pinned tools when the virtualenv is missing or holds other versions.
const wanted = TOOLS.join('\n') + '\n'
if (!existsSync(join(bin, 'cargo-zigbuild')) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== wanted) {
  console.error(`build:portable: installing ${TOOLS.join(' ')} into ${venv}`)
  run('python3', ['-m', 'venv', '--clear', venv])
  run(join(bin, 'python3'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q', ...TOOLS])
  execFileSync(join(bin, 'python3'), ['-c', `open(${JSON.stringify(stamp)}, 'w').write(${JSON.stringify(wanted)})`])
}

// cargo finds `cargo-zigbuild` on PATH; cargo-zigbuild runs zig as `python3 -m ziglang` with the
// venv's python3 (first on PATH), so no `zig` binary needs to be on PATH.
const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` }
// A target dir of its own: in the default one, this build and the native `npm run build` rebuild
// ~110 crates each time the other ran (zig's CC/linker settings change the fingerprints of the
// build scripts both share), ~3.5 min each way here.
const targetDir = process.env.CARGO_BUILD_TARGET_DIR ?? process.env.CARGO_TARGET_DIR ?? join(root, 'target', 'portable')
const napi = join(root, 'node_modules', '.bin', 'napi')
run(napi, ['build', '--platform', '--release', '--no-const-enum', '-x', '--target', TARGET, '--target-dir', targetDir, ...process.argv.slice(2)], { env })
run('npm', ['run', 'build:langchain'], { env })
