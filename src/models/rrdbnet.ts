/**
 * RRDBNet, SRFlow's conditioning network: ESRGAN's residual-in-residual dense blocks at LR
 * resolution, upsampled feature maps, and the stacked conditioning maps the flow levels read.
 */
import { Tensor, allocOut, backwardMany, isGradEnabled, noGrad, type Buf } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';
import type { Rng } from '../tensor/random.js';
import { kaimingNormal, torchDefaultConv } from '../flow/init.js';
import type { ModelConfig } from './config.js';
import { materializeCond, type CondParts } from '../flow/condconv.js';

export class Conv {
  weight: Tensor;
  bias: Tensor;
  constructor(cin: number, cout: number, rng: Rng, init: 'default' | 'dense' = 'default') {
    const shape = [cout, cin, 3, 3];
    if (init === 'dense') {
      this.weight = Tensor.param(kaimingNormal(shape, 0.1, rng), shape);
      this.bias = Tensor.param(new Float32Array(cout), [cout]);
    } else {
      const { weight, bias } = torchDefaultConv(shape, rng);
      this.weight = Tensor.param(weight, shape);
      this.bias = Tensor.param(bias, [cout]);
    }
  }
  apply(x: Tensor): Tensor {
    return T.conv2d(x, this.weight, this.bias);
  }
  parameters(): [string, Tensor][] {
    return [['weight', this.weight], ['bias', this.bias]];
  }
}

class DenseBlock {
  convs: Conv[];
  constructor(nf: number, gc: number, rng: Rng) {
    this.convs = [0, 1, 2, 3, 4].map((i) => new Conv(nf + i * gc, i === 4 ? nf : gc, rng, 'dense'));
  }
  apply(x: Tensor): Tensor {
    if (!isGradEnabled() && x.shape[0] === 1 && x.dtype === 'float32') return this.applyNoTape(x);
    const feats = [x];
    for (let i = 0; i < 4; i++) feats.push(T.leakyRelu(this.convs[i].apply(feats.length === 1 ? x : T.concat(feats, 1)), 0.2));
    const x5 = this.convs[4].apply(T.concat(feats, 1));
    return T.axpy(0.2, x5, x);
  }
  /**
   * The same without a tape for one image: the features grow in one buffer, each conv reads a
   * prefix of its channels and writes its output right after them (no concatenations).
   */
  private applyNoTape(x: Tensor): Tensor {
    const [, nf, h, w] = x.shape;
    const hw = h * w;
    const total = nf + this.convs.slice(0, 4).reduce((s, c) => s + c.weight.shape[0], 0);
    const buf = allocOut(x.data, total * hw);
    buf.set(x.data);
    let c = nf;
    for (let i = 0; i < 4; i++) {
      const gc = this.convs[i].weight.shape[0];
      const into = buf.subarray(c * hw, (c + gc) * hw);
      T.leakyRelu(T.conv2d(new Tensor(buf.subarray(0, c * hw), [1, c, h, w]), this.convs[i].weight, this.convs[i].bias, undefined, into), 0.2, true);
      c += gc;
    }
    const x5 = this.convs[4].apply(new Tensor(buf, [1, total, h, w]));
    return T.axpy(0.2, x5, x);
  }
  parameters(): [string, Tensor][] {
    return this.convs.flatMap((c, i) => c.parameters().map(([n, t]): [string, Tensor] => [`conv${i + 1}.${n}`, t]));
  }
}

class RRDB {
  rdbs: DenseBlock[];
  constructor(nf: number, gc: number, rng: Rng) {
    this.rdbs = [0, 1, 2].map(() => new DenseBlock(nf, gc, rng));
  }
  apply(x: Tensor): Tensor {
    let h = x;
    for (const r of this.rdbs) h = r.apply(h);
    return T.axpy(0.2, h, x);
  }
  parameters(): [string, Tensor][] {
    return this.rdbs.flatMap((r, i) => r.parameters().map(([n, t]): [string, Tensor] => [`RDB${i + 1}.${n}`, t]));
  }
}

export interface RRDBOutput {
  /** Conditioning maps by name (`fea_up2`, `fea_up1`, `fea_up0`, `last_lr_fea`, …), stacked when configured. */
  maps: Map<string, Tensor>;
  /** The same maps in their parts, cat(own, resizeNearest(stacked, own's size)) (only these with `factored`). */
  parts: Map<string, CondParts>;
  /** Remembered block outputs (`block_b`). */
  blocks: Map<string, Tensor>;
  /** The RRDB's own SR output (only when asked for). */
  out?: Tensor;
}

export class RRDBNet {
  convFirst: Conv;
  trunk: RRDB[];
  trunkConv: Conv;
  upconvs: Conv[];
  hrConv: Conv;
  convLast: Conv;

  constructor(readonly cfg: ModelConfig, rng: Rng) {
    const { nf, gc, nb, inNc, outNc, scale } = cfg;
    this.convFirst = new Conv(inNc, nf, rng);
    this.trunk = Array.from({ length: nb }, () => new RRDB(nf, gc, rng));
    this.trunkConv = new Conv(nf, nf, rng);
    const nUp = Math.max(1, Math.log2(scale));
    this.upconvs = Array.from({ length: nUp }, () => new Conv(nf, nf, rng));
    this.hrConv = new Conv(nf, nf, rng);
    this.convLast = new Conv(nf, outNc, rng);
  }

  parameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const add = (p: string, ps: [string, Tensor][]) => ps.forEach(([n, t]) => out.push([`${p}.${n}`, t]));
    add('conv_first', this.convFirst.parameters());
    this.trunk.forEach((b, i) => add(`RRDB_trunk.${i}`, b.parameters()));
    add('trunk_conv', this.trunkConv.parameters());
    this.upconvs.forEach((u, i) => add(`upconv${i + 1}`, u.parameters()));
    add('HRconv', this.hrConv.parameters());
    add('conv_last', this.convLast.parameters());
    return out;
  }

  /** Run on an LR batch. `withOut` also computes the RRDB's own SR output (L1 pre-training). */
  forward(lr: Tensor, opts: { withOut?: boolean; needMaps?: boolean; factored?: boolean } = {}): RRDBOutput {
    const { flow } = this.cfg;
    const blocks = new Map<string, Tensor>();
    let t = this.convFirst.apply(lr);
    this.trunk.forEach((b, i) => {
      t = b.apply(t);
      if (flow.stackBlocks.includes(i)) blocks.set(`block_${i}`, t);
    });
    return this.head(t, blocks, opts);
  }

  /**
   * The conditioning maps with gradient checkpointing per RRDB block (low-memory training): the
   * forward pass keeps only each block's input, without a tape; `backward(grads)` (the gradients of
   * the returned maps, null for none) recomputes one block at a time with a local tape, so no more
   * than one block's activations are alive at once. Parameter gradients accumulate as usual.
   */
  forwardCheckpointed(lr: Tensor, select: (o: RRDBOutput) => Tensor[]): { maps: Tensor[]; backward: (grads: (Buf | null)[]) => void } {
    const stack = this.cfg.flow.stackBlocks;
    const inputs: Tensor[] = [];
    const maps = noGrad(() => {
      const blocks = new Map<string, Tensor>();
      let t = this.convFirst.apply(lr);
      this.trunk.forEach((b, i) => {
        inputs.push(t);
        t = b.apply(t);
        if (stack.includes(i)) blocks.set(`block_${i}`, t);
      });
      inputs.push(t);
      return select(this.head(t, blocks));
    });
    const leaf = (t: Tensor) => Tensor.param(t.data, t.shape);
    const backward = (grads: (Buf | null)[]) => {
      // the head (trunk conv, upsampling, stacking) from leaves at the trunk's output and the stacked blocks
      const nb = this.trunk.length;
      const tOut = leaf(inputs[nb]);
      const blockLeaves = new Map<number, Tensor>();
      const blocks = new Map<string, Tensor>();
      for (const k of stack) {
        const b = leaf(inputs[k + 1]);
        blockLeaves.set(k, b);
        blocks.set(`block_${k}`, b);
      }
      const outs = select(this.head(tOut, blocks));
      backwardMany(outs, grads);
      let g: Buf | null = tOut.grad;
      for (let i = nb - 1; i >= 0; i--) {
        const bg = blockLeaves.get(i)?.grad ?? null;
        if (bg) {
          if (g) for (let j = 0; j < g.length; j++) g[j] += bg[j];
          else g = bg;
        }
        if (!g) continue; // nothing flows into this block from above
        const x = leaf(inputs[i]);
        const y = this.trunk[i].apply(x);
        y.backward(g);
        g = x.grad;
      }
      if (g) this.convFirst.apply(lr).backward(g);
    };
    return { maps, backward };
  }

  /**
   * Trunk conv, upsampling and the conditioning maps from the trunk's output and the stacked blocks
   * (`factored`: only in their parts, `parts`, never concatenated).
   */
  head(t: Tensor, blocks: Map<string, Tensor>, opts: { withOut?: boolean; needMaps?: boolean; factored?: boolean } = {}): RRDBOutput {
    const { flow } = this.cfg;
    const last = T.axpy(1, this.trunkConv.apply(t), t);
    const raw = new Map<string, Tensor>();
    raw.set('last_lr_fea', last);
    raw.set('fea_up1', last);
    let f = last;
    // The flow reads fea_up{scale/2} at most: the last upsampling conv (at full HR size) only feeds
    // the RRDB's own SR output, so it runs only when that is asked for.
    const nUp = opts.withOut ? this.upconvs.length : Math.min(this.upconvs.length, Math.max(0, Math.round(Math.log2(this.cfg.scale / 2))));
    this.upconvs.slice(0, nUp).forEach((u, i) => {
      f = T.leakyRelu(u.apply(T.upsampleNearest2x(f)), 0.2);
      raw.set(`fea_up${2 ** (i + 1)}`, f);
    });
    const result: RRDBOutput = { maps: new Map(), parts: new Map(), blocks };
    if (opts.withOut) result.out = this.convLast.apply(T.leakyRelu(this.hrConv.apply(f), 0.2));
    if (opts.needMaps === false) return result;
    if (flow.feaUp0) raw.set('fea_up0', T.downsampleBilinearHalf(last));
    if (flow.feaUpMinus1) raw.set('fea_up-1', T.downsampleBilinear(last, 4));
    const stacked = flow.stackConcat ? T.concat(flow.stackBlocks.map((b) => blocks.get(`block_${b}`) as Tensor), 1) : null;
    const done = new Map<Tensor, Tensor>();
    for (const [k, m] of raw) {
      result.parts.set(k, { own: m, stacked });
      if (opts.factored) continue;
      let v = done.get(m);
      if (!v) {
        v = materializeCond({ own: m, stacked });
        done.set(m, v);
      }
      result.maps.set(k, v);
    }
    return result;
  }
}
