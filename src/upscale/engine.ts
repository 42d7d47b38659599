/**
 * The upscaling engine: any LR size (reflection padding to the model's size multiple, SR cropped
 * back), tiled inference with feathered blending chosen from a memory budget, many samples per
 * conditioning pass, exact LR consistency, progress and cancellation.
 *
 * Tiles: each LR tile is conditioned once (RRDB + conditioning maps) and every sample is decoded
 * against it. Latents come from a position-keyed field (see noise.ts), so a tile's latents are a
 * crop of the whole image's: at τ = 0 and at τ > 0 alike, neighbouring tiles decode the same
 * latents in their overlap and differ only where the tile border (zero padding of the convs, the
 * RRDB's limited context) reaches in. The feathered blend hides what remains; no seams show in
 * practice, and tiled and whole-image results agree closely (≥ 45 dB at τ = 0 with the default
 * overlap on the models we tested). A sample is therefore independent of the tile size.
 */
import type { Planar } from '../io/image.js';
import { Tensor } from '../tensor/tensor.js';
import type { SRFlowModel } from '../models/api.js';
import { fillLatentField } from './noise.js';
import { ceilTo, clip01, crop, padReflect } from './pad.js';
import { axisWeights, floorTo, planTiles, type Tile } from './tiles.js';
import { bytesPerLrPixel, chooseTile, DECODE_BATCH, TILE_GC_FACTOR } from './memory.js';
import { projectConsistent } from './consistency.js';
import { checkMap, levelMaps, multiplyByMap, type Map1 } from './tempmap.js';
import { backendInfo, parseBackend, requestedBackend, setBackend, type BackendName } from '../kernels/index.js';
import { webGpuRunner, type GpuConditioning } from '../models/webgpu.js';
import type { ConditioningCache } from '../models/srflow.js';

export interface Draw {
  temperature: number;
  seed: number;
}

export type Stage = 'condition' | 'decode' | 'consistency';

export interface Progress {
  /** Work units done and in all (a tile's conditioning, one decode, one projection). */
  done: number;
  total: number;
  stage: Stage;
  /** Tile being processed (0-based) and number of tiles. */
  tile: number;
  tiles: number;
}

export interface SuperResolveOptions {
  /** One output per draw: temperature and seed of its latents. */
  draws: Draw[];
  /** Forced LR tile side (rounded down to the model's size multiple); default: from the budget. */
  tile?: number;
  /** LR pixels shared by neighbouring tiles (default 16; at most half a tile). */
  overlap?: number;
  /** Memory budget in MB for choosing the tile size (default 2048). */
  maxMemoryMB?: number;
  /** 'exact': project every sample so that its bicubic downscale equals the LR (see consistency.ts). */
  consistency?: 'none' | 'exact';
  /**
   * Spatially varying temperature: a one-channel map (values in [0, 1], any size) over the output;
   * each latent is multiplied by the map averaged over its footprint, so black gives τ = 0 (the
   * deterministic mean) and white the draw's τ. See tempmap.ts.
   */
  temperatureMap?: Map1;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /**
   * Compute backend: 'webgpu' runs the conditioning and the decodes on the GPU (WebGPU); a CPU
   * backend (auto, native, wasm, reference) selects the process's CPU kernels. Default: the
   * process's backend (configureEngine; the CLI: --backend, SRFLOW_BACKEND), else auto.
   */
  backend?: BackendName;
  /**
   * The sampling guard of srflow-trained models (models/README.md, src/flow/guard.ts): keeps the
   * inverse flow inside the ranges its calibration saw on training photos. Default: on when the
   * model carries a calibration (never for published checkpoints), CPU backends only; false turns
   * it off; true requires a calibrated model and a CPU backend.
   */
  guard?: boolean;
}

