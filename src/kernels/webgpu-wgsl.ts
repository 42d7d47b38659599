/**
 * WGSL compute kernels of the WebGPU backend (src/kernels/webgpu.ts). Every tensor is a flat f32
 * storage buffer in NCHW order; a "region" is a channel range [c0, c0 + c) of a buffer with C
 * channels per sample, so slices and concatenations along channels are offsets, not copies.
 * Element-wise kernels use a 2-D dispatch of 64-wide workgroups (index = x + y·64·numGroups.x).
 */

/** Flat index of the invocation over a 2-D grid of 64-wide workgroups. */
const FLAT = /* wgsl */ `
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 64u; }
`;

/**
 * An element-wise kernel: a uniform struct P of `params`, the storage buffers (array<f32>) at
 * bindings 1, 2, … as `'read name'` / `'read_write name'`, and `body`, run once per invocation of
 * the 2-D grid of 64-wide workgroups (`flat(gid, nwg)` its index).
 */
function elementwise(params: string, buffers: string[], body: string): string {
  const bindings = buffers.map((b, k) => {
    const [access, name] = b.split(' ');
    return `@group(0) @binding(${k + 1}) var<storage, ${access}> ${name}: array<f32>;`;
  });
  return /* wgsl */ `
struct P { ${params} }
@group(0) @binding(0) var<uniform> p: P;
${bindings.join('\n')}
${FLAT}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${body}
}
`;
}

/**
 * An element-wise kernel over a region's elements (p.n samples × p.c channels × p.hw pixels, one
 * invocation each): `body` sees the element's index i, sample b, channel ch and pixel k.
 */
function regionwise(params: string, buffers: string[], body: string): string {
  return elementwise(
    params,
    buffers,
    `  let i = flat(gid, nwg);
  if (i >= p.n * p.c * p.hw) { return; }
  let k = i % p.hw;
  let ch = (i / p.hw) % p.c;
  let b = i / (p.hw * p.c);
${body}`,
  );
}

/**
 * An element-wise kernel over the pixels of an [n, c, oh, ow] output (one invocation each): `body`
 * sees the index idx, the column j, the row i and the plane pc = sample · c + channel.
 */
function pixelwise(params: string, buffers: string[], body: string): string {
  return elementwise(
    params,
    buffers,
    `  let idx = flat(gid, nwg);
  if (idx >= p.n * p.c * p.oh * p.ow) { return; }
  let j = idx % p.ow;
  let i = (idx / p.ow) % p.oh;
  let pc = idx / (p.ow * p.oh);
${body}`,
  );
}

/**
 * Direct convolution, stride 1, zero padding. Each invocation computes 4 neighbouring output
 * pixels of a row for 8 output channels (eight vec4 accumulators): per input tap, 4 input loads
 * and 2 weight loads feed 32 multiply-adds. Neighbouring invocations take neighbouring pixel
 * quads, so input loads are contiguous across a workgroup and weight loads are the same for all
 * of it. The weight is packed [cin·kh·kw][ceil(cout/8)·2] of vec4 (4 consecutive output channels).
 * Optional bias and an added residual (another region, with batch stride 0 for one sample
 * broadcast over the batch). Grid: x over pixel quads (64 a workgroup), y over 8-channel groups,
 * z over the batch.
 */
