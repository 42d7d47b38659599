/**
 * SRFlow configuration in the published option layout (YAML or JSON: `scale`, `network_G`,
 * `network_G.flow`, `datasets.train.quant`, `train`), parsed into a typed, validated config with
 * every default the published code applies.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import * as is from '../is.js';
import { plainObject as isObj, type PlainObject as Obj } from '../is.js';

export interface FlowConfig {
  /** Flow steps per level (a number, or one per level). */
  K: number[];
  L: number;
  additionalFlowNoAffine: number;
  split: boolean;
  feaUp0: boolean;
  feaUpMinus1: boolean;
  stackBlocks: number[];
  stackConcat: boolean;
  hidden: number;
  eps: number;
}

export interface ModelConfig {
  scale: number;
  inNc: number;
  outNc: number;
  /** RRDB feature channels (network_G.nf). */
  nf: number;
  /** RRDB blocks (network_G.nb). */
  nb: number;
  /** Growth channels inside each dense block (network_G.gc). */
  gc: number;
  flow: FlowConfig;
  /** Dequantisation levels (datasets.train.quant; 255 when absent). */
  quant: number;
  /** The original option object (published layout), kept so saved models round-trip it. */
  opt: Record<string, unknown>;
}

function num(v: unknown, name: string, def: number, ok: (x: number) => boolean = Number.isFinite): number {
  return is.orDefault(v, def, name, (x) => typeof x === 'number' && ok(x), 'a valid number');
}

const posInt = is.positiveInt;
const nonNegInt = is.nonNegativeInt;

/** Parse a published-layout option object (or `{ opt: {...} }` as in the parity fixture). */
export function parseConfig(input: unknown): ModelConfig {
  if (!isObj(input)) throw new Error(`Expected a configuration object but received ${JSON.stringify(input)}`);
  const opt: Obj = isObj(input.opt) && isObj((input.opt as Obj).network_G) ? (input.opt as Obj) : input;
  const g = opt.network_G;
  if (!isObj(g)) throw new Error('Expected a network_G section in the configuration but received none');
  const f: Obj = isObj(g.flow) ? g.flow : {};
  const scale = num(opt.scale ?? g.scale ?? g.upscale, 'scale', 4, (x) => [2, 4, 8, 16].includes(x));
  const L = num(f.L, 'network_G.flow.L', 3, (x) => posInt(x) && x <= 6);
  let K: number[];
  if (Array.isArray(f.K)) {
    K = f.K.map((k, i) => num(k, `network_G.flow.K[${i}]`, 0, posInt));
    if (K.length < L) throw new Error(`Expected ${L} entries for network_G.flow.K but received ${K.length}`);
  } else {
    const k = num(f.K, 'network_G.flow.K', 16, posInt);
    K = Array(L).fill(k);
  }
  const split = isObj(f.split) ? f.split.enable !== false : true;
  const stack = isObj(f.stackRRDB) ? f.stackRRDB : {};
  const nb = num(g.nb, 'network_G.nb', 23, posInt);
  const blocks = stack.blocks === undefined ? [] : stack.blocks;
  if (!Array.isArray(blocks) || blocks.some((b) => !Number.isInteger(b) || b < 0 || b >= nb)) {
    throw new Error(`Expected RRDB block indices in [0, ${nb}) for network_G.flow.stackRRDB.blocks but received ${JSON.stringify(blocks)}`);
  }
  const aff = isObj(f.CondAffineSeparatedAndCond) ? f.CondAffineSeparatedAndCond : {};
  const coupling = f.coupling ?? 'CondAffineSeparatedAndCond';
  if (coupling !== 'CondAffineSeparatedAndCond') throw new Error(`Expected network_G.flow.coupling CondAffineSeparatedAndCond (the only published one) but received ${JSON.stringify(coupling)}`);
  const ds = isObj(opt.datasets) && isObj((opt.datasets as Obj).train) ? ((opt.datasets as Obj).train as Obj) : {};
  const cfg: ModelConfig = {
    scale,
    inNc: num(g.in_nc, 'network_G.in_nc', 3, (x) => x === 3),
    outNc: num(g.out_nc, 'network_G.out_nc', 3, (x) => x === 3),
    nf: num(g.nf, 'network_G.nf', 64, posInt),
    nb,
    gc: num(g.gc, 'network_G.gc', 32, posInt),
    flow: {
      K,
      L,
      additionalFlowNoAffine: num(f.additionalFlowNoAffine, 'network_G.flow.additionalFlowNoAffine', 0, nonNegInt),
      split,
      feaUp0: f.fea_up0 === true,
      feaUpMinus1: f['fea_up-1'] === true,
      stackBlocks: blocks as number[],
      stackConcat: stack.concat === true && (blocks as number[]).length > 0,
      hidden: num(aff.hidden_channels, 'network_G.flow.CondAffineSeparatedAndCond.hidden_channels', 64, posInt),
      eps: num(aff.eps, 'network_G.flow.CondAffineSeparatedAndCond.eps', 1e-4, (x) => x >= 0),
    },
    quant: num(ds.quant, 'datasets.train.quant', 255, posInt),
    opt,
  };
  // every level needs a conditioning map: HR/2^ℓ must be one of the RRDB's maps
  for (let l = 1; l <= L; l++) condKey(cfg, l);
  return cfg;
}

