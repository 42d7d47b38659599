/**
 * SRFlow sampling and encoding on the WebGPU backend: the same math as SRFlowNet's inference path
 * (RRDB conditioning, the conditioning-only parts of every flow step computed once per LR image,
 * the flow's inverse or forward), run with the WGSL kernels of src/kernels/webgpu.ts. Weights are
 * uploaded once (per parameter version), activations stay on the GPU between layers, and each
 * decode or encode reads back once at the end (the image or the latents, with the log-determinants).
 *
 * It reads the model's structure and parameters from SRFlowNet; it changes nothing there. Training
 * (gradients) stays on the CPU backends.
 */
import { Tensor, noGrad, parameterVersion } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { invertMatrix } from '../tensor/linalg.js';
import { region, webGpuDevice, type GTensor, type GWeight, type Region, type WebGpuDevice } from '../kernels/webgpu.js';
import type { FlowStep } from '../flow/flowstep.js';
import type { Split2d } from '../flow/split.js';
import type { CondAffine, CouplingNet, ZeroConv } from '../flow/affine.js';
import type { ActNorm } from '../flow/actnorm.js';
import type { Conv } from './rrdbnet.js';
import { condKey } from './config.js';
import { phaseWeights } from '../flow/condconv.js';
import type { Layer, SRFlowNet } from './srflow.js';

const LOG_2PI = Math.log(2 * Math.PI);

/** The conditioning of an LR batch on the GPU (see WebGpuSRFlow.prepare); free with `release`. */
export interface GpuConditioning {
  lrShape: number[];
  /** Per conditional flow step (layer index): the injector net's output and the coupling's u-half conv. */
  steps: Map<number, { inj: GTensor; u0: GTensor }>;
  /** Per conditional flow step: Σ log scale of inj per LR sample ([n] on the GPU). */
  injLd: Map<number, GTensor>;
  /** GPU bytes held (inj and u0 of every step). */
  bytes: number;
}

interface Cached {
  version: number;
  data: unknown;
  value: GWeight | GPUBuffer;
}

/** The RRDB's outputs on the GPU: the conditioning maps by name, the stacked blocks, the SR output. */
interface GpuRrdb {
  raw: Map<string, GTensor>;
  blocks: Map<number, GTensor>;
  out?: GTensor;
}

/**
 * What a GPU layer reads and accumulates during one pass through the flow: the GPU side of
 * FlowContext (flow/layer.ts). The log-determinant is summed as a per-sample part on the GPU (`ld`)
 * and a part shared by every sample on the CPU (`ldConst`).
 */
interface GpuPass {
  /** The layer's index in the flow (as runFlow's). */
  i: number;
  c: GpuConditioning;
  batch: number;
  ld: GTensor;
  ldConst: number;
  /** false: inverses skip their log-determinants (sampling). */
  needLogdet: boolean;
  /** Inverse: the latents still to pop (uploaded as a split takes its own). */
  latentsIn: Tensor[];
  /** Forward: the latents the splits have pushed. */
  latentsOut: GTensor[];
}

/**
 * The GPU counterpart of one flow layer (the contract of flow/layer.ts on GPU tensors): each takes
 * its input (it owns it: releases or reuses it) and returns its output, adding its
 * log-determinant to the pass.
 */
interface GpuLayer {
  forward(h: GTensor, p: GpuPass): GTensor;
  inverse(h: GTensor, p: GpuPass): GTensor;
  /** The conditional affine of a flow step, whose conditioning `prepare` computes; else null. */
  readonly affine: CondAffine | null;
}

export class WebGpuSRFlow {
  private cache = new Map<object, Map<string, Cached>>();
  /** The GPU counterparts of the net's layers, by layer index. */
  private readonly gpuLayers: GpuLayer[];

  constructor(
    readonly net: SRFlowNet,
    readonly dev: WebGpuDevice,
  ) {
    this.gpuLayers = net.layers.map((l) => this.gpuLayer(l));
  }

