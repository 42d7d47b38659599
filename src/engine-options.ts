/**
 * EngineOptions: how the engine computes (which kernels, how many threads, which code paths), as
 * one object that the library's entry points take (`loadModel`, `upscale`, `train`: the `engine`
 * option; `configureEngine` in src/models/engine.ts) and that the CLI builds from the environment
 * (src/cli/env.ts, the one place that reads it). None of them changes a result beyond float
 * rounding of the kernels; published configurations compute as published with any of them.
 */
import * as is from './is.js';

export const BACKENDS = ['auto', 'native', 'wasm', 'reference', 'webgpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Instruction sets: native avx512 | avx2 | scalar, wasm simd128 | scalar. */
export const SIMD_LEVELS = ['avx512', 'avx2', 'scalar', 'simd128'] as const;
export type SimdLevel = (typeof SIMD_LEVELS)[number];

export interface EngineOptions {
  /** CPU kernels (auto: native, else reference), or webgpu (sampling and encoding on the GPU). Default auto. */
  backend?: BackendName;
  /** Kernel threads (native pool, wasm workers). Default: all cores. */
  threads?: number;
  /** Cap the kernels' instruction set (native: avx512, avx2, scalar; wasm: scalar). Default: the best available. */
  simd?: SimdLevel;
  /** Winograd F(4×4, 3×3) for 3×3 pad-1 convolutions: true (where faster, the default), false (never), 'always'. */
  winograd?: boolean | 'always';
  /** Element-wise ops: 'kernels' (the backend's, the default) or 'js' (the TypeScript loops: benchmarks, oracle). */
  elementwise?: 'kernels' | 'js';
  /** Flow steps per batched conditioning precompute (0: a whole level). Default DEFAULT_COND_GROUP (4). */
  condGroup?: number;
  /** Conditioning convolutions by phases at twice the LR resolution. Default true. */
  condPhases?: boolean;
  /** Keep the conditioning groups' stacked weights between images (faster for many tiles, more memory). Default false. */
  keepCondWeights?: boolean;
}

/** Parse a backend name; throws one clear line naming `what` for anything else. */
export function parseBackend(v: unknown, what = 'backend'): BackendName {
  is.check(is.inArray(v, BACKENDS), what, `one of ${BACKENDS.join(', ')}`, v);
  return v as BackendName;
}

/** Validates EngineOptions (`what`: how the caller names them, e.g. engine); returns them. */
export function checkEngineOptions(o: EngineOptions, what = 'engine'): EngineOptions {
  if (!is.defined(o)) return {};
  is.check(typeof o === 'object', what, 'an object', o);
  if (is.defined(o.backend)) parseBackend(o.backend, `${what}.backend`);
  if (is.defined(o.threads)) is.check(is.positiveInt(o.threads), `${what}.threads`, 'a positive integer', o.threads);
  if (is.defined(o.simd)) is.check(is.inArray(o.simd, SIMD_LEVELS), `${what}.simd`, `one of ${SIMD_LEVELS.join(', ')}`, o.simd);
  if (is.defined(o.winograd)) is.check(is.bool(o.winograd) || o.winograd === 'always', `${what}.winograd`, "true, false or 'always'", o.winograd);
  if (is.defined(o.elementwise)) is.check(is.inArray(o.elementwise, ['kernels', 'js']), `${what}.elementwise`, "'kernels' or 'js'", o.elementwise);
  if (is.defined(o.condGroup)) is.check(is.nonNegativeInt(o.condGroup), `${what}.condGroup`, 'a non-negative integer', o.condGroup);
  for (const k of ['condPhases', 'keepCondWeights'] as const) if (is.defined(o[k])) is.check(is.bool(o[k]), `${what}.${k}`, 'true or false', o[k]);
  return o;
}
