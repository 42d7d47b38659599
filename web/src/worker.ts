/// <reference lib="webworker" />
/**
 * The inference worker: the engine (src/) over the WebAssembly kernels. It loads the model once
 * (init), then answers run requests with the CLI's engine (src/upscale/engine.ts: reflection
 * padding to the model's size multiple, memory-bounded seamless tiles, N samples at temperature
 * τ with seeds seed..seed+N-1, crop), plus the mean and the uncertainty map. Cancelling is done
 * by the page terminating this worker.
 */
import { createWasmKernels } from '../../src/kernels/wasm.js';
import { setKernels } from '../../src/kernels/index.js';
import { netFromBytes } from '../../src/models/from-bytes.js';
import type { SRFlowNet } from '../../src/models/srflow.js';
import { SRFlowModel } from '../../src/models/api.js';
import { superResolve } from '../../src/upscale/engine.js';
import { uncertaintyMap } from '../../src/upscale/uncertainty.js';
import type { Planar } from '../../src/io/image.js';
import type { FromWorker, Rgba, ToWorker } from './protocol.js';
import { chooseBackend } from './backend.js';

const ctx = self as unknown as DedicatedWorkerGlobalScope;
let net: SRFlowNet | null = null;
/** Whether samples run on WebGPU (else on the WebAssembly kernels). */
let gpu = false;

function post(m: FromWorker, transfer: Transferable[] = []): void {
  ctx.postMessage(m, transfer);
}

function toPlanar(img: Rgba): Planar {
  const n = img.width * img.height;
  const data = new Float32Array(3 * n);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    data[i] = d[4 * i] / 255;
    data[n + i] = d[4 * i + 1] / 255;
    data[2 * n + i] = d[4 * i + 2] / 255;
  }
  return { data, channels: 3, height: img.height, width: img.width };
}

function toRgba(p: Planar): Rgba {
  const n = p.width * p.height;
  const out = new Uint8ClampedArray(4 * n);
  const d = p.data;
  const c1 = p.channels === 3 ? n : 0;
  const c2 = p.channels === 3 ? 2 * n : 0;
  for (let i = 0; i < n; i++) {
    out[4 * i] = Math.round(d[i] * 255);
    out[4 * i + 1] = Math.round(d[c1 + i] * 255);
    out[4 * i + 2] = Math.round(d[c2 + i] * 255);
    out[4 * i + 3] = 255;
  }
  return { width: p.width, height: p.height, data: out };
}

async function init(m: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  const k = await createWasmKernels({ single: m.wasm, threaded: m.wasmThreads, threads: m.threads });
  setKernels(k);
  // an srflow model file, or a published .pth the user picked (layout recognised from its tensors)
  const { net: model, kind, layout } = netFromBytes(new Uint8Array(m.model), m.name);
  const cfg = model.config;
  net = model;
  let parameters = 0;
  for (const p of model.parameters().values()) parameters += p.size;
  const threads = k.threads();
  const wasmLabel = `WebAssembly SIMD, ${threads} thread${threads > 1 ? 's' : ''}${globalThis.crossOriginIsolated ? '' : ' (page not cross-origin isolated: one thread)'}`;
  // the WebGPU runner samples SRFlow models; an RRDB network (published RRDB_*.pth) runs on wasm
  const b =
    kind === 'rrdb' ? { kind: 'wasm' as const, label: wasmLabel, why: 'RRDB networks run on WebAssembly' } : await chooseBackend(m.backend, model, wasmLabel);
  gpu = b.kind === 'webgpu';
  post({
    type: 'ready',
    info: {
      name: m.name,
      untrained: m.untrained,
      scale: model.scale,
      parameters,
      multiple: Math.max(1, 2 ** cfg.flow.L / model.scale),
      kind,
      layout: layout?.published ?? null,
    },
    backend: b.label,
    threads,
    gpu,
    ...(b.why ? { why: b.why } : {}),
  });
}

/** Memory budget for the tile layout (the CLI's model of peak memory; see src/upscale/memory.ts). */
const MAX_MEMORY_MB = 1024;

// src/upscale/engine.ts yields between tiles with setImmediate, which browsers lack.
const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
if (typeof g.setImmediate !== 'function') g.setImmediate = (fn: () => void) => setTimeout(fn, 0);

const STAGES: Record<string, string> = { condition: 'conditioning on the image', decode: 'decoding samples', consistency: 'LR consistency' };

async function run(m: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  if (!net) throw new Error('the model is not loaded');
  const t0 = performance.now();
  const model = new SRFlowModel(net);
  const draws = Array.from({ length: m.samples }, (_v, i) => ({ temperature: m.temperature, seed: m.seed + i }));
  post({ type: 'progress', id: m.id, done: 0, total: 1, stage: 'starting' });
  // The CLI's engine: reflection padding to the model's size multiple, tiles within the memory
  // budget (seamless: the latent noise is a function of the pixel position), crop, clip.
  const r = await superResolve(model, toPlanar(m.image), {
    draws,
    maxMemoryMB: MAX_MEMORY_MB,
    consistency: net.defaultConsistency,
    ...(m.guard === false ? { guard: false } : {}),
    temperatureMap: m.temperatureMap ? { data: m.temperatureMap.data, channels: 1, height: m.temperatureMap.height, width: m.temperatureMap.width } : undefined,
    ...(gpu ? { backend: 'webgpu' as const } : {}),
    onProgress: (p) => {
      const tiles = p.tiles > 1 ? `, tile ${p.tile + 1} of ${p.tiles}` : '';
      post({ type: 'progress', id: m.id, done: p.done, total: p.total + 1, stage: `${STAGES[p.stage] ?? p.stage}${tiles}` });
    },
  });
  const samples = r.samples;
  const { height: H, width: W } = samples[0];
  const n = H * W;
  const mean = new Float32Array(3 * n);
  for (const p of samples) for (let i = 0; i < mean.length; i++) mean[i] += p.data[i] / samples.length;
  let std: Rgba;
  let stdMax = 0;
  if (samples.length >= 2) {
    const u = uncertaintyMap(samples);
    std = toRgba(u.map);
    stdMax = u.whiteStd;
  } else {
    std = toRgba({ data: new Float32Array(n), channels: 1, height: H, width: W });
  }
  const out = samples.map(toRgba);
  const meanRgba = toRgba({ data: mean, channels: 3, height: H, width: W });
  post(
    {
      type: 'result',
      id: m.id,
      samples: out,
      mean: meanRgba,
      std,
      stdMax,
      seconds: (performance.now() - t0) / 1000,
      tiles: r.tiles,
      nonFinite: r.nonFinite.reduce((a, b) => a + b, 0),
      backend: r.backend,
    },
    [...out.map((o) => o.data.buffer), meanRgba.data.buffer, std.data.buffer],
  );
}

ctx.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  try {
    if (m.type === 'init') await init(m);
    else await run(m);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    post({
      type: 'error',
      id: m.type === 'run' ? m.id : -1,
      message: /out of memory|Out of memory|allocation failed|Array buffer allocation/i.test(msg)
        ? `Out of memory: ${msg}. Try a smaller image or fewer samples.`
        : msg,
    });
  }
};
