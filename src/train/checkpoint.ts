/**
 * Training checkpoints: one safetensors file holding the model's parameters (published names),
 * Adam's moments (`optimizer.m.<name>`, `optimizer.v.<name>`) and, in the metadata, the model
 * configuration and the training state (iteration, RNG states, step counts). Written atomically,
 * so an interrupted write never leaves a broken checkpoint. A checkpoint is also a loadable model.
 */
import { mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readSafetensors, writeSafetensors, type RawTensor } from '../io/safetensors.js';
import type { SRFlowNet } from '../models/srflow.js';
import type { Adam } from './adam.js';
import { MODEL_FORMAT_VERSION } from '../models/api.js';

export const CHECKPOINT_FORMAT = 'srflow-checkpoint';

export interface TrainState {
  stage: 'rrdb' | 'flow';
  iteration: number;
  dataRng: number[];
  noiseRng: number[];
  adamStep: number;
  adamSteps: Record<string, number>;
  nonFiniteTotal: number;
  elapsedSeconds: number;
  /** Iterations the starting model (`path.init_model`) had already been trained for; 0 or absent otherwise. */
  priorIterations?: number;
}

export function saveCheckpoint(path: string, net: SRFlowNet, opt: Adam, state: TrainState, options: Record<string, unknown>): void {
  const tensors = new Map<string, RawTensor>();
  for (const [n, p] of net.parameters()) tensors.set(n, { shape: p.shape, data: p.data as Float32Array });
  const s = opt.state();
  for (const [n, m] of Object.entries(s.m)) tensors.set(`optimizer.m.${n}`, { shape: [m.length], data: m });
  for (const [n, v] of Object.entries(s.v)) tensors.set(`optimizer.v.${n}`, { shape: [v.length], data: v });
  writeSafetensors(path, tensors, {
    format: CHECKPOINT_FORMAT,
    format_version: MODEL_FORMAT_VERSION,
    config: JSON.stringify(net.config.opt),
    train_state: JSON.stringify({ ...state, adamSteps: s.steps, adamStep: s.step }),
    options: JSON.stringify(options),
  });
}

export interface LoadedCheckpoint {
  params: Map<string, RawTensor>;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
  state: TrainState;
  config: Record<string, unknown>;
}

export function readCheckpoint(path: string): LoadedCheckpoint {
  const f = readSafetensors(path);
  if (f.metadata.format !== CHECKPOINT_FORMAT || !f.metadata.train_state) {
    throw new Error(`Cannot resume from ${path}: not an srflow training checkpoint`);
  }
  const params = new Map<string, RawTensor>();
  const m: Record<string, Float32Array> = {};
  const v: Record<string, Float32Array> = {};
  const tensors = [...f.tensors];
  if (f.metadata.optimizer_file) {
    // a split checkpoint (splitCheckpoint): Adam's moments live in a second file beside this one
    const opt = join(dirname(path), basename(f.metadata.optimizer_file));
    let o;
    try {
      o = readSafetensors(opt);
    } catch (e) {
      throw new Error(`Cannot resume from ${path}: its optimizer state ${opt} cannot be read (${(e as Error).message})`);
    }
    tensors.push(...o.tensors);
  }
  for (const [n, t] of tensors) {
    if (n.startsWith('optimizer.m.')) m[n.slice(12)] = Float32Array.from(t.data);
    else if (n.startsWith('optimizer.v.')) v[n.slice(12)] = Float32Array.from(t.data);
    else params.set(n, t);
  }
  return { params, m, v, state: JSON.parse(f.metadata.train_state) as TrainState, config: JSON.parse(f.metadata.config) };
}

/**
 * Rewrites a checkpoint as two files, `dst` (parameters, configuration and training state: also a
 * loadable model) and `dst` with `.optimizer.safetensors` in place of `.safetensors` (Adam's
 * moments), so that each stays well under hosting limits on file size (100 MB on GitHub) when a
 * run's checkpoint is committed to be resumed later. `readCheckpoint(dst)` reads both.
 */
export function splitCheckpoint(src: string, dst: string): { model: string; optimizer: string } {
  const f = readSafetensors(src);
  if (f.metadata.format !== CHECKPOINT_FORMAT) throw new Error(`Expected an srflow training checkpoint for ${src}`);
  if (!dst.endsWith('.safetensors')) throw new Error(`Expected a .safetensors path for the split checkpoint but received ${dst}`);
  const optPath = dst.replace(/\.safetensors$/, '.optimizer.safetensors');
  mkdirSync(dirname(dst), { recursive: true });
  const params = new Map<string, RawTensor>();
  const opt = new Map<string, RawTensor>();
  for (const [n, t] of f.tensors) (n.startsWith('optimizer.') ? opt : params).set(n, t);
  writeSafetensors(optPath, opt, { format: `${CHECKPOINT_FORMAT}-optimizer`, checkpoint: basename(dst) });
  writeSafetensors(dst, params, { ...f.metadata, optimizer_file: basename(optPath) });
  return { model: dst, optimizer: optPath };
}
