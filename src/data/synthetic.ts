/**
 * Synthetic non-photographic training patches: flat and saturated colours, shapes on gradients,
 * text-like strokes, checkerboards and stripes, rainbows, blocky noise, pure black or white — the
 * content people point an upscaler at (logos, cartoons, screenshots, scans) that a training set of
 * photographs never shows. A flow trained on photographs alone meets conditioning features far
 * outside its training range on such input and its inverse can explode; mixing these patches into
 * training (`datasets.train.synthetic`) puts them inside it.
 *
 * Every patch is drawn at HR with anti-aliased edges (4×4 supersampling) and rounded to 8 bits, like
 * a decoded image; the LR is then made from it exactly as for photographs. All randomness comes
 * from the `rng` argument, so a seeded stream gives the same patches.
 */
import type { RandomFn } from '../tensor/random.js';

export type SyntheticKind = 'shapes' | 'gradient-shapes' | 'strokes' | 'checker' | 'stripes' | 'rainbow' | 'blocks' | 'flat';

export const SYNTHETIC_KINDS: readonly SyntheticKind[] = ['shapes', 'gradient-shapes', 'strokes', 'checker', 'stripes', 'rainbow', 'blocks', 'flat'];

type RGB = [number, number, number];

/** A colour: half the time fully saturated (a hue at full saturation and value, or black/white), else any. */
function colour(rng: RandomFn): RGB {
  const r = rng();
  if (r < 0.1) return [0, 0, 0];
  if (r < 0.2) return [1, 1, 1];
  if (r < 0.6) return hsv(rng(), 1, rng() < 0.5 ? 1 : 0.6 + 0.4 * rng());
  return [rng(), rng(), rng()];
}

function hsv(h: number, s: number, v: number): RGB {
  const i = Math.floor(h * 6) % 6;
  const f = h * 6 - Math.floor(h * 6);
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  return (
    [
      [v, t, p],
      [q, v, p],
      [p, v, t],
      [p, q, v],
      [t, p, v],
      [v, p, q],
    ] as RGB[]
  )[i];
}

/** An inside test in pixel coordinates (x right, y down; pixel (i, j) covers [j, j+1)×[i, i+1)). */
type Inside = (x: number, y: number) => boolean;

function randomShape(rng: RandomFn, P: number): Inside {
  const cx = rng() * P;
  const cy = rng() * P;
  const r = (0.08 + 0.4 * rng()) * P;
  const kind = Math.floor(rng() * 5);
  switch (kind) {
    case 0: // disc
      return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
    case 1: {
      // ring
      const w = Math.max(1, r * (0.15 + 0.35 * rng()));
      return (x, y) => {
        const d = Math.hypot(x - cx, y - cy);
        return d <= r && d >= r - w;
      };
    }
    case 2: {
      // axis-aligned rectangle
      const w = r * (0.5 + rng());
      const h = r * (0.5 + rng());
      return (x, y) => Math.abs(x - cx) <= w && Math.abs(y - cy) <= h;
    }
    case 3: {
      // rotated rectangle
      const a = rng() * Math.PI;
      const ca = Math.cos(a);
      const sa = Math.sin(a);
      const w = r * (0.3 + rng());
      const h = r * (0.1 + 0.6 * rng());
      return (x, y) => {
        const u = (x - cx) * ca + (y - cy) * sa;
        const v = -(x - cx) * sa + (y - cy) * ca;
        return Math.abs(u) <= w && Math.abs(v) <= h;
      };
    }
    default: {
      // triangle
      const pts = [0, 1, 2].map((k) => {
        const a = rng() * 2 * Math.PI + (k * 2 * Math.PI) / 3;
        return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
      });
      return (x, y) => {
        let sign = 0;
        for (let k = 0; k < 3; k++) {
          const [x0, y0] = pts[k];
          const [x1, y1] = pts[(k + 1) % 3];
          const c = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0);
          const s = c >= 0 ? 1 : -1;
          if (sign === 0) sign = s;
          else if (s !== sign) return false;
        }
        return true;
      };
    }
  }
}

