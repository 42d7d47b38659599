/**
 * Convolutions of a conditioning map kept in its parts (inference).
 *
 * SRFlow's conditioning map of a level is cat(own, resizeNearest(stacked, H, W)): the RRDB feature
 * map at the level's resolution and the stacked RRDB block outputs (at LR resolution) resized to it.
 * At the level at twice the LR resolution that resize is a nearest 2× upsampling, and a 3×3 conv of
 * a nearest-2×-upsampled map is, for each of the four output phases (row and column parity), a 2×2
 * conv of the LR map with summed taps: 4 instead of 9 multiply-adds per channel and output pixel,
 * and the 320-channel map is never materialised. Same math as the plain conv, with the taps that
 * read the same source pixel summed first (float rounding differs at ~1e-7 relative).
 */
import { Tensor, noGrad } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';

/** A conditioning map as cat(own, resizeNearest(stacked, own's H and W)); stacked null: the map is own. */
export interface CondParts {
  own: Tensor;
  stacked: Tensor | null;
}

/** A conditioning map given whole or in parts; the whole map is made (once) when needed. */
export class CondInput {
  private whole: Tensor | null;
  constructor(
    whole: Tensor | null,
    readonly parts: CondParts | null = null,
  ) {
    if (!whole && !parts) throw new Error('Expected a conditioning map or its parts but received neither');
    this.whole = whole;
  }
  static of(x: Tensor | CondParts | CondInput): CondInput {
    if (x instanceof CondInput) return x;
    if (x instanceof Tensor) return new CondInput(x);
    return new CondInput(null, x);
  }
  get shape(): number[] {
    if (this.whole) return this.whole.shape;
    const { own, stacked } = this.parts as CondParts;
    const [n, c, h, w] = own.shape;
    return [n, c + (stacked ? stacked.shape[1] : 0), h, w];
  }
  /** The materialised map (cached). */
  full(): Tensor {
    if (!this.whole) this.whole = materializeCond(this.parts as CondParts);
    return this.whole;
  }
  /** Whether convs of this map can use the phase decomposition (stacked part at exactly half size). */
  get upsampled(): boolean {
    if (this.whole || !this.parts?.stacked) return false;
    const { own, stacked } = this.parts;
    return own.shape[2] === 2 * stacked.shape[2] && own.shape[3] === 2 * stacked.shape[3] && own.shape[0] === stacked.shape[0];
  }
}

/** cat(own, resizeNearest(stacked, H, W)) — the published conditioning map. */
export function materializeCond(p: CondParts): Tensor {
  if (!p.stacked) return p.own;
  return T.concat([p.own, T.resizeNearest(p.stacked, p.own.shape[2], p.own.shape[3])], 1);
}

/** A 3×3 conv weight over cat(own, up2(stacked)) split for the phase decomposition. */
export interface PhaseWeights {
  /** [cout, ownC, 3, 3]: the own channels' part, a plain 3×3 conv at full resolution. */
  own: Tensor;
  /** [4·cout, stackC, 2, 2]: per phase (2·rowParity + colParity) the summed 2×2 taps on the LR map. */
  phases: Tensor;
}

// For output row parity a, 2×2 tap r reads these 3×3 rows dy (nearest 2× upsampling, pad 1).
const TAPS: readonly (readonly (readonly number[])[])[] = [
  [[0], [1, 2]],
  [[0, 1], [2]],
];

/** Split a 3×3 weight [cout, ownC + stackC, 3, 3] for convs of cat(own, up2(stacked)) (no tape). */
export function phaseWeights(w: Tensor, ownC: number): PhaseWeights {
  const [cout, cin, kh, kw] = w.shape;
  if (kh !== 3 || kw !== 3 || ownC < 0 || ownC >= cin)
    throw new Error(`Expected a 3×3 weight with more than ${ownC} input channels for phaseWeights but received [${w.shape}]`);
  const sc = cin - ownC;
  return noGrad(() => {
    const own = T.slice(w, 1, 0, ownC);
    const W = w.data;
    const P = new Float32Array(4 * cout * sc * 4);
    for (let a = 0; a < 2; a++) {
      for (let b = 0; b < 2; b++) {
        const ph = a * 2 + b;
        for (let co = 0; co < cout; co++) {
          for (let ci = 0; ci < sc; ci++) {
            const src = (co * cin + ownC + ci) * 9;
            const dst = ((ph * cout + co) * sc + ci) * 4;
            for (let r = 0; r < 2; r++) {
              for (let s = 0; s < 2; s++) {
                let v = 0;
                for (const dy of TAPS[a][r]) for (const dx of TAPS[b][s]) v += W[src + dy * 3 + dx];
                P[dst + r * 2 + s] = v;
              }
            }
          }
        }
      }
    }
    return { own, phases: new Tensor(P, [4 * cout, sc, 2, 2]) };
  });
}

/**
 * conv3×3(cat(own, up2(stacked)), w) (pad 1, no bias) from the phase-split weights: a 3×3 conv of
 * own plus, interleaved by phase, one 2×2 conv (pad 1) of stacked. No tape; the result is owned.
 */
export function convUpsampledCond(p: CondParts, pw: PhaseWeights): Tensor {
  const { own, stacked } = p;
  if (!stacked) throw new Error('Expected a stacked part for convUpsampledCond but received none');
  const [n, , H, W] = own.shape;
  const [, , h, w] = stacked.shape;
  const cout = pw.own.shape[0];
  if (H !== 2 * h || W !== 2 * w || stacked.shape[0] !== n) {
    throw new Error(`Expected a stacked map of half the size of [${own.shape}] for convUpsampledCond but received [${stacked.shape}]`);
  }
  return noGrad(() => {
    const out = T.conv2d(own, pw.own);
    const ph = T.conv2d(stacked, pw.phases, null, 1); // [n, 4·cout, h + 1, w + 1]
    const O = out.data;
    const P = ph.data;
    const h1 = h + 1;
    const w1 = w + 1;
    const plane = h1 * w1;
    // each output row once, sequentially: even columns from phase (a, 0), odd ones from (a, 1)
    for (let b0 = 0; b0 < n; b0++) {
      for (let co = 0; co < cout; co++) {
        const ob = (b0 * cout + co) * H * W;
        for (let a = 0; a < 2; a++) {
          const p0 = (b0 * 4 * cout + a * 2 * cout + co) * plane + a * w1;
          const p1 = p0 + cout * plane + 1;
          for (let i = 0; i < h; i++) {
            const ro = ob + (2 * i + a) * W;
            const r0 = p0 + i * w1;
            const r1 = p1 + i * w1;
            for (let j = 0, o = ro; j < w; j++, o += 2) {
              O[o] += P[r0 + j];
              O[o + 1] += P[r1 + j];
            }
          }
        }
      }
    }
    return out;
  });
}