  /** For the process's shared device (navigator.gpu, or the `webgpu` package in Node). */
  static async create(net: SRFlowNet): Promise<WebGpuSRFlow> {
    return new WebGpuSRFlow(net, await webGpuDevice());
  }

  get name(): string {
    return `webgpu (${this.dev.adapterName})`;
  }

  // ------------------------------------------------------------------ weights (uploaded once per parameter version)

  private derived<V extends GWeight | GPUBuffer>(owner: Tensor, kind: string, make: () => V): V {
    let m = this.cache.get(owner);
    if (!m) this.cache.set(owner, (m = new Map()));
    const v = parameterVersion();
    const c = m.get(kind);
    if (c && c.version === v && c.data === owner.data) return c.value as V;
    if (c) this.dev.freeConst('buf' in c.value ? c.value.buf : c.value);
    const value = make();
    m.set(kind, { version: v, data: owner.data, value });
    return value;
  }

  private weight(w: Tensor, kind = 'w', data?: () => Float32Array, cin?: number): GWeight {
    return this.derived(w, kind, () => {
      const [cout, wcin, kh, kw] = w.shape.length === 4 ? w.shape : [w.shape[0], w.shape[1], 1, 1];
      return this.dev.uploadWeight(data ? data() : (w.data as Float32Array), cout, cin ?? wcin, kh, kw);
    });
  }

  private vec(t: Tensor, kind = 'v', f?: (d: Float32Array) => Float32Array): GPUBuffer {
    return this.derived(t, kind, () => this.dev.uploadConst(f ? f(t.data as Float32Array) : Float32Array.from(t.data)));
  }

  private expVec(logs: Tensor, k: number): GPUBuffer {
    return this.vec(logs, `exp${k}`, (d) => Float32Array.from(d, (v) => Math.exp(k * v)));
  }

  // ------------------------------------------------------------------ building blocks

  private conv(x: Region, w: GWeight, bias: GPUBuffer | null, res: Region | null = null, resBroadcast = false): GTensor {
    const [n, , h, wd] = x.t.shape;
    const pad = (w.kh - 1) >> 1;
    const out = this.dev.alloc([n, w.cout, h + 2 * pad - w.kh + 1, wd + 2 * pad - w.kw + 1]);
    this.dev.conv2d(x, w, bias, pad, region(out), res, resBroadcast);
    return out;
  }

  private rrdbConv(x: Region, c: Conv): GTensor {
    return this.conv(x, this.weight(c.weight), this.vec(c.bias));
  }

  private actnorm(x: GTensor, a: ActNorm, relu: boolean): void {
    this.dev.channelAffine(region(x), this.vec(a.bias), this.expVec(a.logs, 1), relu);
  }

  private zeroConv(x: Region, z: ZeroConv): GTensor {
    const out = this.conv(x, this.weight(z.weight), null);
    this.dev.channelAffine(region(out), this.vec(z.bias), this.expVec(z.logs, 3), false);
    return out;
  }

  /** The coupling net after its first conv (given pre, owned, before its ActNorm). */
  private afterFirstConv(pre: GTensor, net: CouplingNet): GTensor {
    this.actnorm(pre, net.l0.actnorm, true);
    const t = this.conv(region(pre), this.weight(net.l2.weight), null);
    this.dev.release(pre);
    this.actnorm(t, net.l2.actnorm, true);
    const out = this.zeroConv(region(t), net.l4);
    this.dev.release(t);
    return out;
  }

  // ------------------------------------------------------------------ RRDB

