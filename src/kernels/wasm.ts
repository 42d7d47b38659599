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
import type { Buf, Conv2dGeom, ElementwiseKernels, Kernels } from './types.js';
import { convOutSize } from './types.js';
import * as ref from './reference.js';

/** The module's exports (native/wasm/srflow_wasm.cc). Pointers are byte offsets. */
export interface WasmExports {
  memory?: WebAssembly.Memory;
  __stack_pointer?: WebAssembly.Global;
  srf_malloc(bytes: number): number;
  srf_channel_affine(x: number, n: number, c: number, hw: number, bias: number, mul: number, relu: number, out: number): void;
  srf_channel_affine_backward(g: number, out: number, n: number, c: number, hw: number, mul: number, relu: number, gx: number, sb: number, ss: number): void;
  srf_affine_from_net(h: number, raw: number, n: number, c: number, hw: number, rb: number, eps: number, inverse: number, out: number): void;
  srf_affine_from_net_backward(g: number, h: number, raw: number, n: number, c: number, hw: number, rb: number, eps: number, inverse: number, gh: number, gr: number): void;
  srf_sum_log_scale(raw: number, n: number, c: number, hw: number, eps: number, out: number): void;
  srf_sum_log_scale_backward(raw: number, n: number, c: number, hw: number, eps: number, g: number, gr: number): void;
  srf_leaky_relu(x: number, len: number, slope: number, out: number): void;
  srf_leaky_relu_backward(g: number, x: number, len: number, slope: number, gx: number, accumulate: number): void;
  srf_axpy(alpha: number, x: number, y: number, len: number, out: number): void;
  srf_add_into(x: number, len: number, out: number): void;
  srf_adam(p: number, g: number, m: number, v: number, len: number, beta1: number, beta2: number, stepSize: number, bc2sqrt: number, eps: number, weightDecay: number): void;
  srf_free(ptr: number): void;
  srf_set_simd(level: number): number;
  srf_simd_level(): number;
  srf_conv2d(x: number, w: number, bias: number, n: number, cin: number, h: number, wd: number, cout: number, kh: number, kw: number, pad: number, out: number): void;
  srf_conv2d_backward_data(gy: number, w: number, n: number, cin: number, h: number, wd: number, cout: number, kh: number, kw: number, pad: number, gx: number, accumulate: number): void;
  srf_conv2d_backward_filter(gy: number, x: number, n: number, cin: number, h: number, wd: number, cout: number, kh: number, kw: number, pad: number, gw: number, gb: number, accumulate: number): void;
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
    else if (imp.kind === 'function') ns[imp.name] = () => {
      throw new Error(`srflow wasm: unexpected call to import ${imp.module}.${imp.name}`);
    };
  }
  return imports;
}

/** Whether this JS engine validates WebAssembly SIMD-128 (a v128 constant). */
export function wasmSimdSupported(): boolean {
  try {
    return WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]));
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

// ------------------------------------------------------------------------------------------
// argument checks (as the native backend)

function isF32(...bufs: (Buf | null)[]): boolean {
  for (const b of bufs) if (b !== null && !(b instanceof Float32Array)) return false;
  return true;
}
function checkLen(name: string, fn: string, b: Buf | null, expected: number): void {
  if (b !== null && b.length !== expected) throw new Error(`Expected ${name} of length ${expected} for ${fn} but received length ${b.length}`);
}
function checkInt(name: string, fn: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`Expected ${name} to be an integer >= ${min} for ${fn} but received ${v}`);
}
function checkGeom(g: Conv2dGeom, fn: string): { oh: number; ow: number } {
  checkInt('n', fn, g.n, 1);
  checkInt('cin', fn, g.cin, 1);
  checkInt('h', fn, g.h, 1);
  checkInt('w', fn, g.w, 1);
  checkInt('cout', fn, g.cout, 1);
  checkInt('kh', fn, g.kh, 1);
  checkInt('kw', fn, g.kw, 1);
  checkInt('pad', fn, g.pad, 0);
  const o = convOutSize(g);
  if (o.oh < 1 || o.ow < 1) throw new Error(`Expected a non-empty output for ${fn} but received geometry ${JSON.stringify(g)}`);
  return o;
}

