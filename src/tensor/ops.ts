/**
 * Element-wise, reduction and shape ops, each with its gradient beside its forward.
 * Binary ops broadcast like NumPy; the gradient of a broadcast operand is summed back to its shape.
 */
import { Tensor, result, accumulateGrad, allocLike, allocOut, outputInto, numel, isGradEnabled, type Buf } from './tensor.js';
import { ew } from './ew.js';

// ---------------------------------------------------------------- broadcasting machinery

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`Expected broadcastable shapes but received [${a.join(',')}] and [${b.join(',')}]`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `shape` (right-aligned to `outShape`) with 0 on broadcast dims. */
function bstrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const n = outShape.length;
  const st = new Array<number>(n).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const j = n - shape.length + i;
    st[j] = shape[i] === 1 && outShape[j] !== 1 ? 0 : s;
    s *= shape[i];
  }
  return st;
}

/** Collapse adjacent dims that are contiguous for every operand, so inner loops run long. */
function collapse(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const k = outShape.length;
    if (k > 0 && strides.every((st, j) => outStrides[j][k - 1] === st[i] * shape[i])) {
      outShape[k - 1] *= shape[i];
      for (let j = 0; j < strides.length; j++) outStrides[j][k - 1] = strides[j][i];
    } else {
      outShape.push(shape[i]);
      for (let j = 0; j < strides.length; j++) outStrides[j].push(strides[j][i]);
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    for (const s of outStrides) s.push(0);
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * Iterate over a broadcast of two operands: calls `inner(offA, offB, offOut, len, sa, sb)` for each
 * run along the innermost (collapsed) dim. The output is contiguous.
 */
function forEachRun(
  outShape: number[],
  sA: number[],
  sB: number[],
  inner: (oa: number, ob: number, oo: number, len: number, sa: number, sb: number) => void,
): void {
  const oStr: number[] = [];
  let s = 1;
  for (let i = outShape.length - 1; i >= 0; i--) {
    oStr[i] = s;
    s *= outShape[i];
  }
  const c = collapse(outShape, [sA, sB, oStr]);
  const nd = c.shape.length;
  const len = c.shape[nd - 1];
  const [ca, cb, co] = c.strides;
  const sa = ca[nd - 1];
  const sb = cb[nd - 1];
  const idx = new Array<number>(nd - 1).fill(0);
  let total = 1;
  for (let i = 0; i < nd - 1; i++) total *= c.shape[i];
  for (let r = 0; r < total; r++) {
    let oa = 0;
    let ob = 0;
    let oo = 0;
    for (let i = 0; i < nd - 1; i++) {
      oa += idx[i] * ca[i];
      ob += idx[i] * cb[i];
      oo += idx[i] * co[i];
    }
    inner(oa, ob, oo, len, sa, sb);
    for (let i = nd - 2; i >= 0; i--) {
      if (++idx[i] < c.shape[i]) break;
      idx[i] = 0;
    }
  }
}

/** Sum a gradient of shape `from` down to the (broadcast-compatible) shape `to`. */
export function sumToShape(g: Buf, from: readonly number[], to: readonly number[]): Buf {
  if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
  const out = allocLike(g, numel(to));
  const sT = bstrides(to, from);
  const zero = new Array<number>(from.length).fill(0);
  // Out index via sT (0 on reduced dims); g index is contiguous.
  forEachRun(from.slice(), sT, zero, (ot, _ob, og, len, st) => {
    if (st === 0) {
      let acc = 0;
      for (let i = 0; i < len; i++) acc += g[og + i];
      out[ot] += acc;
    } else {
      for (let i = 0; i < len; i++) out[ot + i * st] += g[og + i];
    }
  });
  return out;
}

/** Materialise `a` broadcast to `shape`. */
export function broadcastData(a: Buf, aShape: readonly number[], shape: readonly number[]): Buf {
  const out = allocLike(a, numel(shape));
  const zero = new Array<number>(shape.length).fill(0);
  forEachRun(shape.slice(), bstrides(aShape, shape), zero, (oa, _ob, oo, len, sa) => {
    if (sa === 0) out.fill(a[oa], oo, oo + len);
    else for (let i = 0; i < len; i++) out[oo + i] = a[oa + i * sa];
  });
  return out;
}

function sameDtype(a: Tensor, b: Tensor, op: string): void {
  if (a.dtype !== b.dtype) throw new Error(`Expected operands of one dtype for ${op} but received ${a.dtype} and ${b.dtype}`);
}

type BinKind = 0 | 1 | 2 | 3; // add, sub, mul, div

function binaryData(a: Tensor, b: Tensor, kind: BinKind): { data: Buf; shape: number[] } {
  const shape = broadcastShapes(a.shape, b.shape);
  const out = allocOut(a.data, numel(shape));
  const A = a.data;
  const B = b.data;
  forEachRun(shape, bstrides(a.shape, shape), bstrides(b.shape, shape), (oa, ob, oo, len, sa, sb) => {
    switch (kind) {
      case 0:
        for (let i = 0; i < len; i++) out[oo + i] = A[oa + i * sa] + B[ob + i * sb];
        break;
      case 1:
        for (let i = 0; i < len; i++) out[oo + i] = A[oa + i * sa] - B[ob + i * sb];
        break;
      case 2:
        for (let i = 0; i < len; i++) out[oo + i] = A[oa + i * sa] * B[ob + i * sb];
        break;
      case 3:
        for (let i = 0; i < len; i++) out[oo + i] = A[oa + i * sa] / B[ob + i * sb];
        break;
    }
  });
  return { data: out, shape };
}

function gradTo(t: Tensor, g: Buf, outShape: number[], owned: boolean): void {
  if (!t.requiresGrad) return;
  const r = sumToShape(g, outShape, t.shape);
  accumulateGrad(t, r, owned || r !== g);
}

// ---------------------------------------------------------------- binary ops

/**
 * a + b where b equals a or is one sample broadcast over a's batch (the cached coupling input
 * conv(z1) + conv(u)): copies and native adds instead of the strided broadcast loop.
 */
function addSameOrBatch(a: Tensor, b: Tensor): Buf | null {
  if (a.ndim !== b.ndim || a.ndim < 2 || a.size < 4096) return null;
  for (let i = 1; i < a.ndim; i++) if (a.shape[i] !== b.shape[i]) return null;
  if (b.shape[0] !== a.shape[0] && b.shape[0] !== 1) return null;
  const K = ew(a.data, b.data);
  if (!K) return null;
  const out = allocOut(a.data, a.size) as Float32Array;
  const A = a.data as Float32Array;
  const per = b.shape[0] === 1 ? b.size : a.size;
  for (let o = 0; o < a.size; o += per) K.axpy(1, A.subarray(o, o + per), b.data as Float32Array, out.subarray(o, o + per));
  return out;
}

export function add(a: Tensor, b: Tensor): Tensor {
  sameDtype(a, b, 'add');
  const fast = addSameOrBatch(a, b);
  const { data, shape } = fast ? { data: fast, shape: a.shape.slice() } : binaryData(a, b, 0);
  return result(data, shape, [a, b], (g) => {
    gradTo(a, g, shape, false);
    gradTo(b, g, shape, false);
  });
}

/** A binary op without a fast path (binaryData's op: 1 −, 2 ×, 3 ÷); `backward` gets g, the output's shape and data. */
function binary(a: Tensor, b: Tensor, name: string, op: BinKind, backward: (g: Buf, shape: number[], out: Buf) => void): Tensor {
  sameDtype(a, b, name);
  const { data, shape } = binaryData(a, b, op);
  return result(data, shape, [a, b], (g) => backward(g, shape, data));
}

/** g ∘ t (op 2: ×, 3: ÷), broadcast over the output's shape: the gradient of a factor or dividend. */
function gradOp(g: Buf, shape: number[], t: Tensor, op: BinKind): Buf {
  return binaryData(new Tensor(g, shape), t, op).data;
}

function negateInPlace(g: Buf): Buf {
  for (let i = 0; i < g.length; i++) g[i] = -g[i];
  return g;
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, 'sub', 1, (g, shape) => {
    gradTo(a, g, shape, false);
    if (b.requiresGrad) gradTo(b, negateInPlace(g.slice()), shape, true);
  });
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, 'mul', 2, (g, shape) => {
    if (a.requiresGrad) gradTo(a, gradOp(g, shape, b, 2), shape, true);
    if (b.requiresGrad) gradTo(b, gradOp(g, shape, a, 2), shape, true);
  });
}

