/**
 * The library-facing model: load a published checkpoint or a native srflow model file, and encode,
 * decode, sample, differentiate and save. Tensors are `{ shape, data: Float32Array }` (NCHW) or
 * the engine's Tensor class.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { Tensor, noGrad } from '../tensor/tensor.js';
import { Rng } from '../tensor/random.js';
import { openPth } from '../io/pth.js';
import { openSafetensors, writeSafetensors, type LazyTensor, type RawTensor } from '../io/safetensors.js';
import { loadConfigFile, parseConfig, readConfigFile, type ModelConfig } from './config.js';
import { fileReadError } from '../is.js';
import { configureEngine, type EngineOptions } from './engine.js';
import { SRFlowNet } from './srflow.js';
import { loadStateDict, type LoadReport } from './state.js';
import { inferLayout, isRrdbOpt, LayoutError, parseRrdbConfig, type Layout, type LayoutKind } from './infer-layout.js';
import { RRDBOnlyNet } from './rrdb-model.js';
import { NoInitRng } from './no-init.js';
import { applySamplingMetadata, samplingMetadata } from './file-metadata.js';

export interface TensorLike {
  shape: number[];
  data: Float32Array;
}

export const MODEL_FORMAT = 'srflow-model';
export const MODEL_FORMAT_VERSION = '1';

export function toTensor(t: TensorLike | Tensor, name: string): Tensor {
  if (t instanceof Tensor) return t;
  if (!t || !Array.isArray(t.shape) || !(t.data instanceof Float32Array)) {
    throw new Error(`Expected a tensor { shape: number[], data: Float32Array } for ${name} but received ${t === null ? 'null' : typeof t}`);
  }
  return new Tensor(t.data, t.shape);
}

function stackBatch(ts: Tensor[]): Tensor {
  const per = ts[0].size;
  const data = new Float32Array(per * ts.length);
  ts.forEach((t, i) => data.set(t.data, i * per));
  return new Tensor(data, [ts.length, ...ts[0].shape.slice(1)]);
}

function sliceBatch(t: Tensor, i: number): Tensor {
  const per = t.size / t.shape[0];
  return new Tensor(t.data.slice(i * per, (i + 1) * per), [1, ...t.shape.slice(1)]);
}

function perSample(t: Tensor): Float32Array {
  return Float32Array.from(t.data);
}

export interface SampleOptions {
  /** Temperature τ ≥ 0 (default 0.8). */
  temperature?: number;
  /** Seed of the latent draws (default 0): the same seed gives the same sample. */
  seed?: number;
}

export class SRFlowModel {
  constructor(readonly net: SRFlowNet) {}

  get config(): ModelConfig {
    return this.net.config;
  }
  get scale(): number {
    return this.net.scale;
  }

  /** Every parameter under its published name. */
  parameters(): Map<string, Tensor> {
    return this.net.parameters();
  }

  /** HR image (with its LR) → latents; the published objective, no dequantisation. */
  encode(hr: TensorLike | Tensor, lr: TensorLike | Tensor): { latents: Tensor[]; nll: Float32Array; logdet: Float32Array } {
    const r = this.net.encode(toTensor(hr, 'hr'), toTensor(lr, 'lr'));
    return { latents: r.latents, nll: perSample(r.nll), logdet: perSample(r.logdet) };
  }

  /** Latents (published order) → HR image. */
  decode(lr: TensorLike | Tensor, latents: (TensorLike | Tensor)[]): { sr: Tensor; logdet: Float32Array } {
    const r = this.net.decode(toTensor(lr, 'lr'), latents.map((z, i) => toTensor(z, `latents[${i}]`)));
    return { sr: r.sr, logdet: perSample(r.logdet) };
  }

  /**
   * Samples at temperature τ, reproducible for a seed. Without `samples`, one Tensor; with
   * `samples: N`, an array of N tensors (sample i uses seed + i), all decoded against one
   * conditioning pass of the LR image.
   */
  sample(lr: TensorLike | Tensor, opts?: SampleOptions & { samples?: undefined }): Tensor;
  sample(lr: TensorLike | Tensor, opts: SampleOptions & { samples: number }): Tensor[];
  sample(lr: TensorLike | Tensor, opts: SampleOptions & { samples?: number } = {}): Tensor | Tensor[] {
    const temperature = opts.temperature ?? 0.8;
    if (!(typeof temperature === 'number' && Number.isFinite(temperature) && temperature >= 0)) {
      throw new Error(`Expected a finite temperature ≥ 0 for temperature but received ${temperature}`);
    }
    const seed = opts.seed ?? 0;
    if (!Number.isInteger(seed)) throw new Error(`Expected an integer for seed but received ${seed}`);
    const n = opts.samples;
    if (n !== undefined && !(Number.isInteger(n) && n >= 1)) throw new Error(`Expected an integer ≥ 1 for samples but received ${n}`);
    const L = toTensor(lr, 'lr');
    const out = this.sampleMany(L, [{ temperature, seed }], n ?? 1);
    return n === undefined ? out[0] : out;
  }

