import { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import type { Rng } from '../tensor/random.js';
import { ActNorm } from './actnorm.js';
import { InvConv1x1 } from './invconv.js';
import { CondAffine } from './affine.js';
import type { FlowContext, FlowLayer, FlowMode, ForwardResult, InverseResult } from './layer.js';

/**
 * One flow step: ActNorm → InvConv1x1 → conditional affine (absent for the transition steps that
 * follow each squeeze).
 */
export class FlowStep implements FlowLayer {
  readonly kind = 'flowstep';
  readonly actnorm: ActNorm;
  readonly invconv: InvConv1x1;
  readonly affine: CondAffine | null;

  constructor(channels: number, cond: { channels: number; hidden: number; eps: number } | null, mode: FlowMode, rng: Rng) {
    this.actnorm = new ActNorm(channels, mode);
    this.invconv = new InvConv1x1(channels, rng);
    this.affine = cond ? new CondAffine(channels, cond.channels, cond.hidden, cond.eps, mode, rng) : null;
  }

  parameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const add = (p: string, l: FlowLayer) => l.parameters().forEach(([n, t]) => out.push([`${p}.${n}`, t]));
    add('actnorm', this.actnorm);
    add('invconv', this.invconv);
    if (this.affine) add('affine', this.affine);
    return out;
  }

  forward(x: Tensor, ctx: FlowContext): ForwardResult {
    const a = this.actnorm.forward(x, ctx);
    const b = this.invconv.forward(a.y, ctx);
    const logdet = T.add(a.logdet, b.logdet);
    if (!this.affine) return { y: b.y, logdet };
    const c = this.affine.forward(b.y, ctx);
    return { y: c.y, logdet: T.add(logdet, c.logdet) };
  }

  inverse(y: Tensor, ctx: FlowContext): InverseResult {
    const c = this.affine ? this.affine.inverse(y, ctx) : null;
    const b = this.invconv.inverse(c ? c.x : y, ctx);
    const a = this.actnorm.inverse(b.x, ctx);
    const ld = T.add(a.logdet, b.logdet);
    return { x: a.x, logdet: c ? T.add(c.logdet, ld) : ld };
  }

  forwardShape(shape: readonly number[]): number[] {
    return shape.slice();
  }
}