  private rrdb(lr: GTensor, withOut = false): GpuRrdb {
    const r = this.net.rrdb;
    const cfg = this.net.config;
    const dev = this.dev;
    let t = this.rrdbConv(region(lr), r.convFirst);
    const blocks = new Map<number, GTensor>();
    r.trunk.forEach((rrdb, bi) => {
      let h = t;
      for (const db of rrdb.rdbs) {
        const [n, nf, hh, ww] = h.shape;
        const total = nf + db.convs.slice(0, 4).reduce((s, c) => s + c.weight.shape[0], 0);
        const buf = dev.alloc([n, total, hh, ww]);
        dev.copy(region(h), region(buf, 0, nf));
        let c = nf;
        for (let i = 0; i < 4; i++) {
          const gc = db.convs[i].weight.shape[0];
          dev.conv2d(region(buf, 0, c), this.weight(db.convs[i].weight), this.vec(db.convs[i].bias), 1, region(buf, c, gc));
          dev.leakyRelu(region(buf, c, gc), 0.2);
          c += gc;
        }
        const x5 = this.rrdbConv(region(buf), db.convs[4]);
        dev.release(buf);
        dev.axpby(region(x5), 0.2, region(h), 1);
        if (h !== t) dev.release(h);
        h = x5;
      }
      dev.axpby(region(h), 0.2, region(t), 1);
      if (![...blocks.values()].includes(t)) dev.release(t);
      t = h;
      if (cfg.flow.stackBlocks.includes(bi)) blocks.set(bi, t);
    });
    // head: last = trunk_conv(t) + t
    const last = this.conv(region(t), this.weight(r.trunkConv.weight), this.vec(r.trunkConv.bias), region(t));
    if (![...blocks.values()].includes(t)) dev.release(t);
    const raw = new Map<string, GTensor>();
    raw.set('last_lr_fea', last);
    raw.set('fea_up1', last);
    let f = last;
    const nUp = withOut ? r.upconvs.length : Math.min(r.upconvs.length, Math.max(0, Math.round(Math.log2(cfg.scale / 2))));
    r.upconvs.slice(0, nUp).forEach((u, i) => {
      const [n, c, h, w] = f.shape;
      const up = dev.alloc([n, c, 2 * h, 2 * w]);
      dev.resizeNearest(f, region(up));
      f = this.rrdbConv(region(up), u);
      dev.release(up);
      dev.leakyRelu(region(f), 0.2);
      raw.set(`fea_up${2 ** (i + 1)}`, f);
    });
    const res: GpuRrdb = { raw, blocks };
    if (withOut) {
      const hr = this.rrdbConv(region(f), r.hrConv);
      dev.leakyRelu(region(hr), 0.2);
      res.out = this.rrdbConv(region(hr), r.convLast);
      dev.release(hr);
    }
    if (cfg.flow.feaUp0) raw.set('fea_up0', dev.downsample(last, 2));
    if (cfg.flow.feaUpMinus1) raw.set('fea_up-1', dev.downsample(last, 4));
    return res;
  }

  /** cat(own, resizeNearest(stacked blocks, own's size)): the published conditioning map (a new tensor). */
  private condMap(r: GpuRrdb, own: GTensor): GTensor {
    const cfg = this.net.config;
    if (!cfg.flow.stackConcat) return own;
    const [n, c, h, w] = own.shape;
    const total = c + cfg.flow.stackBlocks.reduce((s, b) => s + (r.blocks.get(b) as GTensor).shape[1], 0);
    const out = this.dev.alloc([n, total, h, w]);
    this.dev.copy(region(own), region(out, 0, c));
    let c0 = c;
    for (const b of cfg.flow.stackBlocks) {
      const blk = r.blocks.get(b) as GTensor;
      this.dev.resizeNearest(blk, region(out, c0, blk.shape[1]));
      c0 += blk.shape[1];
    }
    return out;
  }

  private releaseRrdb(r: GpuRrdb, keep: Set<GTensor> = new Set()): void {
    const seen = new Set<GTensor>(keep);
    for (const t of [...r.raw.values(), ...r.blocks.values(), ...(r.out ? [r.out] : [])]) {
      if (seen.has(t)) continue;
      seen.add(t);
      this.dev.release(t);
    }
  }

