/**
 * The engine's C++ kernels compiled to WebAssembly with SIMD-128 (native/wasm/, built by
 * scripts/build-wasm.sh into wasm/): a `Kernels` implementation for Node and the browser.
 *
 * Two modules: `srflow-kernels.wasm` (one thread) and `srflow-kernels-threads.wasm` (shared
 * memory: `threads - 1` workers — Web Workers in a browser, which must be cross-origin isolated
 * for SharedArrayBuffer, worker_threads in Node — each instantiate the module over the same
 * memory and take chunks of every kernel call; the calling thread takes part). Arguments are
 * copied into the module's memory (a grow-only arena) and results copied back. Float64Array
 * calls are delegated to the reference kernels, as in the native backend.
 *
 * Nothing here imports a Node module at load time: the Node-only parts are dynamic imports.
 */
import type { AdamScalars, Buf, Conv2dArgs, Conv2dBackwardDataArgs, Conv2dBackwardFilterArgs, ElementwiseKernels, Kernels } from './types.js';
import { referenceKernels } from './reference.js';
import { withChecks } from './checks.js';

/** The module's exports (native/wasm/srflow_wasm.cc). Pointers are byte offsets. */
export interface WasmExports {
  memory?: WebAssembly.Memory;
  __stack_pointer?: WebAssembly.Global;
  srf_malloc(bytes: number): number;
  srf_channel_affine(x: number, n: number, c: number, hw: number, bias: number, mul: number, relu: number, out: number): void;
  srf_channel_affine_backward(g: number, out: number, n: number, c: number, hw: number, mul: number, relu: number, gx: number, sb: number, ss: number): void;
  srf_affine_from_net(h: number, raw: number, n: number, c: number, hw: number, rb: number, eps: number, inverse: number, out: number): void;
  srf_affine_from_net_backward(
    g: number,
    h: number,
    raw: number,
    n: number,
    c: number,
    hw: number,
    rb: number,
    eps: number,
    inverse: number,
    gh: number,
    gr: number,
  ): void;
  srf_sum_log_scale(raw: number, n: number, c: number, hw: number, eps: number, out: number): void;
  srf_sum_log_scale_backward(raw: number, n: number, c: number, hw: number, eps: number, g: number, gr: number): void;
  srf_leaky_relu(x: number, len: number, slope: number, out: number): void;
  srf_leaky_relu_backward(g: number, x: number, len: number, slope: number, gx: number, accumulate: number): void;
  srf_axpy(alpha: number, x: number, y: number, len: number, out: number): void;
  srf_add_into(x: number, len: number, out: number): void;
  srf_adam(p: number, g: number, m: number, v: number, len: number, ...s: AdamScalars): void;
  srf_free(ptr: number): void;
  srf_set_simd(level: number): number;
  srf_simd_level(): number;
  srf_conv2d(...a: Conv2dArgs<number>): void;
  srf_conv2d_backward_data(...a: Conv2dBackwardDataArgs<number, number>): void;
  srf_conv2d_backward_filter(...a: Conv2dBackwardFilterArgs<number, number>): void;
  srf_matmul(a: number, b: number, m: number, k: number, n: number, ta: number, tb: number, out: number, accumulate: number): void;
  srf_num_threads(): number;
  srf_set_num_threads(n: number): number;
  srf_threads_supported(): number;
  srf_tls_size?(): number;
  srf_tls_align?(): number;
  srf_thread_init?(tls: number): void;
  srf_worker_main?(tid: number): void;
}

export interface WasmKernels extends Kernels {
  /** 'simd128' (hand-written SIMD-128 micro-kernels, the default) or 'scalar' (portable C++, auto-vectorised). */
  simdLevel(): 'simd128' | 'scalar';
  setSimd(level: 'simd128' | 'scalar'): 'simd128' | 'scalar';
  /** Threads taking part in each kernel call now (workers join as they start). */
  threads(): number;
  /** Threads asked for (1 for the single-threaded module). */
  readonly requestedThreads: number;
  /** Bytes of the module's linear memory. */
  memoryBytes(): number;
  /** Resolves when every worker has started (at once for one thread). */
  ready(): Promise<void>;
  /** Stops the workers; the kernels must not be used afterwards. */
  dispose(): void;
}

/** Initial and maximum memory of the threaded module (scripts/build-wasm.sh: --initial-memory, --max-memory). */
const INITIAL_PAGES = 32;
const MAXIMUM_PAGES = 65536;
const WORKER_STACK = 1 << 20;

