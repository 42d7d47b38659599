/**
 * Kernel selection: the native C++ addon when it loads, else the TypeScript reference kernels.
 * SRFLOW_BACKEND=reference forces the reference kernels; SRFLOW_BACKEND=native fails loudly if
 * the addon is missing.
 */
import type { Kernels } from './types.js';
import { referenceKernels } from './reference.js';
import { loadNative } from './native.js';

let active: Kernels | null = null;
let why = '';

export function kernels(): Kernels {
  if (active) return active;
  const want = process.env.SRFLOW_BACKEND ?? 'auto';
  if (want === 'reference') {
    active = referenceKernels;
    return active;
  }
  const r = loadNative();
  if (r.kernels) {
    active = r.kernels;
  } else {
    why = r.error;
    if (want === 'native') throw new Error(`SRFLOW_BACKEND=native but the native addon could not be loaded: ${why}`);
    process.emitWarning(`srflow: native kernels unavailable (${why}); using the slow TypeScript reference kernels. Run \`npm rebuild\` with python3, make and g++ installed.`);
    active = referenceKernels;
  }
  return active;
}

/** Name of the active backend and, when the native one failed to load, why. */
export function backendInfo(): { name: string; fallbackReason: string } {
  return { name: kernels().name, fallbackReason: why };
}

export type { Kernels, Conv2dGeom, Buf } from './types.js';
export { convOutSize } from './types.js';
