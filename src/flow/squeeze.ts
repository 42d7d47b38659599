import { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import type { FlowLayer, FlowResult } from './layer.js';

/** Squeeze (C,H,W) → (4C,H/2,W/2); a permutation, so its log-determinant is 0. */
export class Squeeze implements FlowLayer {
  readonly kind = 'squeeze';
  parameters(): [string, Tensor][] {
    return [];
  }
  private zero(x: Tensor): Tensor {
    return Tensor.zeros([x.shape[0]], x.dtype);
  }
  forward(x: Tensor): FlowResult {
    return { out: T.squeeze2(x), logdet: this.zero(x) };
  }
  inverse(y: Tensor): FlowResult {
    return { out: T.squeeze2(y, true), logdet: this.zero(y) };
  }
}