export const WASM_FILE = 'srflow-kernels.wasm';
export const WASM_THREADS_FILE = 'srflow-kernels-threads.wasm';

/** Function imports are not expected: stub any so that instantiation names the culprit when called. */
function importsFor(module: WebAssembly.Module, memory?: WebAssembly.Memory): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    const ns = (imports[imp.module] ??= {});
    if (imp.kind === 'memory' && memory) ns[imp.name] = memory;
    else if (imp.kind === 'function')
      ns[imp.name] = () => {
        throw new Error(`srflow wasm: unexpected call to import ${imp.module}.${imp.name}`);
      };
  }
  return imports;
}

/** Whether this JS engine validates WebAssembly SIMD-128 (a v128 constant). */
export function wasmSimdSupported(): boolean {
  try {
    return WebAssembly.validate(
      new Uint8Array([
        0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
      ]),
    );
  } catch {
    return false;
  }
}

/** Whether shared-memory threads are possible here (SharedArrayBuffer, and cross-origin isolation in a browser). */
export function wasmThreadsSupported(): boolean {
  if (typeof SharedArrayBuffer === 'undefined' || typeof Atomics === 'undefined') return false;
  const g = globalThis as { crossOriginIsolated?: boolean; process?: { versions?: { node?: string } } };
  if (g.process?.versions?.node) return true;
  return g.crossOriginIsolated === true;
}

// The code of a worker thread (browser Web Worker or Node worker_threads, both classic scripts).
// It gets { module, memory, tid, stackTop, tls, ctl } and parks in srf_worker_main forever.
const WORKER_SOURCE = `
'use strict';
function start(d, post) {
  try {
    const imports = {};
    for (const imp of WebAssembly.Module.imports(d.module)) {
      const ns = (imports[imp.module] = imports[imp.module] || {});
      if (imp.kind === 'memory') ns[imp.name] = d.memory;
      else if (imp.kind === 'function') ns[imp.name] = () => { throw new Error('unexpected import ' + imp.name); };
    }
    const inst = new WebAssembly.Instance(d.module, imports);
    const ex = inst.exports;
    ex.__stack_pointer.value = d.stackTop;
    ex.srf_thread_init(d.tls);
    const ctl = new Int32Array(d.memory.buffer, d.ctl, 1);
    Atomics.add(ctl, 0, 1);
    post({ ready: d.tid });
    ex.srf_worker_main(d.tid);
  } catch (e) {
    post({ error: String(e && e.stack || e) });
  }
}
if (typeof self !== 'undefined' && typeof self.postMessage === 'function' && typeof require === 'undefined') {
  self.onmessage = (ev) => start(ev.data, (m) => self.postMessage(m));
} else {
  const wt = require('node:worker_threads');
  start(wt.workerData, (m) => wt.parentPort.postMessage(m));
}
`;

interface ThreadHandle {
  terminate(): void;
}

export type Spawn = (data: Record<string, unknown>, onMessage: (m: { ready?: number; error?: string }) => void) => ThreadHandle;

/** Node: a spawner over the worker_threads module (passed in, so that this file imports no Node module). */
export function wasmNodeSpawner(wt: typeof import('node:worker_threads')): Spawn {
  return (data, onMessage) => {
    const w = new wt.Worker(WORKER_SOURCE, { eval: true, workerData: data });
    // Referenced until it has started; then a parked worker never keeps the process alive.
    w.on('message', (m: { ready?: number; error?: string }) => {
      if (m.ready !== undefined || m.error) w.unref();
      onMessage(m);
    });
    w.on('error', (e) => {
      w.unref();
      onMessage({ error: String(e) });
    });
    return { terminate: () => void w.terminate() };
  };
}

function browserSpawner(): Spawn {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  return (data, onMessage) => {
    const w = new Worker(url);
    w.onmessage = (ev: MessageEvent) => onMessage(ev.data);
    w.onerror = (ev: ErrorEvent) => onMessage({ error: ev.message });
    w.postMessage(data);
    return { terminate: () => w.terminate() };
  };
}

