/**
 * Maximum-likelihood training of SRFlow (and the L1 pre-training of its RRDB), as published:
 * Adam over two parameter groups (flow, RRDB), MultiStepLR, RRDB frozen for train_RRDB_delay of
 * the flow stage, dequantised NLL by default. Runs can be left alone: JSONL log, periodic
 * validation with image grids and a loss curve, atomic checkpoints, exact resume, Ctrl-C saves,
 * non-finite steps skipped and, when repeated, the run stops with the last good checkpoint intact.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, noGrad } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { Rng } from '../tensor/random.js';
import { SRFlowNet } from '../models/srflow.js';
import { loadStateDict } from '../models/state.js';
import { saveModelFile } from '../models/api.js';
import { configureEngine } from '../models/engine.js';
import { readSafetensors, type RawTensor } from '../io/safetensors.js';
import { readPth } from '../io/pth.js';
import { ImageFolderDataset, loadValidationSet, type ValidationImage } from '../data/dataset.js';
import { upscaleBicubic } from '../data/bicubic.js';
import { psnr, lrPsnr, diversity, periodicEnergy } from '../metrics/index.js';
import { drawSynthetic } from '../data/synthetic.js';
import { clip01, type Planar } from '../io/image.js';
import { Adam, multiStepLr } from './adam.js';
import { readCheckpoint, saveCheckpoint, type TrainState } from './checkpoint.js';
import { milestones, type TrainOptions } from './options.js';
import { enlargeNearest, lineChartSvg, smooth, writeGrid, writeSvgPng } from './plot.js';

export interface StepLog {
  type: 'step';
  iter: number;
  loss: number;
  lr: number;
  rrdbFrozen: boolean;
  secPerIter: number;
  skipped?: string;
  /** With the pixel loss on: the mean NLL term (bits/pixel) and the mean τ = 0 L1 term. */
  nll?: number;
  pixel?: number;
  /** Largest global gradient norm in the window (before clipping). */
  gradNorm?: number;
}

export interface ValLog {
  type: 'val';
  iter: number;
  [k: string]: number | string;
}

export interface TrainEvents {
  onStep?: (s: StepLog) => void;
  onVal?: (v: ValLog) => void;
  onInfo?: (msg: string) => void;
  onWarning?: (msg: string) => void;
}

const toTensor = (p: { shape: number[]; data: Float32Array }) => new Tensor(p.data, p.shape);
const planarOf = (t: Tensor, b = 0): Planar => {
  const [, c, h, w] = t.shape;
  return { data: (t.data as Float32Array).slice(b * c * h * w, (b + 1) * c * h * w), channels: c, height: h, width: w };
};
const tensorOf = (p: Planar) => new Tensor(p.data, [1, p.channels, p.height, p.width]);

export class Trainer {
  readonly net: SRFlowNet;
  readonly adam: Adam;
  dataRng: Rng;
  noiseRng: Rng;
  iter = 0;
  nonFiniteRun = 0;
  nonFiniteTotal = 0;
  elapsed = 0;
  /** Iterations of this stage behind the starting model (init_model), counted into exported models. */
  priorIterations = 0;
  stopRequested = false;
  /** The last step's loss terms when the pixel loss is on. */
  lastTerms: { nll: number; pixel: number } | null = null;
  /** Global gradient norm of the last step (before clipping). */
  lastGradNorm = 0;
  private normWindow: number[] = [];
  private termWindow: { nll: number; pixel: number }[] = [];
  private valSet: ValidationImage[] | null = null;
  private lossPoints: [number, number][] = [];
  private valPoints: [number, number][] = [];

  private constructor(
    readonly o: TrainOptions,
    readonly data: ImageFolderDataset,
    readonly events: TrainEvents,
  ) {
    this.net = new SRFlowNet(o.model, o.train.seed);
    this.net.ctx.training = true;
    const groups =
      o.stage === 'rrdb'
        ? [{ name: 'rrdb', params: this.net.rrdbParameters() }]
        : [
            { name: 'flow', params: this.net.flowParameters().filter(([n]) => !n.startsWith('flowUpsamplerNet.f.')) },
            { name: 'rrdb', params: this.net.rrdbParameters() },
          ];
    this.adam = new Adam(groups, { lr: o.train.lr, beta1: o.train.beta1, beta2: o.train.beta2, eps: o.train.eps });
    this.dataRng = new Rng(o.train.seed * 2 + 1);
    this.noiseRng = new Rng(o.train.seed * 2 + 2);
  }

