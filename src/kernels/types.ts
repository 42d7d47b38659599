/** Kernel-level types shared by the reference (TypeScript) and native (C++) kernels. */

/** A flat numeric buffer. Float32 is the engine's dtype; Float64 is used by gradient checks. */
export type Buf = Float32Array | Float64Array;

/**
 * Geometry of a stride-1, dilation-1 2-D convolution over NCHW input with OIHW weights.
 * Output size: oh = h + 2*pad - kh + 1, ow = w + 2*pad - kw + 1 (zero padding).
 */
export interface Conv2dGeom {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  kh: number;
  kw: number;
  pad: number;
}

export function convOutSize(g: Conv2dGeom): { oh: number; ow: number } {
  return { oh: g.h + 2 * g.pad - g.kh + 1, ow: g.w + 2 * g.pad - g.kw + 1 };
}

/**
 * The hot kernels. `accumulate = true` adds into the output buffer instead of overwriting it.
 * Implementations must accept both Float32Array and Float64Array (the native backend delegates
 * Float64Array calls to the reference kernels).
 */
/**
 * Optional element-wise kernels (float32 only) for the flow's fused ops, the RRDB's activations and
 * Adam; the ops in src/tensor use them when present and fall back to their own loops otherwise.
 * Shapes: x, out are n × c × hw; raw is (n or 1) × 2c × hw with rb = 1 or 0 (broadcast over n).
 */
export interface ElementwiseKernels {
  /** out = (x + bias[c]) · mul[c], then max(·, 0) when relu. */
  channelAffine(x: Float32Array, n: number, c: number, hw: number, bias: Float32Array, mul: Float32Array, relu: boolean, out: Float32Array): void;
  /** gx = g·mul[c] (masked where out ≤ 0 when relu; gx may be null); sb[c] = Σ g, ss[c] = Σ g·out. */
  channelAffineBackward(
    g: Float32Array,
    out: Float32Array,
    n: number,
    c: number,
    hw: number,
    mul: Float32Array,
    relu: boolean,
    gx: Float32Array | null,
    sb: Float64Array,
    ss: Float64Array,
  ): void;
  /** out = (h + shift)·scale, or h/scale − shift when inverse (shift = raw[:, 0::2], scale = σ(raw[:, 1::2] + 2) + eps). */
  affineFromNet(h: Float32Array, raw: Float32Array, n: number, c: number, hw: number, rb: number, eps: number, inverse: boolean, out: Float32Array): void;
  /** gh = ∂/∂h (overwritten), gr += ∂/∂raw; either may be null. */
  affineFromNetBackward(
    g: Float32Array,
    h: Float32Array,
    raw: Float32Array,
    n: number,
    c: number,
    hw: number,
    rb: number,
    eps: number,
    inverse: boolean,
    gh: Float32Array | null,
    gr: Float32Array | null,
  ): void;
  /** out[b] = Σ log(σ(raw[b, 1::2] + 2) + eps). */
  sumLogScale(raw: Float32Array, n: number, c: number, hw: number, eps: number, out: Float64Array): void;
  /** Writes the scale channels of gr (the shift channels are left as they are). */
  sumLogScaleBackward(raw: Float32Array, n: number, c: number, hw: number, eps: number, g: Float32Array, gr: Float32Array): void;
  leakyRelu(x: Float32Array, slope: number, out: Float32Array): void;
  leakyReluBackward(g: Float32Array, x: Float32Array, slope: number, gx: Float32Array, accumulate: boolean): void;
  /** out = alpha·x + y */
  axpy(alpha: number, x: Float32Array, y: Float32Array, out: Float32Array): void;
  /** out += x */
  addInto(x: Float32Array, out: Float32Array): void;
  /** One Adam update of p, m, v in place (double-precision arithmetic per element, as the TypeScript step). */
  adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, ...s: AdamScalars): void;
}

/** Adam's scalar arguments, in the order every backend's entry point takes them. */
export type AdamScalars = [beta1: number, beta2: number, stepSize: number, bc2sqrt: number, eps: number, weightDecay: number];

/** A convolution's geometry as the C API's entry points take it (native addon and wasm), flat. */
export type ConvDimArgs = [n: number, cin: number, h: number, wd: number, cout: number, kh: number, kw: number, pad: number];
/** The C API's convolution entry points' arguments: `B` a buffer (Float32Array in Node, a pointer in wasm), `F` a flag. */
export type Conv2dArgs<B> = [x: B, w: B, bias: B | null, ...dims: ConvDimArgs, out: B];
export type Conv2dBackwardDataArgs<B, F> = [gy: B, w: B, ...dims: ConvDimArgs, gx: B, accumulate: F];
export type Conv2dBackwardFilterArgs<B, F> = [gy: B, x: B, ...dims: ConvDimArgs, gw: B, gb: B | null, accumulate: F];

export interface Kernels {
  readonly name: string;
  /** Element-wise kernels, where the backend has them (native). */
  readonly ew?: ElementwiseKernels;
  /** out[n,co,y,x] = bias[co] + sum_{ci,ky,kx} w[co,ci,ky,kx] * xpad[n,ci,y+ky,x+kx] */
  conv2d(x: Buf, w: Buf, bias: Buf | null, g: Conv2dGeom, out: Buf): void;
  /** gx = dL/dx given gy = dL/dout. */
  conv2dBackwardData(gy: Buf, w: Buf, g: Conv2dGeom, gx: Buf, accumulate: boolean): void;
  /** gw = dL/dw and (if gb given) gb = dL/dbias, given gy = dL/dout and the forward input x. */
  conv2dBackwardFilter(gy: Buf, x: Buf, g: Conv2dGeom, gw: Buf, gb: Buf | null, accumulate: boolean): void;
  /**
   * Row-major GEMM: out[m,n] (+)= op(a)[m,k] * op(b)[k,n], where op(a) = a (m×k) or aᵀ (a stored k×m),
   * op(b) = b (k×n) or bᵀ (b stored n×k).
   */
  matmul(a: Buf, b: Buf, m: number, k: number, n: number, transA: boolean, transB: boolean, out: Buf, accumulate: boolean): void;
}