export interface SuperResolveResult {
  /** One RGB image per draw, scale × the LR size, clipped to [0, 1]. */
  samples: Planar[];
  scale: number;
  /** LR size after padding to the model's multiple. */
  paddedWidth: number;
  paddedHeight: number;
  /** Tiles used (1 = whole image) and the LR tile side (null = whole image). */
  tiles: number;
  tileSize: number | null;
  overlap: number;
  /** Estimated peak memory of the chosen layout, bytes. */
  estimatedBytes: number;
  /** With consistency 'exact': LR-PSNR (float) of each sample before and after, and iterations. */
  consistency: { lrPsnrBefore: number; lrPsnr: number; iterations: number }[] | null;
  /**
   * Per draw, how many output values were not finite before clipping (written as 0). An
   * under-trained flow's inverse can overflow at high temperatures; a lower temperature helps.
   */
  nonFinite: number[];
  /**
   * Per draw, how many finite output values lay far outside the image range, below
   * OUT_OF_RANGE[0] or above OUT_OF_RANGE[1], before clipping: where the inverse flow exploded
   * without overflowing (see models/README.md, known limitations).
   */
  outOfRange: number[];
  /**
   * The sampling guard: whether it ran, and per draw how many values it changed (activations
   * clamped, scales floored; the injector floors of each tile's conditioning counted for every
   * draw). All zeros on photographs.
   */
  guard: { enabled: boolean; touched: number[] };
  /** The backend that ran: 'webgpu (<adapter>)' or the CPU kernels' name (e.g. native-avx512, wasm-simd128). */
  backend: string;
}

/** Output values outside this interval count as exploded (a sample's natural overshoot is far smaller). */
export const OUT_OF_RANGE: readonly [number, number] = [-1, 2];

/** Non-finite values and finite values outside OUT_OF_RANGE in a sample, before clipping. */
export function countOverflow(data: Float32Array): { nonFinite: number; outOfRange: number } {
  let nonFinite = 0;
  let outOfRange = 0;
  const [lo, hi] = OUT_OF_RANGE;
  for (const v of data) {
    if (!Number.isFinite(v)) nonFinite++;
    else if (v < lo || v > hi) outOfRange++;
  }
  return { nonFinite, outOfRange };
}

export const DEFAULT_MAX_MEMORY_MB = 2048;
export const DEFAULT_OVERLAP = 16;

