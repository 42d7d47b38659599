/**
 * Training checkpoints: one safetensors file holding the model's parameters (published names),
 * Adam's moments (`optimizer.m.<name>`, `optimizer.v.<name>`) and, in the metadata, the model
 * configuration and the training state (iteration, RNG states, step counts). Written atomically,
 * so an interrupted write never leaves a broken checkpoint. A checkpoint is also a loadable model.
 */
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
  for (const [n, t] of f.tensors) {
    if (n.startsWith('optimizer.m.')) m[n.slice(12)] = Float32Array.from(t.data);
    else if (n.startsWith('optimizer.v.')) v[n.slice(12)] = Float32Array.from(t.data);
    else params.set(n, t);
  }
  return { params, m, v, state: JSON.parse(f.metadata.train_state) as TrainState, config: JSON.parse(f.metadata.config) };
}
