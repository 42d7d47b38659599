/**
 * Whole-model benchmarks on published architectures with random weights:
 * `infer` times sampling at τ = 0.9, `train` one full optimisation step (dequantised NLL,
 * backward, Adam). Median after warm-up; peak RSS of the process.
 */
import { Tensor, noGrad } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { Rng } from '../tensor/random.js';
import { SRFlowNet } from '../models/srflow.js';
import { parseConfig, makeOpt } from '../models/config.js';
import { Adam } from '../train/adam.js';
import { backendInfo } from '../kernels/index.js';
import { UsageError } from '../errors.js';

export const PRESETS: Record<string, { scale: number; nb: number; K: number; L: number; blocks: number[] }> = {
  paper4x: { scale: 4, nb: 23, K: 16, L: 3, blocks: [1, 8, 15, 22] },
  paper8x: { scale: 8, nb: 23, K: 16, L: 4, blocks: [1, 3, 5, 7] },
  small4x: { scale: 4, nb: 4, K: 2, L: 3, blocks: [0, 1, 2, 3] },
  default4x: { scale: 4, nb: 6, K: 3, L: 3, blocks: [1, 2, 4, 5] },
};

/** A model of a preset with random weights everywhere (no layer an identity). */
export function presetModel(name: string, seed = 0): SRFlowNet {
  const p = PRESETS[name];
  if (!p) throw new UsageError(`Expected one of ${Object.keys(PRESETS).join(', ')} for --preset but received ${JSON.stringify(name)}`);
  const net = new SRFlowNet(parseConfig(makeOpt({ ...p, quant: 32 })), seed);
  const rng = new Rng(seed + 1);
  for (const [n, t] of net.parameters()) {
    // ZeroConvs (coupling nets' last conv, split priors); InvConv weights keep their orthogonal init
    if (/(\.4|\.split\.conv|\.conv)\.(weight|bias)$/.test(n) && !/invconv/.test(n) && n.startsWith('flow')) rng.fillNormal(t.data, 1e-3);
    else if (/logs$/.test(n)) rng.fillNormal(t.data, 1e-2);
    else if (/actnorm\.bias$/.test(n)) rng.fillNormal(t.data, 1e-2);
  }
  // Keep random decodes finite, as bench/pytorch/srflow_torch.py does: with every affine scale at
  // sigmoid(2) ≈ 0.88 a 16-steps-per-level inverse grows ~1.5× per step and overflows at τ = 0.9;
  // +3 on the scale logits (odd channels of the injector and coupling ZeroConvs) puts them near 0.99.
  for (const [n, t] of net.parameters()) {
    if (n.includes('.affine.') && n.endsWith('.4.bias')) for (let i = 1; i < t.size; i += 2) t.data[i] += 3;
  }
  net.markLoaded();
  return net;
}

/** Samples decoded together against one conditioning (as SRFlowModel.sampleMany's default batch). */
export const SAMPLE_BATCH = 4;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

export interface ModelBenchOptions {
  mode: 'infer' | 'train';
  preset: string;
  lrSize: number;
  batch: number;
  samples: number;
  repeat?: number;
  lowMemory?: boolean;
  quiet?: boolean;
  /** infer on the WebGPU backend (conditioning and decodes on the GPU, one read-back per decode). */
  webgpu?: boolean;
}