  /** The RRDB's maps on the GPU, read back (verification): conditioning maps (published, stacked), blocks, SR output. */
  async rrdbForward(lr: Tensor, opts: { withOut?: boolean } = {}): Promise<{ maps: Map<string, Tensor>; blocks: Map<string, Tensor>; out?: Tensor }> {
    this.net.checkLr(lr);
    const r = this.rrdb(this.dev.upload(lr.data as Float32Array, lr.shape), opts.withOut);
    const names: string[] = [];
    const ts: GTensor[] = [];
    const made: GTensor[] = [];
    for (const [k, v] of r.raw) {
      const m = this.condMap(r, v);
      if (m !== v) made.push(m);
      names.push(`map:${k}`);
      ts.push(m);
    }
    for (const [b, v] of r.blocks) {
      names.push(`block:block_${b}`);
      ts.push(v);
    }
    if (r.out) {
      names.push('out');
      ts.push(r.out);
    }
    const data = await this.dev.read(ts);
    made.forEach((t) => this.dev.release(t));
    this.releaseRrdb(r);
    const maps = new Map<string, Tensor>();
    const blocks = new Map<string, Tensor>();
    let out: Tensor | undefined;
    names.forEach((nm, i) => {
      const t = new Tensor(data[i], ts[i].shape);
      if (nm.startsWith('map:')) maps.set(nm.slice(4), t);
      else if (nm.startsWith('block:')) blocks.set(nm.slice(6), t);
      else out = t;
    });
    return { maps, blocks, out };
  }

  // ------------------------------------------------------------------ conditioning

  /**
   * conv3×3(cat(own, up2(stacked)), w) without the map (flow/condconv.ts): a 3×3 conv of own plus
   * the interleaved phases of one 2×2 conv (pad 1) of the LR-size stacked blocks. `w` is the
   * weight over the whole map's channels (data: its values, when derived from a slice).
   */
  private convPhased(own: GTensor, stacked: GTensor, w: Tensor, kind: string, data?: () => Tensor): GTensor {
    const ownC = own.shape[1];
    const pw = () => noGrad(() => phaseWeights(data ? data() : w, ownC));
    const cout = w.shape[0];
    const wo = this.weight(w, `${kind}:own`, () => pw().own.data as Float32Array, ownC);
    const sc = stacked.shape[1];
    const wp = this.derived(w, `${kind}:phases`, () => this.dev.uploadWeight(pw().phases.data as Float32Array, 4 * cout, sc, 2, 2));
    const out = this.conv(region(own), wo, null);
    const [n, , h, ww] = stacked.shape;
    const ph = this.dev.alloc([n, 4 * cout, h + 1, ww + 1]);
    this.dev.conv2d(region(stacked), wp, null, 1, region(ph));
    this.dev.phaseAdd(ph, out);
    this.dev.release(ph);
    return out;
  }