export const CONV2D = /* wgsl */ `
struct P {
  n: u32, cin: u32, h: u32, w: u32,
  cout: u32, kh: u32, kw: u32, pad: u32,
  oh: u32, ow: u32, xC: u32, xC0: u32,
  oC: u32, oC0: u32, flags: u32, rC: u32,
  rC0: u32, rBatch: u32, ncg: u32, qw: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn ld(row: u32, ix: i32) -> f32 {
  if (ix < 0 || ix >= i32(p.w)) { return 0.0; }
  return x[row + u32(ix)];
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  if (q >= p.qw * p.oh) { return; }
  let oy = q / p.qw;
  let ox = (q % p.qw) * 4u;
  let cg = gid.y;
  let b = gid.z;
  let hw = p.h * p.w;
  let kk = p.kh * p.kw;
  let stride = p.ncg * 2u;
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
  let iy0 = i32(oy) - i32(p.pad);
  let ix0 = i32(ox) - i32(p.pad);
  for (var ci = 0u; ci < p.cin; ci++) {
    let xbase = (b * p.xC + p.xC0 + ci) * hw;
    let wbase = ci * kk;
    for (var ky = 0u; ky < p.kh; ky++) {
      let iy = iy0 + i32(ky);
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      let row = xbase + u32(iy) * p.w;
      for (var kx = 0u; kx < p.kw; kx++) {
        let ix = ix0 + i32(kx);
        let v0 = ld(row, ix); let v1 = ld(row, ix + 1); let v2 = ld(row, ix + 2); let v3 = ld(row, ix + 3);
        let wi = (wbase + ky * p.kw + kx) * stride + cg * 2u;
        let w0 = wt[wi];
        let w1 = wt[wi + 1u];
        a0 += v0 * w0; a1 += v1 * w0; a2 += v2 * w0; a3 += v3 * w0;
        b0 += v0 * w1; b1 += v1 * w1; b2 += v2 * w1; b3 += v3 * w1;
      }
    }
  }
  let hasBias = (p.flags & 1u) != 0u;
  let hasRes = (p.flags & 2u) != 0u;
  let rb = select(0u, b, p.rBatch != 0u);
  let ohw = p.oh * p.ow;
  let lo = array<vec4<f32>, 4>(a0, a1, a2, a3);
  let hi = array<vec4<f32>, 4>(b0, b1, b2, b3);
  for (var c = 0u; c < 8u; c++) {
    let co = cg * 8u + c;
    if (co >= p.cout) { break; }
    var add = 0.0;
    if (hasBias) { add = bias[co]; }
    let ob = (b * p.oC + p.oC0 + co) * ohw + oy * p.ow;
    let rbase = (rb * p.rC + p.rC0 + co) * ohw + oy * p.ow;
    for (var px = 0u; px < 4u; px++) {
      let o = ox + px;
      if (o >= p.ow) { break; }
      var v = add;
      if (c < 4u) { v += lo[px][c]; } else { v += hi[px][c - 4u]; }
      if (hasRes) { v += res[rbase + o]; }
      out[ob + o] = v;
    }
  }
}
`;

/** In place on a region: x = (x + bias[c])·mul[c], then max(·, 0) when relu; or leaky ReLU (mode 2). */
export const CHANNEL_AFFINE = regionwise(
  'n: u32, C: u32, c0: u32, c: u32, hw: u32, relu: u32, slope: f32, _p: u32',
  ['read bias', 'read mul', 'read_write x'],
  /* wgsl */ `
  let o = (b * p.C + p.c0 + ch) * p.hw + k;
  var v = x[o];
  if (p.relu == 2u) {
    if (v < 0.0) { v = v * p.slope; }
  } else {
    v = (v + bias[ch]) * mul[ch];
    if (p.relu == 1u && v < 0.0) { v = 0.0; }
  }
  x[o] = v;`,
);

/** a = alpha·a + beta·b over regions of equal shape (b with batch stride 0 broadcasts one sample). */
export const AXPBY = regionwise(
  'n: u32, c: u32, hw: u32, aC: u32, aC0: u32, bC: u32, bC0: u32, bBatch: u32, alpha: f32, beta: f32, _p0: u32, _p1: u32',
  ['read bsrc', 'read_write a'],
  /* wgsl */ `
  let bb = select(0u, b, p.bBatch != 0u);
  let ia = (b * p.aC + p.aC0 + ch) * p.hw + k;
  let ib = (bb * p.bC + p.bC0 + ch) * p.hw + k;
  a[ia] = p.alpha * a[ia] + p.beta * bsrc[ib];`,
);

/** dst region = src region (src batch stride 0 broadcasts one sample). */
export const COPY = regionwise(
  'n: u32, c: u32, hw: u32, sC: u32, sC0: u32, sBatch: u32, dC: u32, dC0: u32',
  ['read src', 'read_write dst'],
  /* wgsl */ `
  let sb = select(0u, b, p.sBatch != 0u);
  dst[(b * p.dC + p.dC0 + ch) * p.hw + k] = src[(sb * p.sC + p.sC0 + ch) * p.hw + k];`,
);

