/** Loading a state_dict (published parameter names) into a model, with errors naming every problem. */
import { Tensor, bumpParameterVersion } from '../tensor/tensor.js';
import type { SRFlowNet } from './srflow.js';

export interface TensorData {
  shape: number[];
  data: Float32Array;
}

/** A tensor read on demand (io/pth `openPth`, io/safetensors `openSafetensors`): straight into `into`. */
export interface LazyTensorData {
  shape: number[];
  read(into?: Float32Array): Float32Array;
}

export type StateTensor = TensorData | LazyTensorData;

/** Which tensors of the file went where. */
export interface LoadReport {
  /** Loaded into a parameter of the model (the file's names). */
  matched: string[];
  /** Present and accepted but unused by the model (`flowUpsamplerNet.f.0.*`). */
  unused: string[];
  /** Ignored bookkeeping tensors (`num_batches_tracked`). */
  ignored: string[];
}

const OPTIONAL = /^flowUpsamplerNet\.f\.0\.(weight|bias)$/;

function valuesOf(t: StateTensor, into?: Float32Array): Float32Array {
  if ('read' in t && typeof t.read === 'function') return t.read(into);
  const d = (t as TensorData).data;
  if (into) {
    into.set(d);
    return into;
  }
  return d.byteOffset % 4 === 0 ? d : Float32Array.from(d);
}

/**
 * Copy `state` into the model's parameters. Missing, unexpected and mis-shaped tensors are all
 * listed in one error, before anything is loaded. `flowUpsamplerNet.f.0.*` (unused by the flow) is
 * taken with any shape. `rename` maps a file's key to the model's name (e.g. a bare RRDBNet's
 * `conv_first.weight` → `RRDB.conv_first.weight`); messages use the file's names. Lazy tensors are
 * read straight into the parameters' own arrays.
 */
export function loadStateDict(model: SRFlowNet, stateIn: Map<string, StateTensor>, source = 'checkpoint', opts: { rename?: Map<string, string> } = {}): LoadReport {
  const params = model.parameters();
  const state = new Map<string, StateTensor>();
  const fileName = new Map<string, string>();
  for (const [k, t] of stateIn) {
    const n = opts.rename?.get(k) ?? k;
    state.set(n, t);
    fileName.set(n, k);
  }
  const nameOf = (n: string) => fileName.get(n) ?? n;
  const missing: string[] = [];
  const misShaped: string[] = [];
  for (const [name, p] of params) {
    const t = state.get(name);
    if (!t) {
      if (!OPTIONAL.test(name)) missing.push(name);
      continue;
    }
    const sameShape = t.shape.length === p.shape.length && t.shape.every((d, i) => d === p.shape[i]);
    if (!sameShape && !OPTIONAL.test(name)) misShaped.push(`${nameOf(name)} (expected [${p.shape}], found [${t.shape}])`);
  }
  const ignored = [...state.keys()].filter((k) => !params.has(k) && /num_batches_tracked$/.test(k)).map(nameOf);
  const extra = [...state.keys()].filter((k) => !params.has(k) && !/num_batches_tracked$/.test(k));
  const problems: string[] = [];
  if (misShaped.length) problems.push(`mis-shaped ${misShaped.length} tensor(s): ${misShaped.join(', ')}`);
  if (missing.length) problems.push(`missing ${missing.length} tensor(s): ${missing.map(nameOf).join(', ')}`);
  if (extra.length) problems.push(`unexpected ${extra.length} tensor(s): ${extra.map(nameOf).join(', ')}`);
  if (problems.length) throw new Error(`The ${source} does not match the configuration: ${problems.join('; ')}`);
  const matched: string[] = [];
  const unused: string[] = [];
  for (const [name, p] of params) {
    const t = state.get(name);
    if (!t) continue;
    if (OPTIONAL.test(name)) {
      unused.push(nameOf(name));
      if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
        model.extra.set(name, Tensor.param(Float32Array.from(valuesOf(t)), t.shape));
        continue;
      }
    } else matched.push(nameOf(name));
    // read into the parameter's own array when it is a float32 array of the right size
    const own = p.data instanceof Float32Array && p.data.length === p.size ? p.data : undefined;
    p.data = valuesOf(t, own);
  }
  bumpParameterVersion();
  model.markLoaded();
  return { matched, unused, ignored };
}
