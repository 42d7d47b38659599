/**
 * verifyModel's checks with sampling and encoding on the WebGPU backend: RRDB maps, encode,
 * reconstruct, sample and the dequantised objective run on the GPU (models/webgpu.ts); the
 * gradients, which the WebGPU backend does not compute (training runs on the CPU backends), are
 * checked on the CPU kernels and say so in their note.
 */
import { Tensor } from '../tensor/tensor.js';
import type { RawTensor } from '../io/safetensors.js';
import type { SRFlowNet } from './srflow.js';
import { referenceComparer, relativeError, type VerifyRow } from './verify.js';
import type { WebGpuSRFlow } from './webgpu.js';

export async function verifyModelWebGpu(net: SRFlowNet, gpu: WebGpuSRFlow, ref: Map<string, RawTensor>, tol = 1e-4, cpuNote = 'CPU'): Promise<VerifyRow[]> {
  const rows: VerifyRow[] = [];
  const { get, cmp } = referenceComparer(ref, tol, rows);
  const lr = get('lr');
  const gt = get('gt');
  net.ctx.training = false;
  if ([...ref.keys()].some((k) => k.startsWith('rrdb.'))) {
    const r = await gpu.rrdbForward(lr, { withOut: ref.has('rrdb.out') });
    for (const k of ref.keys()) {
      if (!k.startsWith('rrdb.')) continue;
      const n = k.slice(5);
      cmp(k, n === 'out' ? r.out : (r.maps.get(n) ?? r.blocks.get(n)), get(k));
    }
  }
  const nLat = [...ref.keys()].filter((k) => /^encode\.eps\.\d+$/.test(k)).length;
  const enc = await gpu.encodeLr(gt, lr);
  if (nLat !== enc.latents.length) rows.push({ name: 'encode.eps (count)', relErr: Infinity, pass: false, note: `${enc.latents.length} latents vs ${nLat} in the reference` });
  enc.latents.forEach((z, i) => ref.has(`encode.eps.${i}`) && cmp(`encode.eps.${i}`, z, get(`encode.eps.${i}`)));
  if (ref.has('encode.nll')) cmp('encode.nll', enc.nll, get('encode.nll'));
  if (ref.has('encode.logdet')) cmp('encode.logdet', enc.logdet, get('encode.logdet'));
  const rec = await gpu.decodeLr(lr, enc.latents);
  if (ref.has('reconstruct.sr')) cmp('reconstruct.sr', rec.sr, get('reconstruct.sr'));
  if (ref.has('reconstruct.logdet')) cmp('reconstruct.logdet', rec.logdet, get('reconstruct.logdet'));
  {
    const e = relativeError(rec.sr.data, gt.data);
    rows.push({ name: 'roundtrip decode(encode(gt)) vs gt', relErr: e, pass: e < 1e-5 });
  }
  if (ref.has('sample.sr')) {
    const eps = enc.latents.map((_z, i) => get(`sample.eps.${i}`));
    const smp = await gpu.decodeLr(lr, eps);
    cmp('sample.sr', smp.sr, get('sample.sr'));
    if (ref.has('sample.logdet')) cmp('sample.logdet', smp.logdet, get('sample.logdet'));
    // the engine's path: conditioning prepared once, decoded without log-determinant
    const c = gpu.prepare(lr);
    try {
      cmp('sample.sr (prepared conditioning)', (await gpu.decode(eps, c, { logdet: false })).sr, get('sample.sr'));
    } finally {
      gpu.release(c);
    }
  }
  if (ref.has('train.noise') && ref.has('train.objective')) {
    const t = await gpu.encodeLr(gt, lr, { noise: get('train.noise'), quant: net.config.quant });
    cmp('train.objective', t.nll, get('train.objective'));
  }
  const gradKeys = [...ref.keys()].filter((k) => k.startsWith('grad.') && k !== 'grad.loss');
  if (gradKeys.length || ref.has('grad.loss')) {
    const note = `on the ${cpuNote} kernels: the WebGPU backend does not train`;
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
  return rows;
}
