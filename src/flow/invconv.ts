import { Tensor, isGradEnabled, parameterVersion } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import type { Rng } from '../tensor/random.js';
import { orthogonal } from './init.js';
import { perSample, zeroLogdet, type FlowContext, type FlowLayer, type ForwardResult, type InverseResult } from './layer.js';

/** Invertible 1×1 convolution: out[:, o] = Σ_i W[o,i] h[:, i]; logdet = H·W·log|det W|. */
export class InvConv1x1 implements FlowLayer {
  readonly kind = 'invconv';
  weight: Tensor;

  constructor(
    readonly channels: number,
    rng: Rng,
  ) {
    this.weight = Tensor.param(orthogonal(channels, rng), [channels, channels]);
  }

  parameters(): [string, Tensor][] {
    return [['weight', this.weight]];
  }

  /**
   * Inference cache of log|det W| and W⁻¹ (valid for one weight array and parameter version; never
   * used while recording a tape, so gradients always flow through the real ops).
   */
  private cache: { data: unknown; version: number; logdet: Tensor; inv: Tensor } | null = null;

  private cached(): { logdet: Tensor; inv: Tensor } | null {
    if (isGradEnabled() || this.weight.dtype !== 'float32') return null;
    const v = parameterVersion();
    if (!this.cache || this.cache.data !== this.weight.data || this.cache.version !== v) {
      const c = this.channels;
      this.cache = { data: this.weight.data, version: v, logdet: T.logAbsDet(this.weight), inv: T.reshape(T.inverse(this.weight), [c, c, 1, 1]) };
    }
    return this.cache;
  }

  private ld(x: Tensor, sign: number): Tensor {
    const c = this.cached();
    return perSample(T.scale(c ? c.logdet : T.logAbsDet(this.weight), sign * x.shape[2] * x.shape[3]), x.shape[0]);
  }

  forward(x: Tensor, _ctx: FlowContext): ForwardResult {
    const c = this.channels;
    return { y: T.conv2d(x, T.reshape(this.weight, [c, c, 1, 1])), logdet: this.ld(x, 1) };
  }

  inverse(y: Tensor, ctx: FlowContext): InverseResult {
    const c = this.channels;
    const inv = this.cached()?.inv ?? T.reshape(T.inverse(this.weight), [c, c, 1, 1]);
    const x = T.conv2d(y, inv);
    return { x, logdet: ctx.needLogdet ? this.ld(y, -1) : zeroLogdet(x) };
  }

  forwardShape(shape: readonly number[]): number[] {
    return shape.slice();
  }
}
