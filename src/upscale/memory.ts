/**
 * Memory estimate for inference, used to pick a tile size from a budget (`maxMemoryMB`).
 *
 * Working memory of conditioning one LR tile (RRDB, conditioning maps and the per-step
 * conditioning cache) and decoding one sample against it, per LR pixel, in float32 values:
 *
 *   base  = 96·s² + 4·nf·s² + Σ_ℓ (s/2^ℓ)² · (2·C_cond + 3·K_ℓ·hidden)
 *
 * (s² HR pixels per LR pixel: per-op temporaries of the decode and the RRDB's upsampling features;
 * (s/2^ℓ)² pixels of flow level ℓ per LR pixel: its conditioning map, the cached injector output
 * and conditioning half of each of its K_ℓ coupling nets, their hidden activations.)
 * Each further sample decoded in the same batch adds
 *
 *   extra = Σ_ℓ (s/2^ℓ)² · (6·hidden + 16).
 *
 * Calibrated with `process.resourceUsage().maxRSS` (fresh process, native kernels, LR 32–256 px,
 * one sample / a batch of 4); measured vs. estimated bytes per LR pixel:
 *   published 4x (nb 23, K 16, nf 64, hidden 64, C_cond 320):  69 400 / 87 200 vs 106 600 / 131 800
 *   nb 4, K 4, nf 32, hidden 32, C_cond 96:                    23 200 / 32 400 vs  26 400 /  39 500
 *   nb 1, K 1, nf 8, hidden 8, C_cond 16:                       4 000 /  9 600 vs   9 400 /  13 400
 *   8x, L 4, nb 2, K 2, nf 16, hidden 16, C_cond 48:           43 700 / 54 800 vs  57 300 /  85 800
 * The estimate errs on the large side (by 5–60 %) for one piece. Tiled, the garbage of the
 * previous tile is not always collected before the next one peaks: the published 4x model on a
 * 184×124 LR with a 1024 MB budget (before the allowances below) ran 6 tiles of 94 px and peaked
 * at 1206 MB RSS, i.e. ≈ 107 000 bytes per tile pixel on top of a 258 MB baseline (Node, sharp
 * and the 158 MB of weights). Hence the budget also covers a 128 MB runtime allowance and the
 * per-tile estimate is taken × 1.25 when tiling. The kernels and caches change: re-measure when
 * they do.
 */
import type { ModelConfig } from '../models/config.js';
import { condChannels } from '../models/config.js';

/** Node, sharp and the engine's code, measured at ≈ 100 MB RSS before any work. */
export const RUNTIME_BYTES = 128 * 1048576;
/** Allowance for garbage of the previous tile not yet collected when the next one peaks. */
export const TILE_GC_FACTOR = 1.25;

/** Samples decoded at once against one tile's conditioning. */
export const DECODE_BATCH = 4;

/** Estimated working bytes per LR pixel of one tile, decoding `batch` samples at once. */
export function bytesPerLrPixel(cfg: ModelConfig, batch = 1): number {
  const s2 = cfg.scale * cfg.scale;
  const cc = condChannels(cfg);
  let flow = 0;
  let extra = 0;
  for (let l = 1; l <= cfg.flow.L; l++) {
    const r = s2 / 4 ** l;
    flow += r * (2 * cc + 3 * cfg.flow.K[l - 1] * cfg.flow.hidden);
    extra += r * (6 * cfg.flow.hidden + 16);
  }
  return 4 * (96 * s2 + 4 * cfg.nf * s2 + flow + Math.max(0, batch - 1) * extra);
}

/**
 * Bytes per LR pixel of the whole image that do not depend on the tile: one float32 RGB
 * accumulator per output sample, the blend-weight sum and one transient output copy.
 */
export function fixedBytesPerLrPixel(cfg: ModelConfig, outputs: number): number {
  const s2 = cfg.scale * cfg.scale;
  return 4 * s2 * (3 * outputs + 1 + 3);
}

export interface TileChoice {
  /** LR tile side (a multiple of m), or null for the whole image in one piece. */
  tile: number | null;
  /** Estimated peak bytes with that choice. */
  estimatedBytes: number;
  /** The tile-independent part of the estimate (weights and whole-image buffers). */
  fixedBytes: number;
  /** True when even the smallest tile exceeds the budget (it is used anyway). */
  overBudget: boolean;
}

/**
 * Largest tile whose estimated peak (runtime + model weights + whole-image buffers + one tile's
 * working memory) fits `budgetBytes`; null when the whole (padded) image fits.
 */
export function chooseTile(
  cfg: ModelConfig,
  opts: { height: number; width: number; m: number; outputs: number; batch: number; weightBytes: number; budgetBytes: number; minTile: number },
): TileChoice {
  const per = bytesPerLrPixel(cfg, opts.batch);
  const fixed = RUNTIME_BYTES + opts.weightBytes + fixedBytesPerLrPixel(cfg, opts.outputs) * opts.height * opts.width;
  const whole = fixed + per * opts.height * opts.width;
  if (whole <= opts.budgetBytes) return { tile: null, estimatedBytes: whole, fixedBytes: fixed, overBudget: false };
  const tiled = per * TILE_GC_FACTOR;
  const area = (opts.budgetBytes - fixed) / tiled;
  const side = area > 0 ? Math.floor(Math.sqrt(area) / opts.m) * opts.m : 0;
  const tile = Math.max(opts.minTile, side);
  return { tile, estimatedBytes: fixed + tiled * tile * tile, fixedBytes: fixed, overBudget: side < opts.minTile };
}