  /**
   * The conditioning of an LR batch, on the GPU: the RRDB, then for every conditional flow step the
   * injector net's output and the conditioning half of the coupling net's first conv (as
   * SRFlowNet.prepareConditioning; at the level at twice the LR size by phases on the LR-size
   * stacked blocks unless `phases` is false, as there). Nothing is read back.
   */
  prepare(lr: Tensor, opts: { phases?: boolean } = {}): GpuConditioning {
    this.net.checkLr(lr);
    const phases = opts.phases ?? this.net.condPhases;
    const dev = this.dev;
    const cfg = this.net.config;
    const r = this.rrdb(dev.upload(lr.data as Float32Array, lr.shape));
    const steps = new Map<number, { inj: GTensor; u0: GTensor }>();
    const injLd = new Map<number, GTensor>();
    const conds = new Map<number, GTensor>();
    // the stacked blocks in one LR-size tensor, for the levels at twice the LR size (phased convs)
    let stacked: GTensor | null = null;
    if (cfg.flow.stackConcat) {
      const bl = cfg.flow.stackBlocks.map((b) => r.blocks.get(b) as GTensor);
      const [n, , h, w] = bl[0].shape;
      stacked = dev.alloc([n, bl.reduce((a, t) => a + t.shape[1], 0), h, w]);
      let c0 = 0;
      for (const t of bl) {
        dev.copy(region(t), region(stacked, c0, t.shape[1]));
        c0 += t.shape[1];
      }
    }
    const phased = (own: GTensor) => phases && stacked !== null && own.shape[2] === 2 * stacked.shape[2] && own.shape[3] === 2 * stacked.shape[3];
    const lastUse = new Map<number, number>();
    this.gpuLayers.forEach((l, i) => {
      if (l.affine) lastUse.set(this.net.levelOf[i], i);
    });
    this.gpuLayers.forEach(({ affine: a }, i) => {
      if (!a) return;
      const level = this.net.levelOf[i];
      const own = r.raw.get(condKey(cfg, level));
      if (!own) throw new Error(`internal: missing conditioning map ${condKey(cfg, level)}`);
      const ff = a.fFeatures;
      const nn = a.nn;
      const wFull = a.fAffine.l0.weight;
      const cinAll = wFull.shape[1];
      let inj: GTensor;
      let u0: GTensor;
      if (phased(own)) {
        inj = this.afterFirstConv(this.convPhased(own, stacked as GTensor, ff.l0.weight, 'f'), ff);
        u0 = this.convPhased(own, stacked as GTensor, wFull, 'u', () => T.slice(wFull, 1, nn, cinAll));
      } else {
        let cond = conds.get(level);
        if (!cond) {
          cond = this.condMap(r, own);
          conds.set(level, cond);
        }
        inj = this.afterFirstConv(this.conv(region(cond), this.weight(ff.l0.weight), null), ff);
        const wu = this.weight(wFull, 'u', () => noGrad(() => T.slice(wFull, 1, nn, cinAll).data as Float32Array), cinAll - nn);
        u0 = this.conv(region(cond), wu, null);
      }
      steps.set(i, { inj, u0 });
      const ld = dev.zeros([lr.shape[0], 1, 1, 1]);
      dev.reduce(0, region(inj), null, a.eps, ld, 1, 0);
      injLd.set(i, ld);
      const cond = conds.get(level);
      if (lastUse.get(level) === i && cond && cond !== own) dev.release(cond);
    });
    dev.release(stacked);
    this.releaseRrdb(r);
    let bytes = 0;
    for (const st of steps.values()) bytes += (st.inj.size + st.u0.size) * 4;
    return { lrShape: lr.shape.slice(), steps, injLd, bytes };
  }

  /** Free a conditioning's GPU buffers. */
  release(c: GpuConditioning): void {
    for (const s of c.steps.values()) {
      this.dev.release(s.inj);
      this.dev.release(s.u0);
    }
    for (const t of c.injLd.values()) this.dev.release(t);
    c.steps.clear();
    c.injLd.clear();
  }

  /** cp = the coupling net's output for z1 against the prepared conditioning. */
  private coupling(z1: Region, a: CondAffine, i: number, c: GpuConditioning): GTensor {
    const s = c.steps.get(i);
    if (!s) throw new Error(`internal: no prepared conditioning for layer ${i}`);
    const wFull = a.fAffine.l0.weight;
    const wz = this.weight(wFull, 'z', () => noGrad(() => T.slice(wFull, 1, 0, a.nn).data as Float32Array), a.nn);
    const pre = this.conv(z1, wz, null, region(s.u0), s.u0.shape[0] !== z1.t.shape[0]);
    return this.afterFirstConv(pre, a.fAffine);
  }

  /** A step's invertible 1×1 conv (or its inverse) of h (released); adds its log-determinant to the pass. */
  private invconvStep(step: FlowStep, h: GTensor, inverse: boolean, p: GpuPass): GTensor {
    const [, , H, W] = h.shape;
    const wt = step.invconv.weight;
    const c = step.invconv.channels;
    const w = inverse ? this.weight(wt, 'inv', () => Float32Array.from(invertMatrix(wt.data, c)), c) : this.weight(wt, 'fwd', undefined, c);
    const logdet = this.derivedNumber(wt, 'logdet', () => noGrad(() => T.logAbsDet(wt).item()));
    const o = this.conv(region(h), w, null);
    this.dev.release(h);
    if (inverse) p.ldConst -= H * W * logdet;
    else p.ldConst += H * W * logdet;
    return o;
  }

