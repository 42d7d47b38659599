/**
 * Training options in the published option layout (BasicSR/SRFlow YAML), every field with a
 * documented default. See docs/TRAINING.md.
 */
import { dirname, resolve } from 'node:path';
import { parseConfig, readConfigFile, type ModelConfig } from '../models/config.js';
import type { EngineOptions } from '../models/engine.js';
import * as is from '../is.js';
import { plainObject as isObj, type PlainObject as Obj } from '../is.js';

export type Stage = 'rrdb' | 'flow';

export interface TrainOptions {
  model: ModelConfig;
  stage: Stage;
  /** How the engine computes (kernels, threads, …): applied when the trainer is made (configureEngine). */
  engine?: EngineOptions;
  /** Where checkpoints, logs and images go (`path.out_dir`, default `runs/<name>`). */
  outDir: string;
  name: string;
  /** Pre-trained RRDB for the flow stage (`path.pretrain_model_G` / `path.pretrain_rrdb`). */
  pretrainRrdb: string | null;
  /**
   * Every weight of a whole model to start the stage from (`path.init_model`): a srflow model file,
   * a checkpoint or a published .pth. Unlike a resume, the optimizer, schedule and random streams
   * start afresh: it continues training a finished model (fine-tuning, or a longer schedule).
   */
  initModel: string | null;
  /**
   * Take from `initModel` only the tensors whose name and shape match this configuration
   * (`path.init_partial`, default false: every tensor must match). For warm starts across
   * architectures, e.g. an 8x model from a 4x one: the RRDB trunk and the flow levels both share.
   * With `pretrainRrdb` also given, the RRDB is then taken from there.
   */
  initPartial: boolean;
  data: {
    /** The first training folder (see `trainDirs`). */
    trainDir: string;
    /** Every training folder (`datasets.train.dataroot_GT`: a path or a list of paths), pooled. */
    trainDirs: string[];
    /** Fraction of patches replaced by synthetic non-photographic content (`datasets.train.synthetic`, default 0). */
    synthetic: number;
    trainLrDir: string | null;
    valDir: string | null;
    /** HR patch size (`datasets.train.GT_size`, default 160). */
    patchSize: number;
    batchSize: number;
    flip: boolean;
    rot: boolean;
    /** Validation centre crop (`datasets.val.crop`, default 256 HR pixels; 0 = whole images). */
    valCrop: number;
  };
  train: {
    niter: number;
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    /** MultiStepLR milestones as fractions of niter (`lr_steps_rel`, default [0.5, 0.75, 0.9, 0.95]). */
    lrStepsRel: number[];
    lrGamma: number;
    /** Fraction of the flow stage with the RRDB frozen (`train_RRDB_delay`, default 0.5). */
    trainRrdbDelay: number;
    /** Dequantise (uniform noise /quant + the −log quant term); default true (see docs). */
    dequantize: boolean;
    seed: number;
    logFreq: number;
    valFreq: number;
    checkpointFreq: number;
    /** Stop after this many consecutive non-finite losses/gradients (default 5). */
    maxNonFinite: number;
    /** Recompute flow activations in backward instead of storing them (`memory: low`). */
    lowMemory: boolean;
    /**
     * Weight of an auxiliary L1 loss between the τ = 0 reconstruction (all latents zero) and the HR
     * patch, added to the NLL in the flow stage (`train.pixel_weight`, default 0: off, the published
     * objective). HCFlow+ trains with such a pixel loss; it ties the deterministic output to the
     * ground truth (τ = 0 PSNR) and removes systematic sub-pixel patterns there.
     */
    pixelWeight: number;
    /** Clip the global gradient norm to this (`train.grad_clip`, default 0: off, as published). */
    gradClip: number;
    /** How many patches of each batch get the pixel loss (`train.pixel_batch`, default: all). */
    pixelBatch: number;
    /** Samples per validation image for LR-PSNR/diversity (default 2). */
    valSamples: number;
    valTemperature: number;
  };
  /** The whole option object, saved in checkpoints. */
  raw: Record<string, unknown>;
}

