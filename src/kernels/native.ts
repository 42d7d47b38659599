/**
 * The native C++ kernels (build/Release/srflow_native.node, built by `npm install` through
 * node-gyp): packed-panel SGEMM with AVX-512 / AVX2 / portable micro-kernels, implicit-im2col
 * convolutions and a persistent thread pool. Calls are synchronous. Float64Array arguments are
 * delegated to the reference kernels (gradient checks run in float64).
 *
 * Settings: threads (default: all cores), SIMD level avx512|avx2|scalar (force a lower
 * instruction set), Winograd false (3x3 stride-1 pad-1 convolutions and their backward-data use
 * the direct implicit-im2col path instead of Winograd F(4x4, 3x3); `always`: Winograd also for
 * the small ones where it is slower): EngineOptions threads / simd / winograd, applied by
 * configureKernels (src/kernels/index.ts). The addon also reads SRFLOW_THREADS, SRFLOW_SIMD and
 * SRFLOW_WINOGRAD itself at load (native/pool.cc, native/addon.cc), as the CLI's environment does.
 */
import { createRequire } from 'node:module';
import type { Buf, Conv2dArgs, Conv2dBackwardDataArgs, Conv2dBackwardFilterArgs, ElementwiseKernels, Kernels } from './types.js';
import { referenceKernels } from './reference.js';
import { withChecks } from './checks.js';

/** The raw addon interface (native/addon.cc). */
export interface NativeAddon extends ElementwiseKernels {
  conv2d(...a: Conv2dArgs<Float32Array>): void;
  conv2dBackwardData(...a: Conv2dBackwardDataArgs<Float32Array, boolean>): void;
  conv2dBackwardFilter(...a: Conv2dBackwardFilterArgs<Float32Array, boolean>): void;
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

function makeKernels(a: NativeAddon): Kernels {
  // Arguments are checked, and float64 calls sent to the reference kernels, by withChecks.
  const f = (b: Buf | null) => b as Float32Array;
  const raw: Kernels = {
    get name() {
      return `native-${a.simdLevel()}`;
    },
    ew: a,
    conv2d: (x, w, bias, g, out) => a.conv2d(f(x), f(w), bias && f(bias), g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, f(out)),
    conv2dBackwardData: (gy, w, g, gx, acc) => a.conv2dBackwardData(f(gy), f(w), g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, f(gx), acc),
    conv2dBackwardFilter: (gy, x, g, gw, gb, acc) =>
      a.conv2dBackwardFilter(f(gy), f(x), g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, f(gw), gb && f(gb), acc),
    matmul: (am, bm, m, k, n, ta, tb, out, acc) => a.matmul(f(am), f(bm), m, k, n, ta, tb, f(out), acc),
  };
  return withChecks(raw, referenceKernels);
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