  private numbers = new Map<object, Map<string, { version: number; data: unknown; value: number }>>();
  private derivedNumber(owner: Tensor, kind: string, make: () => number): number {
    let m = this.numbers.get(owner);
    if (!m) this.numbers.set(owner, (m = new Map()));
    const v = parameterVersion();
    const c = m.get(kind);
    if (c && c.version === v && c.data === owner.data) return c.value;
    const value = make();
    m.set(kind, { version: v, data: owner.data, value });
    return value;
  }

  private sumLogs(a: ActNorm): number {
    let s = 0;
    for (const v of a.logs.data) s += v;
    return Math.fround(s);
  }

  private checkLatents(latents: Tensor[], c: GpuConditioning): number {
    const B = c.lrShape[0] === 1 && latents.length ? latents[0].shape[0] : c.lrShape[0];
    const shapes = this.net.latentShapes([B, ...c.lrShape.slice(1)]);
    if (latents.length !== shapes.length || latents.some((z, i) => z.shape.length !== 4 || z.shape.some((d, j) => d !== shapes[i][j]))) {
      throw new Error(`Expected latents of shapes ${JSON.stringify(shapes)} but received ${JSON.stringify(latents.map((z) => z.shape))}`);
    }
    return B;
  }

  // ------------------------------------------------------------------ the flow's layers on the GPU

  /** The GPU counterpart of a layer: the one place that tells the layer kinds apart. */
  private gpuLayer(layer: Layer): GpuLayer {
    switch (layer.kind) {
      case 'squeeze':
        return {
          affine: null,
          forward: (h) => this.squeeze(h, false),
          inverse: (h) => this.squeeze(h, true),
        };
      case 'split':
        return { affine: null, forward: (h, p) => this.splitForward(layer, h, p), inverse: (h, p) => this.splitInverse(layer, h, p) };
      case 'flowstep':
        return { affine: layer.affine, forward: (h, p) => this.stepForward(layer, h, p), inverse: (h, p) => this.stepInverse(layer, h, p) };
    }
  }

  private squeeze(h: GTensor, inverse: boolean): GTensor {
    const o = this.dev.squeeze(h, inverse);
    this.dev.release(h);
    return o;
  }

  private splitForward(layer: Split2d, h: GTensor, p: GpuPass): GTensor {
    const dev = this.dev;
    const [n, C, H, W] = h.shape;
    const keep = layer.keep;
    const g = this.zeroConv(region(h, 0, keep), layer.conv);
    const eps = dev.alloc([n, C - keep, H, W]);
    dev.split(g, region(h, keep, C - keep), eps, true);
    // log N(z2; mean, exp(logs)) = −½ Σ (2·logs + ε² + log 2π)
    dev.reduce(2, region(g), eps, 0, p.ld, -0.5, -0.5 * LOG_2PI * (C - keep) * H * W);
    dev.release(g);
    p.latentsOut.push(eps);
    const z1 = dev.alloc([n, keep, H, W]);
    dev.copy(region(h, 0, keep), region(z1));
    dev.release(h);
    return z1;
  }

  private splitInverse(layer: Split2d, h: GTensor, p: GpuPass): GTensor {
    const dev = this.dev;
    const eps = p.latentsIn.pop() as Tensor;
    const [n, keep, H, W] = h.shape;
    const g = this.zeroConv(region(h), layer.conv);
    const out = dev.alloc([n, layer.channels, H, W]);
    dev.copy(region(h), region(out, 0, keep));
    const ge = dev.upload(eps.data as Float32Array, eps.shape);
    dev.split(g, region(out, keep, layer.channels - keep), ge, false);
    // −log N(z2; mean, exp(logs)) = ½ Σ (2·logs + ε² + log 2π)
    if (p.needLogdet) dev.reduce(2, region(g), ge, 0, p.ld, 0.5, 0.5 * LOG_2PI * (eps.size / p.batch));
    dev.release(g);
    dev.release(ge);
    dev.release(h);
    return out;
  }

