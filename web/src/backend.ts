/**
 * The page's compute backend: WebGPU when the browser offers it (navigator.gpu gives an adapter
 * and a device), WebAssembly otherwise. Runs in the worker (WebGPU is available in workers).
 * `?backend=wasm` or `?backend=webgpu` on the page's URL forces one; a forced WebGPU that cannot
 * start is an error instead of a fallback.
 */
import type { SRFlowNet } from '../../src/models/srflow.js';
import { webGpuRunner } from '../../src/models/webgpu.js';
import type { BackendPref } from './protocol.js';

export interface WebBackend {
  kind: 'webgpu' | 'wasm';
  /** What the page shows, e.g. "WebGPU (google swiftshader)". */
  label: string;
  /** Why WebGPU is not used (auto only). */
  why?: string;
}

export async function chooseBackend(pref: BackendPref, net: SRFlowNet, wasmLabel: string): Promise<WebBackend> {
  const wasm = (why?: string): WebBackend => ({ kind: 'wasm', label: wasmLabel, why });
  if (pref === 'wasm') return wasm();
  const gpu = (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
  if (!gpu) {
    if (pref === 'webgpu') throw new Error('this browser offers no WebGPU (navigator.gpu is missing)');
    return wasm('this browser offers no WebGPU');
  }
  try {
    const r = await webGpuRunner(net);
    return { kind: 'webgpu', label: `WebGPU (${r.dev.adapterName})` };
  } catch (e) {
    if (pref === 'webgpu') throw e;
    return wasm(`WebGPU is not available here: ${(e as Error).message}`);
  }
}
