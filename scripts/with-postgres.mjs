#!/usr/bin/env node
// node scripts/with-postgres.mjs <cmd> [args...]
//
// Runs <cmd> with one throwaway PostgreSQL server (TLS on, plain TCP too) for all of it, and
// these variables in its environment:
//   CIPHERVEC_TEST_POSTGRES_URL        postgres://postgres:<pw>@127.0.0.1:<port>/ciphervec_test
//   CIPHERVEC_TEST_POSTGRES_CA         the CA file for sslmode=verify-full
//   CIPHERVEC_TEST_POSTGRES_ADMIN_URL  the same server, database `postgres`
// Then stops the server and exits with the command's status. SIGINT/SIGTERM are passed on to
// the command. With CIPHERVEC_TEST_POSTGRES_URL already set, no server is started: the command
// runs against that one (CIPHERVEC_TEST_POSTGRES_CA is then yours to set, if it uses TLS).
import { spawn } from 'node:child_process'
import { constants } from 'node:os'

const [cmd, ...args] = process.argv.slice(2)
if (!cmd) {
  console.error('usage: node scripts/with-postgres.mjs <cmd> [args...]')
  process.exit(2)
}

/** Runs the command; resolves with the exit status to pass on (128 + n for a signal). */
function runCommand(env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env })
    const forward = (sig) => child.kill(sig)
    process.on('SIGINT', forward)
    process.on('SIGTERM', forward)
    child.on('error', (e) => {
      console.error(`with-postgres: cannot run ${cmd}: ${e.message}`)
      resolve(127)
    })
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      resolve(code ?? 128 + (constants.signals[signal] ?? 1))
    })
  })
}

if (process.env.CIPHERVEC_TEST_POSTGRES_URL) {
  process.exitCode = await runCommand(process.env)
} else {
  // Until the command runs, a signal just ends this process; the watchdog and the exit hook
  // in postgres.mjs stop a server that is starting.
  const { startPostgres } = await import('./postgres.mjs')
  const server = await startPostgres({ tls: true })
  if (process.env.CIPHERVEC_PG_VERBOSE) {
    console.error(`with-postgres: PostgreSQL on port ${server.port} (${server.mode}), ${JSON.stringify(server.timings)}`)
  }
  let status
  try {
    status = await runCommand({
      ...process.env,
      CIPHERVEC_TEST_POSTGRES_URL: server.url,
      CIPHERVEC_TEST_POSTGRES_CA: server.caFile,
      CIPHERVEC_TEST_POSTGRES_ADMIN_URL: server.adminUrl,
    })
  } finally {
    await server.stop()
  }
  process.exitCode = status
}