  static async create(o: TrainOptions, events: TrainEvents = {}, resume: string | null = null): Promise<Trainer> {
    const warn = events.onWarning ?? (() => undefined);
    configureEngine(o.engine);
    if (o.train.pixelWeight > 0 && o.train.lowMemory)
      throw new Error('Expected train.pixel_weight 0 with memory: low (the pixel loss needs the stored flow) but received ' + o.train.pixelWeight);
    const data = await ImageFolderDataset.open(o.data.trainDirs, {
      scale: o.model.scale,
      patchSize: o.data.patchSize,
      augment: { flip: o.data.flip, rot90: o.data.rot },
      lrDir: o.data.trainLrDir ?? undefined,
      synthetic: o.data.synthetic,
      onWarning: warn,
    });
    events.onInfo?.(
      `training set: ${data.length} images from ${o.data.trainDirs.join(', ')}${data.skipped ? ` (${data.skipped} skipped)` : ''}` +
        `${o.data.synthetic ? `, ${Math.round(o.data.synthetic * 100)} % synthetic patches` : ''}${o.train.pixelWeight ? `, pixel loss weight ${o.train.pixelWeight}` : ''}`,
    );
    const t = new Trainer(o, data, events);
    if (resume) t.resumeFrom(resume);
    else if (o.initModel) {
      const file = /\.pth$/i.test(o.initModel) ? null : readSafetensors(o.initModel);
      const src = file ? file.tensors : readPth(o.initModel);
      const params = new Map([...src].filter(([n]) => !n.startsWith('optimizer.')));
      if (o.initPartial) {
        const own = t.net.parameters();
        let taken = 0;
        const fresh: string[] = [];
        for (const [n, p] of own) {
          const s = params.get(n);
          if (s && s.shape.length === p.shape.length && s.shape.every((d, i) => d === p.shape[i])) {
            p.data = Float32Array.from(s.data);
            taken++;
          } else fresh.push(n);
        }
        if (taken === 0) throw new Error(`Cannot initialise from ${o.initModel}: none of its tensors matches this configuration (names and shapes)`);
        t.net.markLoaded(); // ActNorms left fresh initialise from the first batch
        t.net.ctx.training = true;
        events.onInfo?.(
          `${taken} of ${own.size} tensors initialised from ${o.initModel} (partial); ${fresh.length} fresh${fresh.length ? `, e.g. ${fresh.slice(0, 3).join(', ')}` : ''}`,
        );
        if (o.stage === 'flow' && o.pretrainRrdb) t.loadRrdb(o.pretrainRrdb);
      } else {
        loadStateDict(t.net, params, `model ${o.initModel}`);
        t.net.ctx.training = true;
        t.priorIterations = file ? priorIterationsOf(file.metadata, o.stage) : 0;
        events.onInfo?.(
          `all weights initialised from ${o.initModel}${t.priorIterations ? ` (${t.priorIterations} ${o.stage} iterations)` : ''}, with a fresh optimizer and schedule`,
        );
      }
    } else if (o.stage === 'flow') {
      if (o.pretrainRrdb) {
        t.loadRrdb(o.pretrainRrdb);
      } else {
        warn('no pre-trained RRDB (path.pretrain_rrdb): the flow stage starts from a random RRDB');
      }
    }
    mkdirSync(o.outDir, { recursive: true });
    return t;
  }

  /** The RRDB's weights from a pre-training checkpoint, model file or RRDB state dict (every tensor must match). */
  loadRrdb(path: string): void {
    const rrdb = readRrdbWeights(path);
    for (const [n, p] of this.net.rrdbParameters()) {
      const s = rrdb.get(n);
      if (!s || s.data.length !== p.size)
        throw new Error(
          `Pre-trained RRDB ${path} does not match the configuration at ${n}${s ? ` (shape [${s.shape}], expected [${p.shape}])` : ' (missing)'}`,
        );
      p.data = Float32Array.from(s.data);
    }
    this.events.onInfo?.(`RRDB initialised from ${path}`);
  }

