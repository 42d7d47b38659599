import { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import type { Rng } from '../tensor/random.js';
import { orthogonal } from './init.js';
import type { FlowLayer, FlowResult } from './layer.js';

/** Invertible 1×1 convolution: out[:, o] = Σ_i W[o,i] h[:, i]; logdet = H·W·log|det W|. */
export class InvConv1x1 implements FlowLayer {
  readonly kind = 'invconv';
  weight: Tensor;

  constructor(readonly channels: number, rng: Rng) {
    this.weight = Tensor.param(orthogonal(channels, rng), [channels, channels]);
  }

  parameters(): [string, Tensor][] {
    return [['weight', this.weight]];
  }

  private ld(x: Tensor, sign: number): Tensor {
    return T.scale(T.logAbsDet(this.weight), sign * x.shape[2] * x.shape[3]);
  }

  forward(x: Tensor): FlowResult {
    const c = this.channels;
    return { out: T.conv2d(x, T.reshape(this.weight, [c, c, 1, 1])), logdet: this.ld(x, 1) };
  }

  inverse(y: Tensor): FlowResult {
    const c = this.channels;
    return { out: T.conv2d(y, T.reshape(T.inverse(this.weight), [c, c, 1, 1])), logdet: this.ld(y, -1) };
  }
}
