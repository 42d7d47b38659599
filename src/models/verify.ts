/**
 * Verify a ported or converted checkpoint against reference tensors made by the published code
 * (the layout of ../shared/fixtures/parity-4x): recompute RRDB maps, encode, reconstruct, sample,
 * the dequantised objective and gradients, and report each quantity's relative error.
 */
import { Tensor, noGrad } from '../tensor/tensor.js';
import type { RawTensor } from '../io/safetensors.js';
import type { SRFlowNet } from './srflow.js';

export interface VerifyRow {
  name: string;
  relErr: number;
  pass: boolean;
  note?: string;
}

export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

/**
 * The reference's tensors by name (a clear error for a missing one), its input pair (lr, gt), and a
 * comparison that appends a row to `rows` with the relative error of `mine` against `want`
 * (Infinity, with a note, when it was not computed or its shape differs).
 */
export function referenceComparer(ref: Map<string, RawTensor>, tol: number) {
  const rows: VerifyRow[] = [];
  const get = (k: string): Tensor => {
    const t = ref.get(k);
    if (!t) throw new Error(`Reference is missing tensor ${k}`);
    return new Tensor(t.data, t.shape);
  };
  const cmp = (name: string, mine: Tensor | Float32Array | undefined, want: Tensor, note?: string) => {
    if (!mine) {
      rows.push({ name, relErr: Infinity, pass: false, note: 'not computed' });
      return;
    }
    const md = mine instanceof Tensor ? mine.data : mine;
    const shapeOk = !(mine instanceof Tensor) || (mine.shape.length === want.shape.length && mine.shape.every((d, i) => d === want.shape[i]));
    const e = shapeOk ? relativeError(md, want.data) : Infinity;
    rows.push({ name, relErr: e, pass: e < tol, ...(shapeOk ? (note ? { note } : {}) : { note: `shape [${mine instanceof Tensor ? mine.shape : ''}] vs [${want.shape}]` }) });
  };
  return { ref, rows, get, cmp, lr: get('lr'), gt: get('gt') };
}

export type Comparer = ReturnType<typeof referenceComparer>;

/** The rows of encoding gt (latents, NLL, log-det) and of decoding its latents back (`rec`), on any backend. */
export function compareEncoding(c: Comparer, gt: Tensor, enc: { latents: Tensor[]; nll: Tensor; logdet: Tensor }, rec: { sr: Tensor; logdet: Tensor }): void {
  const { ref, rows, get, cmp } = c;
  const nLat = [...ref.keys()].filter((k) => /^encode\.eps\.\d+$/.test(k)).length;
  if (nLat !== enc.latents.length) rows.push({ name: 'encode.eps (count)', relErr: Infinity, pass: false, note: `${enc.latents.length} latents vs ${nLat} in the reference` });
  enc.latents.forEach((z, i) => ref.has(`encode.eps.${i}`) && cmp(`encode.eps.${i}`, z, get(`encode.eps.${i}`)));
  if (ref.has('encode.nll')) cmp('encode.nll', enc.nll, get('encode.nll'));
  if (ref.has('encode.logdet')) cmp('encode.logdet', enc.logdet, get('encode.logdet'));
  if (ref.has('reconstruct.sr')) cmp('reconstruct.sr', rec.sr, get('reconstruct.sr'));
  if (ref.has('reconstruct.logdet')) cmp('reconstruct.logdet', rec.logdet, get('reconstruct.logdet'));
  const e = relativeError(rec.sr.data, gt.data);
  rows.push({ name: 'roundtrip decode(encode(gt)) vs gt', relErr: e, pass: e < 1e-5 });
}

/** The rows of the training loss and the parameters' gradients (on the net's CPU kernels; `note` says so where another backend is verified). */
export function compareGradients(c: Comparer, net: SRFlowNet, gt: Tensor, lr: Tensor, note?: string): void {
  const { ref, rows, get, cmp } = c;
  const gradKeys = [...ref.keys()].filter((k) => k.startsWith('grad.') && k !== 'grad.loss');
  if (!gradKeys.length && !ref.has('grad.loss')) return;
  const params = net.parameters();
  for (const p of params.values()) p.grad = null;
  net.ctx.training = true;
  try {
    const noise = ref.has('train.noise') ? get('train.noise') : undefined;
    const { loss } = net.loss(gt, lr, { noise });
    if (ref.has('grad.loss')) cmp('grad.loss', new Float32Array([loss.item()]), get('grad.loss'), note);
    loss.backward();
    for (const k of gradKeys) {
      const p = params.get(k.slice(5));
      if (!p) {
        rows.push({ name: k, relErr: Infinity, pass: false, note: 'no such parameter' });
        continue;
      }
      cmp(k, new Tensor(p.grad ?? new Float32Array(p.size), p.shape), get(k), note);
    }
  } finally {
    net.ctx.training = false;
    for (const p of params.values()) p.grad = null;
  }
}

export function verifyModel(net: SRFlowNet, ref: Map<string, RawTensor>, tol = 1e-4, quantDefault?: number): VerifyRow[] {
  const c = referenceComparer(ref, tol);
  const { rows, get, cmp, lr, gt } = c;
  net.ctx.training = false;
  const r = noGrad(() => net.rrdbForward(lr, { withOut: ref.has('rrdb.out') }));
  for (const k of ref.keys()) {
    if (!k.startsWith('rrdb.')) continue;
    const n = k.slice(5);
    cmp(k, n === 'out' ? r.out : (r.maps.get(n) ?? r.blocks.get(n)), get(k));
  }
  const enc = net.encode(gt, lr);
  compareEncoding(c, gt, enc, net.decode(lr, enc.latents));
  if (ref.has('sample.sr')) {
    const eps = enc.latents.map((_z, i) => get(`sample.eps.${i}`));
    const smp = net.decode(lr, eps);
    cmp('sample.sr', smp.sr, get('sample.sr'));
    if (ref.has('sample.logdet')) cmp('sample.logdet', smp.logdet, get('sample.logdet'));
    // the inference path: conditioning prepared once (batched, phased first convs), decoded against it
    const cached = net.decodeCached(eps, net.prepareConditioning(lr));
    cmp('sample.sr (prepared conditioning)', cached.sr, get('sample.sr'));
  }
  if (ref.has('train.noise') && ref.has('train.objective')) {
    const quant = quantDefault ?? net.config.quant;
    const t = net.encode(gt, lr, { noise: get('train.noise'), quant });
    cmp('train.objective', t.nll, get('train.objective'));
  }
  compareGradients(c, net, gt, lr);
  return rows;
}
