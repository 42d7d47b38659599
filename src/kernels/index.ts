/**
 * Backend selection. The CPU kernels: the native C++ addon when it loads, else the TypeScript
 * reference kernels. SRFLOW_BACKEND=reference forces the reference kernels; SRFLOW_BACKEND=native
 * fails loudly if the addon is missing; SRFLOW_BACKEND=wasm uses the WebAssembly build of the same
 * C++ kernels (wasm/, threads: SRFLOW_THREADS, default all cores; SRFLOW_SIMD=scalar: its portable
 * path). SRFLOW_BACKEND=webgpu runs sampling and encoding on the GPU through WebGPU
 * (src/models/webgpu.ts, src/kernels/webgpu.ts; see docs/WEBGPU.md) and everything else (training)
 * on the CPU kernels chosen as for auto. A browser installs its kernels with setKernels() before
 * first use. SRFLOW_BACKEND is read here and nowhere else; setBackend() (the CLI's --backend, the
 * library's backend option) overrides it.
 */
import type { Kernels } from './types.js';
import { referenceKernels } from './reference.js';
import { loadNative } from './native.js';
import { createWasmKernelsSync, wasmNodeSpawner, WASM_FILE, WASM_THREADS_FILE } from './wasm.js';

export const BACKENDS = ['auto', 'native', 'wasm', 'reference', 'webgpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Parse a backend name; throws one clear line naming `what` for anything else. */
export function parseBackend(v: unknown, what = 'backend'): BackendName {
  if (typeof v === 'string' && (BACKENDS as readonly string[]).includes(v)) return v as BackendName;
  throw new Error(`Expected one of ${BACKENDS.join(', ')} for ${what} but received ${JSON.stringify(v)}`);
}

let requested: BackendName | null = null;
let active: Kernels | null = null;
let why = '';

/** The backend asked for: setBackend()'s, else SRFLOW_BACKEND's, else 'auto'. */
export function requestedBackend(): BackendName {
  if (requested) return requested;
  const env = typeof process !== 'undefined' ? process.env?.SRFLOW_BACKEND : undefined;
  requested = env === undefined || env === '' ? 'auto' : parseBackend(env, 'SRFLOW_BACKEND');
  return requested;
}

/** Use backend `b` from now on (CPU backends: the kernels are chosen again at their next use). */
export function setBackend(b: BackendName): void {
  const v = parseBackend(b);
  const cpu = (x: BackendName) => (x === 'webgpu' ? 'auto' : x);
  if (cpu(requestedBackend()) !== cpu(v)) {
    active = null;
    why = '';
  }
  requested = v;
}

/** The CPU kernels (with the webgpu backend: those of auto, for what does not run on the GPU). */
export function kernels(): Kernels {
  if (active) return active;
  const want = requestedBackend();
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

/**
 * Name of the active CPU kernels and, when the native ones failed to load, why; `backend`: the
 * backend that computes sampling and encoding ('webgpu', or the CPU kernels' family: native, wasm, reference).
 */
export function backendInfo(): { name: string; fallbackReason: string; backend: string } {
  const name = kernels().name;
  return { name, fallbackReason: why, backend: requestedBackend() === 'webgpu' ? 'webgpu' : name.split('-')[0] };
}

export type { Kernels, Conv2dGeom, Buf } from './types.js';
export { convOutSize } from './types.js';