  resumeFrom(path: string): void {
    const ck = readCheckpoint(path);
    if (ck.state.stage !== this.o.stage) throw new Error(`Cannot resume ${path}: it is a ${ck.state.stage}-stage checkpoint, not ${this.o.stage}`);
    loadStateDict(this.net, ck.params, `checkpoint ${path}`);
    this.net.ctx.training = true;
    // after loading, ActNorms with a non-zero bias count as initialised (as in the published code)
    this.adam.loadState({ step: ck.state.adamStep, m: ck.m, v: ck.v, steps: ck.state.adamSteps });
    this.iter = ck.state.iteration;
    this.dataRng.setState(ck.state.dataRng);
    this.noiseRng.setState(ck.state.noiseRng);
    this.nonFiniteTotal = ck.state.nonFiniteTotal;
    this.elapsed = ck.state.elapsedSeconds;
    this.priorIterations = ck.state.priorIterations ?? 0;
    this.events.onInfo?.(`resumed from ${path} at iteration ${this.iter}`);
  }

  state(): TrainState {
    return {
      stage: this.o.stage,
      iteration: this.iter,
      dataRng: this.dataRng.state(),
      noiseRng: this.noiseRng.state(),
      adamStep: 0,
      adamSteps: {},
      nonFiniteTotal: this.nonFiniteTotal,
      elapsedSeconds: this.elapsed,
      priorIterations: this.priorIterations,
    };
  }

  checkpointPath(): string {
    return join(this.o.outDir, `checkpoint_${String(this.iter).padStart(7, '0')}.safetensors`);
  }

  saveCheckpoint(path = this.checkpointPath()): string {
    saveCheckpoint(path, this.net, this.adam, this.state(), this.o.raw);
    saveCheckpoint(join(this.o.outDir, 'latest.safetensors'), this.net, this.adam, this.state(), this.o.raw);
    return path;
  }

  /** Export the current weights as a native model file. */
  saveModel(path: string): void {
    // trained_iterations counts this stage's iterations behind the weights, those of an init_model included
    saveModelFile(this.net, path, { trained_iterations: String(this.priorIterations + this.iter), stage: this.o.stage });
  }

  rrdbFrozen(iter = this.iter + 1): boolean {
    return this.o.stage === 'flow' && iter <= Math.round(this.o.train.trainRrdbDelay * this.o.train.niter);
  }

