/// <reference lib="webworker" />
/**
 * The inference worker: the engine (src/) over the WebAssembly kernels. It loads the model once
 * (init), then answers run requests: pad the LR image by reflection to the model's size
 * multiple, condition once, decode N samples at temperature τ, crop, and compute the mean and
 * the uncertainty map. Cancelling is done by the page terminating this worker.
 */
import { createWasmKernels } from '../../src/kernels/wasm.js';
import { setKernels } from '../../src/kernels/index.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { parseConfig } from '../../src/models/config.js';
import { SRFlowNet } from '../../src/models/srflow.js';
import { loadStateDict } from '../../src/models/state.js';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import { ceilTo, clip01, crop, padReflect } from '../../src/upscale/pad.js';
import { uncertaintyMap } from '../../src/upscale/uncertainty.js';
import type { Planar } from '../../src/io/image.js';
import type { FromWorker, Rgba, ToWorker } from './protocol.js';

const ctx = self as unknown as DedicatedWorkerGlobalScope;
let net: SRFlowNet | null = null;

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
  const f = parseSafetensors(new Uint8Array(m.model), m.name);
  if (!f.metadata.config) throw new Error(`${m.name} carries no configuration (metadata key "config"): not an srflow model file`);
  const cfg = parseConfig(JSON.parse(f.metadata.config));
  const model = new SRFlowNet(cfg);
  for (const key of [...f.tensors.keys()]) if (key.startsWith('optimizer.')) f.tensors.delete(key);
  loadStateDict(model, f.tensors, `model ${m.name}`);
  net = model;
  let parameters = 0;
  for (const p of model.parameters().values()) parameters += p.size;
  post({
    type: 'ready',
    info: { name: m.name, untrained: m.untrained, scale: model.scale, parameters, multiple: Math.max(1, 2 ** cfg.flow.L / model.scale) },
    backend: k.name,
    threads: k.threads(),
  });
}

function run(m: Extract<ToWorker, { type: 'run' }>): void {
  if (!net) throw new Error('the model is not loaded');
  const t0 = performance.now();
  const s = net.scale;
  const mult = Math.max(1, 2 ** net.config.flow.L / s);
  const lr = toPlanar(m.image);
  const h = lr.height;
  const w = lr.width;
  const lrP = padReflect(lr, ceilTo(h, mult), ceilTo(w, mult));
  const L = new Tensor(lrP.data, [1, 3, lrP.height, lrP.width]);
  const total = m.samples + 2;
  post({ type: 'progress', id: m.id, done: 0, total, stage: 'conditioning on the image' });
  const samples: Planar[] = [];
  noGrad(() => {
    net!.checkLr(L);
    const cond = net!.prepareConditioning(L);
    for (let i = 0; i < m.samples; i++) {
      post({ type: 'progress', id: m.id, done: i + 1, total, stage: `sample ${i + 1} of ${m.samples}` });
      const latents = net!.drawLatents(L.shape, m.temperature, new Rng(m.seed + i));
      const sr = net!.decodeCached(latents, cond, { logdet: false }).sr;
      const whole: Planar = { data: sr.data as Float32Array, channels: 3, height: lrP.height * s, width: lrP.width * s };
      samples.push(clip01(crop(whole, 0, 0, h * s, w * s)));
    }
  });
  post({ type: 'progress', id: m.id, done: m.samples + 1, total, stage: 'uncertainty map' });
  const n = h * s * w * s;
  const mean = new Float32Array(3 * n);
  for (const p of samples) for (let i = 0; i < mean.length; i++) mean[i] += p.data[i] / samples.length;
  let std: Rgba;
  let stdMax = 0;
  if (samples.length >= 2) {
    const u = uncertaintyMap(samples);
    std = toRgba(u.map);
    stdMax = u.whiteStd;
  } else {
    std = toRgba({ data: new Float32Array(n), channels: 1, height: h * s, width: w * s });
  }
  const out = samples.map(toRgba);
  const meanRgba = toRgba({ data: mean, channels: 3, height: h * s, width: w * s });
  post(
    { type: 'result', id: m.id, samples: out, mean: meanRgba, std, stdMax, seconds: (performance.now() - t0) / 1000 },
    [...out.map((o) => o.data.buffer), meanRgba.data.buffer, std.data.buffer],
  );
}

ctx.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  try {
    if (m.type === 'init') await init(m);
    else run(m);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    post({ type: 'error', id: m.type === 'run' ? m.id : -1, message: /out of memory|Out of memory|allocation failed|Array buffer allocation/i.test(msg) ? `Out of memory: ${msg}. Try a smaller image or fewer samples.` : msg });
  }
};
