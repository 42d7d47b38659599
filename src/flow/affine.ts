/**
 * The conditional affine step of SRFlow ("CondAffineSeparatedAndCond"): an injector (affine map
 * predicted from the conditioning alone) followed by an affine coupling (the second half of the
 * channels transformed by a map predicted from the first half and the conditioning).
 */
import { Tensor, allocOut, isGradEnabled, noGrad, parameterVersion, type Buf } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { affineFromNet, channelAffine, sumLogScale } from '../tensor/fused.js';
import type { Rng } from '../tensor/random.js';
import { ActNorm } from './actnorm.js';
import { normalInit } from './init.js';
import { zeroLogdet, type Workspace, type FlowContext, type FlowLayer, type FlowMode, type ForwardResult, type InverseResult } from './layer.js';
import { floorRawScales } from './guard.js';
import { CondInput, convUpsampledCond, phaseWeights, type CondParts, type PhaseWeights } from './condconv.js';

/**
 * A value derived from parameters (split or stacked weights), cached while no parameter changed
 * (`parameterVersion`); never cached while a tape is recorded (there it must stay on the tape).
 */
export class DerivedWeights<V> {
  private entry: { version: number; value: V } | null = null;
  get(make: () => V): V {
    if (isGradEnabled()) return make();
    const v = parameterVersion();
    if (!this.entry || this.entry.version !== v) {
      this.entry = null; // drop the stale value before making the new one
      this.entry = { version: v, value: make() };
    }
    return this.entry.value;
  }
  clear(): void {
    this.entry = null;
  }
}

/** ZeroConv: (conv3×3(x) + bias) · exp(3·logs); zero-initialised. */
export class ZeroConv {
  weight: Tensor;
  bias: Tensor;
  logs: Tensor;
  constructor(
    readonly cin: number,
    readonly cout: number,
  ) {
    this.weight = Tensor.param(new Float32Array(cout * cin * 9), [cout, cin, 3, 3]);
    this.bias = Tensor.param(new Float32Array(cout), [cout]);
    this.logs = Tensor.param(new Float32Array(cout), [cout, 1, 1]);
  }
  parameters(): [string, Tensor][] {
    return [
      ['weight', this.weight],
      ['bias', this.bias],
      ['logs', this.logs],
    ];
  }
  apply(x: Tensor): Tensor {
    return channelAffine(T.conv2d(x, this.weight), this.bias, this.logs, 3, false, true);
  }
}

/** Conv (no bias) followed by a plain ActNorm (its log-determinant is not counted). */
export class ConvActNorm {
  weight: Tensor;
  actnorm: ActNorm;
  constructor(cin: number, cout: number, k: number, mode: FlowMode, rng: Rng) {
    this.weight = Tensor.param(normalInit(cout * cin * k * k, 0.05, rng), [cout, cin, k, k]);
    this.actnorm = new ActNorm(cout, mode);
  }
  parameters(): [string, Tensor][] {
    return [['weight', this.weight], ...this.actnorm.parameters().map(([n, t]): [string, Tensor] => [`actnorm.${n}`, t])];
  }
  apply(x: Tensor, relu = false): Tensor {
    return this.actnorm.apply(T.conv2d(x, this.weight), relu, true);
  }
}

/** NN(in, out) = Conv3×3(in→hidden)+ActNorm → ReLU → Conv1×1+ActNorm → ReLU → ZeroConv3×3(hidden→out). */
export class CouplingNet {
  readonly l0: ConvActNorm;
  readonly l2: ConvActNorm;
  readonly l4: ZeroConv;
  constructor(
    readonly cin: number,
    readonly cout: number,
    hidden: number,
    mode: FlowMode,
    rng: Rng,
  ) {
    this.l0 = new ConvActNorm(cin, hidden, 3, mode, rng);
    this.l2 = new ConvActNorm(hidden, hidden, 1, mode, rng);
    this.l4 = new ZeroConv(hidden, cout);
  }
  parameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [i, m] of [
      [0, this.l0],
      [2, this.l2],
      [4, this.l4],
    ] as const) {
      for (const [n, t] of m.parameters()) out.push([`${i}.${n}`, t]);
    }
    return out;
  }
  apply(x: Tensor): Tensor {
    return this.l4.apply(this.l2.apply(this.l0.apply(x, true), true));
  }
  /** The rest of the net given the first conv's output (before its ActNorm). */
  applyAfterFirstConv(pre: Tensor, ownsPre = false): Tensor {
    return this.l4.apply(this.l2.apply(this.l0.actnorm.apply(pre, true, ownsPre), true));
  }
}