/**
 * The one loader of configuration files: read a YAML or JSON file and turn its data into what the
 * caller wants with `parse` (whose errors read "Invalid configuration <path>: …").
 */
export function readConfigFile<T>(path: string, parse: (data: unknown) => T): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw is.fileReadError('configuration', path, e);
  }
  let data: unknown;
  try {
    data = /\.json$/i.test(path) ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse configuration ${path}: ${(e as Error).message}`);
  }
  try {
    return parse(data);
  } catch (e) {
    throw new Error(`Invalid configuration ${path}: ${(e as Error).message}`);
  }
}

/** Read a YAML or JSON model configuration file. */
export function loadConfigFile(path: string): ModelConfig {
  return readConfigFile(path, parseConfig);
}

/** Conditioning channels: 64·(len(blocks)+1) with stacking, else nf. */
export function condChannels(cfg: ModelConfig): number {
  return cfg.flow.stackConcat ? cfg.nf * (cfg.flow.stackBlocks.length + 1) : cfg.nf;
}

/** The RRDB map that conditions flow level ℓ (1-based): the one at resolution HR/2^ℓ. */
export function condKey(cfg: ModelConfig, level: number): string {
  const f = cfg.scale / 2 ** level;
  if (f >= 1) return `fea_up${f}`;
  if (f === 0.5) {
    if (!cfg.flow.feaUp0) throw new Error(`Level ${level} of a ${cfg.scale}x model with L=${cfg.flow.L} needs network_G.flow.fea_up0: true`);
    return 'fea_up0';
  }
  if (f === 0.25) {
    if (!cfg.flow.feaUpMinus1) throw new Error(`Level ${level} of a ${cfg.scale}x model with L=${cfg.flow.L} needs network_G.flow.fea_up-1: true`);
    return 'fea_up-1';
  }
  throw new Error(`Expected network_G.flow.L with HR/2^L no smaller than LR/4 but received L=${cfg.flow.L} for scale ${cfg.scale}`);
}

/** A minimal option object for a configuration (for presets and new models). */
export function makeOpt(p: { scale: number; nb: number; K: number; L: number; blocks: number[]; hidden?: number; quant?: number; nf?: number }): Record<string, unknown> {
  return {
    scale: p.scale,
    datasets: { train: { quant: p.quant ?? 32 } },
    network_G: {
      which_model_G: 'SRFlowNet',
      in_nc: 3,
      out_nc: 3,
      nf: p.nf ?? 64,
      nb: p.nb,
      upscale: p.scale,
      train_RRDB_delay: 0.5,
      flow: {
        K: p.K,
        L: p.L,
        noInitialInj: true,
        coupling: 'CondAffineSeparatedAndCond',
        additionalFlowNoAffine: 2,
        split: { enable: true },
        fea_up0: true,
        ...(p.scale / 2 ** p.L === 0.25 ? { 'fea_up-1': true } : {}),
        stackRRDB: { blocks: p.blocks, concat: true },
        ...(p.hidden && p.hidden !== 64 ? { CondAffineSeparatedAndCond: { hidden_channels: p.hidden } } : {}),
      },
    },
  };
}
