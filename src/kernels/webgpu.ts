/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend's device layer: device-resident f32 tensors, a buffer pool, and one op per
 * WGSL kernel (webgpu-wgsl.ts). Ops only record dispatches (batched into command buffers with
 * their parameters in one uniform arena); nothing comes back to the CPU until `read`, which copies
 * every requested tensor into one staging buffer and maps it once. The CPU backends are untouched:
 * this module is loaded only when the WebGPU backend is asked for.
 *
 * In a browser the GPU is `navigator.gpu`; in Node it is the `webgpu` npm package (Dawn),
 * see `nodeGpu`. Layouts are NCHW; a Region names a channel range of a tensor, so channel slices
 * and concatenations are offsets.
 */
import * as W from './webgpu-wgsl.js';
import { vulkanIcd, useVulkanIcd } from '../env.js';

/** A device-resident float32 tensor (NCHW). `buf` may be larger than `size` floats (pooling). */
export interface GTensor {
  buf: GPUBuffer;
  shape: number[];
  size: number;
}

/** Channels [c0, c0 + c) of a 4-D tensor. */
export interface Region {
  t: GTensor;
  c0: number;
  c: number;
}

export function region(t: GTensor, c0 = 0, c = t.shape[1] - c0): Region {
  if (t.shape.length !== 4 || c0 < 0 || c < 0 || c0 + c > t.shape[1]) throw new Error(`internal: bad region ${c0}+${c} of [${t.shape}]`);
  return { t, c0, c };
}