/**
 * What a conditional affine step needs from the conditioning alone, computed once per LR image:
 * the injector net's output and the conditioning half of the coupling net's first conv
 * (conv(cat(z1, u), W) = conv(z1, W_z) + conv(u, W_u)).
 */
export interface AffineCache {
  inj: Tensor;
  u0: Tensor;
  wz: Tensor;
}

export class CondAffine implements FlowLayer {
  readonly kind = 'affine';
  readonly fFeatures: CouplingNet;
  readonly fAffine: CouplingNet;
  readonly nn: number; // channels of z1 (fed to the coupling net)
  readonly co: number; // channels of z2 (transformed)

  constructor(
    readonly channels: number,
    readonly condChannels: number,
    hidden: number,
    readonly eps: number,
    mode: FlowMode,
    rng: Rng,
  ) {
    this.nn = Math.floor(channels / 2);
    this.co = channels - this.nn;
    // published key order: fAffine before fFeatures
    this.fAffine = new CouplingNet(this.nn + condChannels, 2 * this.co, hidden, mode, rng);
    this.fFeatures = new CouplingNet(condChannels, 2 * channels, hidden, mode, rng);
  }

  parameters(): [string, Tensor][] {
    return [
      ...this.fAffine.parameters().map(([n, t]): [string, Tensor] => [`fAffine.${n}`, t]),
      ...this.fFeatures.parameters().map(([n, t]): [string, Tensor] => [`fFeatures.${n}`, t]),
    ];
  }

  requireCond(cond: Tensor | null, x: Tensor): Tensor {
    if (!cond) throw new Error('Expected a conditioning map for the conditional affine step but received none');
    if (cond.shape[2] !== x.shape[2] || cond.shape[3] !== x.shape[3] || cond.shape[1] !== this.condChannels) {
      throw new Error(`Expected a conditioning map of shape [*,${this.condChannels},${x.shape[2]},${x.shape[3]}] but received [${cond.shape.join(',')}]`);
    }
    return cond;
  }

  private wzCache = new DerivedWeights<Tensor>();
  private wuCache = new DerivedWeights<Tensor>();

  /** The z1 part of the coupling net's first-conv weight (cached per parameter version). */
  couplingWeightZ(): Tensor {
    return this.wzCache.get(() => T.slice(this.fAffine.l0.weight, 1, 0, this.nn));
  }

  /** The conditioning part of the coupling net's first-conv weight (cached per parameter version). */
  couplingWeightU(): Tensor {
    return this.wuCache.get(() => this.couplingWeightUFresh());
  }

  /** The conditioning part of the coupling net's first-conv weight, not cached. */
  couplingWeightUFresh(): Tensor {
    return T.slice(this.fAffine.l0.weight, 1, this.nn, this.nn + this.condChannels);
  }

  /** Precompute the conditioning-only parts (inference). */
  precompute(condIn: Tensor): AffineCache {
    const cond = this.requireCond(condIn, condIn);
    return { inj: this.fFeatures.apply(cond), u0: T.conv2d(cond, this.couplingWeightU()), wz: this.couplingWeightZ() };
  }

  /** The precompute given the first convs' outputs: `f0` of the injector net (owned), `u0` of the coupling's u-half. */
  precomputeFromFirstConvs(f0: Tensor, u0: Tensor): AffineCache {
    return { inj: this.fFeatures.applyAfterFirstConv(f0, true), u0, wz: this.couplingWeightZ() };
  }

