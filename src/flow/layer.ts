/**
 * The flow-layer contract. Every invertible layer maps x → y with a log-determinant of one value
 * per sample (shape [B]) and knows its inverse:
 *
 *   forward(x, ctx) → { y, logdet }     inverse(y, ctx) → { x, logdet }
 *
 * with `inverse(forward(x).y).x = x` and the two log-determinants cancelling. Everything a layer
 * reads besides its input comes in the context: the conditioning map of its level, its
 * precomputed conditioning (inference), the latent stack (a split pushes its ε on the way forward
 * and pops it on the way back) and whether the inverse's log-determinant is needed. `runFlow`
 * (flow/run.ts) is the one loop that drives a list of layers in either direction.
 */
import { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import type { AffineCache } from './affine.js';
import type { LayerGuard } from './guard.js';

export interface ForwardResult {
  y: Tensor;
  /** log|det ∂y/∂x| per sample, shape [B]. */
  logdet: Tensor;
}

export interface InverseResult {
  x: Tensor;
  /** log|det ∂x/∂y| per sample, shape [B] (zeros when the context says it is not needed: `needLogdet` false). */
  logdet: Tensor;
}

/** What a layer reads besides its input during one pass through the flow. */
export interface FlowContext {
  /** Conditioning map of the layer's level, or null (unconditional layers, or `cache` given). */
  cond: Tensor | null;
  /** The layer's precomputed conditioning-only work (inference; see SRFlowNet.prepareConditioning), or null. */
  cache: AffineCache | null;
  /** The latent stack: a split's forward pushes its ε, its inverse pops it. */
  latents: Tensor[];
  /** false: inverses skip their log-determinants and return zeros (sampling). */
  needLogdet: boolean;
  /** Scratch buffers reused from layer to layer (no tape only), or null. */
  workspace: Workspace | null;
  /** The layer's sampling guard (flow/guard.ts; inverse without a tape only), or null. */
  guard: LayerGuard | null;
  /** Per sample, values the guard changed in this pass (added to), or null. */
  guardCounts: Float64Array | null;
  /** Sees every affine net's raw output of the layer (guard calibration), or null. */
  observe: ((which: 'inj' | 'cp', raw: Tensor) => void) | null;
}

/**
 * Scratch buffers by name, reused across the layers of a pass (and across passes): a layer takes
 * one for an intermediate that dies before it returns (never for an output). Saves allocating and
 * page-faulting megabytes per layer at inference.
 */
export class Workspace {
  private bufs = new Map<string, Float32Array>();
  /** A buffer of exactly n floats (contents undefined), grown as needed. */
  get(name: string, n: number): Float32Array {
    let b = this.bufs.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(n);
      this.bufs.set(name, b);
    }
    return b.length === n ? b : b.subarray(0, n);
  }
  /** Bytes held. */
  get bytes(): number {
    let s = 0;
    for (const b of this.bufs.values()) s += b.byteLength;
    return s;
  }
}

/** A context for one pass; `runFlow` sets `cond` and `cache` per layer. */
export function flowContext(o: Partial<FlowContext> = {}): FlowContext {
  return {
    cond: o.cond ?? null,
    cache: o.cache ?? null,
    latents: o.latents ?? [],
    needLogdet: o.needLogdet ?? true,
    workspace: o.workspace ?? null,
    guard: o.guard ?? null,
    guardCounts: o.guardCounts ?? null,
    observe: o.observe ?? null,
  };
}

export interface FlowLayer {
  readonly kind: string;
  forward(x: Tensor, ctx: FlowContext): ForwardResult;
  inverse(y: Tensor, ctx: FlowContext): InverseResult;
  /** Shape of the forward output for an input shape; a split also appends its latent's shape to `latents`. */
  forwardShape(shape: readonly number[], latents: number[][]): number[];
  /** Parameters with names relative to the layer (published names). */
  parameters(): [string, Tensor][];
}

/** Model-wide mode shared by a model's layers: training-mode forwards initialise ActNorms from data. */
export interface FlowMode {
  training: boolean;
}

/** A log-determinant shared by every sample (a scalar) as one value per sample, [B]; on the tape. */
export function perSample(ld: Tensor, batch: number): Tensor {
  return T.add(Tensor.zeros([batch], ld.dtype), ld);
}

/** Zero log-determinants, [B]. */
export function zeroLogdet(x: Tensor): Tensor {
  return Tensor.zeros([x.shape[0]], x.dtype);
}
