// The parts of argument and result conversion that run in JavaScript, because that is where
// they are fast: reading one array element through N-API costs ~300 ns (napi_get_element and
// napi_get_value_double), a JIT-compiled loop ~2-4 ns, and V8's own JSON and typed-array
// copies are faster still. `helpers.rs` compiles this file once per JS environment; the Rust
// side decides what to convert and in which slices (see `staged.rs`).
//
// Every function catches what user values can throw (getters, toJSON) and returns a problem
// object `{ index, path, message, kind }` instead, and none keeps a reference to an argument.
;(function () {
  'use strict'

  // What a value is, for messages.
  function describe(v) {
    if (v === null) return 'null'
    if (Array.isArray(v)) return 'an array'
    if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`
    const t = typeof v
    if (t === 'object') return v.constructor && v.constructor !== Object ? `a ${v.constructor.name}` : 'an object'
    if (t === 'string') return 'a string'
    if (t === 'undefined') return 'undefined'
    return `a ${t}`
  }

  // Float typed arrays and plain numeric ones (not BigInt64 ones, not DataView).
  function isNumericView(v) {
    return ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)
  }

  // Copies one vector (an array of numbers or a numeric typed array) into `out` at `at`;
  // `dim` < 0 accepts any length. Returns null, or a problem without `index`.
  function copyRow(row, dim, out, at) {
    if (Array.isArray(row)) {
      const n = row.length
      if (dim >= 0 && n !== dim) return { kind: 'dimension', length: n, message: 'has another dimension' }
      for (let j = 0; j < n; j++) {
        if (typeof row[j] !== 'number') {
          return { kind: 'type', message: `has ${describe(row[j])} at position ${j}, not a number` }
        }
      }
      out.set(row, at)
      return null
    }
    if (isNumericView(row)) {
      if (dim >= 0 && row.length !== dim) return { kind: 'dimension', length: row.length, message: 'has another dimension' }
      out.set(row, at)
      return null
    }
    return { kind: 'type', message: `is ${describe(row)}, not an array of numbers or a Float32Array` }
  }

  // The length of a vector as `copyRow` would take it, or -1 if it is not one.
  function rowLength(row) {
    return Array.isArray(row) || isNumericView(row) ? row.length : -1
  }

  // rows[start..end) into `out` at (row − start) × dim.
  function copyRows(rows, start, end, dim, out) {
    try {
      for (let i = start; i < end; i++) {
        const p = copyRow(rows[i], dim, out, (i - start) * dim)
        if (p !== null) return { index: i, ...p }
      }
      return null
    } catch (e) {
      return { index: -1, kind: 'type', message: `could not be read: ${e && e.message}` }
    }
  }

  // One vector, copied into a new Float32Array (or a problem).
  function vector(row) {
    try {
      const n = rowLength(row)
      const out = new Float32Array(n < 0 ? 0 : n)
      const p = copyRow(row, -1, out, 0)
      return p === null ? out : p
    } catch (e) {
      return { kind: 'type', message: `could not be read: ${e && e.message}` }
    }
  }

  // ---- JSON that means what it says ----

  // Why JSON.stringify would drop or change `v` without a word, or null.
  function problemOf(v) {
    switch (typeof v) {
      case 'undefined':
        return 'undefined (JSON has no undefined: omit the key or use null)'
      case 'function':
        return 'a function (JSON would drop it)'
      case 'symbol':
        return 'a symbol (JSON would drop it)'
      case 'bigint':
        return 'a BigInt (JSON has no BigInt: use a number or a string)'
      case 'number':
        return Number.isFinite(v) ? null : `${v} (JSON has no NaN or Infinity: use null or a finite number)`
      case 'object':
        if (v instanceof Map || v instanceof Set || v instanceof WeakMap || v instanceof WeakSet) {
          return `a ${v.constructor.name} (JSON would store it as {}: convert it to an object or an array)`
        }
        return null
      default:
        return null
    }
  }

  const REFUSED = Symbol('refused')

  function refuse(key, value) {
    if (problemOf(value) !== null) throw REFUSED
    return value
  }

  function child(path, key, isIndex) {
    if (isIndex) return `${path}[${key}]`
    return path === '' ? key : `${path}.${key}`
  }

  // The path and problem of the first value JSON.stringify would drop or change, walking as
  // it does (toJSON first), or null. `seen` finds cycles.
  function findProblem(holderKey, value, path, seen) {
    if (value !== null && typeof value === 'object' && typeof value.toJSON === 'function') value = value.toJSON(holderKey)
    const p = problemOf(value)
    if (p !== null) return { path, message: `is ${p}` }
    if (value === null || typeof value !== 'object') return null
    if (seen.has(value)) return { path, message: 'is a circular reference' }
    seen.add(value)
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const found = findProblem(String(i), value[i], child(path, i, true), seen)
        if (found !== null) return found
      }
    } else {
      for (const k of Object.keys(value)) {
        const found = findProblem(k, value[k], child(path, k, false), seen)
        if (found !== null) return found
      }
    }
    seen.delete(value)
    return null
  }

  function jsonProblem(e, key, value) {
    try {
      const found = findProblem(key, value, '', new Set())
      if (found !== null) return found
    } catch (inner) {
      e = inner
    }
    return { path: '', message: e === REFUSED ? 'cannot be stored as JSON' : `cannot be stored as JSON: ${e && e.message}` }
  }

  // JSON text of `value` (a filter), or a problem with the path of what JSON would drop.
  function strictJson(value) {
    try {
      const text = JSON.stringify(value, refuse)
      return text === undefined ? { path: '', message: `is ${describe(value)}, not an object` } : text
    } catch (e) {
      return jsonProblem(e, '', value)
    }
  }

  // JSON text of values[start..end) as one array, where undefined and null elements mean
  // "none" (null); every element must be an object or none. Or a problem with its index.
  function strictJsonColumn(values, start, end) {
    try {
      const slice = []
      for (let i = start; i < end; i++) {
        const v = values[i]
        if (v === undefined || v === null) {
          slice.push(null)
        } else if (typeof v !== 'object') {
          return { index: i, path: '', message: `is ${describe(v)}, not an object` }
        } else {
          slice.push(v)
        }
      }
      try {
        return JSON.stringify(slice, refuse)
      } catch (e) {
        for (let i = 0; i < slice.length; i++) {
          try {
            JSON.stringify(slice[i], refuse)
          } catch (inner) {
            return { index: start + i, ...jsonProblem(inner, String(i), slice[i]) }
          }
        }
        return { index: -1, ...jsonProblem(e, '', slice) }
      }
    } catch (e) {
      return { index: -1, path: '', message: `could not be read: ${e && e.message}` }
    }
  }

  // JSON text of values[start..end): a column of strings (ids), unchecked (the Rust side
  // reports an element that is not a string, or not well-formed UTF-16, by its position).
  function jsonSlice(values, start, end) {
    try {
      return JSON.stringify(start === 0 && end === values.length ? values : values.slice(start, end))
    } catch (e) {
      return { index: -1, path: '', message: `could not be read: ${e && e.message}` }
    }
  }

  // The contents column values[start..end): texts as one JSON array (null where an item has
  // no text), and [position, Uint8Array] pairs for byte contents.
  function contentsSlice(values, start, end) {
    try {
      const texts = []
      const bytes = []
      for (let i = start; i < end; i++) {
        const c = values[i]
        if (typeof c === 'string') {
          texts.push(c)
        } else {
          texts.push(null)
          if (c instanceof Uint8Array) bytes.push(i, c)
          else if (c !== undefined && c !== null) {
            return { index: i, path: '', message: `is ${describe(c)}, not a string or a Uint8Array` }
          }
        }
      }
      return { texts: JSON.stringify(texts), bytes }
    } catch (e) {
      return { index: -1, path: '', message: `could not be read: ${e && e.message}` }
    }
  }

  // The items form of upsert, items[start..end), as columns: ids, vectors copied into `out`
  // (at (item − start) × dim), metadata and contents as arrays for the column helpers above.
  function itemsSlice(items, start, end, dim, out) {
    try {
      const ids = []
      const metadata = []
      const contents = []
      for (let i = start; i < end; i++) {
        const it = items[i]
        if (it === null || typeof it !== 'object') {
          return { index: i, kind: 'item', message: `is ${describe(it)}, not an object with id and vector` }
        }
        ids.push(it.id)
        const p = copyRow(it.vector, dim, out, (i - start) * dim)
        if (p !== null) return { index: i, ...p }
        metadata.push(it.metadata)
        contents.push(it.contents)
      }
      return { ids, metadata, contents }
    } catch (e) {
      return { index: -1, kind: 'item', message: `could not be read: ${e && e.message}` }
    }
  }

  // The length of the first item's vector, or -1.
  function firstItemLength(items) {
    try {
      const it = items[0]
      return it !== null && typeof it === 'object' ? rowLength(it.vector) : -1
    } catch {
      return -1
    }
  }

  // ---- results ----

  // Builds result objects [start..end) from the columns of that slice the Rust side
  // prepared: `ids` (JSON array text), `distances` and `scores` (Float64Arrays or null), `metadata` and
  // `texts` (JSON array texts or null), `bytes` ([position, Buffer] pairs or null), `vectors`
  // (a Float32Array of (end − start) × dim or null). Each vector is a copy of its own.
  function buildItems(c, start, end, into) {
    const ids = JSON.parse(c.ids)
    const metadata = c.metadata === null ? null : JSON.parse(c.metadata)
    const texts = c.texts === null ? null : JSON.parse(c.texts)
    const bytes = new Map()
    if (c.bytes !== null) for (let i = 0; i < c.bytes.length; i += 2) bytes.set(c.bytes[i], c.bytes[i + 1])
    for (let i = start; i < end; i++) {
      const k = i - start
      const item = { id: ids[k] }
      if (c.distances !== null) item.distance = c.distances[k]
      if (c.scores !== null) item.score = c.scores[k]
      if (metadata !== null && metadata[k] !== null) item.metadata = metadata[k]
      if (texts !== null && texts[k] !== null) item.contents = texts[k]
      else if (bytes.has(i)) item.contents = bytes.get(i)
      if (c.vectors !== null) item.vector = c.vectors.slice(k * c.dim, (k + 1) * c.dim)
      into.push(item)
    }
  }

  // Splits `items` into lists at `ends` (the end of each list), for queryBatch.
  function split(items, ends) {
    const out = []
    let start = 0
    for (let i = 0; i < ends.length; i++) {
      out.push(items.slice(start, ends[i]))
      start = ends[i]
    }
    return out
  }

  // The text columns of a `layout: 'columns'` queryBatch while they fill.
  function newColumns(hasMetadata, hasContents) {
    return { ids: [], metadata: hasMetadata ? [] : null, contents: hasContents ? [] : null }
  }

  // One slice (results start..end) of text columns appended to `into` (see newColumns);
  // a result without metadata or contents holds null there, so every column stays aligned.
  function appendColumns(c, start, end, into) {
    const ids = JSON.parse(c.ids)
    for (let k = 0; k < ids.length; k++) into.ids.push(ids[k])
    if (into.metadata !== null) {
      const metadata = JSON.parse(c.metadata)
      for (let k = 0; k < metadata.length; k++) into.metadata.push(metadata[k])
    }
    if (into.contents !== null) {
      const texts = JSON.parse(c.texts)
      const bytes = new Map()
      if (c.bytes !== null) for (let i = 0; i < c.bytes.length; i += 2) bytes.set(c.bytes[i], c.bytes[i + 1])
      for (let i = start; i < end; i++) {
        const text = texts[i - start]
        into.contents.push(text !== null ? text : bytes.has(i) ? bytes.get(i) : null)
      }
    }
  }

  // The QueryColumns object: the filled text columns and the typed arrays (null: not asked
  // for), in a fixed order.
  function finishColumns(into, offsets, distances, scores, vectors) {
    const out = { offsets, ids: into.ids }
    if (distances !== null) out.distances = distances
    if (scores !== null) out.scores = scores
    if (into.metadata !== null) out.metadata = into.metadata
    if (into.contents !== null) out.contents = into.contents
    if (vectors !== null) out.vectors = vectors
    return out
  }

  // JSON.parse of a string array slice appended to `into` (ids of listIds and queryMetadata).
  function appendParsed(text, into, asObjects) {
    const values = JSON.parse(text)
    if (asObjects) for (let i = 0; i < values.length; i++) into.push({ id: values[i] })
    else for (let i = 0; i < values.length; i++) into.push(values[i])
  }

  return {
    copyRows,
    vector,
    rowLength,
    strictJson,
    strictJsonColumn,
    jsonSlice,
    contentsSlice,
    itemsSlice,
    firstItemLength,
    buildItems,
    split,
    newColumns,
    appendColumns,
    finishColumns,
    appendParsed,
  }
})()