  /**
   * What the step reads from the conditioning: the injector net's output and the coupling net as a
   * function of z1, either from the layer's precomputed conditioning (`ctx.cache`: the injector
   * output and the u-half of the coupling's first conv, computed once per LR image) or from the
   * level's map (`ctx.cond`: the nets as published, on the tape when one is recorded).
   */
  private conditioning(x: Tensor, ctx: FlowContext): { inj: Tensor; coupling: (z1: Tensor) => Tensor } {
    const c = ctx.cache;
    if (c) return { inj: c.inj, coupling: (z1) => this.fAffine.applyAfterFirstConv(T.add(T.conv2d(z1, c.wz), c.u0), true) };
    const cond = this.requireCond(ctx.cond, x);
    return { inj: this.fFeatures.apply(cond), coupling: (z1) => this.fAffine.apply(T.concat([z1, cond], 1)) };
  }

  forward(x: Tensor, ctx: FlowContext): ForwardResult {
    const { inj, coupling } = this.conditioning(x, ctx);
    // injector: affine map predicted from the conditioning alone
    const h = affineFromNet(x, inj, this.eps);
    // coupling: z2 transformed by a map predicted from z1 and the conditioning
    const z1 = T.slice(h, 1, 0, this.nn);
    const cp = coupling(z1);
    ctx.observe?.('inj', inj);
    ctx.observe?.('cp', cp);
    const z2 = affineFromNet(T.slice(h, 1, this.nn, this.channels), cp, this.eps);
    return { y: T.concat([z1, z2], 1), logdet: T.add(sumLogScale(inj, this.eps), sumLogScale(cp, this.eps)) };
  }

  inverse(y: Tensor, ctx: FlowContext): InverseResult {
    if (ctx.cache && ctx.workspace && !isGradEnabled() && y.data instanceof Float32Array) return this.inverseInto(y, ctx.cache, ctx.workspace, ctx);
    const { inj, coupling } = this.conditioning(y, ctx);
    const z1 = T.slice(y, 1, 0, this.nn);
    const cp = coupling(z1);
    ctx.observe?.('inj', inj);
    ctx.observe?.('cp', cp);
    const g = isGradEnabled() ? null : ctx.guard;
    // the guard (sampling only): a cached injector output was floored when the cache was made
    if (g?.injRawFloor && !ctx.cache) floorRawScales(inj, g.injRawFloor, ctx.guardCounts);
    if (g?.cpRawFloor) floorRawScales(cp, g.cpRawFloor, ctx.guardCounts);
    const z2 = affineFromNet(T.slice(y, 1, this.nn, this.channels), cp, this.eps, true);
    const x = affineFromNet(T.concat([z1, z2], 1), inj, this.eps, true);
    if (!ctx.needLogdet) return { x, logdet: zeroLogdet(x) };
    return { x, logdet: T.neg(T.add(sumLogScale(cp, this.eps), sumLogScale(inj, this.eps))) };
  }

