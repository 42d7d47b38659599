import { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { zeroLogdet, type FlowContext, type FlowLayer, type ForwardResult, type InverseResult } from './layer.js';

/** Squeeze (C,H,W) → (4C,H/2,W/2); a permutation, so its log-determinant is 0. */
export class Squeeze implements FlowLayer {
  readonly kind = 'squeeze';
  parameters(): [string, Tensor][] {
    return [];
  }
  forward(x: Tensor, _ctx: FlowContext): ForwardResult {
    return { y: T.squeeze2(x), logdet: zeroLogdet(x) };
  }
  inverse(y: Tensor, _ctx: FlowContext): InverseResult {
    return { x: T.squeeze2(y, true), logdet: zeroLogdet(y) };
  }
  forwardShape(shape: readonly number[]): number[] {
    const [b, c, h, w] = shape;
    return [b, 4 * c, h / 2, w / 2];
  }
}