/** The AbortError thrown when `signal` aborts. */
export function abortError(signal?: AbortSignal): DOMException {
  const reason = signal?.reason;
  const msg = reason instanceof Error && reason.name !== 'AbortError' ? `The upscale was aborted: ${reason.message}` : 'The upscale was aborted';
  return new DOMException(msg, 'AbortError');
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** LR height/width multiple a model needs (2^L / scale, at least 1). */
export function sizeMultiple(model: SRFlowModel): number {
  return Math.max(1, 2 ** model.config.flow.L / model.scale);
}

function paramBytes(model: SRFlowModel): number {
  let n = 0;
  for (const p of model.parameters().values()) n += p.size;
  return 4 * n;
}

/** Validate engine options (throws a plain Error naming the option). */
export function checkSuperResolveOptions(o: SuperResolveOptions): void {
  if (!Array.isArray(o.draws) || o.draws.length === 0) throw new Error('Expected at least one draw (temperature × samples) but received none');
  for (const d of o.draws) {
    if (!(typeof d.temperature === 'number' && Number.isFinite(d.temperature) && d.temperature >= 0)) {
      throw new Error(`Expected a finite temperature ≥ 0 for temperature but received ${d.temperature}`);
    }
    if (!Number.isSafeInteger(d.seed)) throw new Error(`Expected an integer for seed but received ${d.seed}`);
  }
  if (o.tile !== undefined && !(Number.isInteger(o.tile) && o.tile >= 1)) throw new Error(`Expected an integer ≥ 1 for tile but received ${o.tile}`);
  if (o.overlap !== undefined && !(Number.isInteger(o.overlap) && o.overlap >= 0))
    throw new Error(`Expected an integer ≥ 0 for overlap but received ${o.overlap}`);
  if (o.maxMemoryMB !== undefined && !(typeof o.maxMemoryMB === 'number' && Number.isFinite(o.maxMemoryMB) && o.maxMemoryMB > 0)) {
    throw new Error(`Expected a positive number of MB for maxMemoryMB but received ${o.maxMemoryMB}`);
  }
  if (o.consistency !== undefined && o.consistency !== 'none' && o.consistency !== 'exact') {
    throw new Error(`Expected 'none' or 'exact' for consistency but received ${JSON.stringify(o.consistency)}`);
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new Error('Expected a function for onProgress');
  if (o.temperatureMap !== undefined) checkMap(o.temperatureMap, 'temperatureMap');
  if (o.backend !== undefined) parseBackend(o.backend, 'backend');
  if (o.guard !== undefined && typeof o.guard !== 'boolean') throw new Error(`Expected true or false for guard but received ${JSON.stringify(o.guard)}`);
}

/** Super-resolve an RGB LR image (any size) into one SR image per draw. */
export async function superResolve(model: SRFlowModel, lr: Planar, opts: SuperResolveOptions): Promise<SuperResolveResult> {
  checkSuperResolveOptions(opts);
  if (lr.channels !== 3) throw new Error(`Expected an RGB image (3 channels) for lr but received ${lr.channels}`);
  const { signal, onProgress, draws } = opts;
  checkAbort(signal);
  const s = model.scale;
  const m = sizeMultiple(model);
  const h = lr.height;
  const w = lr.width;
  const Hp = ceilTo(h, m);
  const Wp = ceilTo(w, m);
  const lrP = padReflect(lr, Hp, Wp);
  if (opts.backend !== undefined && opts.backend !== 'webgpu') setBackend(opts.backend);
  const gpu = (opts.backend ?? requestedBackend()) === 'webgpu' ? await webGpuRunner(model.net) : null;
  if (gpu && opts.guard === true)
    throw new Error('Expected a CPU backend for guard: true: the sampling guard does not run on webgpu (pass guard: false, or a CPU backend)');
  const guard = !gpu && opts.guard !== false && model.net.guard !== null;
  if (opts.guard === true && !guard)
    throw new Error('Expected a model with a sampling-guard calibration for guard: true but this model carries none (published checkpoints never do)');
  const guardTouched = draws.map(() => 0);

  // tile layout
  const batch = Math.min(DECODE_BATCH, draws.length);
  const overlapWanted = opts.overlap === 0 ? 0 : floorTo(opts.overlap ?? DEFAULT_OVERLAP, m);
  const minTile = Math.max(ceilTo(8, m), 2 * overlapWanted);
  let tile: number | null;
  let estimatedBytes: number;
  const choice = chooseTile(model.config, {
    height: Hp,
    width: Wp,
    m,
    outputs: draws.length,
    batch,
    weightBytes: paramBytes(model),
    budgetBytes: (opts.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB) * 1048576,
    minTile,
  });
  if (opts.tile !== undefined) {
    tile = floorTo(opts.tile, m);
    if (tile >= Hp && tile >= Wp) tile = null;
    estimatedBytes = choice.fixedBytes + bytesPerLrPixel(model.config, batch) * (tile === null ? Hp * Wp : TILE_GC_FACTOR * tile * tile);
  } else {
    tile = choice.tile;
    estimatedBytes = choice.estimatedBytes;
  }
  const overlap = tile === null ? 0 : Math.min(overlapWanted, Math.floor(tile / 2 / m) * m);
  const tiles: Tile[] = tile === null ? planTiles(Hp, Wp, Math.max(Hp, Wp), 0, m) : planTiles(Hp, Wp, tile, overlap, m);
  const single = tiles.length === 1;

  const consistency = opts.consistency === 'exact';
  const total = tiles.length * (1 + draws.length) + (consistency ? draws.length : 0);
  let done = 0;
  const report = (stage: Stage, t: number) => onProgress?.({ done, total, stage, tile: t, tiles: tiles.length });

  const HS = Hp * s;
  const WS = Wp * s;
  const acc: Float32Array[] = single ? [] : draws.map(() => new Float32Array(3 * HS * WS));
  const wsum = single ? null : new Float32Array(HS * WS);
  let whole: Float32Array[] = [];
  const globalShapes = model.latentShapes([1, 3, Hp, Wp]);
  const tMaps = opts.temperatureMap ? levelMaps(opts.temperatureMap, globalShapes, { height: h * s, width: w * s, paddedHeight: HS, paddedWidth: WS }) : null;

  for (const t of tiles) {
    await tick();
    checkAbort(signal);
    const th = t.y.length;
    const tw = t.x.length;
    const lrTile = crop(lrP, t.y.start, t.x.start, th, tw);
    const lrT = new Tensor(lrTile.data, [1, 3, th, tw]);
    const cond: ConditioningCache | GpuConditioning = gpu ? gpu.prepare(lrT) : model.net.prepareConditioning(lrT, { guard });
    if (guard) for (let k = 0; k < draws.length; k++) guardTouched[k] += (cond as ConditioningCache).guardTouched;
    done++;
    report('condition', t.index);
    const shapes = model.latentShapes([1, 3, th, tw]);
    const wy = single ? null : axisWeights(t.y, s);
    const wx = single ? null : axisWeights(t.x, s);
    const Y0 = t.y.start * s;
    const X0 = t.x.start * s;
    const ths = th * s;
    const tws = tw * s;
    if (wsum && wy && wx) {
      for (let y = 0; y < ths; y++) {
        const row = (Y0 + y) * WS + X0;
        for (let x = 0; x < tws; x++) wsum[row + x] += wy[y] * wx[x];
      }
    }
    for (let k0 = 0; k0 < draws.length; k0 += batch) {
      await tick();
      checkAbort(signal);
      const group = draws.slice(k0, k0 + batch);
      const B = group.length;
      // latents of the group stacked along the batch axis, each a crop of its global field
      const latents = shapes.map((sh, li) => {
        const z = Tensor.zeros([B, sh[1], sh[2], sh[3]]);
        const per = sh[1] * sh[2] * sh[3];
        const f = globalShapes[li][2] / Hp; // latent pixels per LR pixel at this level
        const win = { channels: sh[1], height: sh[2], width: sh[3], y0: Math.round(t.y.start * f), x0: Math.round(t.x.start * f) };
        group.forEach((d, j) => {
          const part = (z.data as Float32Array).subarray(j * per, (j + 1) * per);
          fillLatentField(part, win, d.seed, li, d.temperature);
          if (tMaps && d.temperature > 0) multiplyByMap(part, win, tMaps[li]);
        });
        return z;
      });
      let out: Float32Array;
      if (gpu) out = (await gpu.decode(latents, cond as GpuConditioning, { logdet: false })).sr.data as Float32Array;
      else {
        const r = model.net.decodeCached(latents, cond as ConditioningCache, { logdet: false });
        out = r.sr.data as Float32Array;
        r.guardTouched?.forEach((v, j) => (guardTouched[k0 + j] += v));
      }
      const per = 3 * ths * tws;
      for (let j = 0; j < B; j++) {
        const k = k0 + j;
        const sr = B === 1 ? out : out.subarray(j * per, (j + 1) * per);
        if (single) {
          whole[k] = B === 1 ? sr : sr.slice();
        } else {
          const a = acc[k];
          for (let c = 0; c < 3; c++) {
            for (let y = 0; y < ths; y++) {
              const wyy = (wy as Float32Array)[y];
              const src = (c * ths + y) * tws;
              const dst = (c * HS + Y0 + y) * WS + X0;
              for (let x = 0; x < tws; x++) a[dst + x] += wyy * (wx as Float32Array)[x] * sr[src + x];
            }
          }
        }
        done++;
      }
      report('decode', t.index);
    }
    if (gpu) gpu.release(cond as GpuConditioning);
  }

  if (!single) {
    const ws = wsum as Float32Array;
    whole = acc.map((a) => {
      for (let c = 0; c < 3; c++) {
        const o = c * HS * WS;
        for (let i = 0; i < HS * WS; i++) a[o + i] /= ws[i];
      }
      return a;
    });
  }
  const samples: Planar[] = [];
  const nonFinite: number[] = [];
  const outOfRange: number[] = [];
  for (let k = 0; k < draws.length; k++) {
    const img = crop({ data: whole[k], channels: 3, height: HS, width: WS }, 0, 0, h * s, w * s);
    const bad = countOverflow(img.data);
    nonFinite.push(bad.nonFinite);
    outOfRange.push(bad.outOfRange);
    samples.push(clip01(img));
    whole[k] = new Float32Array(0);
    if (!single) acc[k] = whole[k]; // release the accumulator before the next copy
  }

  let cons: SuperResolveResult['consistency'] = null;
  if (consistency) {
    cons = [];
    for (let k = 0; k < samples.length; k++) {
      await tick();
      checkAbort(signal);
      const r = projectConsistent(samples[k], lr, s);
      samples[k] = r.image;
      cons.push({ lrPsnrBefore: r.lrPsnrBefore, lrPsnr: r.lrPsnr, iterations: r.iterations });
      done++;
      report('consistency', tiles.length - 1);
    }
  }
  return {
    samples,
    scale: s,
    paddedWidth: Wp,
    paddedHeight: Hp,
    tiles: tiles.length,
    tileSize: single ? null : tile,
    overlap: single ? 0 : overlap,
    estimatedBytes,
    consistency: cons,
    nonFinite,
    outOfRange,
    guard: { enabled: guard, touched: guardTouched },
    backend: gpu ? gpu.name : backendInfo().name,
  };
}