  /** One optimisation step. Returns the loss, or null if the step was skipped (non-finite). */
  step(): { loss: number; skipped?: string } {
    const it = this.iter + 1;
    const lr = multiStepLr(this.o.train.lr, milestones(this.o), this.o.train.lrGamma, it);
    for (const g of this.adam.groups) g.lr = lr;
    const frozen = this.rrdbFrozen(it);
    const rrdbGroup = this.adam.groups.find((g) => g.name === 'rrdb');
    if (rrdbGroup && this.o.stage === 'flow') rrdbGroup.trainable = !frozen;
    const batch = this.data.sampleBatch(this.o.data.batchSize, this.dataRng.next);
    const hr = toTensor(batch.hr);
    const lrT = toTensor(batch.lr);
    let loss: Tensor;
    if (this.o.stage === 'rrdb') {
      const out = this.net.rrdb.forward(lrT, { withOut: true, needMaps: false }).out as Tensor;
      loss = T.mean(T.abs(T.sub(out, hr)));
    } else {
      const quant = this.o.model.quant;
      let noise: Tensor | undefined;
      if (this.o.train.dequantize) {
        noise = Tensor.zeros(hr.shape);
        this.noiseRng.fillUniform(noise.data, -0.5 / quant, 0.5 / quant);
      }
      const nllOpts = { noise, quant: this.o.train.dequantize ? quant : undefined, lowMemory: this.o.train.lowMemory, frozenRrdb: frozen };
      if (this.o.train.pixelWeight > 0) {
        // one conditioning pass for both terms: the NLL and the τ = 0 reconstruction's L1 (HCFlow+)
        this.net.checkPair(hr, lrT);
        const conds = this.net.trainingConditioning(lrT, frozen);
        const nll = this.net.lossFromConditioning(hr, conds, nllOpts).loss;
        const nb = Math.min(this.o.train.pixelBatch, hr.shape[0]);
        // A patch whose τ = 0 inverse explodes (values outside [−1, 2] or non-finite: synthetic
        // content early on) is left out of the pixel term, and the decode is redone without it:
        // back-propagating through the explosion would overflow (0 · ∞). The NLL still sees it.
        const pick = (t: Tensor, idx: number[]) =>
          idx.length === t.shape[0]
            ? t
            : T.concat(
                idx.map((b) => T.slice(t, 0, b, b + 1)),
                0,
              );
        let idx = Array.from({ length: nb }, (_, b) => b);
        let sr0: Tensor | null = null;
        for (let attempt = 0; attempt < 2 && idx.length; attempt++) {
          const zeros = this.net.latentShapes([idx.length, ...lrT.shape.slice(1)]).map((sh) => Tensor.zeros(sh));
          const out = this.net.decodeWith(
            zeros,
            conds.map((c) => pick(c, idx)),
          ).sr;
          const per = out.size / idx.length;
          const good = idx.filter((_, k) => {
            for (let i = k * per; i < (k + 1) * per; i++) if (!(out.data[i] >= -1 && out.data[i] <= 2)) return false;
            return true;
          });
          if (good.length === idx.length) {
            sr0 = out;
            break;
          }
          idx = good;
        }
        let pix: Tensor = Tensor.zeros([1]);
        if (sr0) pix = T.mean(T.abs(T.sub(sr0, pick(hr, idx))));
        this.lastTerms = { nll: nll.item(), pixel: pix.item() };
        loss = T.add(nll, T.scale(pix, this.o.train.pixelWeight));
      } else {
        loss = this.net.loss(hr, lrT, nllOpts).loss;
      }
    }
    this.adam.zeroGrad();
    const value = loss.item();
    this.iter = it;
    if (!Number.isFinite(value)) return this.skip(`non-finite loss ${value}`);
    loss.backward();
    let sq = 0;
    for (const g of this.adam.groups) {
      if (!g.trainable) continue;
      for (const [n, p] of g.params) {
        if (!p.grad) continue;
        if (!p.grad.every(Number.isFinite)) return this.skip(`non-finite gradient in ${n}`);
        for (const v of p.grad) sq += v * v;
      }
    }
    const norm = Math.sqrt(sq);
    this.lastGradNorm = norm;
    const clipTo = this.o.train.gradClip;
    if (clipTo > 0 && norm > clipTo) {
      const f = clipTo / norm;
      for (const g of this.adam.groups) if (g.trainable) for (const [, p] of g.params) if (p.grad) for (let i = 0; i < p.grad.length; i++) p.grad[i] *= f;
    }
    this.adam.step();
    this.nonFiniteRun = 0;
    return { loss: value };
  }

  weightsFinite(): boolean {
    for (const p of this.net.parameters().values()) if (!p.data.every(Number.isFinite)) return false;
    return true;
  }

  private skip(why: string): { loss: number; skipped: string } {
    this.adam.zeroGrad();
    this.nonFiniteRun++;
    this.nonFiniteTotal++;
    return { loss: NaN, skipped: why };
  }

