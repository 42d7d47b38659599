/**
 * Direct (implicit-im2col) vs Winograd F(4x4, 3x3) 3x3 convolutions, side by side in one process:
 * the two are timed in alternating rounds and the medians compared, forward and backward-data.
 * Also reports the error of each against a float64 direct convolution.
 *
 *   node --import tsx src/bench/winograd.ts [THREADS] [ROUNDS] [CIN:COUT:SIZE:BATCH ...]
 */
import { pathToFileURL } from 'node:url';
import { getNumThreads, loadNative, nativeAddon, setNumThreads } from '../kernels/native.js';
import * as ref from '../kernels/reference.js';
import type { Conv2dGeom } from '../kernels/types.js';
import { randn } from './conv.js';

export interface WinoShape {
  cin: number;
  cout: number;
  size: number;
  batch: number;
}

export interface WinoBenchRow {
  shape: string;
  fwd_direct_ms: number;
  fwd_wino_ms: number;
  fwd_speedup: number;
  bwd_data_direct_ms: number;
  bwd_data_wino_ms: number;
  bwd_data_speedup: number;
  bwd_filter_direct_ms: number;
  bwd_filter_wino_ms: number;
  bwd_filter_speedup: number;
  /** max |y - y64| / max |y64| and the same for the direct path (smaller shapes only). */
  err_wino?: number;
  err_direct?: number;
  /** max |gw - gw64| / max |gw64| for the backward-filter, and the same for the direct path. */
  err_bwf_wino?: number;
  err_bwf_direct?: number;
}

export const defaultShapes: WinoShape[] = [
  { cin: 64, cout: 64, size: 64, batch: 1 },
  { cin: 320, cout: 64, size: 128, batch: 1 },
  { cin: 320, cout: 64, size: 64, batch: 1 },
  { cin: 192, cout: 64, size: 64, batch: 1 },
  { cin: 160, cout: 32, size: 64, batch: 1 },
  { cin: 64, cout: 64, size: 16, batch: 8 },
];

/** The training shapes of the backward-filter (LR 16..64, batch 1..8). */
export const trainShapes: WinoShape[] = [
  { cin: 64, cout: 64, size: 16, batch: 8 },
  { cin: 326, cout: 64, size: 32, batch: 4 },
  { cin: 160, cout: 32, size: 16, batch: 8 },
  { cin: 64, cout: 64, size: 64, batch: 1 },
];

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];

function maxRelErr(got: Float32Array, want: Float64Array): number {
  let d = 0,
    m = 0;
  for (let i = 0; i < got.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / (m || 1);
}

/** Times fn: `reps` calls per sample; returns ms per call. */
function sample(fn: () => void, reps: number): number {
  const t = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t) / reps;
}

export function benchWinograd(shapes: WinoShape[], rounds = 15, accuracy = true): WinoBenchRow[] {
  const K = loadNative().kernels;
  const A = nativeAddon();
  if (!K || !A) throw new Error('native addon unavailable');
  const rows: WinoBenchRow[] = [];
  for (const s of shapes) {
    const g: Conv2dGeom = { n: s.batch, cin: s.cin, h: s.size, w: s.size, cout: s.cout, kh: 3, kw: 3, pad: 1 };
    const x = randn(s.batch * s.cin * s.size * s.size);
    const w = randn(s.cout * s.cin * 9, Math.sqrt(2 / (9 * s.cin)));
    const b = randn(s.cout, 0.1);
    const gy = randn(s.batch * s.cout * s.size * s.size);
    const y = new Float32Array(gy.length);
    const gx = new Float32Array(x.length);
    const fwd = () => K.conv2d(x, w, b, g, y);
    const bwd = () => K.conv2dBackwardData(gy, w, g, gx, false);
    const gw = new Float32Array(w.length);
    const gb = new Float32Array(s.cout);
    const bwf = () => K.conv2dBackwardFilter(gy, x, g, gw, gb, false);
    // calls per sample: about 20 ms of work
    A.setWinograd(false);
    fwd();
    const one = sample(fwd, 1);
    const reps = Math.max(1, Math.round(20 / Math.max(one, 0.01)));
    const t: Record<string, number[]> = { fd: [], fw: [], bd: [], bw: [], fld: [], flw: [] };
    for (const on of [false, true]) {
      A.setWinograd(on);
      sample(fwd, reps);
      sample(bwd, reps);
      sample(bwf, reps);
    }
    for (let r = 0; r < rounds; r++) {
      for (const on of r % 2 ? [true, false] : [false, true]) {
        A.setWinograd(on);
        t[on ? 'fw' : 'fd'].push(sample(fwd, reps));
        t[on ? 'bw' : 'bd'].push(sample(bwd, reps));
        t[on ? 'flw' : 'fld'].push(sample(bwf, reps));
      }
    }
    const row: WinoBenchRow = {
      shape: `${s.cin}->${s.cout} ${s.size}x${s.size} n${s.batch}`,
      fwd_direct_ms: median(t.fd),
      fwd_wino_ms: median(t.fw),
      fwd_speedup: median(t.fd) / median(t.fw),
      bwd_data_direct_ms: median(t.bd),
      bwd_data_wino_ms: median(t.bw),
      bwd_data_speedup: median(t.bd) / median(t.bw),
      bwd_filter_direct_ms: median(t.fld),
      bwd_filter_wino_ms: median(t.flw),
      bwd_filter_speedup: median(t.fld) / median(t.flw),
    };
    if (accuracy && s.cin * s.cout * s.size * s.size * s.batch <= 320 * 64 * 64 * 64) {
      const y64 = new Float64Array(y.length);
      ref.conv2d(Float64Array.from(x), Float64Array.from(w), Float64Array.from(b), g, y64);
      // error of each path against float64: [Winograd forced, direct forced]
      const errs = (compute: () => void, out: Float32Array, want: Float64Array) =>
        [true, false].map((on) => {
          A.setWinograd(on);
          compute();
          return maxRelErr(out, want);
        });
      [row.err_wino, row.err_direct] = errs(fwd, y, y64);
      const gw64 = new Float64Array(gw.length);
      ref.conv2dBackwardFilter(Float64Array.from(gy), Float64Array.from(x), g, gw64, null, false);
      [row.err_bwf_wino, row.err_bwf_direct] = errs(bwf, gw, gw64);
    }
    A.setWinograd('auto');
    rows.push(row);
  }
  return rows;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const [threads = '0', rounds = '15', ...rest] = process.argv.slice(2);
  if (Number(threads) > 0) setNumThreads(Number(threads));
  // shapes: CIN:COUT:SIZE[:BATCH] …, or `train` (the training shapes), else the default ones
  const shapes =
    rest[0] === 'train'
      ? trainShapes
      : rest.length
        ? rest.map((r) => {
            const [cin, cout, size, batch = '1'] = r.split(':').map(String);
            return { cin: Number(cin), cout: Number(cout), size: Number(size), batch: Number(batch) };
          })
        : defaultShapes;
  console.log(`# threads ${getNumThreads()}, ${rounds} alternating rounds, medians in ms`);
  for (const row of benchWinograd(shapes, Number(rounds))) console.log(JSON.stringify(row));
}
