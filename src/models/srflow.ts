/**
 * SRFlowNet: RRDBNet conditioning + the multi-level conditional flow (`flowUpsamplerNet.layers`,
 * one flat list of squeezes, transition steps, flow steps and splits, indexed as published).
 */
import { Tensor, accumulateGrad, bumpParameterVersion, noGrad, result, type Buf } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { Rng } from '../tensor/random.js';
import { ActNorm } from '../flow/actnorm.js';
import { FlowStep } from '../flow/flowstep.js';
import { CondAffineGroup, type AffineCache } from '../flow/affine.js';
import { CondInput } from '../flow/condconv.js';
import { Split2d } from '../flow/split.js';
import { Squeeze } from '../flow/squeeze.js';
import { logNormal } from '../flow/gaussian.js';
import { lowMemoryNll } from '../flow/lowmem.js';
import { Workspace, flowContext, type FlowMode } from '../flow/layer.js';
import { runFlow, type FlowPlan } from '../flow/run.js';
import { floorRawScales, type FlowGuard } from '../flow/guard.js';
import { normalInit } from '../flow/init.js';
import { RRDBNet, type RRDBOutput } from './rrdbnet.js';
import { condChannels, condKey, type ModelConfig } from './config.js';

export type Layer = Squeeze | FlowStep | Split2d;

/** Default flow steps per batched conditioning precompute (see SRFlowNet.condGroup; chosen by measurement, docs/PERFORMANCE.md). */
export const DEFAULT_COND_GROUP = 4;

export interface EncodeResult {
  /** ε of each split level from the first upwards, then z_L. */
  latents: Tensor[];
  /** Per-sample negative log-likelihood in bits per HR pixel (the published objective). */
  nll: Tensor;
  /** Per-sample log-determinant of the flow, including the split priors' log-densities. */
  logdet: Tensor;
}

export interface ConditioningCache {
  lrShape: number[];
  /** Conditioning map per level (kept only when asked for: the step caches replace them). */
  conds: Tensor[];
  /** Per flow step with a conditional affine (by layer index): injector output and u-half of the coupling's first conv. */
  steps: Map<number, AffineCache>;
  /** Bytes held by the cache. */
  bytes: number;
  /** The sampling guard its decodes use (SRFlowNet.guard when enabled), or null. */
  guard: FlowGuard | null;
  /** Values of the injector outputs the guard floored when the cache was made (shared by its decodes). */
  guardTouched: number;
  /** Scratch buffers of the decodes against this cache, made by the first and reused by the next (`decodeCached`). */
  workspace?: Workspace;
}

export class SRFlowNet {
  /** Model-wide mode: training-mode forwards initialise ActNorms from data. */
  readonly ctx: FlowMode = { training: false };
  readonly rrdb: RRDBNet;
  readonly layers: Layer[] = [];
  /** Flow level (1-based) of each layer. */
  readonly levelOf: number[] = [];
  /** The flow steps by layer index (as built: no type tests on the layer list). */
  private readonly steps: { index: number; step: FlowStep }[] = [];
  /** The layers and the conditioning map (0-based level) of each, as runFlow takes them. */
  readonly plan: FlowPlan;
  /** `flowUpsamplerNet.f.0` — present in published checkpoints, unused by the flow. */
  extra: Map<string, Tensor> = new Map();
  readonly condChannels: number;
  /**
   * The sampling guard (flow/guard.ts) calibrated for this model on training photos (from the
   * model file's `flow_guard` metadata), or null (published checkpoints, uncalibrated models).
   * Used by prepareConditioning / decodeCached when their `guard` option allows (default: on when present).
   */
  guard: FlowGuard | null = null;
  /**
   * The LR consistency its outputs get by default when upscaling ('exact': back-projected so that the
   * bicubic downscale equals the input; see src/upscale/consistency.ts). From the model file's
   * `consistency` metadata; 'none' for published checkpoints and files without it.
   */
  defaultConsistency: 'none' | 'exact' = 'none';

