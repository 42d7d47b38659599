/**
 * Memory-saving training through invertibility (as RevNets / i-RevNet / memory-efficient Glow):
 * the flow runs forward without a tape, keeping only its outputs; in the backward pass each
 * layer's input is recomputed from its output with the layer's inverse, then the layer alone is
 * re-run with a local tape to get its gradients. Peak memory holds one layer's activations
 * instead of every layer's. Both walks are `runFlow`, with the same contract as everywhere.
 */
import { Tensor, noGrad, withGrad, result, accumulateGrad, allocLike } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { logNormal } from './gaussian.js';
import { flowContext } from './layer.js';
import { runFlow, type FlowPlan } from './run.js';

/** The flow's layers and the conditioning level of each (see runFlow). */
export type LowMemoryFlow = FlowPlan;

/**
 * The per-sample objective −(logdet + log N(z_L; 0, 1)) / (ln 2 · pixels) + constant, as one
 * tape node whose backward recomputes activations by inversion. `x` is the (dequantised) HR input.
 */
export function lowMemoryNll(flow: LowMemoryFlow, x: Tensor, conds: Tensor[], constLogdet: number): Tensor {
  const B = x.shape[0];
  const pixels = x.shape[2] * x.shape[3];
  const k = -1 / (Math.LN2 * pixels);
  // the forward pass keeps only the split latents (on the context's stack) and z_L
  const ctx = flowContext();
  let zL: Tensor = x;
  const nll = noGrad(() => {
    const r = runFlow(flow, x.detach(), 'forward', ctx, {
      conds: conds.map((c) => c.detach()),
      logdet: T.addScalar(Tensor.zeros([B], x.dtype), constLogdet),
    });
    zL = r.out;
    return T.scale(T.add(r.logdet, logNormal(zL, null, null)), k);
  });
  return result(nll.data, nll.shape, [x, ...conds], (g) => {
    // d nll / d objective = k; objective = Σ layer logdets + log N(z_L)
    const gObj = allocLike(g, B);
    for (let b = 0; b < B; b++) gObj[b] = g[b] * k;
    const per = zL.size / B;
    let gy = allocLike(zL.data, zL.size);
    for (let b = 0; b < B; b++) for (let i = 0; i < per; i++) gy[b * per + i] = -zL.data[b * per + i] * gObj[b];
    const gConds = conds.map(() => null as Tensor | null);
    const gLd = new Tensor(gObj, [B]); // every layer's log-determinant is per sample: its gradient is gObj
    // walk back: each layer's input recomputed by its inverse (popping the split latents), then the
    // layer alone re-run forward with a local tape from that input
    ctx.needLogdet = false;
    noGrad(() =>
      runFlow(flow, zL, 'inverse', ctx, {
        conds: conds.map((c) => c.detach()),
        visit: (i, _y, xin) => {
          const li = flow.levelIndex[i];
          const cond = conds[li];
          withGrad(() => {
            const xl = new Tensor(xin.data, xin.shape, true);
            const cl = cond && cond.requiresGrad ? new Tensor(cond.data, cond.shape, true) : cond ? cond.detach() : null;
            const r = flow.layers[i].forward(xl, flowContext({ cond: cl }));
            const loss = T.add(T.sum(T.mul(r.y, new Tensor(gy, r.y.shape))), T.sum(T.mul(r.logdet, gLd)));
            loss.backward();
            gy = xl.grad ?? allocLike(xl.data, xl.size);
            if (cl && cl.grad) {
              const prev = gConds[li];
              if (!prev) gConds[li] = new Tensor(cl.grad, cl.shape);
              else for (let j = 0; j < cl.grad.length; j++) prev.data[j] += cl.grad[j];
            }
          });
        },
      }),
    );
    accumulateGrad(x, gy, true);
    conds.forEach((c, i) => {
      const gc = gConds[i];
      if (gc) accumulateGrad(c, gc.data, true);
    });
  });
}
