import type { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { ZeroConv } from './affine.js';
import { logNormal } from './gaussian.js';
import { zeroLogdet, type FlowContext, type FlowLayer, type ForwardResult, type InverseResult } from './layer.js';

/** Python's round(): half to even. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Split2d: keep z1 (the first C − round(C/2) channels), send z2 to a learned Gaussian prior
 * conditioned on z1: g = ZeroConv(z1), mean = g[:,0::2], logs = g[:,1::2]. The level's latent is
 * ε = (z2 − mean)·exp(−logs); logdet += Σ log N(z2; mean, exp(logs)) (as the published code).
 * `forward` returns z1 and pushes ε onto the context's latent stack; `inverse` takes z1 and pops ε.
 */
export class Split2d implements FlowLayer {
  readonly kind = 'split';
  readonly conv: ZeroConv;
  readonly keep: number;

  constructor(readonly channels: number) {
    this.keep = channels - pyRound(channels / 2);
    this.conv = new ZeroConv(this.keep, 2 * (channels - this.keep));
  }

  get latentChannels(): number {
    return this.channels - this.keep;
  }

  parameters(): [string, Tensor][] {
    return this.conv.parameters().map(([n, t]): [string, Tensor] => [`conv.${n}`, t]);
  }

  prior(z1: Tensor): { mean: Tensor; logs: Tensor } {
    const g = this.conv.apply(z1);
    return { mean: T.evenChannels(g), logs: T.oddChannels(g) };
  }

  forward(x: Tensor, ctx: FlowContext): ForwardResult {
    const z1 = T.slice(x, 1, 0, this.keep);
    const z2 = T.slice(x, 1, this.keep, this.channels);
    const { mean, logs } = this.prior(z1);
    ctx.latents.push(T.mul(T.sub(z2, mean), T.exp(T.neg(logs))));
    return { y: z1, logdet: logNormal(z2, mean, logs) };
  }

  inverse(z1: Tensor, ctx: FlowContext): InverseResult {
    const latent = ctx.latents.pop();
    if (!latent) throw new Error('Expected a latent on the stack for the split layer inverse but received none');
    const { mean, logs } = this.prior(z1);
    const z2 = T.add(mean, T.mul(T.exp(logs), latent));
    const x = T.concat([z1, z2], 1);
    return { x, logdet: ctx.needLogdet ? T.neg(logNormal(z2, mean, logs)) : zeroLogdet(x) };
  }

  forwardShape(shape: readonly number[], latents: number[][]): number[] {
    const [b, , h, w] = shape;
    latents.push([b, this.latentChannels, h, w]);
    return [b, this.keep, h, w];
  }
}
