// Types for postgres.mjs (plain JS, no build step), for the TypeScript tests.

export declare const TEMP_PREFIX: string
export declare const TEST_DATABASE: string

export type ShutdownMode = 'smart' | 'fast' | 'immediate'

export interface StartOptions {
  /** Generate a CA + server certificate and turn on ssl; plain TCP keeps working too. */
  tls?: boolean
  /** Extra postgresql.conf settings, overriding the defaults (e.g. `{ log_statement: 'all' }`). */
  settings?: Record<string, string | number | boolean>
}

export interface PostgresServer {
  /** `postgres://postgres:<pw>@127.0.0.1:<port>/ciphervec_test` (works with and without TLS). */
  readonly url: string
  /** The same server, database `postgres`. */
  readonly adminUrl: string
  /** `url` + `?sslmode=verify-full&sslrootcert=<caFile>`; only with `tls`. */
  readonly tlsUrl: string | undefined
  /** PEM file of the CA that signed the server certificate; only with `tls`. */
  readonly caFile: string | undefined
  readonly password: string
  /** Fixed for the handle's life: restart() reuses it. */
  readonly port: number
  /** The postmaster's pid (changes with restart()). */
  readonly pid: number
  readonly running: boolean
  /** The temp dir holding everything (`<tmpdir>/ciphervec-pg-XXXXXX`), and the data dir in it. */
  readonly baseDir: string
  readonly dataDir: string
  /** How the server runs: 'user' (not root), 'userns' or 'uid' (root). */
  readonly mode: 'user' | 'userns' | 'uid'
  readonly timings: { initdbMs: number; tlsMs: number; startMs: number; createDatabaseMs: number; totalMs: number }
  /** The last 256 KiB of the server log. */
  log(): string
  /**
   * `stop()`: fast shutdown and remove the temp dir (the handle is done).
   * `stop({ mode })`: shut down in that mode and keep the data for `restart()`.
   */
  stop(options?: { mode?: ShutdownMode; keepData?: boolean }): Promise<void>
  /** Start again on the same data dir and port (after `stop({ mode })` or a killed postmaster). */
  restart(): Promise<void>
}

export declare function startPostgres(options?: StartOptions): Promise<PostgresServer>
/** Removes `ciphervec-pg-*` temp dirs whose creating process and server are both gone. */
export declare function cleanupStaleDirs(tmp?: string): Promise<string[]>
export declare function rootMode(): 'user' | 'userns' | 'uid'