  async validate(): Promise<ValLog> {
    const o = this.o;
    const scale = o.model.scale;
    if (!o.data.valDir) return { type: 'val', iter: this.iter };
    if (!this.valSet) {
      this.valSet = await loadValidationSet(o.data.valDir, { scale, crop: o.data.valCrop || undefined, onWarning: this.events.onWarning });
      const m = Math.max(1, 2 ** o.model.flow.L / scale);
      this.valSet = this.valSet.map((v) => {
        // LR sides must be multiples of 2^L / scale: crop down if needed
        const lh = Math.floor(v.lr.height / m) * m;
        const lw = Math.floor(v.lr.width / m) * m;
        return lh === v.lr.height && lw === v.lr.width ? v : { ...v, lr: cropPlanar(v.lr, lh, lw), hr: cropPlanar(v.hr, lh * scale, lw * scale) };
      });
    }
    const border = scale;
    const prevTraining = this.net.ctx.training;
    this.net.ctx.training = false;
    const acc: Record<string, number[]> = {};
    const add = (k: string, v: number) => (acc[k] ??= []).push(v);
    const gridRows: Planar[][] = [];
    try {
      for (const [i, v] of this.valSet.entries()) {
        const hr = tensorOf(v.hr);
        const lr = tensorOf(v.lr);
        const bic = upscaleBicubic(v.lr, scale);
        add('psnr_bicubic', psnr(clip(bic), v.hr, { border }));
        if (o.stage === 'rrdb') {
          const out = noGrad(() => this.net.rrdb.forward(lr, { withOut: true, needMaps: false }).out as Tensor);
          const sr = clip(planarOf(out));
          add('psnr', psnr(sr, v.hr, { border }));
          if (i < 3) gridRows.push([enlargeNearest(v.lr, scale), bic, sr, v.hr]);
          continue;
        }
        const cache = this.net.prepareConditioning(lr);
        const enc = this.net.encodeCached(hr, cache, { quant: o.model.quant });
        add('nll_bpd', enc.nll.data[0] / 3);
        const zero = this.net.decodeCached(this.net.drawLatents(lr.shape, 0, new Rng(0)), cache).sr;
        const sr0 = clip(planarOf(zero));
        add('psnr', psnr(sr0, v.hr, { border }));
        if (sr0.height >= 16 && sr0.width >= 16) add('hatching_t0', periodicEnergy(sr0, scale).value);
        add('lr_psnr_t0', lrPsnr(sr0, v.lr, scale));
        const samples: Planar[] = [];
        for (let s = 0; s < o.train.valSamples; s++) {
          const z = this.net.drawLatents(lr.shape, o.train.valTemperature, new Rng(1000 + s));
          const raw = planarOf(this.net.decodeCached(z, cache).sr);
          let bad = 0;
          for (const x of raw.data) if (!Number.isFinite(x)) bad++;
          add('nonfinite_frac', bad / raw.data.length); // an early flow's inverse can overflow at this temperature
          const sp = clip(raw);
          samples.push(sp);
          add('lr_psnr', lrPsnr(sp, v.lr, scale));
          add('psnr_sample', psnr(sp, v.hr, { border }));
        }
        if (samples.length > 1) add('diversity', diversity(samples) * 255);
        if (i < 3) gridRows.push([enlargeNearest(v.lr, scale), bic, sr0, ...samples, v.hr]);
      }
      if (o.stage === 'flow') this.validateSynthetic(add);
    } finally {
      this.net.ctx.training = prevTraining;
    }
    const log: ValLog = { type: 'val', iter: this.iter };
    for (const [k, vs] of Object.entries(acc)) log[k] = vs.reduce((a, b) => a + b, 0) / vs.length;
    if (typeof log.psnr === 'number' && typeof log.psnr_bicubic === 'number') log.psnr_gain = log.psnr - log.psnr_bicubic;
    if (gridRows.length) await writeGrid(join(o.outDir, `val_${String(this.iter).padStart(7, '0')}.png`), gridRows);
    return log;
  }

  /**
   * Robustness on non-photographic input: 12 fixed synthetic 48×48 LR images (data/synthetic.ts,
   * drawn crisp at LR size, as a user's logo or cartoon), decoded at τ = 0 and at τ = 0.8: the worst
   * LR-PSNR of each (`synth_lr_psnr_t0_min`, `synth_lr_psnr_min`), the fraction of exploded values
   * (non-finite or outside [−1, 2]: `synth_bad_frac`) and the worst PSNR of a τ = 0.8 sample against
   * the τ = 0 output (`synth_t08_vs_t0_min`).
   */
  private validateSynthetic(add: (k: string, v: number) => void): void {
    const s = this.o.model.scale;
    const n = 48;
    const rng = new Rng(4242);
    let worst0 = Infinity;
    let worst8 = Infinity;
    let worstPair = Infinity;
    let bad = 0;
    let total = 0;
    for (let k = 0; k < 12; k++) {
      const data = new Float32Array(3 * n * n);
      drawSynthetic(rng.next, n, data);
      const lrP: Planar = { data, channels: 3, height: n, width: n };
      const lr = tensorOf(lrP);
      const cache = this.net.prepareConditioning(lr);
      const outs: Planar[] = [];
      for (const [t, seed] of [
        [0, 0],
        [0.8, 7],
      ]) {
        const raw = planarOf(this.net.decodeCached(this.net.drawLatents(lr.shape, t, new Rng(seed)), cache).sr);
        for (const x of raw.data) if (!(x >= -1 && x <= 2)) bad++;
        total += raw.data.length;
        outs.push(clip(raw));
      }
      worst0 = Math.min(worst0, lrPsnr(outs[0], lrP, s));
      worst8 = Math.min(worst8, lrPsnr(outs[1], lrP, s));
      worstPair = Math.min(worstPair, psnr(outs[1], outs[0]));
    }
    add('synth_lr_psnr_t0_min', worst0);
    add('synth_lr_psnr_min', worst8);
    add('synth_t08_vs_t0_min', worstPair);
    add('synth_bad_frac', bad / total);
  }