/**
 * SRFlow's affine from a net output, in place on a region h: shift = raw[:, 0::2], scale =
 * sigmoid(raw[:, 1::2] + 2) + eps; forward h = (h + shift)·scale, inverse h = h/scale − shift.
 */
export const AFFINE_FROM_NET = regionwise(
  'n: u32, C: u32, c0: u32, c: u32, hw: u32, rBatch: u32, inverse: u32, eps: f32',
  ['read raw', 'read_write h'],
  /* wgsl */ `
  let rb = select(0u, b, p.rBatch != 0u);
  let rs = (rb * 2u * p.c + 2u * ch) * p.hw + k;
  let shift = raw[rs];
  let scale = 1.0 / (1.0 + exp(-(raw[rs + p.hw] + 2.0))) + p.eps;
  let o = (b * p.C + p.c0 + ch) * p.hw + k;
  if (p.inverse != 0u) { h[o] = h[o] / scale - shift; } else { h[o] = (h[o] + shift) * scale; }`,
);

/**
 * Split2d's Gaussian prior on a region: g = ZeroConv(z1) with mean = g[:, 0::2], logs = g[:, 1::2].
 * Inverse (mode 0): z[:, c0 + ch] = mean + exp(logs)·eps. Forward (mode 1): eps = (z − mean)·exp(−logs).
 */
export const SPLIT = regionwise(
  'n: u32, C: u32, c0: u32, c: u32, hw: u32, mode: u32, _p0: u32, _p1: u32',
  ['read g', 'read_write z', 'read_write eps'],
  /* wgsl */ `
  let gi = (b * 2u * p.c + 2u * ch) * p.hw + k;
  let mean = g[gi];
  let logs = g[gi + p.hw];
  let zi = (b * p.C + p.c0 + ch) * p.hw + k;
  if (p.mode == 0u) { z[zi] = mean + exp(logs) * eps[i]; } else { eps[i] = (z[zi] - mean) * exp(-logs); }`,
);

/**
 * Per-sample partial sums over a region of a (c channels of C from c0, hw pixels), one workgroup
 * of 256 per (partial, sample): mode 0 Σ log(sigmoid(a[2ch+1] + 2) + eps) (a has 2c channels,
 * C = 2c, c0 = 0), mode 1 Σ a², mode 2 Σ 2·logs + b² with logs = a[:, 1::2] (a = the split's g,
 * b = its eps, dense [n, c, hw]).
 */
export const REDUCE = /* wgsl */ `
struct P { n: u32, C: u32, c0: u32, c: u32, hw: u32, mode: u32, groups: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> bb: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
var<workgroup> sh: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let g = wid.x;
  let b = wid.y;
  let per = p.c * p.hw;
  var s = 0.0;
  for (var i = g * 256u + lid.x; i < per; i += p.groups * 256u) {
    let k = i % p.hw;
    let ch = i / p.hw;
    if (p.mode == 0u) {
      let r = a[(b * 2u * p.c + 2u * ch + 1u) * p.hw + k];
      s += log(1.0 / (1.0 + exp(-(r + 2.0))) + p.eps);
    } else if (p.mode == 1u) {
      let v = a[(b * p.C + p.c0 + ch) * p.hw + k];
      s += v * v;
    } else {
      let logs = a[(b * 2u * p.c + 2u * ch + 1u) * p.hw + k];
      let e = bb[b * per + i];
      s += 2.0 * logs + e * e;
    }
  }
  sh[lid.x] = s;
  workgroupBarrier();
  for (var st = 128u; st > 0u; st >>= 1u) {
    if (lid.x < st) { sh[lid.x] += sh[lid.x + st]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { partial[b * p.groups + g] = sh[0]; }
}
`;

/** acc[b] += scale · Σ partial[b, :] + add (one invocation per sample). */
export const REDUCE_FINISH = /* wgsl */ `
struct P { n: u32, groups: u32, scale: f32, add: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  if (b >= p.n) { return; }
  var s = 0.0;
  for (var g = 0u; g < p.groups; g++) { s += partial[b * p.groups + g]; }
  acc[b] += p.scale * s + p.add;
}
`;

