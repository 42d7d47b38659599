/**
 * The native C++ kernels (build/Release/srflow_native.node, built by `npm install` through
 * node-gyp): packed-panel SGEMM with AVX-512 / AVX2 / portable micro-kernels, implicit-im2col
 * convolutions and a persistent thread pool. Calls are synchronous. Float64Array arguments are
 * delegated to the reference kernels (gradient checks run in float64).
 *
 * Environment: SRFLOW_THREADS=n (default: all cores), SRFLOW_SIMD=avx512|avx2|scalar (force a
 * lower instruction set), SRFLOW_WINOGRAD=0 (3x3 stride-1 pad-1 convolutions and their
 * backward-data use the direct implicit-im2col path instead of Winograd F(4x4, 3x3); `always`:
 * Winograd also for the small ones where it is slower).
 */
import { createRequire } from 'node:module';
import type { Buf, Conv2dGeom, ElementwiseKernels, Kernels } from './types.js';
import { convOutSize } from './types.js';
import * as ref from './reference.js';

/** The raw addon interface (native/addon.cc). */
export interface NativeAddon extends ElementwiseKernels {
  conv2d(x: Float32Array, w: Float32Array, bias: Float32Array | null, n: number, cin: number, h: number, wd: number, cout: number, kh: number, kw: number, pad: number, out: Float32Array): void;
  conv2dBackwardData(gy: Float32Array, w: Float32Array, n: number, cin: number, h: number, wd: number, cout: number, kh: number, kw: number, pad: number, gx: Float32Array, accumulate: boolean): void;
  conv2dBackwardFilter(gy: Float32Array, x: Float32Array, n: number, cin: number, h: number, wd: number, cout: number, kh: number, kw: number, pad: number, gw: Float32Array, gb: Float32Array | null, accumulate: boolean): void;
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean, out: Float32Array, accumulate: boolean): void;
  setNumThreads(n: number): number;
  getNumThreads(): number;
  simdLevel(): string;
  setSimd(level: string): string;
  supportedSimd(): string[];
  /**
   * Winograd F(4x4,3x3) for 3x3 stride-1 pad-1 convolutions and their backward-data: true (where
   * it is faster), false (never), 'always' (every such convolution: tests) or 'auto' (as
   * SRFLOW_WINOGRAD says). Returns the mode in use.
   */
  setWinograd(mode: boolean | 'always' | 'auto'): boolean | 'always';
  winogradEnabled(): boolean | 'always';
}

let addon: NativeAddon | null = null;
let loadError = '';
let tried = false;

function load(): NativeAddon | null {
  if (tried) return addon;
  tried = true;
  try {
    // src/kernels/native.ts (tsx) and dist/kernels/native.js are both two levels below the root.
    const require = createRequire(import.meta.url);
    addon = require('../../build/Release/srflow_native.node') as NativeAddon;
  } catch (e) {
    addon = null;
    loadError = e instanceof Error ? e.message : String(e);
  }
  return addon;
}

function isF32(...bufs: (Buf | null)[]): boolean {
  for (const b of bufs) if (b !== null && !(b instanceof Float32Array)) return false;
  return true;
}

function checkLen(name: string, fn: string, b: Buf | null, expected: number): void {
  if (b === null) return;
  if (b.length !== expected) {
    throw new Error(`Expected ${name} of length ${expected} for ${fn} but received length ${b.length}`);
  }
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

function makeKernels(a: NativeAddon): Kernels {
  return {
    get name() {
      return `native-${a.simdLevel()}`;
    },
    ew: a,
    conv2d(x, w, bias, g, out) {
      const { oh, ow } = checkGeom(g, 'conv2d');
      checkLen('x', 'conv2d', x, g.n * g.cin * g.h * g.w);
      checkLen('w', 'conv2d', w, g.cout * g.cin * g.kh * g.kw);
      checkLen('bias', 'conv2d', bias, g.cout);
      checkLen('out', 'conv2d', out, g.n * g.cout * oh * ow);
      if (!isF32(x, w, bias, out)) return ref.conv2d(x, w, bias, g, out);
      a.conv2d(x as Float32Array, w as Float32Array, bias as Float32Array | null, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, out as Float32Array);
    },
    conv2dBackwardData(gy, w, g, gx, accumulate) {
      const { oh, ow } = checkGeom(g, 'conv2dBackwardData');
      checkLen('gy', 'conv2dBackwardData', gy, g.n * g.cout * oh * ow);
      checkLen('w', 'conv2dBackwardData', w, g.cout * g.cin * g.kh * g.kw);
      checkLen('gx', 'conv2dBackwardData', gx, g.n * g.cin * g.h * g.w);
      if (!isF32(gy, w, gx)) return ref.conv2dBackwardData(gy, w, g, gx, accumulate);
      a.conv2dBackwardData(gy as Float32Array, w as Float32Array, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, gx as Float32Array, !!accumulate);
    },
    conv2dBackwardFilter(gy, x, g, gw, gb, accumulate) {
      const { oh, ow } = checkGeom(g, 'conv2dBackwardFilter');
      checkLen('gy', 'conv2dBackwardFilter', gy, g.n * g.cout * oh * ow);
      checkLen('x', 'conv2dBackwardFilter', x, g.n * g.cin * g.h * g.w);
      checkLen('gw', 'conv2dBackwardFilter', gw, g.cout * g.cin * g.kh * g.kw);
      checkLen('gb', 'conv2dBackwardFilter', gb, g.cout);
      if (!isF32(gy, x, gw, gb)) return ref.conv2dBackwardFilter(gy, x, g, gw, gb, accumulate);
      a.conv2dBackwardFilter(gy as Float32Array, x as Float32Array, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, gw as Float32Array, gb as Float32Array | null, !!accumulate);
    },
    matmul(am, bm, m, k, n, transA, transB, out, accumulate) {
      checkInt('m', 'matmul', m, 0);
      checkInt('k', 'matmul', k, 0);
      checkInt('n', 'matmul', n, 0);
      checkLen('a', 'matmul', am, m * k);
      checkLen('b', 'matmul', bm, k * n);
      checkLen('out', 'matmul', out, m * n);
      if (!isF32(am, bm, out)) return ref.matmul(am, bm, m, k, n, transA, transB, out, accumulate);
      a.matmul(am as Float32Array, bm as Float32Array, m, k, n, !!transA, !!transB, out as Float32Array, !!accumulate);
    },
  };
}

let kernelsObj: Kernels | null = null;

/** Loads the addon; on failure returns kernels: null and the loader's error text. */
export function loadNative(): { kernels: Kernels | null; error: string } {
  const a = load();
  if (!a) return { kernels: null, error: loadError || 'native addon not loaded' };
  if (!kernelsObj) kernelsObj = makeKernels(a);
  return { kernels: kernelsObj, error: '' };
}

/** The raw addon, or null when it failed to load (tests and benchmarks). */
export function nativeAddon(): NativeAddon | null {
  return load();
}

function need(): NativeAddon {
  const a = load();
  if (!a) throw new Error(`srflow native addon unavailable: ${loadError}`);
  return a;
}

/** Sets the size of the native thread pool (n < 1: all cores); returns the size in use. */
export function setNumThreads(n: number): number {
  return need().setNumThreads(Math.floor(n));
}

export function getNumThreads(): number {
  const a = load();
  return a ? a.getNumThreads() : 1;
}

/** The SIMD path in use: 'avx512', 'avx2' or 'scalar' ('none' when the addon did not load). */
export function simdLevel(): string {
  const a = load();
  return a ? a.simdLevel() : 'none';
}