  /** Train until niter (or `maxSteps` more steps, or a stop request). */
  async run(opts: { maxSteps?: number; logPath?: string } = {}): Promise<{ reason: 'done' | 'stopped' | 'nonfinite' | 'max-steps' }> {
    const o = this.o;
    const logPath = opts.logPath ?? join(o.outDir, 'train_log.jsonl');
    this.loadCurves(logPath);
    const log = (entry: object) => appendFileSync(logPath, `${JSON.stringify({ ...entry, time: new Date().toISOString() })}\n`);
    const end = opts.maxSteps ? Math.min(o.train.niter, this.iter + opts.maxSteps) : o.train.niter;
    let window: number[] = [];
    let t0 = performance.now();
    let windowStart = this.iter;
    while (this.iter < end) {
      if (this.stopRequested) {
        if (this.nonFiniteRun === 0 && this.weightsFinite()) this.saveCheckpoint();
        this.events.onInfo?.(`stopped at iteration ${this.iter}; checkpoint saved in ${o.outDir}`);
        return { reason: 'stopped' };
      }
      const r = this.step();
      if (r.skipped) {
        const entry = { type: 'nonfinite', iter: this.iter, reason: r.skipped, consecutive: this.nonFiniteRun };
        log(entry);
        this.events.onWarning?.(`iteration ${this.iter}: ${r.skipped}; update skipped (${this.nonFiniteRun} in a row)`);
        if (this.nonFiniteRun >= o.train.maxNonFinite) {
          this.events.onWarning?.(
            `stopping: ${this.nonFiniteRun} consecutive non-finite steps. The last good checkpoint (${join(o.outDir, 'latest.safetensors')}) is intact; lower train.lr_G or check the data.`,
          );
          return { reason: 'nonfinite' };
        }
      } else {
        window.push(r.loss);
        if (this.lastTerms) this.termWindow.push(this.lastTerms);
        this.normWindow.push(this.lastGradNorm);
      }
      if (this.iter % o.train.logFreq === 0 || this.iter === end) {
        const now = performance.now();
        const dt = (now - t0) / 1000;
        this.elapsed += dt;
        const spi = dt / Math.max(1, this.iter - windowStart);
        const mean = window.length ? window.reduce((a, b) => a + b, 0) / window.length : NaN;
        const s: StepLog = { type: 'step', iter: this.iter, loss: mean, lr: this.adam.groups[0].lr, rrdbFrozen: this.rrdbFrozen(this.iter), secPerIter: spi };
        if (this.normWindow.length) {
          s.gradNorm = Math.max(...this.normWindow);
          this.normWindow = [];
        }
        if (this.termWindow.length) {
          s.nll = this.termWindow.reduce((a, t) => a + t.nll, 0) / this.termWindow.length;
          s.pixel = this.termWindow.reduce((a, t) => a + t.pixel, 0) / this.termWindow.length;
          this.termWindow = [];
        }
        log(s);
        if (Number.isFinite(mean)) this.lossPoints.push([this.iter, mean]);
        this.events.onStep?.(s);
        window = [];
        t0 = now;
        windowStart = this.iter;
      }
      // never overwrite a good checkpoint with weights from inside a non-finite streak
      if (this.iter % o.train.checkpointFreq === 0 && this.nonFiniteRun === 0 && this.weightsFinite()) this.saveCheckpoint();
      if (this.iter % o.train.valFreq === 0 || this.iter === o.train.niter) {
        const v = await this.validate();
        log(v);
        if (typeof v.nll_bpd === 'number') this.valPoints.push([this.iter, v.nll_bpd]);
        else if (typeof v.psnr === 'number') this.valPoints.push([this.iter, v.psnr]);
        this.events.onVal?.(v);
        await this.writeCurve();
        t0 = performance.now();
      }
      await new Promise((res) => setImmediate(res)); // let SIGINT handlers run
    }
    if (this.weightsFinite()) this.saveCheckpoint();
    await this.writeCurve();
    return { reason: this.iter >= o.train.niter ? 'done' : 'max-steps' };
  }