  /**
   * `count` samples for each (temperature, seed) in `draws`: sample i of a draw uses seed + i.
   * The LR image is conditioned once and every sample decoded against it.
   */
  sampleMany(lr: TensorLike | Tensor, draws: { temperature: number; seed: number }[], count: number, opts: { batch?: number } = {}): Tensor[] {
    const L = toTensor(lr, 'lr');
    this.net.checkLr(L);
    const cond = this.net.prepareConditioning(L);
    const out: Tensor[] = [];
    const B = L.shape[0];
    // with one LR image, decode up to `batch` samples at once against the shared conditioning
    const group = B === 1 ? Math.max(1, opts.batch ?? 4) : 1;
    for (const d of draws) {
      for (let i0 = 0; i0 < count; i0 += group) {
        const k = Math.min(group, count - i0);
        const per = Array.from({ length: k }, (_v, j) => this.net.drawLatents(L.shape, d.temperature, new Rng(d.seed + i0 + j)));
        const latents = per[0].map((_z, li) => (k === 1 ? per[0][li] : stackBatch(per.map((p) => p[li]))));
        const sr = this.net.decodeCached(latents, cond, { logdet: false }).sr;
        for (let j = 0; j < k; j++) out.push(k === 1 ? sr : sliceBatch(sr, j));
      }
    }
    return out;
  }

  latentShapes(lrShape: readonly number[]): number[][] {
    return this.net.latentShapes(lrShape);
  }

  /** Gradients of mean(nll) of hr + noise (training mode; no dequantisation term). */
  gradients(hr: TensorLike | Tensor, lr: TensorLike | Tensor, opts: { noise?: TensorLike | Tensor } = {}): { loss: number; grads: Map<string, Tensor> } {
    const params = this.net.parameters();
    for (const p of params.values()) p.grad = null;
    const prev = this.net.ctx.training;
    this.net.ctx.training = true;
    try {
      const { loss } = this.net.loss(toTensor(hr, 'hr'), toTensor(lr, 'lr'), { noise: opts.noise ? toTensor(opts.noise, 'noise') : undefined });
      loss.backward();
      const grads = new Map<string, Tensor>();
      for (const [n, p] of params) grads.set(n, new Tensor(p.grad ?? new Float32Array(p.size), p.shape));
      for (const p of params.values()) p.grad = null;
      return { loss: loss.item(), grads };
    } finally {
      this.net.ctx.training = prev;
    }
  }

  /** Save as a native model file: safetensors with the configuration in its metadata. Atomic. */
  async save(path: string, extraMetadata: Record<string, string> = {}): Promise<void> {
    saveModelFile(this.net, path, extraMetadata);
  }
}

export function saveModelFile(net: SRFlowNet, path: string, extraMetadata: Record<string, string> = {}): void {
  const tensors = new Map<string, RawTensor>();
  for (const [n, p] of net.parameters()) tensors.set(n, { shape: p.shape, data: p.data as Float32Array });
  writeSafetensors(path, tensors, {
    format: MODEL_FORMAT,
    format_version: MODEL_FORMAT_VERSION,
    config: JSON.stringify(net.config.opt),
    ...samplingMetadata(net),
    ...extraMetadata,
  });
}

function sniff(path: string): 'zip' | 'safetensors' | 'unknown' {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fileReadError('model', path, e);
  }
  try {
    const b = Buffer.alloc(9);
    const n = readSync(fd, b, 0, 9, 0);
    if (n >= 4 && b[0] === 0x50 && b[1] === 0x4b) return 'zip';
    if (n >= 4 && b[0] === 0x80 && b[2] === 0x8a && b[3] === 0x0a) return 'zip'; // legacy torch.save (pre-1.6)
    if (n >= 9 && b[8] === 0x7b) return 'safetensors';
    return 'unknown';
  } finally {
    closeSync(fd);
  }
}

export interface LoadOptions {
  /**
   * Configuration (published option layout): an object or a YAML/JSON path. Wins over the one a
   * model file carries and over the layout recognised from a checkpoint's tensors.
   */
  config?: string | Record<string, unknown>;
  /** How the engine computes (kernels, threads, conditioning grouping, …): applied before the model is made (configureEngine). */
  engine?: EngineOptions;
}

/** What loading found out about a model file (see `loadNetDetailed`). */
export interface LoadedNet {
  net: SRFlowNet;
  file: string;
  format: 'pth' | 'safetensors';
  /** srflow: an SRFlow model; rrdb: an RRDB network alone (deterministic SR). */
  kind: LayoutKind;
  /** Where the configuration came from. */
  configSource: 'option' | 'file' | 'inferred';
  /** The layout recognised from the tensors (null when it could not be, with a configuration given). */
  layout: Layout | null;
  report: LoadReport;
}

/**
 * Load a published `.pth` checkpoint (its architecture recognised from the tensors, or `config`)
 * or a native srflow model file. Published SRFlow checkpoints (SRFlow_*.pth) give SRFlow models;
 * published RRDB checkpoints (RRDB_*.pth) give deterministic RRDB upscalers.
 */