/**
 * Squeeze (C,H,W) → (4C,H/2,W/2) (mode 0) and its inverse (mode 1): small channel c·4 + i·2 + j at
 * (u, v) is big channel c at (2u + i, 2v + j). Dimensions are the big side's; one invocation per element.
 */
export const SQUEEZE = elementwise(
  'n: u32, C: u32, H: u32, W: u32, mode: u32, _p0: u32, _p1: u32, _p2: u32',
  ['read src', 'read_write dst'],
  /* wgsl */ `
  let idx = flat(gid, nwg);
  if (idx >= p.n * p.C * p.H * p.W) { return; }
  let xx = idx % p.W;
  let yy = (idx / p.W) % p.H;
  let c = (idx / (p.W * p.H)) % p.C;
  let b = idx / (p.W * p.H * p.C);
  let h2 = p.H / 2u;
  let w2 = p.W / 2u;
  let small = ((b * p.C * 4u + c * 4u + (yy % 2u) * 2u + (xx % 2u)) * h2 + yy / 2u) * w2 + xx / 2u;
  if (p.mode == 0u) { dst[small] = src[idx]; } else { dst[idx] = src[small]; }`,
);

/**
 * Nearest resize (source floor(dst·in/out), PyTorch 'nearest') of [n, c, h, w] into a region of
 * dst ([n, dC, oh, ow] from channel dC0).
 */
export const RESIZE_NEAREST = pixelwise(
  'n: u32, c: u32, h: u32, w: u32, oh: u32, ow: u32, dC: u32, dC0: u32',
  ['read src', 'read_write dst'],
  /* wgsl */ `
  let ch = pc % p.c;
  let b = pc / p.c;
  let sy = min(p.h - 1u, (i * p.h) / p.oh);
  let sx = min(p.w - 1u, (j * p.w) / p.ow);
  dst[((b * p.dC + p.dC0 + ch) * p.oh + i) * p.ow + j] = src[((b * p.c + ch) * p.h + sy) * p.w + sx];`,
);

/** Bilinear downsampling by an even factor f (PyTorch, align_corners=False, no antialias): the mean of a 2×2 block. */
export const DOWNSAMPLE = pixelwise(
  'n: u32, c: u32, h: u32, w: u32, oh: u32, ow: u32, f: u32, _p: u32',
  ['read src', 'read_write dst'],
  /* wgsl */ `
  let o0 = p.f / 2u - 1u;
  let r0 = (pc * p.h + p.f * i + o0) * p.w + p.f * j + o0;
  let r1 = r0 + p.w;
  dst[idx] = 0.25 * (src[r0] + src[r0 + 1u] + src[r1] + src[r1 + 1u]);`,
);

/**
 * CONV2D reading its input from the output buffer (other channels of it): a dense block's
 * growing feature map, where each conv reads the channels so far and writes the next ones.
 */
export const CONV2D_SAME = CONV2D.replace('@group(0) @binding(1) var<storage, read> x: array<f32>;\n', '').replace(/\bx\[/g, 'out[');

/**
 * The phase decomposition's interleave (flow/condconv.ts, convUpsampledCond): out[b, co, 2i + a,
 * 2j + c] += P[b, (2a + c)·cout + co, i + a, j + c], P being the 2×2 conv (pad 1) of the LR-size
 * map with phase-summed taps, [n, 4·cout, h + 1, w + 1]; out is [n, cout, 2h, 2w].
 */
export const PHASE_ADD = elementwise(
  'n: u32, cout: u32, h: u32, w: u32',
  ['read ph', 'read_write out'],
  /* wgsl */ `
  let idx = flat(gid, nwg);
  let W = 2u * p.w;
  let H = 2u * p.h;
  if (idx >= p.n * p.cout * H * W) { return; }
  let x = idx % W;
  let y = (idx / W) % H;
  let co = (idx / (W * H)) % p.cout;
  let b = idx / (W * H * p.cout);
  let a = y % 2u;
  let c = x % 2u;
  let w1 = p.w + 1u;
  let src = ((b * 4u * p.cout + (2u * a + c) * p.cout + co) * (p.h + 1u) + y / 2u + a) * w1 + x / 2u + c;
  out[idx] += ph[src];`,
);