function isNode(): boolean {
  return !!(globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
}

interface Instance {
  ex: WasmExports;
  memory: WebAssembly.Memory;
}

function makeKernels(inst: Instance, opts: { requested: number; ctl: number; threads: ThreadHandle[]; ready: Promise<void> }): WasmKernels {
  const { ex, memory } = inst;
  let heapBuf: ArrayBufferLike | null = null;
  let heap = new Float32Array(0);
  let ctlView: Int32Array | null = null;
  let arena = 0;
  let arenaFloats = 0;
  let joined = 1;
  let disposed = false;

  const view = (): Float32Array => {
    const b = memory.buffer;
    if (b !== heapBuf) {
      heapBuf = b;
      heap = new Float32Array(b);
      ctlView = opts.ctl ? new Int32Array(b, opts.ctl, 1) : null;
    }
    return heap;
  };
  // Workers that have started since the last call join the next one.
  const syncThreads = (): void => {
    if (opts.requested <= 1 || joined >= opts.requested) return;
    view();
    const started = ctlView ? Atomics.load(ctlView, 0) : 0;
    if (started + 1 !== joined) joined = ex.srf_set_num_threads(started + 1);
  };
  /** Float offsets of consecutive regions of the given sizes in the arena. */
  const reserve = (sizes: number[]): number[] => {
    if (disposed) throw new Error('srflow wasm kernels used after dispose()');
    let total = 0;
    const offs = sizes.map((s) => {
      const o = total;
      total += (s + 15) & ~15; // 64-byte aligned regions
      return o;
    });
    if (total > arenaFloats) {
      if (arena) ex.srf_free(arena);
      arena = 0;
      arenaFloats = 0;
      const want = Math.ceil(total * 1.25) + 1024;
      const p = want * 4 <= 0xf0000000 ? ex.srf_malloc(want * 4) : 0;
      if (!p) {
        throw new Error(
          `srflow wasm: out of memory (a kernel call needs ${((total * 4) / 2 ** 20).toFixed(0)} MiB; the module has ${(memory.buffer.byteLength / 2 ** 20).toFixed(0)} MiB of at most 4096)`,
        );
      }
      arena = p;
      arenaFloats = want;
    }
    const base = arena >>> 2;
    return offs.map((o) => base + o);
  };
  /**
   * Stages one kernel call's buffers in the arena, in order: a buffer is copied in, a number
   * reserves that many floats (an output), null is no buffer (pointer 0). Returns byte pointers.
   */
  const stage = (...items: (Buf | number | null)[]): number[] => {
    syncThreads();
    const at = reserve(items.map((b) => (b === null ? 0 : typeof b === 'number' ? b : b.length)));
    const h = view();
    return items.map((b, i) => {
      if (b === null) return 0;
      if (typeof b !== 'number') h.set(b as Float32Array, at[i]);
      return at[i] * 4;
    });
  };
  /** Copies a result back from byte pointer `p` (Float64Array: per-channel and per-sample sums). */
  const get = (p: number, out: Buf): void => {
    if (out instanceof Float64Array) out.set(new Float64Array(view().buffer, p, out.length));
    else out.set(view().subarray(p >> 2, (p >> 2) + out.length));
  };

  // The element-wise kernels of native/elementwise.cc (the fused flow ops, leaky ReLU, axpy, Adam):
  // the same C++ as the addon's, arguments copied in and results copied out like the convolutions.
  const ew: ElementwiseKernels = {
    channelAffine(x, n, c, hw, bias, mul, relu, out) {
      const [px, pb, pm, po] = stage(x, bias, mul, out.length);
      ex.srf_channel_affine(px, n, c, hw, pb, pm, relu ? 1 : 0, po);
      get(po, out);
    },
    channelAffineBackward(g, out, n, c, hw, mul, relu, gx, sb, ss) {
      const [pg, po, pm, px, psb, pss] = stage(g, out, mul, gx ? gx.length : 0, 2 * c, 2 * c);
      ex.srf_channel_affine_backward(pg, po, n, c, hw, pm, relu ? 1 : 0, gx ? px : 0, psb, pss);
      if (gx) get(px, gx);
      get(psb, sb);
      get(pss, ss);
    },
    affineFromNet(hh, raw, n, c, hw, rb, eps, inverse, out) {
      const [ph, pr, po] = stage(hh, raw, out.length);
      ex.srf_affine_from_net(ph, pr, n, c, hw, rb ? 1 : 0, eps, inverse ? 1 : 0, po);
      get(po, out);
    },
    affineFromNetBackward(g, hh, raw, n, c, hw, rb, eps, inverse, gh, gr) {
      const [pg, ph, pr, pgh, pgr] = stage(g, hh, raw, gh ? gh.length : 0, gr); // gr is accumulated into
      ex.srf_affine_from_net_backward(pg, ph, pr, n, c, hw, rb ? 1 : 0, eps, inverse ? 1 : 0, gh ? pgh : 0, pgr);
      if (gh) get(pgh, gh);
      if (gr) get(pgr, gr);
    },
    sumLogScale(raw, n, c, hw, eps, out) {
      const [pr, po] = stage(raw, 2 * n);
      ex.srf_sum_log_scale(pr, n, c, hw, eps, po);
      get(po, out);
    },
    sumLogScaleBackward(raw, n, c, hw, eps, g, gr) {
      const [pr, pg, pgr] = stage(raw, g, gr); // the shift channels of gr are left as they are
      ex.srf_sum_log_scale_backward(pr, n, c, hw, eps, pg, pgr);
      get(pgr, gr);
    },
    leakyRelu(x, slope, out) {
      const [px, po] = stage(x, x.length);
      ex.srf_leaky_relu(px, x.length, slope, po);
      get(po, out);
    },
    leakyReluBackward(g, x, slope, gx, accumulate) {
      const [pg, px, pgx] = stage(g, x, accumulate ? gx : g.length);
      ex.srf_leaky_relu_backward(pg, px, g.length, slope, pgx, accumulate ? 1 : 0);
      get(pgx, gx);
    },
    axpy(alpha, x, y, out) {
      const [px, py, po] = stage(x, y, x.length);
      ex.srf_axpy(alpha, px, py, x.length, po);
      get(po, out);
    },
    addInto(x, out) {
      const [px, po] = stage(x, out);
      ex.srf_add_into(px, x.length, po);
      get(po, out);
    },
    adam(p, g, m, v, beta1, beta2, stepSize, bc2sqrt, eps, weightDecay) {
      const [pp, pg, pm, pv] = stage(p, g, m, v);
      ex.srf_adam(pp, pg, pm, pv, p.length, beta1, beta2, stepSize, bc2sqrt, eps, weightDecay);
      get(pp, p);
      get(pm, m);
      get(pv, v);
    },
  };

  const k: WasmKernels = {
    get name() {
      const t = opts.requested > 1 ? `-threads${joined}` : '';
      return `wasm-${ex.srf_simd_level() ? 'simd128' : 'scalar'}${t}`;
    },
    requestedThreads: opts.requested,
    ew,
    // float32 only (withChecks sends float64 calls to the reference kernels)
    conv2d(x, w, bias, g, out) {
      const [px, pw, pb, po] = stage(x, w, bias, out.length);
      ex.srf_conv2d(px, pw, pb, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, po);
      get(po, out);
    },
    conv2dBackwardData(gy, w, g, gx, accumulate) {
      const [pg, pw, px] = stage(gy, w, accumulate ? gx : gx.length);
      ex.srf_conv2d_backward_data(pg, pw, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, px, accumulate ? 1 : 0);
      get(px, gx);
    },
    conv2dBackwardFilter(gy, x, g, gw, gb, accumulate) {
      const [pg, px, pw, pb] = stage(gy, x, accumulate ? gw : gw.length, gb && accumulate ? gb : gb ? gb.length : 0);
      ex.srf_conv2d_backward_filter(pg, px, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, pw, gb ? pb : 0, accumulate ? 1 : 0);
      get(pw, gw);
      if (gb) get(pb, gb);
    },
    matmul(a, b, m, kk, n, transA, transB, out, accumulate) {
      if (m === 0 || n === 0) return;
      const [pa, pb, po] = stage(a, b, accumulate ? out : out.length);
      ex.srf_matmul(pa, pb, m, kk, n, transA ? 1 : 0, transB ? 1 : 0, po, accumulate ? 1 : 0);
      get(po, out);
    },
    simdLevel() {
      return ex.srf_simd_level() ? 'simd128' : 'scalar';
    },
    setSimd(level) {
      return ex.srf_set_simd(level === 'scalar' ? 0 : 1) ? 'simd128' : 'scalar';
    },
    threads() {
      syncThreads();
      return joined;
    },
    memoryBytes() {
      return memory.buffer.byteLength;
    },
    ready() {
      return opts.ready.then(() => syncThreads());
    },
    dispose() {
      disposed = true;
      for (const t of opts.threads) t.terminate();
    },
  };
  return withChecks(k, referenceKernels); // argument checks; float64 calls to the reference kernels
}

function instantiateSingle(module: WebAssembly.Module): WasmKernels {
  const instance = new WebAssembly.Instance(module, importsFor(module));
  const ex = instance.exports as unknown as WasmExports;
  if (!ex.memory) throw new Error('srflow wasm: the single-threaded module exports no memory');
  return makeKernels({ ex, memory: ex.memory }, { requested: 1, ctl: 0, threads: [], ready: Promise.resolve() });
}

function instantiateThreaded(module: WebAssembly.Module, threads: number, spawn: Spawn): WasmKernels {
  const memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES, shared: true });
  const instance = new WebAssembly.Instance(module, importsFor(module, memory));
  const ex = instance.exports as unknown as WasmExports;
  if (!ex.srf_thread_init || !ex.srf_tls_size || !ex.srf_tls_align) throw new Error('srflow wasm: not the threaded module');
  const tlsSize = Math.max(ex.srf_tls_size(), 4);
  const tlsAlign = Math.max(ex.srf_tls_align(), 4);
  const tlsBlock = (): number => {
    const p = ex.srf_malloc(tlsSize + tlsAlign);
    if (!p) throw new Error('srflow wasm: out of memory');
    return Math.ceil(p / tlsAlign) * tlsAlign;
  };
  ex.srf_thread_init(tlsBlock());
  const ctl = ex.srf_malloc(64);
  new Int32Array(memory.buffer, ctl, 1)[0] = 0;
  const handles: ThreadHandle[] = [];
  const waits: Promise<void>[] = [];
  for (let tid = 1; tid < threads; tid++) {
    const stack = ex.srf_malloc(WORKER_STACK);
    if (!stack) throw new Error('srflow wasm: out of memory');
    waits.push(
      new Promise<void>((resolve, reject) => {
        handles.push(
          spawn({ module, memory, tid, stackTop: stack + WORKER_STACK, tls: tlsBlock(), ctl }, (m) => {
            if (m.error) reject(new Error(`srflow wasm worker ${tid}: ${m.error}`));
            else if (m.ready !== undefined) resolve();
          }),
        );
      }),
    );
  }
  const ready = Promise.all(waits).then(() => undefined);
  ready.catch(() => undefined); // surfaced through ready()
  return makeKernels({ ex, memory }, { requested: threads, ctl, threads: handles, ready });
}