  /**
   * The inverse against a precomputed conditioning without a tape (sampling): the same arithmetic
   * as `inverse`, bit for bit, with less memory traffic. One sample at a time, so that a sample's
   * values never depend on how many are decoded together (the kernels' algorithm choice depends on
   * the batch) and one sample's intermediates stay in cache; the coupling net's intermediates live
   * in the workspace (its first conv's output takes the conditioning half in place); z1 is read
   * where it lies, z2 and x are written straight into the output's channel blocks (no slices, no
   * concatenation). Any number of samples against a conditioning of batch one, or a batch against
   * a conditioning of the same batch.
   */
  private inverseInto(y: Tensor, c: AffineCache, ws: Workspace, ctx: FlowContext): InverseResult {
    const needLogdet = ctx.needLogdet;
    const cpFloor = ctx.guard?.cpRawFloor ?? null;
    ctx.observe?.('inj', c.inj);
    const [n, C, H, W] = y.shape;
    const hw = H * W;
    const { nn, co, eps } = this;
    const net = this.fAffine;
    const hid = c.u0.shape[1];
    const ub = c.u0.shape[0] === n ? 1 : 0;
    const ib = c.inj.shape[0] === n ? 1 : 0;
    const Y = y.data as Float32Array;
    const X = allocOut(Y, Y.length) as Float32Array;
    const view = (a: Buf, o: number, ch: number) => new Tensor(a.subarray(o, o + ch * hw), [1, ch, H, W]);
    const cpSums = needLogdet ? new Float32Array(n) : null;
    for (let s = 0; s < n; s++) {
      const yo = s * C * hw;
      const io = ib * s * 2 * C * hw;
      // coupling net: conv(z1, W_z) + u0 (the conditioning half), ActNorm + ReLU, 1×1 conv, ActNorm + ReLU, ZeroConv
      const pre = T.conv2d(view(Y, yo, nn), c.wz, null, undefined, ws.get('affine.pre', hid * hw));
      T.axpy(1, view(c.u0.data, ub * s * hid * hw, hid), pre, pre.data);
      const h1 = net.l0.actnorm.apply(pre, true, true);
      const h2 = net.l2.actnorm.apply(T.conv2d(h1, net.l2.weight, null, undefined, ws.get('affine.h2', hid * hw)), true, true);
      const cp = channelAffine(T.conv2d(h2, net.l4.weight, null, undefined, ws.get('affine.cp', 2 * co * hw)), net.l4.bias, net.l4.logs, 3, false, true);
      ctx.observe?.('cp', cp);
      if (cpFloor) floorRawScales(cp, cpFloor, ctx.guardCounts, s);
      if (cpSums) cpSums[s] = sumLogScale(cp, eps).data[0];
      // x = [inj⁻¹(z1), inj⁻¹(cp⁻¹(z2))], written into the output's channel blocks
      const z2 = view(X, yo + nn * hw, co);
      affineFromNet(view(Y, yo + nn * hw, co), cp, eps, true, z2.data);
      affineFromNet(z2, view(c.inj.data, io + 2 * nn * hw, 2 * co), eps, true, z2.data);
      affineFromNet(view(Y, yo, nn), view(c.inj.data, io, 2 * nn), eps, true, X.subarray(yo, yo + nn * hw));
    }
    const x = new Tensor(X, y.shape.slice());
    if (!cpSums) return { x, logdet: zeroLogdet(x) };
    return { x, logdet: T.neg(T.add(new Tensor(cpSums, [n]), sumLogScale(c.inj, eps))) };
  }

  forwardShape(shape: readonly number[]): number[] {
    return shape.slice();
  }
}

/** Channels [c0, c0 + k) of an NCHW tensor: a view of its data for a batch of one, else a copy. */
function channelBlock(x: Tensor, c0: number, k: number): Tensor {
  const [n, c, h, w] = x.shape;
  if (n !== 1) return T.slice(x, 1, c0, c0 + k);
  if (c0 === 0 && k === c) return x;
  const hw = h * w;
  return new Tensor(x.data.subarray(c0 * hw, (c0 + k) * hw), [1, k, h, w]);
}

/**
 * Conditional affine steps that read the same conditioning map (the steps of one flow level), whose
 * conditioning-only first convolutions run as two convolutions with stacked weights: every
 * injector net's first conv in one, every coupling net's u-half in the other (the map is read once
 * per stack, and the GEMM has `layers.length`·hidden rows instead of hidden). The outputs are split
 * per step (views for a batch of one) and each injector net continues as before.
 */
export class CondAffineGroup {
  private stacked = new DerivedWeights<{ wf: Tensor; wu: Tensor }>();
  readonly hidden: number;

  constructor(readonly layers: readonly CondAffine[]) {
    if (!layers.length) throw new Error('Expected at least one conditional affine layer for a group but received none');
    this.hidden = layers[0].fFeatures.l0.weight.shape[0];
    for (const l of layers) {
      if (l.condChannels !== layers[0].condChannels || l.fFeatures.l0.weight.shape[0] !== this.hidden || l.fAffine.l0.weight.shape[0] !== this.hidden) {
        throw new Error('Expected conditional affine layers of equal conditioning channels and hidden width for a group');
      }
    }
  }

