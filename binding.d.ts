// Types of binding.js (the package entry, which re-exports the napi loader index.js): those of
// index.d.ts. Package consumers get index.d.ts through `types` / `exports`; this file serves
// tools that resolve the entry to its path (e.g. the README test's self-reference).
export * from './index.js'