  /** The conditional affine's first half (forward; its inverse second): all of h by the prepared injector output. */
  private injectorAffine(a: CondAffine, h: GTensor, inverse: boolean, p: GpuPass): void {
    const st = p.c.steps.get(p.i);
    if (!st) throw new Error(`internal: no prepared conditioning for layer ${p.i}`);
    this.dev.affineFromNet(region(h), st.inj, a.eps, inverse);
    if (inverse && !p.needLogdet) return;
    const il = p.c.injLd.get(p.i)!;
    this.dev.axpby(region(p.ld), 1, region(il), inverse ? -1 : 1, il.shape[0] !== p.batch);
  }

  /** The conditional affine's coupling half: h's channels from nn on by the coupling net of those before. */
  private couplingAffine(a: CondAffine, h: GTensor, inverse: boolean, p: GpuPass): void {
    const cp = this.coupling(region(h, 0, a.nn), a, p.i, p.c);
    this.dev.affineFromNet(region(h, a.nn, a.co), cp, a.eps, inverse);
    if (!inverse || p.needLogdet) this.dev.reduce(0, region(cp), null, a.eps, p.ld, inverse ? -1 : 1, 0);
    this.dev.release(cp);
  }

  /** ActNorm, invertible 1×1 conv, then the conditional affine against the prepared conditioning. */
  private stepForward(layer: FlowStep, h: GTensor, p: GpuPass): GTensor {
    const [, , H, W] = h.shape;
    const an = layer.actnorm;
    this.actnorm(h, an, false);
    p.ldConst += H * W * this.sumLogs(an);
    const o = this.invconvStep(layer, h, false, p);
    const a = layer.affine;
    if (a) {
      this.injectorAffine(a, o, false, p);
      this.couplingAffine(a, o, false, p);
    }
    return o;
  }

  private stepInverse(layer: FlowStep, h: GTensor, p: GpuPass): GTensor {
    const dev = this.dev;
    const [, , H, W] = h.shape;
    const a = layer.affine;
    if (a) {
      this.couplingAffine(a, h, true, p);
      this.injectorAffine(a, h, true, p);
    }
    const o = this.invconvStep(layer, h, true, p);
    // ActNorm inverse: y·e⁻ − b = (y − b·e⁺)·e⁻
    const an = layer.actnorm;
    dev.channelAffine(region(o), this.vec(an.bias, 'b2', (b) => Float32Array.from(b, (v, k) => -v / Math.exp(-an.logs.data[k]))), this.expVec(an.logs, -1), false);
    p.ldConst -= H * W * this.sumLogs(an);
    return o;
  }

  /** The one loop over the GPU layers (as flow/run.ts's runFlow): first to last, or last to first. */
  private runGpuFlow(h: GTensor, dir: 'forward' | 'inverse', p: GpuPass): GTensor {
    const n = this.gpuLayers.length;
    for (let k = 0; k < n; k++) {
      p.i = dir === 'forward' ? k : n - 1 - k;
      const layer = this.gpuLayers[p.i];
      h = dir === 'forward' ? layer.forward(h, p) : layer.inverse(h, p);
    }
    return h;
  }

  private pass(c: GpuConditioning, batch: number, o: Partial<GpuPass>): GpuPass {
    return { i: 0, c, batch, ld: this.dev.zeros([batch, 1, 1, 1]), ldConst: 0, needLogdet: true, latentsIn: [], latentsOut: [], ...o };
  }

  // ------------------------------------------------------------------ decode / encode

  /** Latents → HR against a prepared conditioning; one read-back. logdet: the decoding's (−encode's), per sample. */
  async decode(latents: Tensor[], c: GpuConditioning, opts: { logdet?: boolean } = {}): Promise<{ sr: Tensor; logdet: Tensor }> {
    const needLd = opts.logdet !== false;
    const B = this.checkLatents(latents, c);
    const dev = this.dev;
    const lat = latents.slice();
    const zL = lat.pop() as Tensor;
    const p = this.pass(c, B, { needLogdet: needLd, latentsIn: lat });
    const h = this.runGpuFlow(dev.upload(zL.data as Float32Array, zL.shape), 'inverse', p);
    const [sr, ldv] = await dev.read(needLd ? [h, p.ld] : [h]);
    dev.release(h);
    dev.release(p.ld);
    const logdet = needLd ? Float32Array.from(ldv, (v) => v + p.ldConst) : new Float32Array(1);
    return { sr: new Tensor(sr, h.shape), logdet: new Tensor(logdet, [logdet.length]) };
  }

