// The measures the event-loop tests rely on (helpers.ts). Their bound is the JS thread's CPU
// time, so a JS thread kept busy on purpose must show as such, whatever the machine's load,
// or those tests could not fail; a JS thread asleep is not bounded (sleep grows with load)
// but must be told apart, since the tests' messages report it. Each case blocks the JS thread
// for 200 ms and must be measured as at least 150 ms of the right kind (the margin covers the
// kernel's CPU accounting of a running thread, which lags by up to a scheduler tick).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Worker } from 'node:worker_threads'

import { burnCpu, describeSpan, describeWatch, noSchedstat, ownMs, sliceSpans, threadSamples, watchLoop, workerPriority } from './helpers.js'

/** Blocks the JS thread asleep (not runnable, so none of it is a wait for a CPU). */
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** A fake library call: `slices` setImmediate turns, the `blocking`-th of which runs `block`. */
function sliced(slices: number, blocking: number, block: () => void): Promise<void> {
  return new Promise((resolve) => {
    const step = (k: number) => {
      if (k === blocking) block()
      if (k + 1 < slices) setImmediate(step, k + 1)
      else resolve()
    }
    setImmediate(step, 0)
  })
}

const synchronously = (block: () => void) => () => {
  block()
  return Promise.resolve()
}

describe('event-loop measures', { skip: noSchedstat }, () => {
  it('watchLoop counts 200 ms of CPU time in a slice, or in a call\'s synchronous part, as such', async () => {
    for (const work of [() => sliced(5, 2, () => burnCpu(200)), synchronously(() => burnCpu(200))]) {
      const { watch } = await watchLoop(work)
      assert.ok(watch.worstRanMs >= 150, describeWatch(watch))
    }
  })

  it('watchLoop tells 200 ms asleep from CPU time', async () => {
    for (const work of [() => sliced(5, 2, () => sleep(200)), synchronously(() => sleep(200))]) {
      const { watch } = await watchLoop(work)
      assert.ok(watch.worstSleptMs >= 150, describeWatch(watch))
      assert.ok(watch.worstRanMs < 50, describeWatch(watch))
    }
  })

  it('sliceSpans times the synchronous part and every setImmediate slice', async () => {
    const pieces = await sliceSpans(() => sliced(5, 3, () => burnCpu(200)))
    const all = pieces.map(describeSpan).join(' | ')
    // The synchronous part, then the five slices, the fourth of which burnt 200 ms.
    assert.equal(pieces.length, 6)
    assert.ok(pieces[4].ranMs >= 150, all)
    assert.ok(pieces.every((p, i) => i === 4 || p.ranMs < 50), all)
    const asleep = await sliceSpans(() => sliced(5, 1, () => sleep(200)))
    assert.ok(asleep[2].sleptMs >= 150 && asleep[2].ranMs < 50, asleep.map(describeSpan).join(' | '))
  })

  it('sliceSpans tells a garbage collection inside a slice from the slice\'s own work', async () => {
    // A full collection of ~1M live objects, forced in the third slice; the fifth burns 200 ms.
    setFlagsFromString('--expose-gc')
    const collect = runInNewContext('gc') as () => void
    const live = Array.from({ length: 1_000_000 }, (_, i) => ({ i, s: String(i) }))
    const pieces = await sliceSpans(() => sliced(5, 2, collect))
    const burnt = await sliceSpans(() => sliced(5, 3, () => burnCpu(200)))
    const all = [...pieces, ...burnt].map(describeSpan).join(' | ')
    assert.equal(live.length, 1_000_000)
    // The pause is wall time and the collection is most of the slice's CPU time.
    assert.ok(pieces[3].gcMs! >= 0.5 * pieces[3].ranMs && pieces[3].ranMs > 0, all)
    assert.ok(ownMs(pieces[3]) < pieces[3].ranMs, all)
    assert.ok(ownMs(burnt[4]) >= 150, all)
  })

  it('workerPriority counts CPU time of a thread at normal priority as such', async (t) => {
    const own = threadSamples().find((s) => s.tid === process.pid)!.nice
    const { nice } = workerPriority([], [])
    if (own >= nice) return t.skip(`the whole process runs at nice ${own}`)
    // A thread at the JS thread's priority, named like the library's (workerPriority counts
    // only those), burns 200 ms of its CPU time, then waits (so that it is still there to be
    // sampled) until terminated.
    const before = threadSamples()
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads')
      const { readFileSync, writeFileSync } = require('node:fs')
      writeFileSync('/proc/thread-self/comm', 'ciphervec-probe')
      const ran = () => Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1e6
      const until = ran() + 200
      while (ran() < until);
      parentPort.postMessage('done')
      setInterval(() => {}, 1000)`,
      { eval: true },
    )
    try {
      await new Promise((resolve) => worker.once('message', resolve))
      const priority = workerPriority(before, threadSamples())
      assert.ok(priority.normalMs >= 150, `${priority.normalMs.toFixed(0)} ms at normal priority: ${priority.busiest.join(', ')}`)
    } finally {
      await worker.terminate()
    }
  })
})
