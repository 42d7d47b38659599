/**
 * The sampling guard of srflow-trained models: the inverse flow kept inside the ranges it saw on
 * real photographs.
 *
 * Why (measured on the shipped 4x model, scripts/diag-guard.ts): on inputs far from photographs (a
 * 1-pixel checkerboard, saturated shapes, RGB noise) the inverse explodes by a cascade. An
 * injector or coupling predicts a scale near its floor (sigmoid(h + 2) + eps, eps = 1e-4), the
 * inverse divides by it, the amplified activation is fed to the next coupling net far outside its
 * training range, that net predicts an even smaller scale (down to 1e-14, then 0), and so on: max
 * |activation| grows 1 → 18 → 148 → 10⁶ through level 2 and overflows in level 1, at τ = 0 already.
 * On photos the same scales stay above ~0.25 and the activations within a few units.
 *
 * The guard, calibrated on training photos (`calibrateGuard`, stored in the model file's metadata):
 * - every affine scale (injector and coupling, per channel) is floored at `floorFactor` × the
 *   smallest value seen on the calibration data (by clamping the net's raw scale output), so an
 *   inverse divides by at most what it did on photos (÷ floorFactor);
 * - the input of every conditional step's and split's inverse (what its coupling net and prior
 *   read) is clamped per channel to the range seen there widened by `margin` × its width on each
 *   side, so no coupling net or prior is fed values it never saw.
 * The image itself (the flow's output) is never clamped: out-of-range output counts stay honest.
 * Calibrated with margins, a photograph's sampling touches nothing (bit-identical outputs).
 */
import type { Tensor } from '../tensor/tensor.js';

export const GUARD_FORMAT_VERSION = 1;

/** Per layer (by index in the flow's layer list): what the calibration saw. */
export interface GuardLayerStats {
  /** Per channel, min and max of the layer's forward output (its inverse's input). */
  lo?: number[];
  hi?: number[];
  /** Per channel, the smallest injector / coupling scale (sigmoid(h + 2) + eps) seen. */
  injMin?: number[];
  cpMin?: number[];
}

export interface GuardCalibration {
  version: number;
  /** Activation ranges widened by margin × (hi − lo) on each side. */
  margin: number;
  /** Scales floored at floorFactor × their calibrated minimum. */
  floorFactor: number;
  /** What it was computed on (for the record). */
  source: string;
  layers: Record<string, GuardLayerStats>;
}

/** What the inverse of one layer uses. */
export interface LayerGuard {
  /** Clamp of the inverse's input, per channel (null: none). */
  lo: Float32Array | null;
  hi: Float32Array | null;
  /** Lower bound of the raw scale outputs (before sigmoid(· + 2)), per channel (null: none). */
  injRawFloor: Float32Array | null;
  cpRawFloor: Float32Array | null;
}

const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** The raw output r whose scale sigmoid(r + 2) + eps equals s (−Infinity when s ≤ eps: no floor). */
export function rawForScale(s: number, eps: number): number {
  const q = s - eps;
  if (!(q > 0)) return -Infinity;
  if (q >= 1) return Infinity;
  return Math.log(q / (1 - q)) - 2;
}

export class FlowGuard {
  private readonly byLayer = new Map<number, LayerGuard>();

  constructor(
    readonly calibration: GuardCalibration,
    eps: number,
  ) {
    const { margin, floorFactor } = calibration;
    for (const [k, st] of Object.entries(calibration.layers)) {
      let lo: Float32Array | null = null;
      let hi: Float32Array | null = null;
      if (st.lo && st.hi) {
        lo = new Float32Array(st.lo.length);
        hi = new Float32Array(st.hi.length);
        for (let c = 0; c < lo.length; c++) {
          const w = st.hi[c] - st.lo[c];
          lo[c] = st.lo[c] - margin * w;
          hi[c] = st.hi[c] + margin * w;
        }
      }
      const floors = (m?: number[]) => (m ? Float32Array.from(m, (v) => rawForScale(v * floorFactor, eps)) : null);
      this.byLayer.set(Number(k), { lo, hi, injRawFloor: floors(st.injMin), cpRawFloor: floors(st.cpMin) });
    }
  }

  layer(i: number): LayerGuard | null {
    return this.byLayer.get(i) ?? null;
  }

  /** Checks the calibration against a flow: channel counts per layer. `channelsOf(i)`: the layer's output channels, or null for a layer that takes no guard. */
  check(layers: number, channelsOf: (i: number) => { out: number; scaleInj: number; scaleCp: number } | null, source: string): void {
    for (const [k, st] of Object.entries(this.calibration.layers)) {
      const i = Number(k);
      const ch = Number.isInteger(i) && i >= 0 && i < layers ? channelsOf(i) : null;
      if (!ch) throw new Error(`${source}: its sampling-guard calibration names layer ${k}, which takes no guard in this model`);
      const want: [string, number[] | undefined, number][] = [
        ['lo', st.lo, ch.out],
        ['hi', st.hi, ch.out],
        ['injMin', st.injMin, ch.scaleInj],
        ['cpMin', st.cpMin, ch.scaleCp],
      ];
      for (const [name, v, n] of want) {
        if (v && (v.length !== n || v.some((x) => typeof x !== 'number' || !Number.isFinite(x)))) {
          throw new Error(`${source}: its sampling-guard calibration of layer ${k} has ${v.length} ${name} values (expected ${n} finite numbers)`);
        }
      }
    }
  }
}

