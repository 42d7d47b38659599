/**
 * verifyModel's checks with sampling and encoding on the WebGPU backend: RRDB maps, encode,
 * reconstruct, sample and the dequantised objective run on the GPU (models/webgpu.ts); the
 * gradients, which the WebGPU backend does not compute (training runs on the CPU backends), are
 * checked on the CPU kernels and say so in their note.
 */
import type { RawTensor } from '../io/safetensors.js';
import type { SRFlowNet } from './srflow.js';
import { compareEncoding, compareGradients, referenceComparer, type VerifyRow } from './verify.js';
import type { WebGpuSRFlow } from './webgpu.js';

export async function verifyModelWebGpu(net: SRFlowNet, gpu: WebGpuSRFlow, ref: Map<string, RawTensor>, tol = 1e-4, cpuNote = 'CPU'): Promise<VerifyRow[]> {
  const c = referenceComparer(ref, tol);
  const { rows, get, cmp, lr, gt } = c;
  net.ctx.training = false;
  if ([...ref.keys()].some((k) => k.startsWith('rrdb.'))) {
    const r = await gpu.rrdbForward(lr, { withOut: ref.has('rrdb.out') });
    for (const k of ref.keys()) {
      if (!k.startsWith('rrdb.')) continue;
      const n = k.slice(5);
      cmp(k, n === 'out' ? r.out : (r.maps.get(n) ?? r.blocks.get(n)), get(k));
    }
  }
  const enc = await gpu.encodeLr(gt, lr);
  compareEncoding(c, gt, enc, await gpu.decodeLr(lr, enc.latents));
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
  compareGradients(c, net, gt, lr, `on the ${cpuNote} kernels: the WebGPU backend does not train`);
  return rows;
}
