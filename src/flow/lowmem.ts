/**
 * Memory-saving training through invertibility (as RevNets / i-RevNet / memory-efficient Glow):
 * the flow runs forward without a tape, keeping only its outputs; in the backward pass each
 * layer's input is recomputed from its output with the layer's inverse, then the layer alone is
 * re-run with a local tape to get its gradients. Peak memory holds one layer's activations
 * instead of every layer's.
 */
import { Tensor, noGrad, result, accumulateGrad, allocLike } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { Split2d } from './split.js';
import { logNormal } from './gaussian.js';
import type { FlowLayer } from './layer.js';

export interface LowMemoryFlow {
  layers: FlowLayer[];
  /** Conditioning map index (0-based level) of each layer. */
  levelIndex: number[];
}

/**
 * The per-sample objective −(logdet + log N(z_L; 0, 1)) / (ln 2 · pixels) + constant, as one
 * tape node whose backward recomputes activations by inversion. `x` is the (dequantised) HR input.
 */
export function lowMemoryNll(flow: LowMemoryFlow, x: Tensor, conds: Tensor[], constLogdet: number): Tensor {
  const B = x.shape[0];
  const pixels = x.shape[2] * x.shape[3];
  const k = -1 / (Math.LN2 * pixels);
  const latents: (Tensor | null)[] = [];
  let h: Tensor = x.detach();
  const nll = noGrad(() => {
    let logdet: Tensor = T.addScalar(Tensor.zeros([B], x.dtype), constLogdet);
    flow.layers.forEach((layer, i) => {
      const cond = conds[flow.levelIndex[i]] ? conds[flow.levelIndex[i]].detach() : null;
      if (layer instanceof Split2d) {
        const r = layer.forward(h);
        latents.push(r.latent);
        h = r.out;
        logdet = T.add(logdet, r.logdet);
      } else {
        const r = layer.forward(h, cond);
        latents.push(null);
        h = r.out;
        logdet = T.add(logdet, r.logdet);
      }
    });
    return T.scale(T.add(logdet, logNormal(h, null, null)), k);
  });
  const zL = h;
  return result(nll.data, nll.shape, [x, ...conds], (g) => {
    // d nll / d objective = k; objective = Σ layer logdets + log N(z_L)
    const gObj = allocLike(g, B);
    for (let b = 0; b < B; b++) gObj[b] = g[b] * k;
    const per = zL.size / B;
    let gy = allocLike(zL.data, zL.size);
    for (let b = 0; b < B; b++) for (let i = 0; i < per; i++) gy[b * per + i] = -zL.data[b * per + i] * gObj[b];
    let y = zL;
    const gConds = conds.map(() => null as Tensor | null);
    for (let i = flow.layers.length - 1; i >= 0; i--) {
      const layer = flow.layers[i];
      const li = flow.levelIndex[i];
      const cond = conds[li];
      const latent = latents[i];
      // recompute this layer's input from its output
      const xin = noGrad(() =>
        layer instanceof Split2d ? layer.inverse(y, null, latent as Tensor).out : layer.inverse(y, cond ? cond.detach() : null).out,
      );
      // re-run the layer with a local tape
      const xl = new Tensor(xin.data, xin.shape, true);
      const cl = cond && cond.requiresGrad ? new Tensor(cond.data, cond.shape, true) : cond ? cond.detach() : null;
      const r = layer instanceof Split2d ? layer.forward(xl) : layer.forward(xl, cl);
      // logdet is per sample ([B]) or shared by all samples ([] / [1]): its gradient is gObj or Σ gObj
      const gLd = allocLike(r.logdet.data, r.logdet.size);
      if (r.logdet.size === B) gLd.set(gObj);
      else for (let b = 0; b < B; b++) gLd[0] += gObj[b];
      const loss = T.add(T.sum(T.mul(r.out, new Tensor(gy, r.out.shape))), T.sum(T.mul(r.logdet, new Tensor(gLd, r.logdet.shape))));
      loss.backward();
      gy = xl.grad ?? allocLike(xl.data, xl.size);
      y = xin;
      if (cl && cl.grad) {
        const prev = gConds[li];
        if (!prev) gConds[li] = new Tensor(cl.grad, cl.shape);
        else for (let j = 0; j < cl.grad.length; j++) prev.data[j] += cl.grad[j];
      }
    }
    accumulateGrad(x, gy, true);
    conds.forEach((c, i) => {
      const gc = gConds[i];
      if (gc) accumulateGrad(c, gc.data, true);
    });
  });
}
