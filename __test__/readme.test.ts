// The README's TypeScript examples run as written, so that none can rot. The first block is the
// quickstart, a whole program; every later block continues from it (it may use the
// quickstart's `client`, `index`, `vectors`), in a scope of its own; its imports join the
// quickstart's at the top. Each program is type-checked with the repository's strict settings
// and then run in an empty directory. What the test changes, and only that: `'ciphervec'` and
// its subpaths (`'ciphervec/langchain'`) become this checkout's files, as its exports map
// resolves them, and a PostgreSQL URL becomes the test server's. Other packages a block imports
// (`@langchain/core`) resolve from this checkout's node_modules, linked beside the programs.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { after, describe, it } from 'node:test'

import { sharedPostgres } from './postgres.js'

const run = promisify(execFile)
const root = resolve(__dirname, '..')
/** `ciphervec` or `ciphervec/<subpath>` as this checkout's exports map resolves it (self-reference). */
const resolveOwn = createRequire(join(root, 'package.json')).resolve
/** tsx by path: the examples run in empty directories, where no `node_modules` resolves it. */
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href

/** The README's ```ts blocks, in order. */
function tsBlocks(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1])
}

/** A program: the quickstart's imports and the block's first, then the quickstart's body, then `block`'s in a scope. */
function program(quickstart: string, block: string | undefined, pgUrl: string): string {
  const isImport = (line: string) => /^import .* from '[^']+'$/.test(line)
  const own = (line: string) => line.replace(/from '(ciphervec(\/[^']*)?)'$/, (_, spec: string) => `from ${JSON.stringify(resolveOwn(spec))}`)
  const lines = quickstart.split('\n')
  const blockLines = block === undefined ? [] : block.split('\n')
  const imports = [...new Set([...lines, ...blockLines].filter(isImport).map(own))]
  const body = lines.filter((l) => !isImport(l)).join('\n')
  const blockBody = blockLines.filter((l) => !isImport(l)).join('\n')
  const rest = block === undefined ? '' : `{\n${blockBody.replace(/'postgres(ql)?:\/\/[^']*'/g, JSON.stringify(pgUrl))}}\n`
  // Ends the process at once: a failed example must not wait for the pool to wind down.
  return `${imports.join('\n')}\n${body}\n${rest}process.exit(0)\nexport {}\n`
}

describe('README examples', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ciphervec-readme-'))
  // The programs live in `dir`: packages they import resolve from here (removing `dir` removes the link only).
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('every TypeScript block type-checks and runs', async (t) => {
    const blocks = tsBlocks()
    assert.ok(blocks.length >= 3, `found ${blocks.length} blocks`)
    assert.match(blocks[0], /from 'ciphervec'/, 'the first block is the quickstart')
    const needsPostgres = blocks.some((b) => /kind: 'postgres'/.test(b))
    const pgUrl = needsPostgres ? (await sharedPostgres()).url : ''
    const programs = [program(blocks[0], undefined, pgUrl), ...blocks.slice(1).map((b) => program(blocks[0], b, pgUrl))]
    const files = programs.map((source, i) => {
      const file = join(dir, `block${i + 1}.mts`)
      writeFileSync(file, source)
      return file
    })
    const config = join(dir, 'tsconfig.json')
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], typeRoots: [join(root, 'node_modules/@types')] },
        files,
      }),
    )
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    await run(process.execPath, [tsc, '-p', config]).catch((e) => assert.fail(`the README's examples do not type-check:\n${e.stdout}${e.stderr}`))
    const runIn = async (i: number, cwd: string, what: string) => {
      await run(process.execPath, ['--import', tsx, files[i]], { cwd, env: { ...process.env, NODE_NO_WARNINGS: '1' } }).catch((e) =>
        assert.fail(`README block ${i + 1} failed ${what} (exit ${e.code}):\n${e.stderr}\n--- program ---\n${programs[i]}`),
      )
      t.diagnostic(`block ${i + 1} ran ${what}`)
    }
    for (const i of files.keys()) await runIn(i, mkdtempSync(join(dir, `run${i + 1}-`)), 'in an empty directory')
    // The quickstart runs again where it ran before: it keeps its key and reopens its index.
    const again = mkdtempSync(join(dir, 'again-'))
    await runIn(0, again, 'in an empty directory')
    await runIn(0, again, 'a second time in the same directory')
  })
})