export function div(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, 'div', 3, (g, shape, out) => {
    if (a.requiresGrad) gradTo(a, gradOp(g, shape, b, 3), shape, true);
    // d(a/b)/db = -out / b
    if (b.requiresGrad) gradTo(b, negateInPlace(gradOp(gradOp(g, shape, new Tensor(out, shape), 2), shape, b, 3)), shape, true);
  });
}

// ---------------------------------------------------------------- unary ops

function unary(a: Tensor, f: (x: number) => number, dfdx: (x: number, y: number) => number): Tensor {
  const A = a.data;
  const out = allocLike(A, A.length);
  for (let i = 0; i < A.length; i++) out[i] = f(A[i]);
  return result(out, a.shape, [a], (g) => {
    const ga = allocLike(g, g.length);
    for (let i = 0; i < g.length; i++) ga[i] = g[i] * dfdx(A[i], out[i]);
    accumulateGrad(a, ga, true);
  });
}

export function exp(a: Tensor): Tensor {
  return unary(a, Math.exp, (_x, y) => y);
}
export function log(a: Tensor): Tensor {
  return unary(a, Math.log, (x) => 1 / x);
}
export function sigmoid(a: Tensor): Tensor {
  return unary(
    a,
    (x) => 1 / (1 + Math.exp(-x)),
    (_x, y) => y * (1 - y),
  );
}
export function relu(a: Tensor): Tensor {
  return leakyRelu(a, 0);
}
/** max(x, 0) + slope · min(x, 0); tight loops (the RRDB applies it to every dense-block conv). */
/** Leaky ReLU; `inPlace` (no tape only): overwrite a, a temporary that nothing else reads. */
export function leakyRelu(a: Tensor, slope = 0.2, inPlace = false): Tensor {
  const A = a.data;
  const out = inPlace && !isGradEnabled() ? A : allocOut(A, A.length);
  const K = ew(A);
  if (K) K.leakyRelu(A as Float32Array, slope, out as Float32Array);
  else
    for (let i = 0; i < A.length; i++) {
      const v = A[i];
      out[i] = v > 0 ? v : v * slope;
    }
  return result(out, a.shape, [a], (g) => {
    const ga = allocOut(g, g.length);
    if (K && g instanceof Float32Array) K.leakyReluBackward(g, A as Float32Array, slope, ga as Float32Array, false);
    else for (let i = 0; i < g.length; i++) ga[i] = A[i] > 0 ? g[i] : g[i] * slope;
    accumulateGrad(a, ga, true);
  });
}
/** a·x + y for same-shaped x, y (residual connections: 0.2·x5 + x); `into` (no tape): the output buffer, y's own for in place. */
export function axpy(alpha: number, x: Tensor, y: Tensor, into?: Buf): Tensor {
  if (x.size !== y.size) throw new Error(`Expected same-sized tensors for axpy but received [${x.shape.join(',')}] and [${y.shape.join(',')}]`);
  const X = x.data;
  const Y = y.data;
  const out = outputInto(into, X, X.length, "x for axpy's into");
  const K = ew(X, Y);
  if (K) K.axpy(alpha, X as Float32Array, Y as Float32Array, out as Float32Array);
  else for (let i = 0; i < X.length; i++) out[i] = alpha * X[i] + Y[i];
  return result(out, y.shape, [x, y], (g) => {
    if (x.requiresGrad) {
      const gx = allocLike(g, g.length);
      for (let i = 0; i < g.length; i++) gx[i] = alpha * g[i];
      accumulateGrad(x, gx, true);
    }
    accumulateGrad(y, g, false);
  });
}
export function neg(a: Tensor): Tensor {
  return unary(
    a,
    (x) => -x,
    () => -1,
  );
}
export function square(a: Tensor): Tensor {
  return unary(
    a,
    (x) => x * x,
    (x) => 2 * x,
  );
}
export function abs(a: Tensor): Tensor {
  return unary(a, Math.abs, (x) => (x > 0 ? 1 : x < 0 ? -1 : 0));
}
/**
 * Clamp to [lo, hi]; NaN becomes lo. The gradient passes where lo < a < hi and is 0 elsewhere
 * (a clamped value does not move with its input).
 */