  /**
   * HR → latents against a prepared conditioning (of the same batch); one read-back. `noise` is
   * added to hr; `quant` adds −H·W·ln(quant) to the log-determinant (as SRFlowNet.encodeWith).
   */
  async encode(hr: Tensor, c: GpuConditioning, opts: { noise?: Tensor; quant?: number } = {}): Promise<{ latents: Tensor[]; nll: Tensor; logdet: Tensor }> {
    const dev = this.dev;
    const B = hr.shape[0];
    const s = this.net.scale;
    if (hr.ndim !== 4 || hr.shape[1] !== 3 || B !== c.lrShape[0] || hr.shape[2] !== c.lrShape[2] * s || hr.shape[3] !== c.lrShape[3] * s) {
      throw new Error(`Expected hr of shape [${c.lrShape[0]},3,${c.lrShape[2] * s},${c.lrShape[3] * s}] (${s}× lr) but received [${hr.shape}]`);
    }
    const pixels = hr.shape[2] * hr.shape[3];
    const x = dev.upload(hr.data as Float32Array, hr.shape);
    if (opts.noise) {
      const nz = dev.upload(opts.noise.data as Float32Array, opts.noise.shape);
      dev.axpby(region(x), 1, region(nz), 1);
      dev.release(nz);
    }
    const p = this.pass(c, B, { ldConst: opts.quant ? -Math.log(opts.quant) * pixels : 0 });
    const h = this.runGpuFlow(x, 'forward', p);
    const latents = p.latentsOut;
    const ld = p.ld;
    latents.push(h);
    const lp = dev.zeros([B, 1, 1, 1]);
    dev.reduce(1, region(h), null, 0, lp, -0.5, (-0.5 * LOG_2PI * h.size) / B);
    const data = await dev.read([...latents, ld, lp]);
    for (const t of [...latents, ld, lp]) dev.release(t);
    const ldv = data[latents.length];
    const lpv = data[latents.length + 1];
    const logdet = Float32Array.from(ldv, (v) => v + p.ldConst);
    const nll = Float32Array.from(logdet, (v, b) => -(v + lpv[b]) / (Math.LN2 * pixels));
    return { latents: latents.map((t, k) => new Tensor(data[k], t.shape)), nll: new Tensor(nll, [B]), logdet: new Tensor(logdet, [B]) };
  }

  /** HR (with its LR) → latents, as SRFlowNet.encode. */
  async encodeLr(hr: Tensor, lr: Tensor, opts: { noise?: Tensor; quant?: number } = {}): Promise<{ latents: Tensor[]; nll: Tensor; logdet: Tensor }> {
    this.net.checkPair(hr, lr);
    const c = this.prepare(lr);
    try {
      return await this.encode(hr, c, opts);
    } finally {
      this.release(c);
    }
  }

  /** Latents → HR given the LR, as SRFlowNet.decode. */
  async decodeLr(lr: Tensor, latents: Tensor[]): Promise<{ sr: Tensor; logdet: Tensor }> {
    this.net.checkLr(lr);
    const c = this.prepare(lr);
    try {
      return await this.decode(latents, c);
    } finally {
      this.release(c);
    }
  }
}

const perNet = new WeakMap<SRFlowNet, WebGpuSRFlow>();

/** The WebGPU runner of a model on the shared device (one per model and device: its weights stay uploaded). */
export async function webGpuRunner(net: SRFlowNet): Promise<WebGpuSRFlow> {
  const dev = await webGpuDevice();
  let r = perNet.get(net);
  if (!r || r.dev !== dev) {
    r = new WebGpuSRFlow(net, dev);
    perNet.set(net, r);
  }
  return r;
}
