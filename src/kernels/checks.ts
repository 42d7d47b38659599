/**
 * `withChecks(backend)`: the one place where kernel arguments are validated, for every CPU backend
 * (reference, native, wasm). A backend implements the kernels on buffers already checked (and,
 * given a float64 fallback, on Float32Arrays only); the wrapper checks the geometry and every
 * buffer's length, with one wording: "Expected <buffer> of length <n> for <kernel> but received
 * length <m>", "Expected <arg> to be an integer >= <min> for <kernel> but received <v>".
 */
import type { Buf, Conv2dGeom, ElementwiseKernels, Kernels } from './types.js';
import { convOutSize } from './types.js';
import * as is from '../is.js';

function checkLen(name: string, fn: string, b: Buf | null, expected: number): void {
  if (b !== null && b.length !== expected) throw new Error(`Expected ${name} of length ${expected} for ${fn} but received length ${b.length}`);
}

function checkInt(name: string, fn: string, v: number, min: number): void {
  if (!is.intAtLeast(v, min)) throw new Error(`Expected ${name} to be an integer >= ${min} for ${fn} but received ${v}`);
}

/** Checks a convolution's geometry; returns its output size. */
export function checkGeom(g: Conv2dGeom, fn: string): { oh: number; ow: number } {
  for (const k of ['n', 'cin', 'h', 'w', 'cout', 'kh', 'kw'] as const) checkInt(k, fn, g[k], 1);
  checkInt('pad', fn, g.pad, 0);
  const o = convOutSize(g);
  if (o.oh < 1 || o.ow < 1) throw new Error(`Expected a non-empty output for ${fn} but received geometry ${JSON.stringify(g)}`);
  return o;
}

/** Checks (name, buffer, length) triples of one kernel call. */
function lens(fn: string, ...items: [string, Buf | null, number][]): void {
  for (const [name, b, n] of items) checkLen(name, fn, b, n);
}

function nchw(fn: string, n: number, c: number, hw: number): number {
  checkInt('n', fn, n, 1);
  checkInt('c', fn, c, 1);
  checkInt('hw', fn, hw, 1);
  return n * c * hw;
}

const allF32 = (...bufs: (Buf | null)[]): boolean => bufs.every((b) => b === null || b instanceof Float32Array);

/** The element-wise kernels of `e` behind argument checks. */
function checkedElementwise(e: ElementwiseKernels): ElementwiseKernels {
  return {
    channelAffine(x, n, c, hw, bias, mul, relu, out) {
      const t = nchw('channelAffine', n, c, hw);
      lens('channelAffine', ['x', x, t], ['bias', bias, c], ['mul', mul, c], ['out', out, t]);
      e.channelAffine(x, n, c, hw, bias, mul, relu, out);
    },
    channelAffineBackward(g, out, n, c, hw, mul, relu, gx, sb, ss) {
      const t = nchw('channelAffineBackward', n, c, hw);
      lens('channelAffineBackward', ['g', g, t], ['out', out, t], ['mul', mul, c], ['gx', gx, t], ['sb', sb, c], ['ss', ss, c]);
      e.channelAffineBackward(g, out, n, c, hw, mul, relu, gx, sb, ss);
    },
    affineFromNet(h, raw, n, c, hw, rb, eps, inverse, out) {
      const t = nchw('affineFromNet', n, c, hw);
      checkInt('rb', 'affineFromNet', rb, 0);
      lens('affineFromNet', ['h', h, t], ['raw', raw, (rb ? n : 1) * 2 * c * hw], ['out', out, t]);
      e.affineFromNet(h, raw, n, c, hw, rb, eps, inverse, out);
    },
    affineFromNetBackward(g, h, raw, n, c, hw, rb, eps, inverse, gh, gr) {
      const t = nchw('affineFromNetBackward', n, c, hw);
      checkInt('rb', 'affineFromNetBackward', rb, 0);
      const rt = (rb ? n : 1) * 2 * c * hw;
      lens('affineFromNetBackward', ['g', g, t], ['h', h, t], ['raw', raw, rt], ['gh', gh, t], ['gr', gr, rt]);
      e.affineFromNetBackward(g, h, raw, n, c, hw, rb, eps, inverse, gh, gr);
    },
    sumLogScale(raw, n, c, hw, eps, out) {
      const t = nchw('sumLogScale', n, c, hw);
      lens('sumLogScale', ['raw', raw, 2 * t], ['out', out, n]);
      e.sumLogScale(raw, n, c, hw, eps, out);
    },
    sumLogScaleBackward(raw, n, c, hw, eps, g, gr) {
      const t = nchw('sumLogScaleBackward', n, c, hw);
      lens('sumLogScaleBackward', ['raw', raw, 2 * t], ['g', g, n], ['gr', gr, 2 * t]);
      e.sumLogScaleBackward(raw, n, c, hw, eps, g, gr);
    },
    leakyRelu(x, slope, out) {
      checkLen('out', 'leakyRelu', out, x.length);
      e.leakyRelu(x, slope, out);
    },
    leakyReluBackward(g, x, slope, gx, accumulate) {
      lens('leakyReluBackward', ['x', x, g.length], ['gx', gx, g.length]);
      e.leakyReluBackward(g, x, slope, gx, accumulate);
    },
    axpy(alpha, x, y, out) {
      lens('axpy', ['y', y, x.length], ['out', out, x.length]);
      e.axpy(alpha, x, y, out);
    },
    addInto(x, out) {
      checkLen('out', 'addInto', out, x.length);
      e.addInto(x, out);
    },
    adam(p, g, m, v, beta1, beta2, stepSize, bc2sqrt, eps, weightDecay) {
      lens('adam', ['g', g, p.length], ['m', m, p.length], ['v', v, p.length]);
      e.adam(p, g, m, v, beta1, beta2, stepSize, bc2sqrt, eps, weightDecay);
    },
  };
}

