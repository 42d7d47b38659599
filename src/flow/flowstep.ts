import { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import type { Rng } from '../tensor/random.js';
import { ActNorm } from './actnorm.js';
import { InvConv1x1 } from './invconv.js';
import { CondAffine, type AffineCache } from './affine.js';
import type { FlowContext, FlowLayer, FlowResult } from './layer.js';

/**
 * One flow step: ActNorm → InvConv1x1 → conditional affine (absent for the transition steps that
 * follow each squeeze).
 */
export class FlowStep implements FlowLayer {
  readonly kind = 'flowstep';
  readonly actnorm: ActNorm;
  readonly invconv: InvConv1x1;
  readonly affine: CondAffine | null;

  constructor(channels: number, cond: { channels: number; hidden: number; eps: number } | null, ctx: FlowContext, rng: Rng) {
    this.actnorm = new ActNorm(channels, ctx);
    this.invconv = new InvConv1x1(channels, rng);
    this.affine = cond ? new CondAffine(channels, cond.channels, cond.hidden, cond.eps, ctx, rng) : null;
  }

  parameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const add = (p: string, l: FlowLayer) => l.parameters().forEach(([n, t]) => out.push([`${p}.${n}`, t]));
    add('actnorm', this.actnorm);
    add('invconv', this.invconv);
    if (this.affine) add('affine', this.affine);
    return out;
  }

  forward(x: Tensor, cond: Tensor | null, cache?: AffineCache): FlowResult {
    const a = this.actnorm.forward(x);
    const b = this.invconv.forward(a.out);
    let logdet = T.add(a.logdet, b.logdet);
    if (!this.affine) return { out: b.out, logdet };
    const c = cache ? this.affine.forwardCached(b.out, cache) : this.affine.forward(b.out, cond);
    logdet = T.add(logdet, c.logdet);
    return { out: c.out, logdet };
  }

  inverse(y: Tensor, cond: Tensor | null, cache?: AffineCache, needLogdet = true): FlowResult {
    let h = y;
    let logdet: Tensor | null = null;
    if (this.affine) {
      const c = cache ? this.affine.inverseCached(h, cache, needLogdet) : this.affine.inverse(h, cond);
      h = c.out;
      logdet = c.logdet;
    }
    const b = this.invconv.inverse(h);
    const a = this.actnorm.inverse(b.out);
    const ld = T.add(a.logdet, b.logdet);
    return { out: a.out, logdet: logdet ? T.add(logdet, ld) : ld };
  }
}