const pick = <T>(v: unknown, name: string, def: T, ok: (x: unknown) => boolean, what: string): T => is.orDefault(v, def, name, ok, what);
const isPosInt = is.positiveInt;
const isNonNegInt = is.nonNegativeInt;
const isPos = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
const isFrac = (x: unknown) => is.inRange(x, 0, 1);
const isBool = is.bool;
const isStr = (x: unknown) => typeof x === 'string' && x.length > 0;

export function parseTrainOptions(raw: unknown, baseDir = process.cwd(), overrides: { stage?: Stage } = {}): TrainOptions {
  if (!isObj(raw)) throw new Error('Expected a training configuration object');
  const model = parseConfig(raw);
  const ds = isObj(raw.datasets) ? raw.datasets : {};
  const dtr: Obj = isObj(ds.train) ? ds.train : {};
  const dval: Obj = isObj(ds.val) ? ds.val : {};
  const tr0: Obj = isObj(raw.train) ? raw.train : {};
  const path: Obj = isObj(raw.path) ? raw.path : {};
  const rel = (p: string | null) => (p ? resolve(baseDir, p) : null);
  const name = pick(raw.name, 'name', 'srflow', isStr, 'a non-empty string');
  const stage = overrides.stage ?? pick<Stage>(tr0.stage, 'train.stage', 'flow', (x) => x === 'rrdb' || x === 'flow', '"rrdb" or "flow"');
  // stage-specific overrides: train.rrdb / train.flow sections win over train.* for that stage
  const tr: Obj = { ...tr0, ...(isObj(tr0[stage]) ? (tr0[stage] as Obj) : {}) };
  const trainDirsRaw = pick<string | string[] | null>(
    dtr.dataroot_GT,
    'datasets.train.dataroot_GT',
    null,
    (x) => isStr(x) || (Array.isArray(x) && x.length > 0 && x.every(isStr)),
    'a folder path or a non-empty list of folder paths',
  );
  if (!trainDirsRaw) throw new Error('Expected a folder of HR training images for datasets.train.dataroot_GT but received none');
  const trainDirs = (Array.isArray(trainDirsRaw) ? trainDirsRaw : [trainDirsRaw]).map((d) => rel(d) as string);
  const scale = model.scale;
  const patchSize = pick(dtr.GT_size, 'datasets.train.GT_size', 160, isPosInt, 'a positive integer');
  const minPatch = 2 ** model.flow.L;
  if (patchSize % scale || patchSize % minPatch)
    throw new Error(`Expected datasets.train.GT_size divisible by ${Math.max(scale, minPatch)} but received ${patchSize}`);
  const valCrop = pick(dval.crop, 'datasets.val.crop', 256, isNonNegInt, 'an integer ≥ 0');
  if (valCrop % Math.max(scale, minPatch)) throw new Error(`Expected datasets.val.crop divisible by ${Math.max(scale, minPatch)} but received ${valCrop}`);
  const lrSteps = pick(tr.lr_steps_rel, 'train.lr_steps_rel', [0.5, 0.75, 0.9, 0.95], (x) => Array.isArray(x) && x.every(isFrac), 'a list of fractions');
  return {
    model,
    stage,
    name,
    outDir: rel(pick<string | null>(path.out_dir, 'path.out_dir', null, isStr, 'a folder path')) ?? resolve(process.cwd(), 'runs', `${name}-${stage}`),
    pretrainRrdb: rel(pick<string | null>(path.pretrain_rrdb ?? path.pretrain_model_G, 'path.pretrain_rrdb', null, isStr, 'a file path')),
    initModel: rel(pick<string | null>(path.init_model, 'path.init_model', null, isStr, 'a file path')),
    initPartial: pick(path.init_partial, 'path.init_partial', false, isBool, 'true or false'),
    data: {
      trainDir: trainDirs[0],
      trainDirs,
      synthetic: pick(dtr.synthetic, 'datasets.train.synthetic', 0, isFrac, 'a fraction in [0, 1]'),
      trainLrDir: rel(pick<string | null>(dtr.dataroot_LQ, 'datasets.train.dataroot_LQ', null, isStr, 'a folder path')),
      valDir: rel(pick<string | null>(dval.dataroot_GT, 'datasets.val.dataroot_GT', null, isStr, 'a folder path')),
      patchSize,
      batchSize: pick(dtr.batch_size, 'datasets.train.batch_size', 12, isPosInt, 'a positive integer'),
      flip: pick(dtr.use_flip, 'datasets.train.use_flip', true, isBool, 'true or false'),
      rot: pick(dtr.use_rot, 'datasets.train.use_rot', true, isBool, 'true or false'),
      valCrop,
    },
    train: {
      niter: pick(tr.niter, 'train.niter', 200000, isPosInt, 'a positive integer'),
      lr: pick(tr.lr_G, 'train.lr_G', stage === 'rrdb' ? 2e-4 : 2.5e-4, isPos, 'a positive number'),
      beta1: pick(tr.beta1, 'train.beta1', 0.9, isFrac, 'a number in [0, 1]'),
      beta2: pick(tr.beta2, 'train.beta2', 0.999, isFrac, 'a number in [0, 1]'),
      eps: pick(tr.eps, 'train.eps', 1e-8, isPos, 'a positive number'),
      lrStepsRel: lrSteps,
      lrGamma: pick(tr.lr_gamma, 'train.lr_gamma', 0.5, isPos, 'a positive number'),
      trainRrdbDelay: pick(
        tr.train_RRDB_delay ?? (isObj(raw.network_G) ? raw.network_G.train_RRDB_delay : undefined),
        'train.train_RRDB_delay',
        0.5,
        isFrac,
        'a fraction in [0, 1]',
      ),
      dequantize: pick(tr.dequantize, 'train.dequantize', true, isBool, 'true or false'),
      seed: pick(tr.manual_seed, 'train.manual_seed', 10, isNonNegInt, 'an integer ≥ 0'),
      logFreq: pick(tr.log_freq ?? (isObj(raw.logger) ? raw.logger.print_freq : undefined), 'train.log_freq', 10, isPosInt, 'a positive integer'),
      valFreq: pick(tr.val_freq, 'train.val_freq', 500, isPosInt, 'a positive integer'),
      checkpointFreq: pick(
        tr.save_checkpoint_freq ?? (isObj(raw.logger) ? raw.logger.save_checkpoint_freq : undefined),
        'train.save_checkpoint_freq',
        200,
        isPosInt,
        'a positive integer',
      ),
      maxNonFinite: pick(tr.max_nonfinite, 'train.max_nonfinite', 5, isPosInt, 'a positive integer'),
      lowMemory: pick<string>(raw.memory, 'memory', 'normal', (x) => x === 'low' || x === 'normal', '"low" or "normal"') === 'low',
      pixelWeight: pick(tr.pixel_weight, 'train.pixel_weight', 0, (x) => typeof x === 'number' && Number.isFinite(x) && x >= 0, 'a number ≥ 0'),
      gradClip: pick(tr.grad_clip, 'train.grad_clip', 0, (x) => typeof x === 'number' && Number.isFinite(x) && x >= 0, 'a number ≥ 0'),
      pixelBatch: pick(tr.pixel_batch, 'train.pixel_batch', Number.MAX_SAFE_INTEGER, isPosInt, 'a positive integer'),
      valSamples: pick(tr.val_samples, 'train.val_samples', 2, isPosInt, 'a positive integer'),
      valTemperature: pick(tr.val_temperature, 'train.val_temperature', 0.8, (x) => typeof x === 'number' && x >= 0, 'a number ≥ 0'),
    },
    raw,
  };
}

export function loadTrainOptions(file: string, overrides: { stage?: Stage } = {}): TrainOptions {
  return readConfigFile(file, (data) => parseTrainOptions(data, dirname(resolve(file)), overrides));
}

/** MultiStepLR milestones (iterations) for the options. */
export function milestones(o: TrainOptions): number[] {
  return o.train.lrStepsRel.map((f) => Math.round(f * o.train.niter));
}
