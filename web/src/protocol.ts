/** Messages between the page (main.ts) and the inference worker (worker.ts). */

export interface ModelInfo {
  name: string;
  /** true: the random-weight demo model (no trained model was found at build time). */
  untrained: boolean;
  scale: number;
  parameters: number;
  /** Size multiple of LR inputs (2^L / scale): inputs are padded by reflection to it. */
  multiple: number;
  /** srflow: samples at a temperature; rrdb: a published RRDB network (one deterministic output). */
  kind?: 'srflow' | 'rrdb';
  /** The published layout of a picked .pth (SRFlow_DF2K_4X, …), if any. */
  layout?: string | null;
}

export interface Rgba {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

export type ToWorker =
  | { type: 'init'; model: ArrayBuffer; untrained: boolean; name: string; wasm: string; wasmThreads: string; threads: number; backend: BackendPref }
  | {
      type: 'run';
      id: number;
      image: Rgba;
      temperature: number;
      samples: number;
      seed: number;
      /** Painted temperature map (web/src/brush.ts): input-sized, values in [0, 1]; absent = uniform τ. */
      temperatureMap?: { width: number; height: number; data: Float32Array };
      /** false: the sampling guard off (page URL ?guard=0); default: on where the model carries one and the backend is a CPU one. */
      guard?: boolean;
    };

export type FromWorker =
  | { type: 'ready'; info: ModelInfo; backend: string; threads: number; gpu: boolean; why?: string }
  | { type: 'progress'; id: number; done: number; total: number; stage: string }
  | { type: 'result'; id: number; samples: Rgba[]; mean: Rgba; std: Rgba; stdMax: number; seconds: number; tiles: number; nonFinite: number; backend: string }
  | { type: 'error'; id: number; message: string };

/** The page's backend choice (`?backend=` on its URL): auto (WebGPU when offered), webgpu or wasm. */
export type BackendPref = 'auto' | 'webgpu' | 'wasm';

export function parsePref(v: string | null | undefined): BackendPref {
  return v === 'webgpu' || v === 'wasm' ? v : 'auto';
}
