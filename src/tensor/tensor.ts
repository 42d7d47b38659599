/**
 * The tensor and its tape-based reverse-mode autograd.
 *
 * A Tensor is a flat buffer (float32; float64 only for gradient checks) with an NCHW-style shape.
 * Every differentiable op builds its result with `result(...)`, giving the parents and a closure that
 * turns the output gradient into parent gradients: the gradient sits right beside the forward. One
 * iterative topological sort in `backward()` drives the tape; after the pass the tape is dropped, so
 * nothing survives an iteration of a training loop but the parameters and their gradients.
 */
import type { Buf } from '../kernels/types.js';
import { ew } from './ew.js';

export type { Buf };
export type DType = 'float32' | 'float64';

let gradEnabled = true;

/** Whether ops record the tape (false inside `noGrad`). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = on;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Run `fn` without recording a tape: results carry no parents, intermediates are freed as soon as unreferenced. */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Run `fn` recording the tape (inside a `noGrad` region: e.g. a local tape in a recomputing backward pass). */
export function withGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

let paramVersion = 0;
/** A counter bumped whenever parameters change in place (optimiser steps, loading), for caches. */
export function parameterVersion(): number {
  return paramVersion;
}
export function bumpParameterVersion(): void {
  paramVersion++;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function allocLike(d: Buf, n: number): Buf {
  return d instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

// Node's Buffer.allocUnsafeSlow gives memory that is not zero-filled; browsers fall back to zeroed arrays.
const unsafeAlloc: ((bytes: number) => Uint8Array) | null =
  typeof globalThis.Buffer === 'function' && typeof globalThis.Buffer.allocUnsafeSlow === 'function' ? (b) => globalThis.Buffer.allocUnsafeSlow(b) : null;

/**
 * A buffer like `allocLike` whose contents are undefined: for outputs every element of which the
 * caller writes (skips zero-filling, which costs as much as a pass of an element-wise op).
 */
export function allocOut(d: Buf, n: number): Buf {
  if (d instanceof Float64Array) return new Float64Array(n);
  if (unsafeAlloc === null || n < 1024) return new Float32Array(n);
  const b = unsafeAlloc(n * 4);
  return new Float32Array(b.buffer, b.byteOffset, n);
}

/**
 * The output buffer (n values, of the type of `like`) of an op with an `into` option: `into` (no
 * tape only, of that type and length), else a new one. `what` names it in the error: "x for axpy's into".
 */
export function outputInto(into: Buf | undefined, like: Buf, n: number, what: string): Buf {
  if (into && (isGradEnabled() || into.length !== n || into.constructor !== like.constructor)) {
    throw new Error(`Expected no tape and an output buffer of ${n} values like ${what} but received ${into.length}`);
  }
  return into ?? allocOut(like, n);
}

export class Tensor {
  data: Buf;
  shape: number[];
  requiresGrad: boolean;
  grad: Buf | null = null;
  /** Tape: inputs of the op that produced this tensor (empty for leaves and after backward). */
  _parents: Tensor[] = [];
  /** Tape: turns this tensor's gradient into its parents' gradients. */
  _backward: ((g: Buf) => void) | null = null;

  constructor(data: Buf, shape: readonly number[], requiresGrad = false) {
    if (numel(shape) !== data.length) {
      throw new Error(`Expected ${numel(shape)} values for shape [${shape.join(',')}] but received ${data.length}`);
    }
    this.data = data;
    this.shape = shape.slice();
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.data.length;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get dtype(): DType {
    return this.data instanceof Float64Array ? 'float64' : 'float32';
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    const n = numel(shape);
    return new Tensor(dtype === 'float64' ? new Float64Array(n) : new Float32Array(n), shape);
  }
  static full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
    const t = Tensor.zeros(shape, dtype);
    t.data.fill(value);
    return t;
  }
  static from(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return new Tensor(dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values), shape);
  }
  /** A trainable leaf. */
  static param(data: Buf, shape: readonly number[]): Tensor {
    return new Tensor(data, shape, true);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) throw new Error(`Expected a one-element tensor for item() but received shape [${this.shape.join(',')}]`);
    return this.data[0];
  }

  /** A tensor sharing this data but cut from the tape. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  /** Copy to a new dtype (float64 for gradient checks). */
  to(dtype: DType): Tensor {
    const t = new Tensor(dtype === 'float64' ? Float64Array.from(this.data) : Float32Array.from(this.data), this.shape, this.requiresGrad);
    return t;
  }

  isLeaf(): boolean {
    return this._backward === null;
  }

  /**
   * Reverse-mode pass from this tensor. `grad` defaults to ones (a scalar loss gets dL/dL = 1).
   * Gradients accumulate into leaves' `.grad`; intermediate gradients and the tape are freed.
   */
  backward(grad?: Buf): void {
    if (!this.requiresGrad) throw new Error('backward() called on a tensor that does not require grad');
    const order = topoSort(this);
    if (grad) {
      if (grad.length !== this.size) throw new Error(`Expected a gradient of ${this.size} values for backward() but received ${grad.length}`);
      accumulateGrad(this, grad, false);
    } else {
      const ones = allocLike(this.data, this.size);
      ones.fill(1);
      accumulateGrad(this, ones, true);
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i];
      const fn = node._backward;
      if (!fn) continue;
      const g = node.grad;
      node._backward = null;
      node._parents = [];
      node.grad = null; // intermediate gradients are not kept
      if (g) fn(g);
    }
  }
}

/** Iterative DFS post-order over the tape (deep networks would overflow a recursive one). */
function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node._parents.length) {
      top[1]++;
      const p = node._parents[i];
      if (!seen.has(p) && p.requiresGrad) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order;
}

/**
 * Add `g` into `t.grad`. `owned` means the caller allocated `g` for this tensor alone, so it can be
 * adopted without a copy.
 */
export function accumulateGrad(t: Tensor, g: Buf, owned: boolean): void {
  if (!t.requiresGrad) return;
  if (!t.grad) {
    if (owned && g.constructor === t.data.constructor) t.grad = g;
    else {
      t.grad = allocLike(t.data, t.size);
      t.grad.set(g);
    }
    return;
  }
  const a = t.grad;
  const K = a.length >= 4096 ? ew(a, g) : null;
  if (K) K.addInto(g as Float32Array, a as Float32Array);
  else for (let i = 0; i < a.length; i++) a[i] += g[i];
}

/**
 * Build an op's result. When grad mode is on and any parent needs a gradient, the result records
 * its parents and `backward` (which receives dL/dresult and calls accumulateGrad on parents).
 */
export function result(data: Buf, shape: readonly number[], parents: Tensor[], backward: (g: Buf) => void): Tensor {
  const out = new Tensor(data, shape);
  if (gradEnabled) {
    for (const p of parents) {
      if (p.requiresGrad) {
        out.requiresGrad = true;
        out._parents = parents;
        out._backward = backward;
        break;
      }
    }
  }
  return out;
}

/** One backward pass from several outputs with the given gradients (null: no gradient for that one). */
export function backwardMany(outs: Tensor[], grads: (Buf | null)[]): void {
  if (!outs.some((t, i) => t.requiresGrad && grads[i])) return;
  const root = result(new Float32Array(1), [1], outs, () => {
    outs.forEach((t, i) => {
      const g = grads[i];
      if (g) accumulateGrad(t, g, false);
    });
  });
  root.backward();
}
