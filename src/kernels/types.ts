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
export interface Kernels {
  readonly name: string;
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