/** Parses a calibration (the model file's `flow_guard` metadata). */
export function parseGuardCalibration(text: string, source: string): GuardCalibration {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: its sampling-guard calibration is not valid JSON (${(e as Error).message})`);
  }
  const c = v as GuardCalibration;
  if (
    !c ||
    typeof c !== 'object' ||
    c.version !== GUARD_FORMAT_VERSION ||
    !(c.margin >= 0) ||
    !(c.floorFactor > 0 && c.floorFactor <= 1) ||
    !c.layers ||
    typeof c.layers !== 'object'
  ) {
    throw new Error(
      `${source}: its sampling-guard calibration is not a version ${GUARD_FORMAT_VERSION} calibration with margin ≥ 0, floorFactor in (0, 1] and layers`,
    );
  }
  return c;
}

/**
 * Clamps x (NCHW, in place) per channel to [lo, hi]; adds the number of values changed per sample
 * to `counts` (length N) when given. Returns the number changed.
 */
export function clampChannels(x: Tensor, lo: Float32Array, hi: Float32Array, counts: Float64Array | null): number {
  const [n, c, h, w] = x.shape;
  const hw = h * w;
  const X = x.data;
  let total = 0;
  for (let b = 0; b < n; b++) {
    let k = 0;
    for (let ch = 0; ch < c; ch++) {
      const l = lo[ch];
      const u = hi[ch];
      for (let i = (b * c + ch) * hw, e = i + hw; i < e; i++) {
        const v = X[i];
        if (v < l) {
          X[i] = l;
          k++;
        } else if (v > u) {
          X[i] = u;
          k++;
        } else if (v !== v) {
          X[i] = 0.5 * (l + u); // NaN: the middle of the range
          k++;
        }
      }
    }
    if (counts) counts[b] += k;
    total += k;
  }
  return total;
}

/**
 * Floors the scale channels (odd channels: the layout affineFromNet reads) of a net's raw output
 * (NCHW, in place) at `floor` per scale channel; adds the number changed per sample to
 * `counts[sample0 + b]` when given. Returns the number of values changed.
 */
export function floorRawScales(raw: Tensor, floor: Float32Array, counts: Float64Array | null = null, sample0 = 0): number {
  const [n, c2, h, w] = raw.shape;
  const hw = h * w;
  const R = raw.data;
  let total = 0;
  for (let b = 0; b < n; b++) {
    let k = 0;
    for (let ch = 0; ch < c2 / 2; ch++) {
      const f = floor[ch];
      if (f === -Infinity) continue;
      for (let i = (b * c2 + 2 * ch + 1) * hw, e = i + hw; i < e; i++) {
        const v = R[i];
        if (v < f || v !== v) {
          R[i] = f;
          k++;
        }
      }
    }
    if (counts) counts[sample0 + b] += k;
    total += k;
  }
  return total;
}

/** Accumulates a calibration: per layer, activation ranges and scale minima. */
export class GuardStats {
  readonly layers = new Map<number, GuardLayerStats>();

  private get(i: number): GuardLayerStats {
    let s = this.layers.get(i);
    if (!s) this.layers.set(i, (s = {}));
    return s;
  }

  /** The per-channel range of x (a layer's forward output / inverse input). */
  activation(i: number, x: Tensor): void {
    const [n, c, h, w] = x.shape;
    const hw = h * w;
    const s = this.get(i);
    const lo = (s.lo ??= new Array<number>(c).fill(Infinity));
    const hi = (s.hi ??= new Array<number>(c).fill(-Infinity));
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        for (let j = (b * c + ch) * hw, e = j + hw; j < e; j++) {
          const v = x.data[j];
          if (v < lo[ch]) lo[ch] = v;
          if (v > hi[ch]) hi[ch] = v;
        }
      }
    }
  }

  /** The per-channel minimum scale of a net's raw output. */
  scales(i: number, which: 'inj' | 'cp', raw: Tensor, eps: number): void {
    const [n, c2, h, w] = raw.shape;
    const hw = h * w;
    const s = this.get(i);
    const key = which === 'inj' ? 'injMin' : 'cpMin';
    const m = (s[key] ??= new Array<number>(c2 / 2).fill(Infinity));
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c2 / 2; ch++) {
        let r = Infinity;
        for (let j = (b * c2 + 2 * ch + 1) * hw, e = j + hw; j < e; j++) if (raw.data[j] < r) r = raw.data[j];
        const v = sig(r + 2) + eps;
        if (v < m[ch]) m[ch] = v;
      }
    }
  }

  calibration(opts: { margin: number; floorFactor: number; source: string }): GuardCalibration {
    const layers: Record<string, GuardLayerStats> = {};
    const round = (a?: number[]) => a?.map((v) => Number(v.toPrecision(6)));
    for (const i of [...this.layers.keys()].sort((a, b) => a - b)) {
      const s = this.layers.get(i) as GuardLayerStats;
      layers[String(i)] = { lo: round(s.lo), hi: round(s.hi), injMin: round(s.injMin), cpMin: round(s.cpMin) };
    }
    return { version: GUARD_FORMAT_VERSION, margin: opts.margin, floorFactor: opts.floorFactor, source: opts.source, layers };
  }
}
