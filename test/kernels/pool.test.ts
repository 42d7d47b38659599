/**
 * The thread pool under a stream of jobs of changing sizes: every job's chunks run once, with that
 * job's function and data, natively and in the threaded wasm module (one source, native/pool.cc):
 * a regression test for a race in which a worker leaving one job could run an index of it with
 * the next job's chunk count, and the pool then waited forever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative, getNumThreads, setNumThreads } from '../../src/kernels/native.js';
import { createWasmKernels } from '../../src/kernels/wasm.js';
import type { ElementwiseKernels } from '../../src/kernels/types.js';

const K = loadNative().kernels;

/** 400 axpy jobs whose chunk counts change from job to job; every result checked exactly. */
function stream(ew: ElementwiseKernels): void {
  // sizes chosen so the number of chunks changes from job to job (small jobs run serially,
  // large ones are split across the pool)
  const sizes = [1 << 16, 1 << 19, 3 << 15, 1 << 20, 5 << 14, 1 << 18];
  const bufs = sizes.map((n) => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i % 97) - 48;
    return { x, y: new Float32Array(n), out: new Float32Array(n) };
  });
  for (let rep = 0; rep < 400; rep++) {
    const j = rep % sizes.length;
    const { x, y, out } = bufs[j];
    y.fill(rep % 7);
    ew.axpy(2, x, y, out); // out = 2x + y, exact in float32 for these integers
    if (rep % 25 === 0 || rep > 380) {
      for (let i = 0; i < x.length; i += 61) {
        if (out[i] !== 2 * x[i] + (rep % 7)) assert.fail(`job ${rep} (size ${x.length}): element ${i} is ${out[i]}, expected ${2 * x[i] + (rep % 7)}`);
      }
    }
  }
}

test('many back-to-back pool jobs of alternating sizes give exact results', { skip: K ? false : 'native addon not built', timeout: 120_000 }, () => {
  const k = K!;
  const before = getNumThreads();
  setNumThreads(2);
  try {
    stream(k.ew!);
  } finally {
    setNumThreads(before);
  }
});

test("the wasm module's pool (the same source, memory.atomic.wait/notify) under the same stream, 3 threads", { timeout: 120_000 }, async () => {
  const W = await createWasmKernels({
    single: new URL('../../wasm/srflow-kernels.wasm', import.meta.url),
    threaded: new URL('../../wasm/srflow-kernels-threads.wasm', import.meta.url),
    threads: 3,
  });
  try {
    assert.equal(W.threads(), 3);
    stream(W.ew!);
  } finally {
    W.dispose();
  }
});
