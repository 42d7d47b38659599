/**
 * Access to the backend's element-wise kernels (native and wasm): `ew(a, b, ...)` returns them when
 * every buffer given is float32 and the backend has them, else null (the caller's TypeScript loop
 * runs: float64 gradient checks, the reference backend). setElementwiseJs(true) (EngineOptions
 * elementwise: 'js', SRFLOW_ELEMENTWISE=js) forces the TypeScript loops (for side-by-side
 * benchmarks and as an oracle in tests).
 */
import { kernels } from '../kernels/index.js';
import type { Buf, ElementwiseKernels } from '../kernels/types.js';

let forceJs = false;

/** Switch the native element-wise kernels off (true) or back on (false); returns the previous setting. */
export function setElementwiseJs(on: boolean): boolean {
  const prev = forceJs;
  forceJs = on;
  return prev;
}

export function ew(...bufs: (Buf | null)[]): ElementwiseKernels | null {
  if (forceJs) return null;
  for (const b of bufs) if (b !== null && !(b instanceof Float32Array)) return null;
  return kernels().ew ?? null;
}
