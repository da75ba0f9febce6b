// PostgreSQL for the Node tests (a helper, not a test file).
//
// `npm test` runs every test under one throwaway server (scripts/with-postgres.mjs) and sets
// CIPHERVEC_TEST_POSTGRES_URL / _CA / _ADMIN_URL; set them yourself to use a server of your own.
// Without them (e.g. `node --import tsx --test __test__/x.test.ts` alone), the first call starts
// a server for this test process, and postgres.mjs stops and removes it when the process exits.
import pg from 'pg'

export interface SharedPostgres {
  /** postgres://…/ciphervec_test; plain TCP and TLS both work on the harness's server. */
  url: string
  /** PEM CA for `ssl: { ca }` / sslmode=verify-full; undefined for a server of your own without it. */
  caFile: string | undefined
  /** The same server, database `postgres` (CIPHERVEC_TEST_POSTGRES_ADMIN_URL, else `url`). */
  adminUrl: string
  /** A small pool on adminUrl for assertions and setup (CREATE DATABASE, …); never keeps the process alive. */
  admin: pg.Pool
}

let shared: Promise<SharedPostgres> | undefined

/** The test run's PostgreSQL (one per process; later calls share it). */
export function sharedPostgres(): Promise<SharedPostgres> {
  shared ??= (async () => {
    let url = process.env.CIPHERVEC_TEST_POSTGRES_URL || undefined
    let caFile = process.env.CIPHERVEC_TEST_POSTGRES_CA || undefined
    let adminUrl = process.env.CIPHERVEC_TEST_POSTGRES_ADMIN_URL || url
    if (!url) {
      const { startPostgres } = await import('../scripts/postgres.mjs')
      const server = await startPostgres({ tls: true })
      url = server.url
      caFile = server.caFile
      adminUrl = server.adminUrl
    }
    const admin = new pg.Pool({ connectionString: adminUrl, max: 2, allowExitOnIdle: true })
    admin.on('error', () => {}) // an idle client cut off by a server shutdown at exit
    return { url, caFile, adminUrl: adminUrl ?? url, admin }
  })()
  return shared
}