  /** On resume, continue the curves from the run's log (entries up to the current iteration). */
  private loadCurves(logPath: string): void {
    if (!existsSync(logPath) || this.lossPoints.length || this.valPoints.length) return;
    for (const line of readFileSync(logPath, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let e: { type?: string; iter?: number; loss?: number; nll_bpd?: number; psnr?: number };
      try {
        e = JSON.parse(line);
      } catch {
        continue;
      }
      if (!e.iter || e.iter > this.iter) continue;
      if (e.type === 'step' && Number.isFinite(e.loss)) this.lossPoints.push([e.iter, e.loss as number]);
      if (e.type === 'val') {
        const v = e.nll_bpd ?? e.psnr;
        if (typeof v === 'number') this.valPoints.push([e.iter, v]);
      }
    }
  }

  async writeCurve(): Promise<void> {
    const flow = this.o.stage === 'flow';
    const series = [
      { name: flow ? 'train NLL (bits/pixel, smoothed)' : 'train L1 (smoothed)', color: '#1f77b4', points: smooth(this.lossPoints, 0.2) },
      { name: flow ? 'validation NLL (bits/dim)' : 'validation PSNR (dB)', color: '#d62728', points: this.valPoints },
    ];
    await writeSvgPng(join(this.o.outDir, 'loss_curve.png'), lineChartSvg(`srflow ${this.o.name} (${this.o.stage} stage)`, 'iteration', series));
  }
}

/** A clipped copy (NaN → 0, as images are written). */
function clip(p: Planar): Planar {
  return clip01({ ...p, data: Float32Array.from(p.data) });
}

function cropPlanar(p: Planar, h: number, w: number): Planar {
  const d = new Float32Array(p.channels * h * w);
  for (let c = 0; c < p.channels; c++)
    for (let y = 0; y < h; y++) d.set(p.data.subarray((c * p.height + y) * p.width, (c * p.height + y) * p.width + w), (c * h + y) * w);
  return { data: d, channels: p.channels, height: h, width: w };
}

/**
 * The RRDB's weights from a pre-training checkpoint, an srflow model file or a PyTorch state dict:
 * the `RRDB.*` tensors (the rest of the model, e.g. a flow of another configuration saved by the rrdb
 * stage, is ignored), or, for a bare RRDBNet state dict (the published RRDB_*.pth), every tensor
 * under the `RRDB.` prefix.
 */
export function readRrdbWeights(path: string): Map<string, RawTensor> {
  const all = /\.pth$/i.test(path) ? readPth(path) : readSafetensors(path).tensors;
  const out = new Map<string, RawTensor>();
  for (const [n, t] of all) if (n.startsWith('RRDB.')) out.set(n, t);
  if (out.size === 0) for (const [n, t] of all) out.set(`RRDB.${n}`, t);
  return out;
}

/**
 * Iterations of `stage` already behind a model or checkpoint file, from its metadata: a model file's
 * `trained_iterations` (when it was exported from that stage), a checkpoint's training state.
 */
function priorIterationsOf(meta: Record<string, string>, stage: 'rrdb' | 'flow'): number {
  if (meta.train_state) {
    try {
      const s = JSON.parse(meta.train_state) as Partial<TrainState>;
      if (s.stage === stage && Number.isInteger(s.iteration)) return (s.iteration as number) + (s.priorIterations ?? 0);
    } catch {
      return 0;
    }
    return 0;
  }
  const n = Number(meta.trained_iterations);
  return meta.stage === stage && Number.isInteger(n) && n > 0 ? n : 0;
}
