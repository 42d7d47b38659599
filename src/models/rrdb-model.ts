/**
 * An RRDB network on its own (the published RRDB_*.pth: ESRGAN-architecture SR networks that the
 * SRFlow models were built on) as a deterministic upscaler. It plugs into everything that drives an
 * SRFlowNet for inference (the tiled upscale engine, `SRFlowModel.sample`): the "conditioning" is the
 * RRDB's own SR output, and "decoding" any latents returns it (temperature and seed change nothing).
 * Likelihoods (encode, decode, training the flow) need an SRFlow model and say so.
 */
import { Tensor, noGrad } from '../tensor/tensor.js';
import type { Rng } from '../tensor/random.js';
import type { ModelConfig } from './config.js';
import { SRFlowNet, type ConditioningCache, type EncodeResult } from './srflow.js';

export class RRDBOnlyNet extends SRFlowNet {
  readonly rrdbOnly = true;

  constructor(config: ModelConfig, seed: number | Rng = 0) {
    super(config, seed);
    this.extra.clear(); // no flowUpsamplerNet.f.0
  }

  private noFlow(what: string): never {
    throw new Error(`This is an RRDB network (deterministic SR, ${this.scale}x), not an SRFlow model: it has no flow, so ${what} needs an SRFlow model (e.g. SRFlow_DF2K_4X.pth)`);
  }

  /** The RRDB's own SR output for an LR batch (no tape). */
  srOutput(lr: Tensor): Tensor {
    this.checkLr(lr);
    return noGrad(() => this.rrdb.forward(lr, { withOut: true, needMaps: false }).out as Tensor);
  }

  /** One placeholder latent at LR resolution (ignored by decoding). */
  override latentShapes(lrShape: readonly number[]): number[][] {
    const [B, , h, w] = lrShape;
    return [[B, 1, h, w]];
  }

  override drawLatents(lrShape: readonly number[], _temperature: number, _rng: Rng): Tensor[] {
    return this.latentShapes(lrShape).map((s) => Tensor.zeros(s));
  }

  override prepareConditioning(lr: Tensor): ConditioningCache {
    const out = this.srOutput(lr);
    return { lrShape: lr.shape.slice(), conds: [out], steps: new Map(), bytes: 4 * out.size, guard: null, guardTouched: 0 };
  }

  /** The RRDB output, once per latent batch entry (latents only set the batch size). */
  override decodeCached(latents: Tensor[], cache: ConditioningCache): { sr: Tensor; logdet: Tensor; guardTouched: null } {
    const out = cache.conds[0];
    const B = cache.lrShape[0] === 1 && latents.length ? latents[0].shape[0] : cache.lrShape[0];
    if (B === out.shape[0]) return { sr: out, logdet: Tensor.zeros([B]), guardTouched: null };
    const per = out.size;
    const data = new Float32Array(per * B);
    for (let i = 0; i < B; i++) data.set(out.data as Float32Array, i * per);
    return { sr: new Tensor(data, [B, ...out.shape.slice(1)]), logdet: Tensor.zeros([B]), guardTouched: null };
  }

  override encode(): EncodeResult {
    return this.noFlow('encoding (latents, NLL)');
  }
  override encodeCached(): EncodeResult {
    return this.noFlow('encoding (latents, NLL)');
  }
  override decode(): { sr: Tensor; logdet: Tensor } {
    return this.noFlow('decoding latents');
  }
  override loss(): { loss: Tensor; nll: Tensor } {
    return this.noFlow('the likelihood loss');
  }
}

export function isRrdbOnly(net: SRFlowNet): net is RRDBOnlyNet {
  return net instanceof RRDBOnlyNet;
}
