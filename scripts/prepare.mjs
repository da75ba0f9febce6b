#!/usr/bin/env node
// The `prepare` script: `npm install` / `npm ci` in a checkout builds the native addon
// (`npm run build`: release, for this machine's glibc; fast incremental rebuilds).
// CIPHERVEC_SKIP_PREPARE_BUILD=1 skips it: .ci/run sets it, because its `npm test` builds the
// portable binary (`npm run build:portable`) itself and a native build first would be a second
// cold release build for nothing. Never part of the published package (scripts/pack.mjs drops
// `scripts`).
import { spawnSync } from 'node:child_process'

if (process.env.CIPHERVEC_SKIP_PREPARE_BUILD && process.env.CIPHERVEC_SKIP_PREPARE_BUILD !== '0') {
  console.error('prepare: CIPHERVEC_SKIP_PREPARE_BUILD is set, not building the addon')
} else {
  const r = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })
  process.exitCode = r.status ?? 1
}