/** A text-like mark: a polyline of 2–5 segments with round joins, 1–P/8 pixels thick. */
function randomStroke(rng: RandomFn, P: number): Inside {
  const n = 2 + Math.floor(rng() * 4);
  const scale = (0.1 + 0.3 * rng()) * P;
  let x = rng() * P;
  let y = rng() * P;
  const pts: [number, number][] = [[x, y]];
  for (let k = 0; k < n; k++) {
    // mostly horizontal/vertical moves, like letters
    const a = rng() < 0.6 ? (Math.floor(rng() * 4) * Math.PI) / 2 : rng() * 2 * Math.PI;
    x += scale * Math.cos(a);
    y += scale * Math.sin(a);
    pts.push([x, y]);
  }
  const half = Math.max(0.5, (0.5 + rng() * P) / 16);
  return (px, py) => {
    for (let k = 0; k + 1 < pts.length; k++) {
      const [x0, y0] = pts[k];
      const [x1, y1] = pts[k + 1];
      const dx = x1 - x0;
      const dy = y1 - y0;
      const t = Math.max(0, Math.min(1, ((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy || 1)));
      if ((px - x0 - t * dx) ** 2 + (py - y0 - t * dy) ** 2 <= half * half) return true;
    }
    return false;
  };
}

const SUB = 4; // supersampling per axis

/** Paint `inside` with colour c over the planar image (anti-aliased by coverage). */
function paint(img: Float32Array, P: number, inside: Inside, c: RGB): void {
  const plane = P * P;
  for (let i = 0; i < P; i++) {
    for (let j = 0; j < P; j++) {
      let cov = 0;
      for (let a = 0; a < SUB; a++) for (let b = 0; b < SUB; b++) if (inside(j + (b + 0.5) / SUB, i + (a + 0.5) / SUB)) cov++;
      if (cov === 0) continue;
      const w = cov / (SUB * SUB);
      const o = i * P + j;
      for (let ch = 0; ch < 3; ch++) img[ch * plane + o] = img[ch * plane + o] * (1 - w) + c[ch] * w;
    }
  }
}

function fillFlat(img: Float32Array, P: number, c: RGB): void {
  for (let ch = 0; ch < 3; ch++) img.fill(c[ch], ch * P * P, (ch + 1) * P * P);
}

function fillGradient(img: Float32Array, P: number, rng: RandomFn): void {
  const a = colour(rng);
  const b = colour(rng);
  const radial = rng() < 0.3;
  const ang = rng() * 2 * Math.PI;
  const ux = Math.cos(ang);
  const uy = Math.sin(ang);
  const cx = rng() * P;
  const cy = rng() * P;
  const plane = P * P;
  for (let i = 0; i < P; i++) {
    for (let j = 0; j < P; j++) {
      const t = radial
        ? Math.min(1, Math.hypot(j + 0.5 - cx, i + 0.5 - cy) / P)
        : Math.max(0, Math.min(1, 0.5 + ((j + 0.5 - P / 2) * ux + (i + 0.5 - P / 2) * uy) / P));
      for (let ch = 0; ch < 3; ch++) img[ch * plane + i * P + j] = a[ch] * (1 - t) + b[ch] * t;
    }
  }
}

/**
 * Draw one synthetic HR patch (3×P×P planar RGB in [0, 1], 8-bit levels) into `out` at `offset`.
 * `under` (optional, the same layout) is a photo patch to draw shapes or strokes over instead of a
 * synthetic background: logos and captions on photographs.
 */
export function drawSynthetic(rng: RandomFn, P: number, out: Float32Array, offset = 0, under?: Float32Array): SyntheticKind {
  const img = new Float32Array(3 * P * P);
  const kind = SYNTHETIC_KINDS[Math.min(SYNTHETIC_KINDS.length - 1, Math.floor(rng() * SYNTHETIC_KINDS.length))];
  const plane = P * P;
  const background = () => {
    if (under) img.set(under);
    else if (rng() < 0.5) fillFlat(img, P, colour(rng));
    else fillGradient(img, P, rng);
  };
  switch (kind) {
    case 'shapes':
    case 'gradient-shapes': {
      if (under) img.set(under);
      else if (kind === 'shapes') fillFlat(img, P, colour(rng));
      else fillGradient(img, P, rng);
      const n = 1 + Math.floor(rng() * 4);
      for (let k = 0; k < n; k++) paint(img, P, randomShape(rng, P), colour(rng));
      break;
    }
    case 'strokes': {
      background();
      const c = colour(rng);
      const n = 1 + Math.floor(rng() * 5);
      for (let k = 0; k < n; k++) paint(img, P, randomStroke(rng, P), rng() < 0.7 ? c : colour(rng));
      break;
    }
    case 'checker':
    case 'stripes': {
      const a = colour(rng);
      const b = rng() < 0.3 ? ([1 - a[0], 1 - a[1], 1 - a[2]] as RGB) : colour(rng);
      const period = 1 + Math.floor(rng() * 16); // cell side in HR pixels
      const ox = Math.floor(rng() * period);
      const oy = Math.floor(rng() * period);
      const vertical = rng() < 0.5;
      for (let i = 0; i < P; i++) {
        for (let j = 0; j < P; j++) {
          const cx = Math.floor((j + ox) / period);
          const cy = Math.floor((i + oy) / period);
          const on = kind === 'checker' ? (cx + cy) % 2 === 0 : (vertical ? cx : cy) % 2 === 0;
          const c = on ? a : b;
          for (let ch = 0; ch < 3; ch++) img[ch * plane + i * P + j] = c[ch];
        }
      }
      break;
    }
    case 'rainbow': {
      const ang = rng() * 2 * Math.PI;
      const cycles = 0.5 + 2 * rng();
      const h0 = rng();
      const v = 0.7 + 0.3 * rng();
      for (let i = 0; i < P; i++) {
        for (let j = 0; j < P; j++) {
          const t = ((j + 0.5) * Math.cos(ang) + (i + 0.5) * Math.sin(ang)) / P;
          const c = hsv((((h0 + cycles * t) % 1) + 1) % 1, 1, v);
          for (let ch = 0; ch < 3; ch++) img[ch * plane + i * P + j] = c[ch];
        }
      }
      if (rng() < 0.5) paint(img, P, randomShape(rng, P), colour(rng));
      break;
    }
    case 'blocks': {
      // blocky colour noise: one random colour per k×k block (k = 1..8), or grey noise
      const k = 1 + Math.floor(rng() * 8);
      const grey = rng() < 0.3;
      const amp = rng();
      const base = colour(rng);
      for (let bi = 0; bi < P; bi += k) {
        for (let bj = 0; bj < P; bj += k) {
          const g = rng();
          const c: RGB = grey ? [g, g, g] : [rng(), rng(), rng()];
          for (let i = bi; i < Math.min(P, bi + k); i++) {
            for (let j = bj; j < Math.min(P, bj + k); j++) {
              for (let ch = 0; ch < 3; ch++) img[ch * plane + i * P + j] = base[ch] * (1 - amp) + c[ch] * amp;
            }
          }
        }
      }
      break;
    }
    default: {
      // flat: one colour, sometimes with a single hard edge to a second one
      fillFlat(img, P, colour(rng));
      if (rng() < 0.5) {
        const half = rng() < 0.5;
        const c = colour(rng);
        const pos = rng() * P;
        paint(img, P, (x, y) => (half ? x : y) < pos, c);
      }
    }
  }
  for (let i = 0; i < img.length; i++) out[offset + i] = Math.round(Math.max(0, Math.min(1, img[i])) * 255) / 255;
  return kind;
}