  /** `seed` (or a generator) for the published initialisation. */
  constructor(readonly config: ModelConfig, seed: number | Rng = 0) {
    const rng = typeof seed === 'number' ? new Rng(seed) : seed;
    this.rrdb = new RRDBNet(config, rng);
    const { flow } = config;
    this.condChannels = condChannels(config);
    const cond = { channels: this.condChannels, hidden: flow.hidden, eps: flow.eps };
    let C = config.inNc;
    for (let l = 1; l <= flow.L; l++) {
      const push = (layer: Layer) => {
        this.layers.push(layer);
        this.levelOf.push(l);
      };
      const pushStep = (step: FlowStep) => {
        this.steps.push({ index: this.layers.length, step });
        push(step);
      };
      push(new Squeeze());
      C *= 4;
      for (let i = 0; i < flow.additionalFlowNoAffine; i++) pushStep(new FlowStep(C, null, this.ctx, rng));
      for (let i = 0; i < flow.K[l - 1]; i++) pushStep(new FlowStep(C, cond, this.ctx, rng));
      if (flow.split && l < flow.L - 1) {
        const s = new Split2d(C);
        push(s);
        C = s.keep;
      }
    }
    this.plan = { layers: this.layers, levelIndex: this.levelOf.map((l) => l - 1) };
    const fOut = flow.split ? 96 : 384;
    this.extra.set('flowUpsamplerNet.f.0.weight', Tensor.param(normalInit(fOut * this.condChannels * 9, 0.05, rng), [fOut, this.condChannels, 3, 3]));
    this.extra.set('flowUpsamplerNet.f.0.bias', Tensor.param(new Float32Array(fOut), [fOut]));
  }

  get scale(): number {
    return this.config.scale;
  }

