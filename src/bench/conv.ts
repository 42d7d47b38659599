/**
 * Convolution micro-benchmark: median forward and backward (data + filter) times of a square
 * stride-1 convolution on the active kernel backend, comparable with
 * ../shared/tools/pytorch_conv_bench.py (beside the checkout).
 *
 *   node --import tsx src/bench/conv.ts conv3x3|conv1x1 CHANNELS SIZE BATCH THREADS [COUT]
 */
import { pathToFileURL } from 'node:url';
import { kernels } from '../kernels/index.js';
import { getNumThreads, nativeAddon, setNumThreads } from '../kernels/native.js';

export interface ConvBenchOptions {
  op: 'conv3x3' | 'conv1x1';
  /** Input channels (and output channels unless `cout` is given). */
  channels: number;
  size: number;
  batch: number;
  threads: number;
  /** Timed runs per measurement (at least 30). */
  repeat?: number;
  /** Output channels; defaults to `channels`. */
  cout?: number;
}

export interface ConvBenchResult {
  op: string;
  fwd_ms: number;
  bwd_ms: number;
  gflops_fwd: number;
  gflops_bwd: number;
  backend: string;
  threads: number;
}

/** Gaussian test data (Box–Muller on Math.random: benchmarks only). */
export function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - Math.random(),
      v = Math.random();
    const r = Math.sqrt(-2 * Math.log(u)) * scale;
    a[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) a[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return a;
}

function median(f: () => void, n: number, warmSeconds: number): number {
  const end = performance.now() + warmSeconds * 1000;
  do f();
  while (performance.now() < end);
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    f();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1];
}

export async function benchConv(opts: ConvBenchOptions): Promise<ConvBenchResult> {
  const k = opts.op === 'conv3x3' ? 3 : 1;
  const cin = opts.channels,
    cout = opts.cout ?? opts.channels;
  const { size, batch } = opts;
  const repeat = Math.max(30, opts.repeat ?? 30);
  const K = kernels();
  let threads = 1;
  if (nativeAddon() && K.name.startsWith('native')) {
    if (opts.threads > 0) setNumThreads(opts.threads);
    threads = getNumThreads();
  }
  const g = { n: batch, cin, h: size, w: size, cout, kh: k, kw: k, pad: k >> 1 };
  const x = randn(batch * cin * size * size);
  const w = randn(cout * cin * k * k, 0.05);
  const gy = randn(batch * cout * size * size);
  const y = new Float32Array(batch * cout * size * size);
  const gx = new Float32Array(x.length);
  const gw = new Float32Array(w.length);
  const fwd = median(() => K.conv2d(x, w, null, g, y), repeat, 1.0);
  const bwd = median(
    () => {
      K.conv2dBackwardData(gy, w, g, gx, false);
      K.conv2dBackwardFilter(gy, x, g, gw, null, false);
    },
    repeat,
    1.0,
  );
  const flops = 2 * batch * cin * cout * k * k * size * size;
  return {
    op: opts.op,
    fwd_ms: fwd,
    bwd_ms: bwd,
    gflops_fwd: flops / fwd / 1e6,
    gflops_bwd: (2 * flops) / bwd / 1e6,
    backend: K.name,
    threads,
  };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const [op = 'conv3x3', ch = '64', size = '64', batch = '1', threads = '0', cout] = process.argv.slice(2);
  if (op !== 'conv3x3' && op !== 'conv1x1') {
    console.error('usage: conv.ts conv3x3|conv1x1 CHANNELS SIZE BATCH THREADS [COUT]');
    process.exit(2);
  }
  const r = await benchConv({
    op,
    channels: Number(ch),
    size: Number(size),
    batch: Number(batch),
    threads: Number(threads),
    cout: cout ? Number(cout) : undefined,
  });
  console.log(JSON.stringify(r));
}