export async function loadModel(path: string, opts: LoadOptions = {}): Promise<SRFlowModel> {
  return new SRFlowModel(loadNet(path, opts));
}

export function loadNet(path: string, opts: LoadOptions = {}): SRFlowNet {
  return loadNetDetailed(path, opts).net;
}

function configOf(c: string | Record<string, unknown>): { cfg: ModelConfig | null; opt: Record<string, unknown> } {
  if (typeof c === 'string') {
    const text = loadConfigObject(c);
    return { cfg: isRrdbOpt(text) ? null : loadConfigFile(c), opt: text };
  }
  return { cfg: isRrdbOpt(c) ? null : parseConfig(c), opt: c };
}

function loadConfigObject(path: string): Record<string, unknown> {
  // the parsed option object (to tell an RRDBNet configuration from an SRFlow one)
  return readConfigFile(path, (v) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {}));
}

/** Load a model file and report how: format, kind, where the configuration came from, which tensors matched. */
export function loadNetDetailed(path: string, opts: LoadOptions = {}): LoadedNet {
  if (typeof path !== 'string' || !path) throw new Error(`Expected a file path for model but received ${JSON.stringify(path)}`);
  configureEngine(opts.engine);
  const kind = sniff(path);
  let tensors: Map<string, LazyTensor>;
  let close: () => void;
  let embedded: Record<string, unknown> | null = null;
  let metadata: Record<string, string> = {};
  let format: 'pth' | 'safetensors';
  if (kind === 'zip') {
    const f = openPth(path);
    tensors = f.tensors;
    close = f.close;
    format = 'pth';
  } else if (kind === 'safetensors') {
    let f;
    try {
      f = openSafetensors(path);
    } catch (e) {
      throw new Error(`Cannot read model ${path}: ${(e as Error).message}`);
    }
    tensors = f.tensors;
    close = f.close;
    format = 'safetensors';
    for (const k of [...tensors.keys()]) if (k.startsWith('optimizer.')) tensors.delete(k);
    metadata = f.metadata;
    if (f.metadata.config) {
      try {
        embedded = JSON.parse(f.metadata.config) as Record<string, unknown>;
      } catch (e) {
        close();
        throw new Error(`Cannot read model ${path}: its embedded configuration is invalid (${(e as Error).message})`);
      }
    }
  } else {
    throw new Error(`Cannot read model ${path}: not a PyTorch checkpoint (.pth) or a safetensors/srflow model file`);
  }
  try {
    const shapes = new Map<string, number[]>();
    for (const [k, t] of tensors) shapes.set(k, t.shape);
    const given = opts.config ?? embedded ?? undefined;
    let layout: Layout | null = null;
    let layoutError: Error | null = null;
    try {
      layout = inferLayout(shapes, `model ${path}`);
    } catch (e) {
      if (!(e instanceof LayoutError)) throw e;
      layoutError = e;
    }
    let cfg: ModelConfig;
    let netKind: LayoutKind;
    let configSource: LoadedNet['configSource'];
    if (given !== undefined) {
      let parsed;
      try {
        parsed = configOf(given);
      } catch (e) {
        if (!opts.config) throw new Error(`Cannot read model ${path}: its embedded configuration is invalid (${(e as Error).message})`);
        throw e;
      }
      netKind = parsed.cfg ? (layout?.kind === 'rrdb' ? 'rrdb' : 'srflow') : 'rrdb';
      cfg = parsed.cfg ?? parseRrdbConfig(parsed.opt);
      configSource = opts.config !== undefined ? 'option' : 'file';
    } else if (layout) {
      cfg = layout.config;
      netKind = layout.kind;
      configSource = 'inferred';
    } else {
      throw new Error(`${(layoutError as Error).message}${/pass --config/.test((layoutError as Error).message) ? '' : ' (it carries no configuration: pass one, config option or --config FILE)'}`);
    }
    const net = netKind === 'rrdb' ? new RRDBOnlyNet(cfg, new NoInitRng()) : new SRFlowNet(cfg, new NoInitRng());
    const report = loadStateDict(net, tensors, `model ${path}`, { rename: layout?.rename ?? renameFor(netKind, [...tensors.keys()]) });
    if (netKind === 'srflow') applySamplingMetadata(net, metadata, `model ${path}`);
    return { net, file: path, format, kind: netKind, configSource, layout, report };
  } finally {
    close();
  }
}

/** Key renaming when the layout could not be recognised: a bare RRDBNet's keys gain `RRDB.`. */
function renameFor(kind: LayoutKind, keys: string[]): Map<string, string> {
  const m = new Map<string, string>();
  const bare = kind === 'rrdb' && !keys.some((k) => k.startsWith('RRDB.'));
  for (const k of keys) m.set(k, bare ? `RRDB.${k}` : k);
  return m;
}

/** A new model with random weights (published initialisation) for a configuration. */
export function createModel(config: Record<string, unknown> | ModelConfig, seed = 0): SRFlowModel {
  const cfg = 'flow' in config && 'opt' in config ? (config as ModelConfig) : parseConfig(config);
  return new SRFlowModel(new SRFlowNet(cfg, seed));
}

export { noGrad };