export function clamp(a: Tensor, lo: number, hi: number): Tensor {
  return unary(
    a,
    (x) => (x > lo ? (x < hi ? x : hi) : lo),
    (x) => (x > lo && x < hi ? 1 : 0),
  );
}
/** a · s + t for constants s, t. */
export function affineScalar(a: Tensor, s: number, t = 0): Tensor {
  const A = a.data;
  const out = allocLike(A, A.length);
  for (let i = 0; i < A.length; i++) out[i] = A[i] * s + t;
  return result(out, a.shape, [a], (g) => {
    const ga = allocLike(g, g.length);
    for (let i = 0; i < g.length; i++) ga[i] = g[i] * s;
    accumulateGrad(a, ga, true);
  });
}
export function scale(a: Tensor, s: number): Tensor {
  return affineScalar(a, s, 0);
}
export function addScalar(a: Tensor, t: number): Tensor {
  return affineScalar(a, 1, t);
}

// ---------------------------------------------------------------- reductions

function normAxes(axes: number | readonly number[] | undefined, nd: number): number[] {
  if (axes === undefined) return [...Array(nd).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  return list.map((ax) => {
    const a = ax < 0 ? ax + nd : ax;
    if (a < 0 || a >= nd) throw new Error(`Expected an axis in [${-nd}, ${nd}) for sum but received ${ax}`);
    return a;
  });
}

/** Sum over `axes` (all by default). */
export function sum(a: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  const ax = normAxes(axes, a.ndim);
  const kshape = a.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const data = sumToShape(a.data, a.shape, kshape);
  const out = data === a.data ? allocLike(data, data.length).fill(0) : data;
  if (data === a.data) out.set(data);
  const shape = keepdim ? kshape : a.shape.filter((_d, i) => !ax.includes(i));
  return result(out, shape, [a], (g) => {
    accumulateGrad(a, broadcastData(g, kshape, a.shape), true);
  });
}

export function mean(a: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  const ax = normAxes(axes, a.ndim);
  let count = 1;
  for (const i of ax) count *= a.shape[i];
  return scale(sum(a, ax, keepdim), 1 / count);
}

// ---------------------------------------------------------------- shape ops

export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const s = shape.slice();
  const neg1 = s.indexOf(-1);
  if (neg1 >= 0) s[neg1] = a.size / numel(s.filter((_d, i) => i !== neg1));
  if (numel(s) !== a.size) throw new Error(`Expected a shape with ${a.size} elements for reshape but received [${shape.join(',')}]`);
  return result(a.data, s, [a], (g) => accumulateGrad(a, g, false));
}