/**
 * Synchronous set-up from the module bytes (Node, or a browser worker for small modules).
 * `threadsBytes` with `threads > 1` (Node only): the threaded module; workers join as they start.
 */
export function createWasmKernelsSync(bytes: BufferSource, opts: { threads?: number; threadsBytes?: BufferSource; spawn?: Spawn } = {}): WasmKernels {
  if (!wasmSimdSupported()) throw new Error('srflow wasm: this JavaScript engine does not support WebAssembly SIMD-128');
  const threads = Math.max(1, Math.floor(opts.threads ?? 1));
  if (threads > 1 && opts.threadsBytes && opts.spawn && wasmThreadsSupported()) {
    return instantiateThreaded(new WebAssembly.Module(opts.threadsBytes), threads, opts.spawn);
  }
  return instantiateSingle(new WebAssembly.Module(bytes));
}

export type WasmSource = BufferSource | WebAssembly.Module | URL | string;

async function compile(src: WasmSource): Promise<WebAssembly.Module> {
  if (src instanceof WebAssembly.Module) return src;
  if (typeof src === 'string' || src instanceof URL) {
    const url = String(src);
    if (isNode() && url.startsWith('file:')) {
      const fs = (await import('node:fs/promises')) as typeof import('node:fs/promises');
      return WebAssembly.compile(await fs.readFile(new URL(url)));
    }
    const res = await fetch(url);
    if (!res.ok) throw new Error(`srflow wasm: cannot load ${url}: HTTP ${res.status}`);
    return WebAssembly.compile(await res.arrayBuffer());
  }
  return WebAssembly.compile(src);
}

/**
 * Asynchronous set-up: the threaded module when `threads > 1` and shared memory is available
 * (cross-origin isolated page, or Node), else the single-threaded one. Resolves once every
 * worker has started.
 */
export async function createWasmKernels(opts: { single: WasmSource; threaded?: WasmSource; threads?: number }): Promise<WasmKernels> {
  if (!wasmSimdSupported())
    throw new Error('This browser does not support WebAssembly SIMD (needed by srflow): use a current Chrome, Edge, Firefox or Safari.');
  const threads = Math.max(1, Math.floor(opts.threads ?? 1));
  if (threads > 1 && opts.threaded && wasmThreadsSupported()) {
    const module = await compile(opts.threaded);
    const spawn = isNode() ? wasmNodeSpawner((await import('node:worker_threads')) as typeof import('node:worker_threads')) : browserSpawner();
    const k = instantiateThreaded(module, threads, spawn);
    try {
      await k.ready();
    } catch (e) {
      k.dispose();
      throw e;
    }
    return k;
  }
  return instantiateSingle(await compile(opts.single));
}