export async function benchModel(o: ModelBenchOptions): Promise<Record<string, unknown>> {
  const net = presetModel(o.preset);
  const m = 2 ** net.config.flow.L / net.scale;
  if (m > 1 && o.lrSize % m) throw new UsageError(`Expected --lr-size divisible by ${m} for ${o.preset} but received ${o.lrSize}`);
  const rng = new Rng(5);
  const lr = Tensor.zeros([o.batch, 3, o.lrSize, o.lrSize]);
  rng.fillUniform(lr.data);
  const repeat = o.repeat ?? (o.mode === 'infer' ? 3 : 5);
  const times: number[] = [];
  let cacheBytes = 0;
  let params = 0;
  for (const p of net.parameters().values()) params += p.size;
  let run: () => void | Promise<void>;
  /** With --samples N > 1: one LR image and one sample, timed alternately with the N-sample run. */
  let runOne: (() => void | Promise<void>) | null = null;
  let adapter: string | undefined;
  let release: (() => Promise<void>) | null = null;
  if (o.mode === 'infer' && o.webgpu) {
    const { webGpuRunner } = await import('../models/webgpu.js');
    const w = await import('../kernels/webgpu.js');
    release = w.releaseWebGpuDevice;
    const gpu = await webGpuRunner(net);
    adapter = gpu.dev.adapterName;
    const inferGpu = (samples: number) => async () => {
      const cond = gpu.prepare(lr);
      cacheBytes = cond.bytes;
      try {
        for (let s0 = 0; s0 < samples; s0 += o.batch === 1 ? 4 : 1) {
          const k = o.batch === 1 ? Math.min(4, samples - s0) : 1;
          const z = net.drawLatents([k * o.batch, ...lr.shape.slice(1)], 0.9, new Rng(s0));
          await gpu.decode(z, cond, { logdet: false });
        }
      } finally {
        gpu.release(cond);
      }
    };
    run = inferGpu(o.samples);
    if (o.samples > 1) runOne = inferGpu(1);
  } else if (o.mode === 'infer') {
    const infer = (samples: number) => () => {
      const cache = net.prepareConditioning(lr);
      cacheBytes = cache.bytes;
      // samples decoded in batches of up to SAMPLE_BATCH against the one conditioning (as SRFlowModel.sampleMany)
      const step = o.batch === 1 ? SAMPLE_BATCH : 1;
      for (let s0 = 0; s0 < samples; s0 += step) {
        const k = o.batch === 1 ? Math.min(step, samples - s0) : 1;
        const z = net.drawLatents([k * o.batch, ...lr.shape.slice(1)], 0.9, new Rng(s0));
        noGrad(() => net.decodeCached(z, cache, { logdet: false }));
      }
    };
    run = infer(o.samples);
    if (o.samples > 1) runOne = infer(1);
  } else {
    const hr = Tensor.zeros([o.batch, 3, o.lrSize * net.scale, o.lrSize * net.scale]);
    rng.fillUniform(hr.data);
    net.ctx.training = true;
    const adam = new Adam(
      [
        { name: 'flow', params: net.flowParameters() },
        { name: 'rrdb', params: net.rrdbParameters() },
      ],
      { lr: 1e-5 },
    );
    run = () => {
      const noise = Tensor.zeros(hr.shape);
      rng.fillUniform(noise.data, -0.5 / 32, 0.5 / 32);
      const { loss } = net.loss(hr, lr, { noise, quant: 32, lowMemory: o.lowMemory });
      adam.zeroGrad();
      loss.backward();
      adam.step();
      void T;
    };
  }
  const log = (s: string) => !o.quiet && process.stderr.write(s);
  log(`warm-up (${o.preset}, ${o.mode}, LR ${o.lrSize}×${o.lrSize}, batch ${o.batch}${o.mode === 'infer' ? `, ${o.samples} sample(s)` : ''}) ...\n`);
  // with runOne, the two alternate (order flipped every round) so that both see the same machine load
  const timesOne: number[] = [];
  // process CPU time (every thread) beside wall time: on a loaded machine it varies much less
  const cpuTimes: number[] = [];
  const cpuTimesOne: number[] = [];
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const timed = async (f: () => void | Promise<void>, cpu: number[]) => {
    const t0 = performance.now();
    const c0 = cpuNow();
    await f();
    cpu.push(cpuNow() - c0);
    return (performance.now() - t0) / 1000;
  };
  try {
    await run();
    await runOne?.();
    for (let i = 0; i < repeat; i++) {
      if (runOne && i % 2 === 1) timesOne.push(await timed(runOne, cpuTimesOne));
      times.push(await timed(run, cpuTimes));
      if (runOne && i % 2 === 0) timesOne.push(await timed(runOne, cpuTimesOne));
      log(`  run ${i + 1}/${repeat}: ${times[i].toFixed(3)} s${runOne ? ` (1 sample: ${timesOne[i].toFixed(3)} s)` : ''}\n`);
    }
  } finally {
    await release?.();
  }
  const { name } = backendInfo();
  return {
    bench: o.mode,
    preset: o.preset,
    lr_size: o.lrSize,
    batch: o.batch,
    ...(o.mode === 'infer' ? { samples: o.samples, cache_mib: +(cacheBytes / 1048576).toFixed(1) } : { low_memory: !!o.lowMemory }),
    median_s: +median(times).toFixed(4),
    min_s: +Math.min(...times).toFixed(4),
    median_cpu_s: +median(cpuTimes).toFixed(4),
    ...(runOne
      ? {
          one_sample_median_s: +median(timesOne).toFixed(4),
          one_sample_min_s: +Math.min(...timesOne).toFixed(4),
          one_sample_median_cpu_s: +median(cpuTimesOne).toFixed(4),
          // N samples against one, from the medians and (less sensitive to load drifts) the median of per-round ratios
          samples_ratio: +(median(times) / median(timesOne)).toFixed(3),
          samples_ratio_rounds: +median(times.map((t, i) => t / timesOne[i])).toFixed(3),
          samples_ratio_cpu: +(median(cpuTimes) / median(cpuTimesOne)).toFixed(3),
        }
      : {}),
    peak_rss_mib: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    parameters: params,
    backend: o.webgpu ? 'webgpu' : name,
    ...(o.webgpu ? { adapter, cpu_kernels: name } : {}),
    threads: await threadsInUse(),
  };
}

async function threadsInUse(): Promise<number> {
  try {
    const n = await import('../kernels/native.js');
    return (n as unknown as { getNumThreads?: () => number }).getNumThreads?.() ?? 1;
  } catch {
    return 1;
  }
}
