import { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import { channelAffine, channelAffineInverse } from '../tensor/fused.js';
import { perSample, zeroLogdet, type FlowContext, type FlowLayer, type FlowMode, type ForwardResult, type InverseResult } from './layer.js';

/**
 * ActNorm: out = (h + b) · exp(s) per channel; logdet = H·W·Σ s. Initialised from the first
 * training-mode batch (b = −mean, s = log(1/(σ + 1e-6))) unless its bias is already non-zero.
 */
export class ActNorm implements FlowLayer {
  readonly kind = 'actnorm';
  bias: Tensor;
  logs: Tensor;
  initialized = false;

  constructor(
    readonly channels: number,
    private mode: FlowMode,
  ) {
    this.bias = Tensor.param(new Float32Array(channels), [1, channels, 1, 1]);
    this.logs = Tensor.param(new Float32Array(channels), [1, channels, 1, 1]);
  }

  parameters(): [string, Tensor][] {
    return [
      ['bias', this.bias],
      ['logs', this.logs],
    ];
  }

  /** Data-dependent initialisation (training mode only, once). */
  maybeInit(x: Tensor): void {
    if (this.initialized || !this.mode.training) return;
    if (this.bias.data.some((v) => v !== 0)) {
      this.initialized = true;
      return;
    }
    const [n, c, h, w] = x.shape;
    const hw = h * w;
    const X = x.data;
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let b = 0; b < n; b++) for (let i = 0, o = (b * c + ch) * hw; i < hw; i++) s += X[o + i];
      const mean = s / (n * hw);
      let v = 0;
      for (let b = 0; b < n; b++) for (let i = 0, o = (b * c + ch) * hw; i < hw; i++) v += (X[o + i] - mean) ** 2;
      const std = Math.sqrt(v / (n * hw));
      this.bias.data[ch] = -mean;
      this.logs.data[ch] = Math.log(1 / (std + 1e-6));
    }
    this.initialized = true;
  }

  /** The affine map without log-determinant (as used inside the coupling nets), optionally + ReLU. */
  apply(x: Tensor, relu = false, inPlace = false): Tensor {
    this.maybeInit(x);
    return channelAffine(x, this.bias, this.logs, 1, relu, inPlace);
  }

  private ld(x: Tensor, sign: number): Tensor {
    return perSample(T.scale(T.sum(this.logs), sign * x.shape[2] * x.shape[3]), x.shape[0]);
  }

  forward(x: Tensor, _ctx: FlowContext): ForwardResult {
    const y = this.apply(x);
    return { y, logdet: this.ld(x, 1) };
  }

  inverse(y: Tensor, ctx: FlowContext): InverseResult {
    const x = channelAffineInverse(y, this.bias, this.logs, 1);
    return { x, logdet: ctx.needLogdet ? this.ld(y, -1) : zeroLogdet(x) };
  }

  forwardShape(shape: readonly number[]): number[] {
    return shape.slice();
  }
}
