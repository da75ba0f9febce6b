#!/usr/bin/env node
// node scripts/pg-server.mjs
//
// Starts a throwaway PostgreSQL server (TLS on, plain TCP too), prints one JSON line to stdout
//   {"url": ..., "adminUrl": ..., "caFile": ..., "port": ..., "pid": ...}
// and keeps it up until this process's stdin closes (or SIGINT/SIGTERM), then stops it and
// removes its files. For test processes that are not Node (the Rust integration tests): they
// keep the stdin pipe open for as long as they live, and the kernel closes it when they exit.
// On failure it prints the reason to stderr and exits with status 1 before printing anything.

let server
try {
  const { startPostgres } = await import('./postgres.mjs')
  server = await startPostgres({ tls: true })
} catch (e) {
  console.error(`pg-server: could not start PostgreSQL: ${e.message}`)
  process.exit(1)
}

let stopping
function stop() {
  stopping ??= server.stop().then(
    () => process.exit(0),
    (e) => {
      console.error(`pg-server: stop failed: ${e.message}`)
      process.exit(1)
    },
  )
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.on('error', stop)
process.stdin.resume() // reading stdin is what keeps this process alive

const { url, adminUrl, caFile, port, pid } = server
process.stdout.write(JSON.stringify({ url, adminUrl, caFile, port, pid }) + '\n')