function numel(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

/** A conv weight packed for the CONV2D kernel: [cin·kh·kw][ceil(cout/8)·2] vec4 of output channels. */
export interface GWeight {
  buf: GPUBuffer;
  cout: number;
  cin: number;
  kh: number;
  kw: number;
}

/** Pack an OIHW weight for CONV2D (output channels padded with zeros to a multiple of 8). */
export function packConvWeight(w: Float32Array, cout: number, cin: number, kh: number, kw: number): Float32Array {
  const cp = Math.ceil(cout / 8) * 8;
  const kk = kh * kw;
  const out = new Float32Array(cin * kk * cp);
  for (let co = 0; co < cout; co++) {
    for (let ci = 0; ci < cin; ci++) for (let k = 0; k < kk; k++) out[(ci * kk + k) * cp + co] = w[(co * cin + ci) * kk + k];
  }
  return out;
}

/** Options of `WebGpuDevice.create`. */
export interface WebGpuOptions {
  /** 'high-performance' (default) or 'low-power'. */
  powerPreference?: GPUPowerPreference;
}

const PARAM_SLOT = 256;
const PARAM_SLOTS = 256;

interface Pending {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder;
  slots: number;
}

/**
 * The WebGPU backend's device. Get the shared one with `webGpuDevice()`, or make one with
 * `WebGpuDevice.fromAdapter`; release with `destroy()`.
 */
export class WebGpuDevice {
  private pipelines = new Map<string, GPUComputePipeline>();
  private pool = new Map<number, GPUBuffer[]>();
  private all = new Set<GPUBuffer>();
  private params: GPUBuffer;
  private paramBytes = new ArrayBuffer(PARAM_SLOT * PARAM_SLOTS);
  private pending: Pending | null = null;
  private dummy: GPUBuffer;
  private error: string | null = null;
  /** Dispatches recorded since creation (for benchmarks). */
  dispatches = 0;

  private constructor(
    readonly device: GPUDevice,
    /** The adapter's description: vendor, architecture, device (e.g. "google swiftshader"). */
    readonly adapterName: string,
  ) {
    this.params = device.createBuffer({ size: PARAM_SLOT * PARAM_SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.dummy = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      if (!this.error) this.error = e?.message ?? String(e);
    });
  }

  static async fromAdapter(adapter: GPUAdapter): Promise<WebGpuDevice> {
    const lim = adapter.limits;
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
        maxStorageBuffersPerShaderStage: Math.min(lim.maxStorageBuffersPerShaderStage, 8),
      },
    });
    const info = adapter.info;
    const name = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(' ') || 'unknown adapter';
    return new WebGpuDevice(device, name);
  }

  get maxBufferBytes(): number {
    return Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
  }

  // ------------------------------------------------------------------ buffers

  private rawBuffer(bytes: number): GPUBuffer {
    const size = Math.max(256, Math.ceil(bytes / 256) * 256);
    const free = this.pool.get(size);
    if (free && free.length) return free.pop() as GPUBuffer;
    if (size > this.maxBufferBytes) {
      throw new Error(
        `A tensor of ${(size / 1048576).toFixed(0)} MiB exceeds this WebGPU device's buffer limit (${(this.maxBufferBytes / 1048576).toFixed(0)} MiB): use a smaller tile (--tile) or fewer samples at once`,
      );
    }
    const b = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.all.add(b);
    return b;
  }

  /** A tensor of undefined contents (a reused buffer, or a new zeroed one). */
  alloc(shape: readonly number[]): GTensor {
    const size = numel(shape);
    return { buf: this.rawBuffer(size * 4), shape: shape.slice(), size };
  }

  /** A zero-filled tensor. */
  zeros(shape: readonly number[]): GTensor {
    const t = this.alloc(shape);
    this.record((enc) => enc.clearBuffer(t.buf, 0, Math.ceil((t.size * 4) / 4) * 4 || 4));
    return t;
  }

  /** Give a tensor's buffer back to the pool (commands already recorded that use it still see its contents). */
  release(t: GTensor | null | undefined): void {
    if (!t) return;
    const list = this.pool.get(t.buf.size);
    if (list) list.push(t.buf);
    else this.pool.set(t.buf.size, [t.buf]);
  }

  /** Upload host data as a new tensor. */
  upload(data: Float32Array, shape: readonly number[]): GTensor {
    if (data.length !== numel(shape)) throw new Error(`internal: upload of ${data.length} values as [${shape}]`);
    const t = this.alloc(shape);
    this.writeBuffer(t.buf, data);
    return t;
  }

  /** A buffer that lives as long as the device (weights): never pooled. */
  uploadConst(data: Float32Array): GPUBuffer {
    const b = this.device.createBuffer({ size: Math.max(16, Math.ceil((data.length * 4) / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    this.all.add(b);
    this.writeBuffer(b, data);
    return b;
  }

  uploadWeight(w: Float32Array, cout: number, cin: number, kh: number, kw: number): GWeight {
    if (w.length !== cout * cin * kh * kw) throw new Error(`internal: weight of ${w.length} values as [${cout},${cin},${kh},${kw}]`);
    return { buf: this.uploadConst(packConvWeight(w, cout, cin, kh, kw)), cout, cin, kh, kw };
  }

  /** Free a constant buffer (a weight of an older parameter version). */
  freeConst(b: GPUBuffer): void {
    this.all.delete(b);
    b.destroy();
  }

  private writeBuffer(b: GPUBuffer, data: Float32Array): void {
    // queue.writeBuffer is ordered before every later submit, so pending dispatches must go first
    this.flush();
    this.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  // ------------------------------------------------------------------ dispatch

  private pipeline(name: string, code: string): GPUComputePipeline {
    let p = this.pipelines.get(name);
    if (!p) {
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module: this.device.createShaderModule({ code, label: name }), entryPoint: 'main' } });
      this.pipelines.set(name, p);
    }
    return p;
  }

  private record(fn: (enc: GPUCommandEncoder) => void): void {
    // copies and clears go between passes
    const p = this.open();
    p.pass.end();
    fn(p.encoder);
    p.pass = p.encoder.beginComputePass();
  }

  private open(): Pending {
    if (!this.pending) {
      const encoder = this.device.createCommandEncoder();
      this.pending = { encoder, pass: encoder.beginComputePass(), slots: 0 };
    }
    return this.pending;
  }

  /** Submit what was recorded. */
  flush(): void {
    const p = this.pending;
    if (!p) return;
    p.pass.end();
    if (p.slots) this.device.queue.writeBuffer(this.params, 0, this.paramBytes, 0, p.slots * PARAM_SLOT);
    this.device.queue.submit([p.encoder.finish()]);
    this.pending = null;
  }

  /**
   * One dispatch of kernel `name`: params are 4-byte fields (u32, or f32 where `floats` has their
   * index); buffers are bindings 1, 2, … in order.
   */
  private dispatch(name: string, code: string, params: number[], floats: number[], buffers: (GPUBuffer | null)[], groups: [number, number, number]): void {
    const pl = this.pipeline(name, code);
    let p = this.open();
    if (p.slots === PARAM_SLOTS) {
      this.flush();
      p = this.open();
    }
    const slot = p.slots++;
    const dv = new DataView(this.paramBytes, slot * PARAM_SLOT, PARAM_SLOT);
    params.forEach((v, i) => {
      if (floats.includes(i)) dv.setFloat32(i * 4, v, true);
      else dv.setUint32(i * 4, v >>> 0, true);
    });
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.params, offset: slot * PARAM_SLOT, size: Math.ceil((params.length * 4) / 16) * 16 } },
    ];
    buffers.forEach((b, i) => b && entries.push({ binding: i + 1, resource: { buffer: b } }));
    const bg = this.device.createBindGroup({ layout: pl.getBindGroupLayout(0), entries });
    p.pass.setPipeline(pl);
    p.pass.setBindGroup(0, bg);
    p.pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    this.dispatches++;
  }

  private flatGroups(n: number): [number, number, number] {
    const g = Math.max(1, Math.ceil(n / 64));
    const x = Math.min(g, 65535);
    return [x, Math.ceil(g / x), 1];
  }

  // ------------------------------------------------------------------ ops

  /**
   * out region = conv2d(x region, w) (+ bias) (+ res region): stride 1, zero padding `pad`.
   * `out` must be another buffer than x and res. `res` with `resBroadcast` adds its sample 0 to every sample.
   */
  conv2d(x: Region, w: GWeight, bias: GPUBuffer | null, pad: number, out: Region, res: Region | null = null, resBroadcast = false): void {
    const [n, , h, wd] = x.t.shape;
    if (x.c !== w.cin || out.c !== w.cout) throw new Error(`internal: conv2d channels ${x.c}→${out.c} with weight [${w.cout},${w.cin}]`);
    const oh = h + 2 * pad - w.kh + 1;
    const ow = wd + 2 * pad - w.kw + 1;
    if (out.t.shape[0] !== n || out.t.shape[2] !== oh || out.t.shape[3] !== ow)
      throw new Error(`internal: conv2d output [${out.t.shape}] for ${n}×${oh}×${ow}`);
    // the input may be other channels of the output tensor (CONV2D_SAME), never overlapping ones
    const same = out.t.buf === x.t.buf;
    if ((same && (out.t !== x.t || (x.c0 < out.c0 + out.c && out.c0 < x.c0 + x.c))) || (res && res.t.buf === out.t.buf))
      throw new Error('internal: conv2d output aliases an input');
    const ncg = Math.ceil(w.cout / 8);
    const flags = (bias ? 1 : 0) | (res ? 2 : 0);
    const qw = Math.ceil(ow / 4);
    const groups = Math.ceil((qw * oh) / 64);
    if (groups > 65535) throw new Error(`A ${oh}×${ow} convolution output is too large for one WebGPU dispatch: use a smaller tile`);
    this.dispatch(
      same ? 'conv2dSame' : 'conv2d',
      same ? W.CONV2D_SAME : W.CONV2D,
      [
        n,
        w.cin,
        h,
        wd,
        w.cout,
        w.kh,
        w.kw,
        pad,
        oh,
        ow,
        x.t.shape[1],
        x.c0,
        out.t.shape[1],
        out.c0,
        flags,
        res ? res.t.shape[1] : 0,
        res ? res.c0 : 0,
        res && !resBroadcast ? 1 : 0,
        ncg,
        qw,
      ],
      [],
      [same ? null : x.t.buf, w.buf, bias ?? this.dummy, res ? res.t.buf : this.dummy, out.t.buf],
      [groups, ncg, n],
    );
  }

  /** In place: x = (x + bias[c])·mul[c] (then ReLU). */
  channelAffine(x: Region, bias: GPUBuffer, mul: GPUBuffer, relu: boolean): void {
    const [n, C, h, w] = x.t.shape;
    this.dispatch('channelAffine', W.CHANNEL_AFFINE, [n, C, x.c0, x.c, h * w, relu ? 1 : 0, 0, 0], [6], [bias, mul, x.t.buf], this.flatGroups(n * x.c * h * w));
  }

  /** In place: leaky ReLU with `slope`. */
  leakyRelu(x: Region, slope: number): void {
    const [n, C, h, w] = x.t.shape;
    this.dispatch(
      'channelAffine',
      W.CHANNEL_AFFINE,
      [n, C, x.c0, x.c, h * w, 2, slope, 0],
      [6],
      [this.dummy, this.dummy, x.t.buf],
      this.flatGroups(n * x.c * h * w),
    );
  }

  /** In place: a = alpha·a + beta·b (b broadcast over the batch when `bBroadcast`). */
  axpby(a: Region, alpha: number, b: Region, beta: number, bBroadcast = false): void {
    const [n, aC, h, w] = a.t.shape;
    if (a.t.buf === b.t.buf) throw new Error('internal: axpby operands alias');
    if (a.c !== b.c || b.t.shape[2] * b.t.shape[3] !== h * w) throw new Error(`internal: axpby of [${a.t.shape}] and [${b.t.shape}]`);
    this.dispatch(
      'axpby',
      W.AXPBY,
      [n, a.c, h * w, aC, a.c0, b.t.shape[1], b.c0, bBroadcast ? 0 : 1, alpha, beta, 0, 0],
      [8, 9],
      [b.t.buf, a.t.buf],
      this.flatGroups(n * a.c * h * w),
    );
  }

  /** dst region = src region (src sample 0 broadcast when `broadcast`); the batch is dst's. */
  copy(src: Region, dst: Region, broadcast = false): void {
    const [n, dC, h, w] = dst.t.shape;
    if (src.c !== dst.c) throw new Error('internal: copy channel counts differ');
    if (src.t.buf === dst.t.buf) throw new Error('internal: copy operands alias');
    this.dispatch(
      'copy',
      W.COPY,
      [n, dst.c, h * w, src.t.shape[1], src.c0, broadcast ? 0 : 1, dC, dst.c0],
      [],
      [src.t.buf, dst.t.buf],
      this.flatGroups(n * dst.c * h * w),
    );
  }

  /** In place on region h: SRFlow's affine from the net output raw ([n or 1, 2c, H, W]). */
  affineFromNet(h: Region, raw: GTensor, eps: number, inverse: boolean): void {
    const [n, C, hh, ww] = h.t.shape;
    const rb = raw.shape[0] === n ? 1 : 0;
    if (raw.shape[1] !== 2 * h.c || raw.shape[2] * raw.shape[3] !== hh * ww || (raw.shape[0] !== n && raw.shape[0] !== 1))
      throw new Error(`internal: affineFromNet raw [${raw.shape}] for [${h.t.shape}] c=${h.c}`);
    this.dispatch(
      'affineFromNet',
      W.AFFINE_FROM_NET,
      [n, C, h.c0, h.c, hh * ww, rb, inverse ? 1 : 0, eps],
      [7],
      [raw.buf, h.t.buf],
      this.flatGroups(n * h.c * hh * ww),
    );
  }

  /** Split prior: inverse z[c0..] = mean + exp(logs)·eps; forward eps = (z − mean)·exp(−logs). */
  split(g: GTensor, z: Region, eps: GTensor, forward: boolean): void {
    const [n, C, h, w] = z.t.shape;
    this.dispatch('split', W.SPLIT, [n, C, z.c0, z.c, h * w, forward ? 1 : 0, 0, 0], [], [g.buf, z.t.buf, eps.buf], this.flatGroups(n * z.c * h * w));
  }

  /**
   * acc[b] += scale · Σ f + add over sample b: mode 0 Σ log(σ(a[:,1::2] + 2) + eps) (a = raw, c =
   * half its channels), 1 Σ a² over region a, 2 Σ 2·logs + eps² (a = the split's g, b = its eps);
   * modes 0 and 2 read the whole of a.t.
   */
  reduce(mode: 0 | 1 | 2, a: Region, b: GTensor | null, eps: number, acc: GTensor, scale: number, add: number): void {
    const [n, C, h, w] = a.t.shape;
    // modes 0 and 2 read the odd channels of a whole tensor of 2c channels
    const c = mode === 1 ? a.c : C / 2;
    if (mode !== 1 && (a.c0 !== 0 || C % 2)) throw new Error('internal: reduce of the odd channels needs a whole tensor of even channels');
    const per = c * h * w;
    const groups = Math.max(1, Math.min(64, Math.ceil(per / 256)));
    const partial = this.alloc([n * groups]);
    this.dispatch('reduce', W.REDUCE, [n, C, a.c0, c, h * w, mode, groups, eps], [7], [a.t.buf, b ? b.buf : this.dummy, partial.buf], [groups, n, 1]);
    this.dispatch('reduceFinish', W.REDUCE_FINISH, [n, groups, scale, add], [2, 3], [partial.buf, acc.buf], [Math.ceil(n / 64), 1, 1]);
    this.release(partial);
  }

  /** Squeeze (C,H,W) → (4C,H/2,W/2), or its inverse. Returns a new tensor. */
  squeeze(x: GTensor, inverse: boolean): GTensor {
    const [n, c, h, w] = x.shape;
    const big = inverse ? [n, c / 4, h * 2, w * 2] : [n, c, h, w];
    const out = this.alloc(inverse ? big : [n, c * 4, h / 2, w / 2]);
    this.dispatch('squeeze', W.SQUEEZE, [n, big[1], big[2], big[3], inverse ? 1 : 0, 0, 0, 0], [], [x.buf, out.buf], this.flatGroups(x.size));
    return out;
  }

  /** Nearest resize of x into a region of dst (dst's H and W). */
  resizeNearest(x: GTensor, dst: Region): void {
    const [n, c, h, w] = x.shape;
    const [, dC, oh, ow] = dst.t.shape;
    if (dst.c !== c) throw new Error('internal: resizeNearest channels');
    this.dispatch('resizeNearest', W.RESIZE_NEAREST, [n, c, h, w, oh, ow, dC, dst.c0], [], [x.buf, dst.t.buf], this.flatGroups(n * c * oh * ow));
  }

  /** out += the interleaved phases of ph (see PHASE_ADD); out is a whole [n, cout, 2h, 2w] tensor. */
  phaseAdd(ph: GTensor, out: GTensor): void {
    const [n, cout, oh, ow] = out.shape;
    if (ph.shape[0] !== n || ph.shape[1] !== 4 * cout || ph.shape[2] !== oh / 2 + 1 || ph.shape[3] !== ow / 2 + 1)
      throw new Error(`internal: phaseAdd of [${ph.shape}] into [${out.shape}]`);
    this.dispatch('phaseAdd', W.PHASE_ADD, [n, cout, oh / 2, ow / 2], [], [ph.buf, out.buf], this.flatGroups(out.size));
  }

  /** Bilinear downsampling by an even factor (a new tensor). */
  downsample(x: GTensor, f: number): GTensor {
    const [n, c, h, w] = x.shape;
    const oh = Math.floor(h / f);
    const ow = Math.floor(w / f);
    const out = this.alloc([n, c, oh, ow]);
    this.dispatch('downsample', W.DOWNSAMPLE, [n, c, h, w, oh, ow, f, 0], [], [x.buf, out.buf], this.flatGroups(out.size));
    return out;
  }

  // ------------------------------------------------------------------ read-back

  /** Copy the tensors back to the host with one staging buffer and one map. */
  async read(ts: readonly GTensor[]): Promise<Float32Array[]> {
    let bytes = 0;
    const offs = ts.map((t) => {
      const o = bytes;
      bytes += Math.ceil((t.size * 4) / 4) * 4;
      return o;
    });
    const staging = this.device.createBuffer({ size: Math.max(4, bytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.record((enc) => ts.forEach((t, i) => t.size && enc.copyBufferToBuffer(t.buf, 0, staging, offs[i], t.size * 4)));
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      if (this.error) throw new Error(`WebGPU error: ${this.error}`);
      const all = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return ts.map((t, i) => all.slice(offs[i] / 4, offs[i] / 4 + t.size));
    } finally {
      staging.destroy();
    }
  }

  /** Release every buffer and the device. */
  destroy(): void {
    this.pending = null;
    for (const b of this.all) b.destroy();
    this.all.clear();
    this.pool.clear();
    this.params.destroy();
    this.dummy.destroy();
    this.device.destroy();
  }
}

/** Where Debian's chromium package installs SwiftShader's Vulkan driver manifest. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const keepAlive: GPU[] = [];

/**
 * Node: a WebGPU adapter from the `webgpu` npm package (Dawn). When no adapter is found, the
 * Vulkan loader was not pointed anywhere (VK_ICD_FILENAMES unset) and Chromium's SwiftShader is
 * installed, it retries on SwiftShader (a CPU implementation of Vulkan: slow, but it runs the
 * same shaders), so machines without a GPU work too. See docs/WEBGPU.md.
 */
export async function nodeAdapter(opts: WebGpuOptions = {}): Promise<GPUAdapter> {
  const spec = 'webgpu';
  let mod: { create: (o: string[]) => GPU; globals: object };
  try {
    mod = await import(/* @vite-ignore */ spec);
  } catch (e) {
    throw new Error(`the \`webgpu\` npm package could not be loaded (${(e as Error).message}); install it with \`npm install webgpu\``);
  }
  Object.assign(globalThis, mod.globals);
  const req = { powerPreference: opts.powerPreference ?? 'high-performance' } as GPURequestAdapterOptions;
  // Dawn's instance must outlive its adapters and devices: keep it referenced (a collected
  // instance tears down threads the device still uses).
  let gpu = mod.create([]);
  let adapter = await gpu.requestAdapter(req);
  if (!adapter && typeof process !== 'undefined' && !vulkanIcd()) {
    const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs');
    if (fs.existsSync(SWIFTSHADER_ICD)) {
      useVulkanIcd(SWIFTSHADER_ICD); // read by the Vulkan loader when Dawn makes its next instance
      gpu = mod.create([]);
      adapter = await gpu.requestAdapter(req);
    }
  }
  keepAlive.push(gpu);
  if (!adapter) {
    throw new Error(
      `no WebGPU adapter is available (no GPU with a Vulkan driver found${vulkanIcd() ? `; VK_ICD_FILENAMES=${vulkanIcd()}` : ', and no SwiftShader at ' + SWIFTSHADER_ICD}); see docs/WEBGPU.md`,
    );
  }
  return adapter;
}

/** The browser's GPU, or null. */
export function browserGpu(): GPU | null {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu ?? null;
}

let shared: Promise<WebGpuDevice> | null = null;

/** The process's shared WebGPU device: navigator.gpu where it exists (browsers, workers), else the `webgpu` package. */
export function webGpuDevice(opts: WebGpuOptions = {}): Promise<WebGpuDevice> {
  if (!shared) {
    shared = (async () => {
      const gpu = browserGpu();
      if (gpu) {
        const a = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
        if (!a) throw new Error('no WebGPU adapter is available (navigator.gpu.requestAdapter() gave none)');
        return WebGpuDevice.fromAdapter(a);
      }
      return WebGpuDevice.fromAdapter(await nodeAdapter(opts));
    })();
    shared.catch(() => (shared = null));
  }
  return shared;
}

/** Release the shared device (if made). */
export async function releaseWebGpuDevice(): Promise<void> {
  const d = shared;
  shared = null;
  if (d) {
    try {
      (await d).destroy();
    } catch {
      /* it never came up */
    }
  }
}
