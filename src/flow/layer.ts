/**
 * The flow-layer contract. Every invertible layer maps x → y with a per-sample log-determinant
 * and knows its inverse: `inverse(forward(x).out).out = x` and the two log-determinants cancel.
 * `cond` is the conditioning feature map of the layer's level (null for unconditional layers).
 */
import type { Tensor } from '../tensor/tensor.js';

export interface FlowResult {
  out: Tensor;
  /** log|det ∂out/∂in| per sample, shape [B] (or [] / [1] when the same for every sample). */
  logdet: Tensor;
}

export interface FlowLayer {
  readonly kind: string;
  forward(x: Tensor, cond: Tensor | null): FlowResult;
  inverse(y: Tensor, cond: Tensor | null): FlowResult;
  /** Parameters with names relative to the layer (published names). */
  parameters(): [string, Tensor][];
}

/** Shared mode of a model's layers: training-mode forwards initialise ActNorms from data. */
export interface FlowContext {
  training: boolean;
}
