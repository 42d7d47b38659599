/**
 * Kernel selection: the native C++ addon when it loads, else the TypeScript reference kernels.
 * SRFLOW_BACKEND=reference forces the reference kernels; SRFLOW_BACKEND=native fails loudly if
 * the addon is missing; SRFLOW_BACKEND=wasm uses the WebAssembly build of the same C++ kernels
 * (wasm/, threads: SRFLOW_THREADS, default all cores; SRFLOW_SIMD=scalar: its portable path). A browser installs its kernels with
 * setKernels() before first use.
 */
import type { Kernels } from './types.js';
import { referenceKernels } from './reference.js';
import { loadNative } from './native.js';
import { createWasmKernelsSync, wasmNodeSpawner, WASM_FILE, WASM_THREADS_FILE } from './wasm.js';

let active: Kernels | null = null;
let why = '';

export function kernels(): Kernels {
  if (active) return active;
  const want = process.env.SRFLOW_BACKEND ?? 'auto';
  if (want === 'reference') {
    active = referenceKernels;
    return active;
  }
  if (want === 'wasm') {
    active = loadWasmNode();
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

/** Node: the wasm kernels from the committed modules (wasm/ at the package root), compiled synchronously. */
function loadWasmNode(): Kernels {
  const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs');
  const os = process.getBuiltinModule('node:os') as typeof import('node:os');
  const wt = process.getBuiltinModule('node:worker_threads') as typeof import('node:worker_threads');
  // src/kernels/index.ts (tsx) and dist/kernels/index.js are both two levels below the root.
  const dir = new URL(/* @vite-ignore */ '../../wasm/', import.meta.url);
  const env = Number.parseInt(process.env.SRFLOW_THREADS ?? '', 10);
  const threads = Number.isInteger(env) && env >= 1 ? Math.min(env, 64) : os.availableParallelism();
  try {
    const k = createWasmKernelsSync(fs.readFileSync(new URL(WASM_FILE, dir)), {
      threads,
      threadsBytes: threads > 1 ? fs.readFileSync(new URL(WASM_THREADS_FILE, dir)) : undefined,
      spawn: wasmNodeSpawner(wt),
    });
    if (process.env.SRFLOW_SIMD === 'scalar') k.setSimd('scalar'); // the portable C++ path, auto-vectorised
    return k;
  } catch (e) {
    throw new Error(`SRFLOW_BACKEND=wasm but the wasm kernels could not be loaded: ${(e as Error).message}`);
  }
}

/** Installs the kernels every later kernels() call returns (a browser's wasm kernels; tests). */
export function setKernels(k: Kernels): void {
  active = k;
  why = '';
}

/** Name of the active backend and, when the native one failed to load, why. */
export function backendInfo(): { name: string; fallbackReason: string } {
  return { name: kernels().name, fallbackReason: why };
}

export type { Kernels, Conv2dGeom, Buf } from './types.js';
export { convOutSize } from './types.js';