  /** The stacked first-conv weights [layers·hidden, condChannels, 3, 3] (cached per parameter version). */
  stackedWeights(): { wf: Tensor; wu: Tensor } {
    return this.stacked.get(() =>
      noGrad(() => ({
        wf: T.concat(
          this.layers.map((l) => l.fFeatures.l0.weight),
          0,
        ),
        wu: T.concat(
          this.layers.map((l) => l.couplingWeightUFresh()),
          0,
        ),
      })),
    );
  }

  private phased = new DerivedWeights<{ ownC: number; f: PhaseWeights; u: PhaseWeights }>();

  /** The stacked weights split for the phase decomposition over cat(own, up2(stacked)) (cached per parameter version). */
  phaseWeights(ownC: number): { f: PhaseWeights; u: PhaseWeights } {
    let pw = this.phased.get(() => this.makePhaseWeights(ownC));
    if (pw.ownC !== ownC) {
      this.phased.clear();
      pw = this.phased.get(() => this.makePhaseWeights(ownC));
    }
    return pw;
  }

  private makePhaseWeights(ownC: number): { ownC: number; f: PhaseWeights; u: PhaseWeights } {
    return noGrad(() => ({
      ownC,
      f: phaseWeights(
        T.concat(
          this.layers.map((l) => l.fFeatures.l0.weight),
          0,
        ),
        ownC,
      ),
      u: phaseWeights(
        T.concat(
          this.layers.map((l) => l.couplingWeightUFresh()),
          0,
        ),
        ownC,
      ),
    }));
  }

  /**
   * Every layer's precompute (inference). The conditioning map may come in parts (the RRDB's own
   * map and the stacked blocks): at twice the LR resolution the first convs then run by phases on
   * the LR-size stacked blocks (CondInput, convUpsampledCond). With a tape recorded, or with one
   * layer and a whole map, one layer at a time as before.
   */
  precompute(condIn: Tensor | CondParts | CondInput, opts: { phases?: boolean } = {}): AffineCache[] {
    const ci = CondInput.of(condIn);
    const shape = ci.shape;
    if (shape.length !== 4 || shape[1] !== this.layers[0].condChannels) {
      throw new Error(`Expected a conditioning map of shape [*,${this.layers[0].condChannels},*,*] but received [${shape.join(',')}]`);
    }
    const phases = opts.phases !== false && ci.upsampled;
    if (isGradEnabled() || (this.layers.length === 1 && !phases)) return this.layers.map((l) => l.precompute(ci.full()));
    let U: Tensor;
    let F: Tensor;
    if (phases) {
      const parts = ci.parts as CondParts;
      const pw = this.phaseWeights(parts.own.shape[1]);
      U = convUpsampledCond(parts, pw.u);
      F = convUpsampledCond(parts, pw.f);
    } else {
      const cond = ci.full();
      const { wf, wu } = this.stackedWeights();
      U = T.conv2d(cond, wu);
      F = T.conv2d(cond, wf);
    }
    // The stacked (or phase-split) weights are dropped once used unless asked to keep them: kept,
    // every group's copy (about 85 MB for paper4x) stays alive through the peak of inference;
    // rebuilt, they cost about 50 ms per LR image (EngineOptions.keepCondWeights, SRFLOW_COND_KEEP_WEIGHTS=1, keeps them).
    if (!CondAffineGroup.keepWeights) {
      this.stacked.clear();
      this.phased.clear();
    }
    const hid = this.hidden;
    return this.layers.map((l, g) => l.precomputeFromFirstConvs(channelBlock(F, g * hid, hid), channelBlock(U, g * hid, hid)));
  }

  /** Keep the stacked weights between conditioning passes (faster for many tiles, more memory). */
  static keepWeights = false;
}
