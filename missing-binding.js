// `explain(error)`: the error `binding.js` throws when the napi loader (`index.js`) finds no
// native binary it can load. Hand-written; see binding.js.
'use strict'

const { name, version } = require('./package.json')

/** napi's platform name for this process: `linux-x64-gnu`, `linux-x64-musl`, `darwin-arm64`, ... */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${glibcVersion() ? 'gnu' : 'musl'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function glibcVersion() {
  try {
    return process.report.getReport().header.glibcVersionRuntime || null
  } catch {
    return null
  }
}

/** What each load attempt threw: the loader chains them as `cause`s of its own error. */
function attempts(error) {
  const lines = []
  const seen = new Set()
  for (let e = error && error.cause; e && !seen.has(e) && lines.length < 16; e = e.cause) {
    seen.add(e)
    lines.push(`  - ${String(e.message !== undefined ? e.message : e).split('\n')[0]}`)
  }
  return lines.join('\n')
}

function explain(error) {
  const message = String(error && error.message)
  // The loader's "no binary" errors; anything else (an error thrown by a binary that did load)
  // passes through unchanged.
  if (!/Cannot find native binding|Failed to load native binding/.test(message)) return error
  const platform = platformName()
  const pkg = `${name}-${platform}`
  const glibc = glibcVersion()
  const where =
    `${platform} (Node ${process.version}, ABI ${process.versions.modules}, ${process.platform}/${process.arch}` +
    (glibc ? `, glibc ${glibc}` : '') +
    ')'
  const supported = Object.keys(require('./package.json').optionalDependencies || {})
  const lines = [`${name}: no native binary could be loaded for ${where}.`]
  if (supported.length === 0 || supported.includes(pkg)) {
    lines.push(
      `The binary ships in the optional dependency \`${pkg}\` (version ${version}), which npm installs with \`${name}\` ` +
        `on this platform. It is missing or failed to load: reinstall without \`--no-optional\`, \`--omit=optional\` ` +
        `or \`optional=false\` (npm config), e.g. \`npm install ${pkg}@${version}\`; if node_modules was copied from ` +
        `another platform, run \`npm ci\` here.`,
    )
    if (platform.endsWith('-gnu')) lines.push(`The prebuilt binary needs glibc >= 2.17.`)
  } else {
    lines.push(
      `There is no prebuilt binary for ${platform}; prebuilt: ${supported.map((p) => p.slice(name.length + 1)).join(', ')}.`,
    )
  }
  lines.push(
    `Or build from source: with a Rust toolchain (https://rustup.rs), in a checkout of ${name}, \`npm install\` builds ` +
      `the addon (\`npm run build\`), and NAPI_RS_NATIVE_LIBRARY_PATH=/path/to/${name}.${platform}.node loads a binary ` +
      `from anywhere.`,
    `What was tried (the loader's errors):`,
    attempts(error),
  )
  return new Error(lines.join('\n'), { cause: error })
}

module.exports = { explain, platformName }