export function permute(a: Tensor, perm: readonly number[]): Tensor {
  const nd = a.ndim;
  if (perm.length !== nd || [...perm].sort().some((p, i) => p !== i)) {
    throw new Error(`Expected a permutation of ${nd} axes for permute but received [${perm.join(',')}]`);
  }
  const shape = perm.map((p) => a.shape[p]);
  const inStr: number[] = [];
  let s = 1;
  for (let i = nd - 1; i >= 0; i--) {
    inStr[i] = s;
    s *= a.shape[i];
  }
  const srcStr = perm.map((p) => inStr[p]);
  const zero = new Array<number>(nd).fill(0);
  const gather = (src: Buf): Buf => {
    const out = allocLike(src, src.length);
    forEachRun(shape.slice(), srcStr, zero, (oa, _ob, oo, len, sa) => {
      for (let i = 0; i < len; i++) out[oo + i] = src[oa + i * sa];
    });
    return out;
  };
  const inv: number[] = [];
  perm.forEach((p, i) => (inv[p] = i));
  return result(gather(a.data), shape, [a], (g) => {
    accumulateGrad(a, permute(new Tensor(g, shape), inv).data, true);
  });
}

/** `a[..., start:end:step, ...]` along `axis` (step > 0). Covers channel slicing and `x[:, 0::2]`. */
export function slice(a: Tensor, axis: number, start: number, end: number, step = 1): Tensor {
  const ax = axis < 0 ? axis + a.ndim : axis;
  const dim = a.shape[ax];
  if (!(start >= 0 && end <= dim && start <= end && step >= 1)) {
    throw new Error(`Expected 0 ≤ start ≤ end ≤ ${dim} and step ≥ 1 for slice but received ${start}:${end}:${step}`);
  }
  const count = Math.ceil((end - start) / step);
  const outer = numel(a.shape.slice(0, ax));
  const inner = numel(a.shape.slice(ax + 1));
  const shape = a.shape.slice();
  shape[ax] = count;
  const out = allocOut(a.data, outer * count * inner);
  const A = a.data;
  // Runs of `inner` elements; short runs (weights sliced on their input channels) are copied by a
  // plain loop, since a subarray view per run costs more than the copy.
  const copy = (dst: Buf, di: number, src: Buf, si: number) => {
    if (inner >= 64) dst.set(src.subarray(si, si + inner), di);
    else for (let i = 0; i < inner; i++) dst[di + i] = src[si + i];
  };
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < count; c++) copy(out, (o * count + c) * inner, A, (o * dim + start + c * step) * inner);
  }
  return result(out, shape, [a], (g) => {
    const ga = allocLike(g, a.size);
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < count; c++) copy(ga, (o * dim + start + c * step) * inner, g, (o * count + c) * inner);
    }
    accumulateGrad(a, ga, true);
  });
}

