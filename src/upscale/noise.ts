/**
 * A position-keyed Gaussian latent field.
 *
 * Each latent value is a pure function of (seed, latent index, channel, global row, global
 * column): a 32-bit hash chain (lowbias32 finaliser) gives two uniforms and Box–Muller turns them
 * into one N(0, 1) value. A tile's latents are therefore an exact crop of the whole image's
 * latents: tiled and whole-image decoding see the same noise everywhere, so at τ > 0 tiles agree
 * in their overlaps as well as they do at τ = 0, and the result does not depend on the tile size.
 * (This is not the model's `Rng` stream, so `upscale` with a seed differs from `model.sample`
 * with the same seed; both are reproducible.)
 */

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

const TWO_PI = 2 * Math.PI;
const INV_2_32 = 1 / 4294967296;

export interface FieldWindow {
  /** Channels, rows and columns of the window. */
  channels: number;
  height: number;
  width: number;
  /** Global row/column of the window's top-left value. */
  y0: number;
  x0: number;
}

/**
 * Fill `out` (CHW, length channels·height·width) with the field values of latent `latentIndex`
 * for `seed`, multiplied by `temperature`. τ = 0 gives zeros.
 */
export function fillLatentField(out: Float32Array, win: FieldWindow, seed: number, latentIndex: number, temperature: number): void {
  const { channels: C, height: H, width: W, y0, x0 } = win;
  if (out.length !== C * H * W) throw new Error(`Expected ${C * H * W} values for out but received ${out.length}`);
  if (temperature === 0) {
    out.fill(0);
    return;
  }
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const base = mix32(mix32(mix32(lo ^ 0x9e3779b9) ^ Math.imul(hi, 0x27d4eb2d)) ^ Math.imul(latentIndex + 1, 0x85ebca6b));
  let o = 0;
  for (let c = 0; c < C; c++) {
    const hc = mix32(base ^ Math.imul(c + 1, 0xc2b2ae35));
    for (let y = 0; y < H; y++) {
      const hy = mix32(hc ^ Math.imul(y0 + y + 1, 0x27d4eb2f));
      for (let x = 0; x < W; x++) {
        const a = mix32(hy ^ Math.imul(x0 + x + 1, 0x165667b1));
        const b = mix32(a ^ 0x9e3779b9);
        const u1 = (a + 0.5) * INV_2_32;
        const u2 = b * INV_2_32;
        out[o++] = temperature * Math.sqrt(-2 * Math.log(u1)) * Math.cos(TWO_PI * u2);
      }
    }
  }
}