  /** Every parameter under its published name, in published order. */
  parameters(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, t] of this.rrdb.parameters()) out.set(`RRDB.${n}`, t);
    this.layers.forEach((l, i) => {
      for (const [n, t] of l.parameters()) out.set(`flowUpsamplerNet.layers.${i}.${n}`, t);
    });
    for (const [n, t] of this.extra) out.set(n, t);
    return out;
  }

  flowParameters(): [string, Tensor][] {
    return [...this.parameters()].filter(([n]) => !n.startsWith('RRDB.'));
  }
  rrdbParameters(): [string, Tensor][] {
    return [...this.parameters()].filter(([n]) => n.startsWith('RRDB.'));
  }

  actNorms(): ActNorm[] {
    const out: ActNorm[] = [];
    for (const { step: l } of this.steps) {
      out.push(l.actnorm);
      if (l.affine) for (const net of [l.affine.fAffine, l.affine.fFeatures]) out.push(net.l0.actnorm, net.l2.actnorm);
    }
    return out;
  }

  /** Mark ActNorms initialised according to their (loaded) biases. */
  markLoaded(): void {
    bumpParameterVersion();
    for (const a of this.actNorms()) a.initialized = a.bias.data.some((v) => v !== 0);
  }

  /** The conditioning map of each level (index ℓ − 1). */
  conditioning(rrdbOut: RRDBOutput): Tensor[] {
    const out: Tensor[] = [];
    for (let l = 1; l <= this.config.flow.L; l++) {
      const m = rrdbOut.maps.get(condKey(this.config, l));
      if (!m) throw new Error(`internal: missing conditioning map ${condKey(this.config, l)}`);
      out.push(m);
    }
    return out;
  }

  checkPair(hr: Tensor, lr: Tensor): void {
    const s = this.scale;
    if (hr.ndim !== 4 || lr.ndim !== 4 || hr.shape[1] !== 3 || lr.shape[1] !== 3) {
      throw new Error(`Expected NCHW RGB tensors for hr and lr but received [${hr.shape}] and [${lr.shape}]`);
    }
    if (hr.shape[0] !== lr.shape[0] || hr.shape[2] !== lr.shape[2] * s || hr.shape[3] !== lr.shape[3] * s) {
      throw new Error(`Expected hr of shape [${lr.shape[0]},3,${lr.shape[2] * s},${lr.shape[3] * s}] (${s}× lr) but received [${hr.shape}]`);
    }
    this.checkLr(lr);
  }

  checkLr(lr: Tensor): void {
    const m = 2 ** this.config.flow.L / this.scale;
    if (lr.ndim !== 4 || lr.shape[1] !== 3) throw new Error(`Expected an NCHW RGB tensor for lr but received shape [${lr.shape}]`);
    if (m > 1 && (lr.shape[2] % m || lr.shape[3] % m)) {
      throw new Error(`Expected LR height and width divisible by ${m} for this model (scale ${this.scale}, L=${this.config.flow.L}) but received ${lr.shape[2]}×${lr.shape[3]}`);
    }
  }

  /**
   * HR → latents. Runs in whatever grad mode is active. `noise` is added to hr (dequantisation);
   * `quant` adds the −H·W·ln(quant) term to the log-determinant.
   */
  encodeWith(hr: Tensor, conds: Tensor[], opts: { noise?: Tensor; quant?: number; cache?: ConditioningCache } = {}): EncodeResult {
    const B = hr.shape[0];
    const pixels = hr.shape[2] * hr.shape[3];
    const x = opts.noise ? T.add(hr, opts.noise) : hr;
    let logdet: Tensor = Tensor.zeros([B], hr.dtype);
    if (opts.quant) logdet = T.addScalar(logdet, -Math.log(opts.quant) * pixels);
    const ctx = flowContext();
    const r = runFlow(this.plan, x, 'forward', ctx, { conds, caches: opts.cache?.steps, logdet });
    const latents = [...ctx.latents, r.out];
    const objective = T.add(r.logdet, logNormal(r.out, null, null));
    const nll = T.scale(objective, -1 / (Math.LN2 * pixels));
    return { latents, nll, logdet: r.logdet };
  }

  /** Latents → HR. Returns the image and the log-determinant of the decoding (−encode's). */
  decodeWith(
    latents: Tensor[],
    conds: Tensor[],
    opts: { cache?: ConditioningCache; logdet?: boolean; workspace?: Workspace; guard?: FlowGuard | null; guardCounts?: Float64Array } = {},
  ): { sr: Tensor; logdet: Tensor } {
    const ctx = flowContext({ latents: latents.slice(0, -1), needLogdet: opts.logdet !== false, workspace: opts.workspace, guardCounts: opts.guardCounts });
    const r = runFlow(this.plan, latents[latents.length - 1], 'inverse', ctx, { conds, caches: opts.cache?.steps, guard: opts.guard });
    return { sr: r.out, logdet: r.logdet };
  }

  /** Layers whose inverse the guard can protect, with their output and scale channels: conditional flow steps and splits. */
  guardableLayer(i: number): { out: number; scaleInj: number; scaleCp: number } | null {
    const l = this.layers[i];
    if (l instanceof FlowStep && l.affine) return { out: l.affine.channels, scaleInj: l.affine.channels, scaleCp: l.affine.co };
    if (l instanceof Split2d) return { out: l.keep, scaleInj: 0, scaleCp: 0 };
    return null;
  }

  /** The guard a conditioning pass uses: `want` undefined = this.guard; true requires one. */
  private guardFor(want: boolean | undefined): FlowGuard | null {
    if (want === false) return null;
    if (want === true && !this.guard) throw new Error('Expected a model with a sampling-guard calibration for guard: true but this model carries none (published checkpoints never do; see scripts/calibrate-guard.ts)');
    return this.guard;
  }

  /** Latent shapes [B, C, H, W] for an LR shape [B, 3, h, w], in published order. */
  latentShapes(lrShape: readonly number[]): number[][] {
    const [B, , lh, lw] = lrShape;
    const H = lh * this.scale;
    const W = lw * this.scale;
    const C = this.config.inNc;
    const out: number[][] = [];
    let shape = [B, C, H, W];
    for (const layer of this.layers) shape = layer.forwardShape(shape, out);
    out.push(shape);
    return out;
  }

  /**
   * Draw latents at temperature τ. Order of draws: z_L first, then each split's ε from the highest
   * level down (as the published seeded sampler).
   */
  drawLatents(lrShape: readonly number[], temperature: number, rng: Rng): Tensor[] {
    const shapes = this.latentShapes(lrShape);
    const lat = shapes.map((s) => Tensor.zeros(s));
    if (temperature > 0) for (let i = lat.length - 1; i >= 0; i--) rng.fillNormal(lat[i].data, temperature);
    return lat;
  }

  rrdbForward(lr: Tensor, opts: { withOut?: boolean } = {}): RRDBOutput {
    this.checkLr(lr);
    return this.rrdb.forward(lr, opts);
  }

  // ------------------------------------------------------------------ inference helpers

  encode(hr: Tensor, lr: Tensor, opts: { noise?: Tensor; quant?: number } = {}): EncodeResult {
    this.checkPair(hr, lr);
    return noGrad(() => this.encodeWith(hr, this.conditioning(this.rrdb.forward(lr)), opts));
  }

  decode(lr: Tensor, latents: Tensor[]): { sr: Tensor; logdet: Tensor } {
    this.checkLr(lr);
    const shapes = this.latentShapes(lr.shape);
    if (latents.length !== shapes.length) throw new Error(`Expected ${shapes.length} latents for decode but received ${latents.length}`);
    latents.forEach((z, i) => {
      if (z.shape.length !== 4 || z.shape.some((d, j) => d !== shapes[i][j])) {
        throw new Error(`Expected latent ${i} of shape [${shapes[i]}] but received [${z.shape}]`);
      }
    });
    return noGrad(() => this.decodeWith(latents, this.conditioning(this.rrdb.forward(lr))));
  }

  /** The defaults of condGroup and condPhases for models made from now on (EngineOptions, src/models/engine.ts). */
  static engineDefaults = { condGroup: DEFAULT_COND_GROUP, condPhases: true };
  /**
   * Flow steps per batched precompute (CondAffineGroup): their conditioning-only first convs run as
   * one stacked conv each for the injectors and the coupling u-halves. 1 = one step at a time;
   * 0 = a whole level. Default: EngineOptions.condGroup (the CLI: SRFLOW_COND_GROUP), else DEFAULT_COND_GROUP.
   */
  condGroup: number = SRFlowNet.engineDefaults.condGroup;
  /**
   * Run the first convs of the level at twice the LR resolution by phases on the LR-size stacked
   * blocks (flow/condconv.ts) instead of on the materialised map. Default true; EngineOptions.condPhases (the CLI: SRFLOW_COND_PHASES=0) turns it off.
   */
  condPhases: boolean = SRFlowNet.engineDefaults.condPhases;
  private groupsBySize = new Map<number, { level: number; indices: number[]; group: CondAffineGroup }[]>();

  /** The conditional affine steps in groups of up to `size` consecutive steps of one level (0: the whole level). */
  affineGroups(size: number): { level: number; indices: number[]; group: CondAffineGroup }[] {
    if (!(Number.isInteger(size) && size >= 0)) throw new Error(`Expected a non-negative integer group size but received ${size}`);
    let out = this.groupsBySize.get(size);
    if (out) return out;
    out = [];
    let run: number[] = [];
    const flush = () => {
      const n = size === 0 ? run.length : size;
      for (let s = 0; s < run.length; s += n) {
        const indices = run.slice(s, s + n);
        out!.push({ level: this.levelOf[indices[0]], indices, group: new CondAffineGroup(indices.map((i) => (this.layers[i] as FlowStep).affine!)) });
      }
      run = [];
    };
    const affine = new Set(this.steps.filter((s) => s.step.affine).map((s) => s.index));
    this.layers.forEach((_layer, i) => {
      const isAffine = affine.has(i);
      if (run.length && (!isAffine || this.levelOf[i] !== this.levelOf[run[0]])) flush();
      if (isAffine) run.push(i);
    });
    if (run.length) flush();
    this.groupsBySize.set(size, out);
    return out;
  }

  /**
   * Conditioning of an LR batch, computed once and reused for any number of decodes: for every
   * flow step, the injector net's output and the conditioning half of the coupling net's first
   * conv (both depend on the LR image only): per-sample work at level 1 drops from ~400 k to
   * ~15 k multiply-adds per pixel (docs/ARCHITECTURE.md step 2; measured in docs/PERFORMANCE.md,
   * "Inference: batched and phased conditioning convolutions").
   */
  prepareConditioning(lr: Tensor, opts: { keepConds?: boolean; condGroup?: number; condPhases?: boolean; guard?: boolean } = {}): ConditioningCache {
    const guard = this.guardFor(opts.guard);
    this.checkLr(lr);
    return noGrad(() => {
      const out = this.rrdb.forward(lr, { factored: true });
      const inputs: (CondInput | null)[] = [];
      for (let l = 1; l <= this.config.flow.L; l++) {
        const p = out.parts.get(condKey(this.config, l));
        if (!p) throw new Error(`internal: missing conditioning map ${condKey(this.config, l)}`);
        inputs.push(new CondInput(null, p));
      }
      const steps = new Map<number, AffineCache>();
      let bytes = 0;
      const phases = opts.condPhases ?? this.condPhases;
      const groups = this.affineGroups(opts.condGroup ?? this.condGroup);
      const conds = opts.keepConds ? inputs.map((c) => (c as CondInput).full()) : [];
      groups.forEach(({ level, indices, group }, gi) => {
        const cs = group.precompute(inputs[level - 1] as CondInput, { phases });
        if (groups[gi + 1]?.level !== level) inputs[level - 1] = null; // a level's whole map (if made) can go
        cs.forEach((c, j) => {
          steps.set(indices[j], c);
          bytes += (c.inj.size + c.u0.size + c.wz.size) * 4;
        });
      });
      if (opts.keepConds) bytes += conds.reduce((s, c) => s + c.size * 4, 0);
      let guardTouched = 0;
      if (guard) {
        for (const [i, c] of steps) {
          const f = guard.layer(i)?.injRawFloor;
          if (f) guardTouched += floorRawScales(c.inj, f);
        }
      }
      return { lrShape: lr.shape.slice(), conds, steps, bytes, guard, guardTouched };
    });
  }

  /**
   * Decode latents against a prepared conditioning (inference; no tape). A batch of latents against
   * a conditioning of batch 1 decodes that many samples of the one image together. `workspace`:
   * scratch buffers to reuse across calls (default: the cache's own, made by its first decode, so
   * that many decodes against one conditioning allocate their scratch once). With the cache's sampling
   * guard (see prepareConditioning's `guard`), `guardTouched` counts per sample the values it changed
   * (the cache's own `guardTouched` not included).
   */
  decodeCached(latents: Tensor[], cache: ConditioningCache, opts: { logdet?: boolean; workspace?: Workspace } = {}): { sr: Tensor; logdet: Tensor; guardTouched: number[] | null } {
    const needLogdet = opts.logdet !== false;
    // a cache of batch 1 decodes any number of samples at once (latent batch = samples)
    const B = cache.lrShape[0] === 1 && latents.length ? latents[0].shape[0] : cache.lrShape[0];
    const shapes = this.latentShapes([B, ...cache.lrShape.slice(1)]);
    if (latents.length !== shapes.length || latents.some((z, i) => z.shape.some((d, j) => d !== shapes[i][j]))) {
      throw new Error(`Expected latents of shapes ${JSON.stringify(shapes)} but received ${JSON.stringify(latents.map((z) => z.shape))}`);
    }
    const workspace = opts.workspace ?? (cache.workspace ??= new Workspace());
    const guard = cache.guard ?? null;
    const guardCounts = guard ? new Float64Array(B) : undefined;
    const r = noGrad(() => this.decodeWith(latents, [], { cache, logdet: needLogdet, workspace, guard, guardCounts }));
    return { ...r, guardTouched: guardCounts ? Array.from(guardCounts) : null };
  }

  /** Encode against a prepared conditioning (inference; no tape). */
  encodeCached(hr: Tensor, cache: ConditioningCache, opts: { noise?: Tensor; quant?: number } = {}): EncodeResult {
    return noGrad(() => this.encodeWith(hr, [], { ...opts, cache }));
  }

  /** Mean NLL loss of hr (+ noise) given lr, in training mode, with the tape recorded. */
  loss(hr: Tensor, lr: Tensor, opts: { noise?: Tensor; quant?: number; lowMemory?: boolean; frozenRrdb?: boolean } = {}): { loss: Tensor; nll: Tensor } {
    this.checkPair(hr, lr);
    if (opts.lowMemory && !opts.frozenRrdb) return this.lossFromConditioning(hr, this.checkpointedConditioning(lr), opts);
    return this.lossFromConditioning(hr, this.trainingConditioning(lr, opts.frozenRrdb), opts);
  }

  /** The conditioning maps of lr in training: on the tape, or without one while the RRDB is frozen. */
  trainingConditioning(lr: Tensor, frozenRrdb = false): Tensor[] {
    const rrdb = () => this.conditioning(this.rrdb.forward(lr));
    return frozenRrdb ? noGrad(rrdb) : rrdb();
  }

  /**
   * Gradient checkpointing of the RRDB (low-memory training): the conditioning maps are computed
   * without a tape; once the backward pass has gathered the gradients of every map, the RRDB's
   * blocks are recomputed one at a time with a local tape (RRDBNet.forwardCheckpointed). The RRDB's
   * activations then never live during the flow's backward, and only one block's at a time.
   */
  private checkpointedConditioning(lr: Tensor): Tensor[] {
    const { maps, backward } = this.rrdb.forwardCheckpointed(lr, (o) => this.conditioning(o));
    const grads: (Buf | null)[] = maps.map(() => null);
    const anchor = this.rrdb.parameters()[0][1]; // puts the hub on the tape; it receives no gradient from it
    // The hub is the common parent of the maps, so its backward runs after all of theirs.
    const hub = result(new Float32Array(1), [1], [anchor], () => {
      backward(grads);
      grads.fill(null);
    });
    return maps.map((c, j) =>
      result(c.data, c.shape, [hub], (g) => {
        grads[j] = g;
        accumulateGrad(hub, new Float32Array(1), true);
      }),
    );
  }

  /** Mean NLL given the conditioning maps; `lowMemory` recomputes flow activations by inversion. */
  lossFromConditioning(hr: Tensor, conds: Tensor[], opts: { noise?: Tensor; quant?: number; lowMemory?: boolean } = {}): { loss: Tensor; nll: Tensor } {
    if (opts.lowMemory) {
      const x = opts.noise ? T.add(hr, opts.noise) : hr;
      const constLd = opts.quant ? -Math.log(opts.quant) * hr.shape[2] * hr.shape[3] : 0;
      const nll = lowMemoryNll(this.plan, x, conds, constLd);
      return { loss: T.mean(nll), nll };
    }
    const r = this.encodeWith(hr, conds, opts);
    return { loss: T.mean(r.nll), nll: r.nll };
  }
}
