/** Loading a state_dict (published parameter names) into a model, with errors naming every problem. */
import { Tensor, bumpParameterVersion } from '../tensor/tensor.js';
import type { SRFlowNet } from './srflow.js';

export interface TensorData {
  shape: number[];
  data: Float32Array;
}

const OPTIONAL = /^flowUpsamplerNet\.f\.0\.(weight|bias)$/;

/**
 * Copy `state` into the model's parameters. Missing, unexpected and mis-shaped tensors are all
 * listed in one error. `flowUpsamplerNet.f.0.*` (unused by the flow) is taken with any shape.
 */
export function loadStateDict(model: SRFlowNet, state: Map<string, TensorData>, source = 'checkpoint'): void {
  const params = model.parameters();
  const missing: string[] = [];
  const misShaped: string[] = [];
  for (const [name, p] of params) {
    const t = state.get(name);
    if (!t) {
      if (!OPTIONAL.test(name)) missing.push(name);
      continue;
    }
    const sameShape = t.shape.length === p.shape.length && t.shape.every((d, i) => d === p.shape[i]);
    if (!sameShape && !OPTIONAL.test(name)) misShaped.push(`${name} (expected [${p.shape}], found [${t.shape}])`);
  }
  const extra = [...state.keys()].filter((k) => !params.has(k) && !/num_batches_tracked$/.test(k));
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${missing.length} tensor(s): ${missing.join(', ')}`);
  if (extra.length) problems.push(`unexpected ${extra.length} tensor(s): ${extra.join(', ')}`);
  if (misShaped.length) problems.push(`mis-shaped ${misShaped.length} tensor(s): ${misShaped.join(', ')}`);
  if (problems.length) throw new Error(`The ${source} does not match the configuration: ${problems.join('; ')}`);
  for (const [name, p] of params) {
    const t = state.get(name);
    if (!t) continue;
    if (OPTIONAL.test(name) && (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i]))) {
      model.extra.set(name, Tensor.param(Float32Array.from(t.data), t.shape));
      continue;
    }
    p.data = t.data.byteOffset % 4 === 0 ? t.data : Float32Array.from(t.data);
  }
  bumpParameterVersion();
  model.markLoaded();
}