// ------------------------------------------------------------------------------------------

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
        throw new Error(`srflow wasm: out of memory (a kernel call needs ${(total * 4 / 2 ** 20).toFixed(0)} MiB; the module has ${(memory.buffer.byteLength / 2 ** 20).toFixed(0)} MiB of at most 4096)`);
      }
      arena = p;
      arenaFloats = want;
    }
    const base = arena >>> 2;
    return offs.map((o) => base + o);
  };
  const put = (h: Float32Array, at: number, b: Buf | null): number => {
    if (b) h.set(b as Float32Array, at);
    return b ? at * 4 : 0;
  };
  const get = (at: number, out: Buf): void => {
    (out as Float32Array).set(view().subarray(at, at + out.length));
  };
  // Float64 results (per-channel and per-sample sums) at a float offset of the arena (64-byte aligned).
  const get64 = (at: number, out: Float64Array): void => {
    out.set(new Float64Array(view().buffer, at * 4, out.length));
  };
  const chk = (fn: string, n: number, c: number, hw: number): void => {
    checkInt('n', fn, n, 1);
    checkInt('c', fn, c, 1);
    checkInt('hw', fn, hw, 1);
  };

  // The element-wise kernels of native/elementwise.cc (the fused flow ops, leaky ReLU, axpy, Adam):
  // the same C++ as the addon's, arguments copied in and results copied out like the convolutions.
  const ew: ElementwiseKernels = {
    channelAffine(x, n, c, hw, bias, mul, relu, out) {
      chk('channelAffine', n, c, hw);
      const t = n * c * hw;
      checkLen('x', 'channelAffine', x, t);
      checkLen('bias', 'channelAffine', bias, c);
      checkLen('mul', 'channelAffine', mul, c);
      checkLen('out', 'channelAffine', out, t);
      syncThreads();
      const [px, pb, pm, po] = reserve([t, c, c, t]);
      const h = view();
      ex.srf_channel_affine(put(h, px, x), n, c, hw, put(h, pb, bias), put(h, pm, mul), relu ? 1 : 0, po * 4);
      get(po, out);
    },
    channelAffineBackward(g, out, n, c, hw, mul, relu, gx, sb, ss) {
      chk('channelAffineBackward', n, c, hw);
      const t = n * c * hw;
      checkLen('g', 'channelAffineBackward', g, t);
      checkLen('out', 'channelAffineBackward', out, t);
      checkLen('mul', 'channelAffineBackward', mul, c);
      checkLen('gx', 'channelAffineBackward', gx, t);
      checkLen('sb', 'channelAffineBackward', sb, c);
      checkLen('ss', 'channelAffineBackward', ss, c);
      syncThreads();
      const [pg, po, pm, px, psb, pss] = reserve([t, t, c, gx ? t : 0, 2 * c, 2 * c]);
      const h = view();
      ex.srf_channel_affine_backward(put(h, pg, g), put(h, po, out), n, c, hw, put(h, pm, mul), relu ? 1 : 0, gx ? px * 4 : 0, psb * 4, pss * 4);
      if (gx) get(px, gx);
      get64(psb, sb);
      get64(pss, ss);
    },
    affineFromNet(hh, raw, n, c, hw, rb, eps, inverse, out) {
      chk('affineFromNet', n, c, hw);
      checkInt('rb', 'affineFromNet', rb, 0);
      const t = n * c * hw;
      const rt = (rb ? n : 1) * 2 * c * hw;
      checkLen('h', 'affineFromNet', hh, t);
      checkLen('raw', 'affineFromNet', raw, rt);
      checkLen('out', 'affineFromNet', out, t);
      syncThreads();
      const [ph, pr, po] = reserve([t, rt, t]);
      const h = view();
      ex.srf_affine_from_net(put(h, ph, hh), put(h, pr, raw), n, c, hw, rb ? 1 : 0, eps, inverse ? 1 : 0, po * 4);
      get(po, out);
    },
    affineFromNetBackward(g, hh, raw, n, c, hw, rb, eps, inverse, gh, gr) {
      chk('affineFromNetBackward', n, c, hw);
      checkInt('rb', 'affineFromNetBackward', rb, 0);
      const t = n * c * hw;
      const rt = (rb ? n : 1) * 2 * c * hw;
      checkLen('g', 'affineFromNetBackward', g, t);
      checkLen('h', 'affineFromNetBackward', hh, t);
      checkLen('raw', 'affineFromNetBackward', raw, rt);
      checkLen('gh', 'affineFromNetBackward', gh, t);
      checkLen('gr', 'affineFromNetBackward', gr, rt);
      syncThreads();
      const [pg, ph, pr, pgh, pgr] = reserve([t, t, rt, gh ? t : 0, gr ? rt : 0]);
      const h = view();
      put(h, pgr, gr); // accumulated into
      ex.srf_affine_from_net_backward(put(h, pg, g), put(h, ph, hh), put(h, pr, raw), n, c, hw, rb ? 1 : 0, eps, inverse ? 1 : 0, gh ? pgh * 4 : 0, gr ? pgr * 4 : 0);
      if (gh) get(pgh, gh);
      if (gr) get(pgr, gr);
    },
    sumLogScale(raw, n, c, hw, eps, out) {
      chk('sumLogScale', n, c, hw);
      const rt = n * 2 * c * hw;
      checkLen('raw', 'sumLogScale', raw, rt);
      checkLen('out', 'sumLogScale', out, n);
      syncThreads();
      const [pr, po] = reserve([rt, 2 * n]);
      const h = view();
      ex.srf_sum_log_scale(put(h, pr, raw), n, c, hw, eps, po * 4);
      get64(po, out);
    },
    sumLogScaleBackward(raw, n, c, hw, eps, g, gr) {
      chk('sumLogScaleBackward', n, c, hw);
      const rt = n * 2 * c * hw;
      checkLen('raw', 'sumLogScaleBackward', raw, rt);
      checkLen('g', 'sumLogScaleBackward', g, n);
      checkLen('gr', 'sumLogScaleBackward', gr, rt);
      syncThreads();
      const [pr, pg, pgr] = reserve([rt, n, rt]);
      const h = view();
      put(h, pgr, gr); // the shift channels are left as they are
      ex.srf_sum_log_scale_backward(put(h, pr, raw), n, c, hw, eps, put(h, pg, g), pgr * 4);
      get(pgr, gr);
    },
    leakyRelu(x, slope, out) {
      checkLen('out', 'leakyRelu', out, x.length);
      syncThreads();
      const [px, po] = reserve([x.length, x.length]);
      const h = view();
      ex.srf_leaky_relu(put(h, px, x), x.length, slope, po * 4);
      get(po, out);
    },
    leakyReluBackward(g, x, slope, gx, accumulate) {
      checkLen('x', 'leakyReluBackward', x, g.length);
      checkLen('gx', 'leakyReluBackward', gx, g.length);
      syncThreads();
      const [pg, px, pgx] = reserve([g.length, g.length, g.length]);
      const h = view();
      if (accumulate) put(h, pgx, gx);
      ex.srf_leaky_relu_backward(put(h, pg, g), put(h, px, x), g.length, slope, pgx * 4, accumulate ? 1 : 0);
      get(pgx, gx);
    },
    axpy(alpha, x, y, out) {
      checkLen('y', 'axpy', y, x.length);
      checkLen('out', 'axpy', out, x.length);
      syncThreads();
      const [px, py, po] = reserve([x.length, x.length, x.length]);
      const h = view();
      ex.srf_axpy(alpha, put(h, px, x), put(h, py, y), x.length, po * 4);
      get(po, out);
    },
    addInto(x, out) {
      checkLen('out', 'addInto', out, x.length);
      syncThreads();
      const [px, po] = reserve([x.length, x.length]);
      const h = view();
      put(h, po, out);
      ex.srf_add_into(put(h, px, x), x.length, po * 4);
      get(po, out);
    },
    adam(p, g, m, v, beta1, beta2, stepSize, bc2sqrt, eps, weightDecay) {
      const len = p.length;
      checkLen('g', 'adam', g, len);
      checkLen('m', 'adam', m, len);
      checkLen('v', 'adam', v, len);
      syncThreads();
      const [pp, pg, pm, pv] = reserve([len, len, len, len]);
      const h = view();
      ex.srf_adam(put(h, pp, p), put(h, pg, g), put(h, pm, m), put(h, pv, v), len, beta1, beta2, stepSize, bc2sqrt, eps, weightDecay);
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
    conv2d(x, w, bias, g, out) {
      const { oh, ow } = checkGeom(g, 'conv2d');
      checkLen('x', 'conv2d', x, g.n * g.cin * g.h * g.w);
      checkLen('w', 'conv2d', w, g.cout * g.cin * g.kh * g.kw);
      checkLen('bias', 'conv2d', bias, g.cout);
      checkLen('out', 'conv2d', out, g.n * g.cout * oh * ow);
      if (!isF32(x, w, bias, out)) return ref.conv2d(x, w, bias, g, out);
      syncThreads();
      const [px, pw, pb, po] = reserve([x.length, w.length, bias ? bias.length : 0, out.length]);
      const h = view();
      ex.srf_conv2d(put(h, px, x), put(h, pw, w), put(h, pb, bias), g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, po * 4);
      get(po, out);
    },
    conv2dBackwardData(gy, w, g, gx, accumulate) {
      const { oh, ow } = checkGeom(g, 'conv2dBackwardData');
      checkLen('gy', 'conv2dBackwardData', gy, g.n * g.cout * oh * ow);
      checkLen('w', 'conv2dBackwardData', w, g.cout * g.cin * g.kh * g.kw);
      checkLen('gx', 'conv2dBackwardData', gx, g.n * g.cin * g.h * g.w);
      if (!isF32(gy, w, gx)) return ref.conv2dBackwardData(gy, w, g, gx, accumulate);
      syncThreads();
      const [pg, pw, px] = reserve([gy.length, w.length, gx.length]);
      const h = view();
      if (accumulate) put(h, px, gx);
      ex.srf_conv2d_backward_data(put(h, pg, gy), put(h, pw, w), g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, px * 4, accumulate ? 1 : 0);
      get(px, gx);
    },
    conv2dBackwardFilter(gy, x, g, gw, gb, accumulate) {
      const { oh, ow } = checkGeom(g, 'conv2dBackwardFilter');
      checkLen('gy', 'conv2dBackwardFilter', gy, g.n * g.cout * oh * ow);
      checkLen('x', 'conv2dBackwardFilter', x, g.n * g.cin * g.h * g.w);
      checkLen('gw', 'conv2dBackwardFilter', gw, g.cout * g.cin * g.kh * g.kw);
      checkLen('gb', 'conv2dBackwardFilter', gb, g.cout);
      if (!isF32(gy, x, gw, gb)) return ref.conv2dBackwardFilter(gy, x, g, gw, gb, accumulate);
      syncThreads();
      const [pg, px, pw, pb] = reserve([gy.length, x.length, gw.length, gb ? gb.length : 0]);
      const h = view();
      if (accumulate) {
        put(h, pw, gw);
        put(h, pb, gb);
      }
      ex.srf_conv2d_backward_filter(put(h, pg, gy), put(h, px, x), g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, pw * 4, gb ? pb * 4 : 0, accumulate ? 1 : 0);
      get(pw, gw);
      if (gb) get(pb, gb);
    },
    matmul(a, b, m, kk, n, transA, transB, out, accumulate) {
      checkInt('m', 'matmul', m, 0);
      checkInt('k', 'matmul', kk, 0);
      checkInt('n', 'matmul', n, 0);
      checkLen('a', 'matmul', a, m * kk);
      checkLen('b', 'matmul', b, kk * n);
      checkLen('out', 'matmul', out, m * n);
      if (!isF32(a, b, out)) return ref.matmul(a, b, m, kk, n, transA, transB, out, accumulate);
      if (m === 0 || n === 0) return;
      syncThreads();
      const [pa, pb, po] = reserve([a.length, b.length, out.length]);
      const h = view();
      if (accumulate) put(h, po, out);
      ex.srf_matmul(put(h, pa, a), put(h, pb, b), m, kk, n, transA ? 1 : 0, transB ? 1 : 0, po * 4, accumulate ? 1 : 0);
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
  return k;
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
  if (!wasmSimdSupported()) throw new Error('This browser does not support WebAssembly SIMD (needed by srflow): use a current Chrome, Edge, Firefox or Safari.');
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
