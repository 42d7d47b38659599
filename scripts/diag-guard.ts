/**
 * Where the inverse flow explodes: per layer of the inverse (last to first), the largest |value|
 * of its output and the non-finite count, and per conditional step the smallest injector and
 * coupling scales (sigmoid(h + 2), with how many are below 0.01) and the largest |conditioning|,
 * |injector output| and |coupling output|. Unguarded (the published arithmetic), τ = 0 and 0.8.
 *
 *   npx tsx scripts/diag-guard.ts checker noise shapes ../shared/data/val/coffee.png
 *
 * (checker: the 48×48 1-pixel checkerboard; noise, shapes: as in scripts/robustness.ts; a path:
 * a 192×192 crop of that photo downscaled to 48×48.) The evidence behind src/flow/guard.ts.
 */
import sharp from 'sharp';
import { loadNet } from '../src/models/api.js';
import { loadImage } from '../src/io/image.js';
import { Tensor, noGrad } from '../src/tensor/tensor.js';
import * as T from '../src/tensor/index.js';
import { runFlow } from '../src/flow/run.js';
import { flowContext } from '../src/flow/layer.js';
import { CondAffine } from '../src/flow/affine.js';
import { FlowStep } from '../src/flow/flowstep.js';
import { Rng } from '../src/tensor/random.js';

const net = loadNet('models/srflow-4x.safetensors');
const sig = (x: number) => 1 / (1 + Math.exp(-x));
function stats(t: Tensor) {
  let m = 0,
    nf = 0;
  for (const v of t.data) {
    if (!Number.isFinite(v)) nf++;
    else m = Math.max(m, Math.abs(v));
  }
  return { m, nf };
}
function scaleMin(raw: Tensor) {
  const [n, c2, h, w] = raw.shape;
  const hw = h * w;
  let mn = Infinity;
  let below = 0;
  for (let b = 0; b < n; b++)
    for (let c = 1; c < c2; c += 2)
      for (let i = 0; i < hw; i++) {
        const s = sig(raw.data[(b * c2 + c) * hw + i] + 2);
        if (s < mn) mn = s;
        if (s < 0.01) below++;
      }
  return { mn, below };
}
let log: string[] = [];
const origInv = CondAffine.prototype.inverse;
CondAffine.prototype.inverse = function (this: CondAffine, y: Tensor, ctx) {
  const cond = ctx.cond!;
  const inj = this.fFeatures.apply(cond);
  const z1 = T.slice(y, 1, 0, this.nn);
  const cp = this.fAffine.apply(T.concat([z1, cond], 1));
  const a = scaleMin(inj),
    b = scaleMin(cp);
  log.push(
    `   inj scale min ${a.mn.toExponential(2)} (<0.01: ${a.below})  cp scale min ${b.mn.toExponential(2)} (<0.01: ${b.below}) |cond| ${stats(cond).m.toFixed(1)} |inj| ${stats(inj).m.toFixed(1)} |cp| ${stats(cp).m.toFixed(1)}`,
  );
  return origInv.call(this, y, ctx);
};
async function lrOf(name: string): Promise<Tensor> {
  const n = 48;
  let buf: Buffer;
  if (name === 'checker') {
    let r = '';
    for (let y = 0; y < 48; y++) for (let x = 0; x < 48; x++) if ((x + y) % 2 === 0) r += `<rect x="${x}" y="${y}" width="1" height="1" fill="#000"/>`;
    buf = await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"><rect width="48" height="48" fill="#fff"/>${r}</svg>`))
      .removeAlpha()
      .png()
      .toBuffer();
  } else if (name === 'noise') {
    let seed = 12345;
    const raw = Buffer.alloc(n * n * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 24;
    buf = await sharp(raw, { raw: { width: n, height: n, channels: 3 } })
      .png()
      .toBuffer();
  } else if (name === 'shapes') {
    buf = await sharp(
      Buffer.from(
        `<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"><rect width="48" height="48" fill="#00ff00"/><circle cx="16" cy="16" r="10" fill="#ff00ff"/><rect x="24" y="24" width="18" height="18" fill="#0000ff"/><polygon points="4,44 20,28 28,44" fill="#ffff00"/></svg>`,
      ),
    )
      .removeAlpha()
      .png()
      .toBuffer();
  } else {
    buf = await sharp(name).extract({ left: 100, top: 100, width: 192, height: 192 }).resize(48, 48, { kernel: 'cubic' }).removeAlpha().png().toBuffer();
  }
  const img = (await loadImage(buf)).rgb;
  return new Tensor(img.data, [1, 3, img.height, img.width]);
}
for (const name of process.argv.slice(2)) {
  for (const tau of [0, 0.8]) {
    const lr = await lrOf(name);
    log = [];
    noGrad(() => {
      const rr = net.rrdb.forward(lr);
      const conds = net.conditioning(rr);
      const lat = net.drawLatents(lr.shape, tau, new Rng(1));
      const ctx = flowContext({ latents: lat.slice(0, -1), needLogdet: false });
      console.log(`== ${name} τ=${tau}: |cond| per level ${conds.map((c) => stats(c).m.toFixed(1)).join(' ')}`);
      runFlow(net.plan, lat[lat.length - 1], 'inverse', ctx, {
        conds,
        visit: (i, _in, out) => {
          const l = net.layers[i];
          const s = stats(out);
          console.log(
            `L${i} ${l.kind}${l instanceof FlowStep && l.affine ? '+aff' : ''} lvl${net.levelOf[i]} out max|x| ${s.m.toExponential(2)} nonfinite ${s.nf}`,
          );
          for (const x of log) console.log(x);
          log = [];
        },
      });
    });
  }
}