/**
 * `backend` behind argument checks: the same errors from every backend for the same bad call.
 * With `float64` (the reference kernels), a call with any non-Float32Array buffer goes there
 * instead, so that `backend` sees Float32Arrays only. The result keeps every other property and
 * method of `backend` (its prototype is `backend`).
 */
export function withChecks<K extends Kernels>(backend: K, float64?: Kernels): K {
  const k = Object.create(backend) as K & { ew?: ElementwiseKernels };
  const pick = (...bufs: (Buf | null)[]): Kernels => (float64 && !allF32(...bufs) ? float64 : backend);
  k.conv2d = (x, w, bias, g, out) => {
    const { oh, ow } = checkGeom(g, 'conv2d');
    lens('conv2d', ['x', x, g.n * g.cin * g.h * g.w], ['w', w, g.cout * g.cin * g.kh * g.kw], ['bias', bias, g.cout], ['out', out, g.n * g.cout * oh * ow]);
    pick(x, w, bias, out).conv2d(x, w, bias, g, out);
  };
  k.conv2dBackwardData = (gy, w, g, gx, accumulate) => {
    const { oh, ow } = checkGeom(g, 'conv2dBackwardData');
    lens('conv2dBackwardData', ['gy', gy, g.n * g.cout * oh * ow], ['w', w, g.cout * g.cin * g.kh * g.kw], ['gx', gx, g.n * g.cin * g.h * g.w]);
    pick(gy, w, gx).conv2dBackwardData(gy, w, g, gx, !!accumulate);
  };
  k.conv2dBackwardFilter = (gy, x, g, gw, gb, accumulate) => {
    const { oh, ow } = checkGeom(g, 'conv2dBackwardFilter');
    lens(
      'conv2dBackwardFilter',
      ['gy', gy, g.n * g.cout * oh * ow],
      ['x', x, g.n * g.cin * g.h * g.w],
      ['gw', gw, g.cout * g.cin * g.kh * g.kw],
      ['gb', gb, g.cout],
    );
    pick(gy, x, gw, gb).conv2dBackwardFilter(gy, x, g, gw, gb, !!accumulate);
  };
  k.matmul = (a, b, m, kk, n, transA, transB, out, accumulate) => {
    checkInt('m', 'matmul', m, 0);
    checkInt('k', 'matmul', kk, 0);
    checkInt('n', 'matmul', n, 0);
    lens('matmul', ['a', a, m * kk], ['b', b, kk * n], ['out', out, m * n]);
    pick(a, b, out).matmul(a, b, m, kk, n, !!transA, !!transB, out, !!accumulate);
  };
  if (backend.ew) k.ew = checkedElementwise(backend.ew);
  return k;
}