/** Concatenate along `axis` (default 1: channels). */
export function concat(ts: readonly Tensor[], axis = 1): Tensor {
  if (ts.length === 0) throw new Error('Expected at least one tensor for concat but received none');
  const nd = ts[0].ndim;
  const ax = axis < 0 ? axis + nd : axis;
  for (const t of ts) {
    if (t.ndim !== nd || t.shape.some((d, i) => i !== ax && d !== ts[0].shape[i]) || t.dtype !== ts[0].dtype) {
      throw new Error(`Expected tensors matching [${ts[0].shape.join(',')}] except on axis ${ax} for concat but received [${t.shape.join(',')}]`);
    }
  }
  const outer = numel(ts[0].shape.slice(0, ax));
  const inner = numel(ts[0].shape.slice(ax + 1));
  const total = ts.reduce((s, t) => s + t.shape[ax], 0);
  const shape = ts[0].shape.slice();
  shape[ax] = total;
  const out = allocOut(ts[0].data, outer * total * inner);
  let off = 0;
  for (const t of ts) {
    const blk = t.shape[ax] * inner;
    for (let o = 0; o < outer; o++) out.set(t.data.subarray(o * blk, (o + 1) * blk), (o * total + off) * inner);
    off += t.shape[ax];
  }
  return result(out, shape, [...ts], (g) => {
    let o2 = 0;
    for (const t of ts) {
      const blk = t.shape[ax] * inner;
      if (t.requiresGrad) {
        const gt = allocOut(g, t.size);
        for (let o = 0; o < outer; o++) gt.set(g.subarray((o * total + o2) * inner, (o * total + o2) * inner + blk), o * blk);
        accumulateGrad(t, gt, true);
      }
      o2 += t.shape[ax];
    }
  });
}

/** Interleave-aware channel helpers used by the flow: even channels and odd channels. */
export function evenChannels(a: Tensor): Tensor {
  return slice(a, 1, 0, a.shape[1], 2);
}
export function oddChannels(a: Tensor): Tensor {
  return slice(a, 1, 1, a.shape[1], 2);
}
