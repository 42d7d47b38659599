/**
 * Backend selection and configuration. The CPU kernels: the native C++ addon when it loads, else
 * the TypeScript reference kernels. Backend 'reference' forces the reference kernels; 'native'
 * fails loudly if the addon is missing; 'wasm' uses the WebAssembly build of the same C++ kernels
 * (wasm/); 'webgpu' runs sampling and encoding on the GPU through WebGPU (src/models/webgpu.ts,
 * src/kernels/webgpu.ts; see docs/WEBGPU.md) and everything else (training) on the CPU kernels
 * chosen as for auto. A browser installs its kernels with setKernels() before first use.
 *
 * Nothing here reads the environment: configureKernels() (the kernel part of EngineOptions:
 * backend, threads, simd, winograd) and setBackend() set them; the CLI turns SRFLOW_BACKEND,
 * SRFLOW_THREADS, SRFLOW_SIMD and SRFLOW_WINOGRAD into those options (src/env.ts).
 */
import type { Kernels } from './types.js';
import { referenceKernels } from './reference.js';
import { loadNative, nativeAddon } from './native.js';
import { createWasmKernelsSync, wasmNodeSpawner, WASM_FILE, WASM_THREADS_FILE, type WasmKernels } from './wasm.js';
import { BACKENDS, checkEngineOptions, parseBackend, type BackendName, type EngineOptions } from '../engine-options.js';

export { BACKENDS, parseBackend, type BackendName };

/** The kernel part of EngineOptions. */
export type KernelOptions = Pick<EngineOptions, 'backend' | 'threads' | 'simd' | 'winograd'>;

let options: KernelOptions = {};
let requested: BackendName | null = null;
let active: Kernels | null = null;
let why = '';

/** The backend asked for (setBackend(), configureKernels()), else 'auto'. */
export function requestedBackend(): BackendName {
  return requested ?? 'auto';
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
    applyNative();
  } else {
    why = r.error;
    if (want === 'native') throw new Error(`The native backend was asked for but the native addon could not be loaded: ${why}`);
    process.emitWarning(
      `srflow: native kernels unavailable (${why}); using the slow TypeScript reference kernels. Run \`npm rebuild\` with python3, make and g++ installed.`,
    );
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
  const threads = Math.min(options.threads ?? os.availableParallelism(), 64);
  try {
    const k = createWasmKernelsSync(fs.readFileSync(new URL(WASM_FILE, dir)), {
      threads,
      threadsBytes: threads > 1 ? fs.readFileSync(new URL(WASM_THREADS_FILE, dir)) : undefined,
      spawn: wasmNodeSpawner(wt),
    });
    if (options.simd === 'scalar') k.setSimd('scalar'); // the portable C++ path, auto-vectorised
    return k;
  } catch (e) {
    throw new Error(`The wasm backend was asked for but the wasm kernels could not be loaded: ${(e as Error).message}`);
  }
}

/** The native addon's settings from the options (the addon reads none of its own while they are set). */
function applyNative(): void {
  const a = nativeAddon();
  if (!a) return;
  if (options.threads !== undefined) a.setNumThreads(options.threads);
  if (options.simd === 'avx512' || options.simd === 'avx2' || options.simd === 'scalar') a.setSimd(options.simd);
  if (options.winograd !== undefined) a.setWinograd(options.winograd);
}

/**
 * Configure the kernels (fields left out keep their setting): the backend, and the threads, SIMD
 * level and Winograd mode of the native and wasm kernels (applied now to the kernels in use; the
 * wasm kernels are made again, at their next use, for another thread count).
 */
export function configureKernels(o: KernelOptions): void {
  checkEngineOptions(o);
  const prevThreads = options.threads;
  options = { ...options, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  if (o.backend !== undefined) setBackend(o.backend);
  if (!active) return;
  if (active.name.startsWith('native')) applyNative();
  else if (active.name.startsWith('wasm')) {
    const w = active as WasmKernels;
    if (o.threads !== undefined && o.threads !== prevThreads && o.threads !== w.requestedThreads) {
      w.dispose();
      active = null;
    } else if (o.simd === 'scalar' || o.simd === 'simd128') w.setSimd(o.simd);
  }
}

/** The kernel options set so far (configureKernels), with the backend in use. */
export function kernelOptions(): KernelOptions {
  return { ...options, backend: requestedBackend() };
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
