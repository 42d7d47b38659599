/**
 * Recognise a checkpoint's architecture from its state dict alone (names and shapes, no values):
 * the published SRFlow layouts (SRFlow_DF2K_4X, SRFlow_DF2K_8X, SRFlow_CelebA_8X), the published
 * RRDB networks they were built on (RRDB_*.pth: a bare RRDBNet state dict), and any other layout of
 * the same family whose tensors determine it. What the tensors cannot tell (which RRDB blocks are
 * stacked when not all are, the couplings' eps, the dequantisation levels) comes from the published
 * configurations and is listed in `assumed`; when even that is not enough the error names exactly
 * what is missing. See docs/PUBLISHED-MODELS.md.
 */
import { makeOpt, parseConfig, type ModelConfig } from './config.js';

export class LayoutError extends Error {
  override name = 'LayoutError';
}

export type LayoutKind = 'srflow' | 'rrdb';

export interface Layout {
  kind: LayoutKind;
  /** The published checkpoint whose architecture this is (`SRFlow_DF2K_4X`, `RRDB_DF2K_8X`, …), or null. */
  published: string | null;
  /** One line: what was recognised. */
  description: string;
  config: ModelConfig;
  /** Values that come from the published configurations rather than from the tensors. */
  assumed: string[];
  /** Checkpoint key → model parameter name (bare RRDBNet keys gain `RRDB.`; a `module.` prefix is dropped). */
  rename: Map<string, string>;
}

/** Stacked RRDB blocks of the published configurations, by (scale, nb, number of stacked blocks). */
const PUBLISHED_BLOCKS: { scale: number; nb: number; blocks: number[]; from: string }[] = [
  { scale: 4, nb: 23, blocks: [1, 8, 15, 22], from: 'SRFlow_DF2K_4X' },
  { scale: 8, nb: 23, blocks: [1, 3, 5, 7], from: 'SRFlow_DF2K_8X' },
  { scale: 8, nb: 8, blocks: [1, 3, 5, 7], from: 'SRFlow_CelebA_8X' },
];

/** The published SRFlow layouts: nf 64, gc 32, K 16, two transition steps, hidden 64, 4 stacked blocks. */
const PUBLISHED_SRFLOW: { name: string; scale: number; nb: number; L: number }[] = [
  { name: 'SRFlow_DF2K_4X', scale: 4, nb: 23, L: 3 },
  { name: 'SRFlow_DF2K_8X', scale: 8, nb: 23, L: 4 },
  { name: 'SRFlow_CelebA_8X', scale: 8, nb: 8, L: 4 },
];

type Shapes = Map<string, number[]>;

function fmtShape(s: number[] | undefined): string {
  return s ? `[${s.join(', ')}]` : 'absent';
}

/** Normalise key prefixes: drop a `module.` prefix (DataParallel), add `RRDB.` to a bare RRDBNet. */
function normalise(keys: string[]): { rename: Map<string, string>; kind: LayoutKind | null } {
  const strip = keys.length > 0 && keys.every((k) => k.startsWith('module.'));
  const base = keys.map((k) => (strip ? k.slice(7) : k));
  const hasFlow = base.some((k) => k.startsWith('flowUpsamplerNet.'));
  const hasPrefixed = base.includes('RRDB.conv_first.weight');
  const hasBare = base.includes('conv_first.weight');
  const rename = new Map<string, string>();
  let kind: LayoutKind | null = null;
  if (hasFlow) kind = 'srflow';
  else if (hasPrefixed || hasBare) kind = 'rrdb';
  keys.forEach((k, i) => rename.set(k, !hasPrefixed && hasBare && !hasFlow && !base[i].startsWith('RRDB.') ? `RRDB.${base[i]}` : base[i]));
  return { rename, kind };
}

interface RrdbPart {
  nf: number;
  gc: number;
  nb: number;
  inNc: number;
  outNc: number;
  scale: number;
  notes: string[];
}

function inferRrdb(s: Shapes, source: string): RrdbPart {
  const need = (k: string, dims: number): number[] => {
    const v = s.get(k);
    if (!v) throw new LayoutError(`Cannot recognise ${source}: it has no tensor ${k}, which every SRFlow/RRDB checkpoint holds`);
    if (v.length !== dims) throw new LayoutError(`Cannot recognise ${source}: tensor ${k} has shape ${fmtShape(v)}, expected ${dims} dimensions`);
    return v;
  };
  const first = need('RRDB.conv_first.weight', 4);
  const nf = first[0];
  const inNc = first[1];
  const last = need('RRDB.conv_last.weight', 4);
  const outNc = last[0];
  let nb = 0;
  while (s.has(`RRDB.RRDB_trunk.${nb}.RDB1.conv1.weight`)) nb++;
  if (nb === 0) throw new LayoutError(`Cannot recognise ${source}: it has no RRDB blocks (RRDB_trunk.0.RDB1.conv1.weight is missing)`);
  for (const k of s.keys()) {
    const m = /^RRDB\.RRDB_trunk\.(\d+)\./.exec(k);
    if (m && Number(m[1]) >= nb) throw new LayoutError(`Cannot recognise ${source}: RRDB block ${m[1]} is present but block ${nb} is not (RRDB_trunk.${nb}.RDB1.conv1.weight missing)`);
  }
  const gc = need('RRDB.RRDB_trunk.0.RDB1.conv1.weight', 4)[0];
  let nUp = 0;
  while (s.has(`RRDB.upconv${nUp + 1}.weight`)) nUp++;
  if (nUp < 2) throw new LayoutError(`Cannot recognise ${source}: tensor RRDB.upconv${nUp + 1}.weight is missing (the published RRDBNet always has upconv1 and upconv2)`);
  if (nUp > 4) throw new LayoutError(`Cannot recognise ${source}: it has ${nUp} upsampling convs (upconv1..upconv${nUp}); scales above 16 are not supported`);
  const scale = 2 ** nUp;
  const notes = nUp === 2 ? ['scale 4 (upconv1 and upconv2 only; a 2x network of the published code has the same tensors)'] : [];
  return { nf, gc, nb, inNc, outNc, scale, notes };
}

/** A configuration for an RRDB-only network (the RRDB's own SR output; no flow). */
export function rrdbOnlyConfig(p: { scale: number; nf: number; nb: number; gc: number; inNc?: number; outNc?: number }): ModelConfig {
  const opt = {
    scale: p.scale,
    network_G: { which_model_G: 'RRDBNet', in_nc: p.inNc ?? 3, out_nc: p.outNc ?? 3, nf: p.nf, nb: p.nb, gc: p.gc },
  };
  return {
    scale: p.scale,
    inNc: p.inNc ?? 3,
    outNc: p.outNc ?? 3,
    nf: p.nf,
    nb: p.nb,
    gc: p.gc,
    flow: { K: [], L: 0, additionalFlowNoAffine: 0, split: false, feaUp0: false, feaUpMinus1: false, stackBlocks: [], stackConcat: false, hidden: 64, eps: 1e-4 },
    quant: 255,
    opt,
  };
}

/** True for an option object describing a bare RRDBNet (which_model_G: RRDBNet). */
export function isRrdbOpt(opt: unknown): boolean {
  const o = opt as { network_G?: { which_model_G?: unknown }; opt?: { network_G?: { which_model_G?: unknown } } } | null;
  return !!o && (o.network_G?.which_model_G === 'RRDBNet' || o.opt?.network_G?.which_model_G === 'RRDBNet');
}

/** The RRDB-only configuration of an RRDBNet option object (published layout: scale, network_G.nf/nb/gc). */
export function parseRrdbConfig(input: Record<string, unknown>): ModelConfig {
  const opt = (input.opt && typeof input.opt === 'object' ? input.opt : input) as { scale?: unknown; network_G: Record<string, unknown> };
  const g = opt.network_G;
  const int = (v: unknown, name: string, d: number) => {
    if (v === undefined || v === null) return d;
    if (!(typeof v === 'number' && Number.isInteger(v) && v > 0)) throw new Error(`Expected a positive integer for ${name} but received ${JSON.stringify(v)}`);
    return v;
  };
  const scale = int(opt.scale ?? g.scale ?? g.upscale, 'scale', 4);
  if (![4, 8, 16].includes(scale)) throw new Error(`Expected 4, 8 or 16 for scale but received ${scale}`);
  return rrdbOnlyConfig({ scale, nf: int(g.nf, 'network_G.nf', 64), nb: int(g.nb, 'network_G.nb', 23), gc: int(g.gc, 'network_G.gc', 32), inNc: int(g.in_nc, 'network_G.in_nc', 3), outNc: int(g.out_nc, 'network_G.out_nc', 3) });
}

type LayerKind = 'squeeze' | 'transition' | 'step' | 'split';

/**
 * Recognise the architecture of a state dict from its names and shapes. Throws a LayoutError
 * naming what cannot be inferred.
 */
export function inferLayout(shapesIn: Map<string, number[]>, source = 'checkpoint'): Layout {
  const { rename, kind } = normalise([...shapesIn.keys()]);
  if (!kind) {
    const keys = [...shapesIn.keys()];
    throw new LayoutError(
      `Cannot recognise ${source}: it is neither an SRFlow nor an RRDB checkpoint (no flowUpsamplerNet.* tensors and no RRDB.conv_first.weight or conv_first.weight; ${keys.length ? `first keys: ${keys.slice(0, 5).join(', ')}` : 'it holds no tensors'})`,
    );
  }
  const s: Shapes = new Map();
  for (const [k, v] of shapesIn) s.set(rename.get(k) as string, v);
  const r = inferRrdb(s, source);

  if (kind === 'rrdb') {
    const config = rrdbOnlyConfig(r);
    let published: string | null = null;
    if (r.nf === 64 && r.gc === 32 && r.inNc === 3 && r.outNc === 3) {
      if (r.scale === 4 && r.nb === 23) published = 'RRDB_DF2K_4X';
      else if (r.scale === 8 && r.nb === 23) published = 'RRDB_DF2K_8X';
      else if (r.scale === 8 && r.nb === 8) published = 'RRDB_CelebA_8X';
    }
    return {
      kind,
      published,
      description: `RRDB network (ESRGAN architecture, deterministic SR): ${r.scale}x, ${r.nb} RRDB blocks, nf ${r.nf}, gc ${r.gc}${published ? ` — the ${published} layout` : ''}`,
      config,
      assumed: r.notes,
      rename,
    };
  }

  // The flow: one flat list of layers; squeezes hold no tensors.
  const P = 'flowUpsamplerNet.layers.';
  const byIndex = new Map<number, Map<string, number[]>>();
  let maxIndex = -1;
  for (const [k, v] of s) {
    if (!k.startsWith(P)) continue;
    const m = /^(\d+)\.(.+)$/.exec(k.slice(P.length));
    if (!m) throw new LayoutError(`Cannot recognise ${source}: unexpected tensor ${k}`);
    const i = Number(m[1]);
    maxIndex = Math.max(maxIndex, i);
    if (!byIndex.has(i)) byIndex.set(i, new Map());
    (byIndex.get(i) as Map<string, number[]>).set(m[2], v);
  }
  if (maxIndex < 0) throw new LayoutError(`Cannot recognise ${source}: it has flowUpsamplerNet tensors but no flowUpsamplerNet.layers.*`);
  const kinds: LayerKind[] = [];
  for (let i = 0; i <= maxIndex; i++) {
    const t = byIndex.get(i);
    if (!t) kinds.push('squeeze');
    else if ([...t.keys()].some((k) => k.startsWith('affine.'))) kinds.push('step');
    else if (t.has('conv.weight')) kinds.push('split');
    else if (t.has('actnorm.bias') || t.has('invconv.weight')) kinds.push('transition');
    else throw new LayoutError(`Cannot recognise ${source}: flowUpsamplerNet.layers.${i} holds ${[...t.keys()].join(', ')}, which is no layer of the SRFlow flow`);
  }
  if (kinds[0] !== 'squeeze') throw new LayoutError(`Cannot recognise ${source}: flowUpsamplerNet.layers.0 holds tensors, but the flow starts with a squeeze (no tensors)`);
  const levels: { A: number; K: number; split: boolean; first: number }[] = [];
  kinds.forEach((k, i) => {
    const lv = levels[levels.length - 1];
    if (k === 'squeeze') levels.push({ A: 0, K: 0, split: false, first: i });
    else if (lv.split) throw new LayoutError(`Cannot recognise ${source}: flowUpsamplerNet.layers.${i} follows a split within the same level`);
    else if (k === 'transition') {
      if (lv.K > 0) throw new LayoutError(`Cannot recognise ${source}: flowUpsamplerNet.layers.${i} is a step without a coupling after coupling steps (the published flow puts those first in a level)`);
      lv.A++;
    } else if (k === 'step') lv.K++;
    else lv.split = true;
  });
  const L = levels.length;
  const A = levels[0].A;
  const badA = levels.findIndex((l) => l.A !== A);
  if (badA >= 0) throw new LayoutError(`Cannot recognise ${source}: levels have different numbers of transition steps (network_G.flow.additionalFlowNoAffine: ${levels.map((l) => l.A).join(', ')}); pass --config`);
  const zeroK = levels.findIndex((l) => l.K === 0);
  if (zeroK >= 0) throw new LayoutError(`Cannot recognise ${source}: level ${zeroK + 1} (from flowUpsamplerNet.layers.${levels[zeroK].first}) has no flow steps with a coupling`);
  const splitLevels = levels.map((l, i) => (l.split ? i + 1 : 0)).filter((x) => x);
  const expected = Array.from({ length: Math.max(0, L - 2) }, (_v, i) => i + 1);
  let split: boolean;
  if (splitLevels.length === 0 && L >= 3) split = false;
  else if (splitLevels.length === expected.length && splitLevels.every((x, i) => x === expected[i])) split = true;
  else throw new LayoutError(`Cannot recognise ${source}: splits at levels [${splitLevels.join(', ')}] but the SRFlow flow splits at levels [${expected.join(', ')}] (every level below L − 1)`);
  const K = levels.map((l) => l.K);

  const stepIdx = kinds.indexOf('step');
  const feat = byIndex.get(stepIdx)?.get('affine.fFeatures.0.weight');
  const featName = `flowUpsamplerNet.layers.${stepIdx}.affine.fFeatures.0.weight`;
  if (!feat || feat.length !== 4) throw new LayoutError(`Cannot recognise ${source}: tensor ${featName} is ${feat ? `of shape ${fmtShape(feat)}` : 'missing'}; it gives the coupling width and the conditioning channels`);
  const hidden = feat[0];
  const cCond = feat[1];
  if (cCond % r.nf !== 0 || cCond < r.nf) {
    throw new LayoutError(`Cannot recognise ${source}: ${featName} reads ${cCond} conditioning channels, which is not nf·(stacked blocks + 1) with nf ${r.nf}`);
  }
  const nStack = cCond / r.nf - 1;
  if (nStack > r.nb) throw new LayoutError(`Cannot recognise ${source}: ${featName} reads ${cCond} conditioning channels, i.e. ${nStack} stacked RRDB blocks, but the RRDB has only ${r.nb}`);
  const assumed = [...r.notes];
  let blocks: number[];
  const pub = PUBLISHED_BLOCKS.find((p) => p.scale === r.scale && p.nb === r.nb && p.blocks.length === nStack);
  if (nStack === 0) blocks = [];
  else if (nStack === r.nb) blocks = Array.from({ length: r.nb }, (_v, i) => i);
  else if (pub) {
    blocks = pub.blocks;
    assumed.push(`network_G.flow.stackRRDB.blocks [${pub.blocks.join(', ')}] (the tensors only say that ${nStack} of the ${r.nb} blocks are stacked; these are the published ${pub.from} configuration's)`);
  } else {
    throw new LayoutError(
      `Cannot recognise ${source} completely: network_G.flow.stackRRDB.blocks is missing — the tensors say that ${nStack} of the ${r.nb} RRDB blocks condition the flow, but not which, and no published configuration has this layout (scale ${r.scale}, nb ${r.nb}); pass --config with it`,
    );
  }
  const f = r.scale / 2 ** L;
  if (f < 0.25) throw new LayoutError(`Cannot recognise ${source}: ${L} flow levels at scale ${r.scale} would need conditioning maps below LR/4`);
  const opt = makeOpt({ scale: r.scale, nb: r.nb, K: K.every((k) => k === K[0]) ? K[0] : (K as unknown as number), L, blocks, hidden, quant: 32, nf: r.nf });
  const g = opt.network_G as Record<string, unknown>;
  const fl = g.flow as Record<string, unknown>;
  fl.additionalFlowNoAffine = A;
  fl.split = { enable: split };
  if (nStack === 0) fl.stackRRDB = { blocks: [], concat: false };
  if (r.gc !== 32) g.gc = r.gc;
  if (r.inNc !== 3) g.in_nc = r.inNc;
  if (r.outNc !== 3) g.out_nc = r.outNc;
  assumed.push('network_G.flow.CondAffineSeparatedAndCond.eps 1e-4 (the published default; not stored in checkpoints)');
  assumed.push('datasets.train.quant 32 (the published configurations; only training uses it)');
  let config: ModelConfig;
  try {
    config = parseConfig(opt);
  } catch (e) {
    throw new LayoutError(`Cannot recognise ${source}: the inferred configuration is invalid (${(e as Error).message})`);
  }
  const published =
    r.nf === 64 && r.gc === 32 && hidden === 64 && A === 2 && split && nStack === 4 && K.every((k) => k === 16)
      ? (PUBLISHED_SRFLOW.find((p) => p.scale === r.scale && p.nb === r.nb && p.L === L)?.name ?? null)
      : null;
  const kText = K.every((k) => k === K[0]) ? String(K[0]) : K.join('/');
  return {
    kind,
    published,
    description: `SRFlow: ${r.scale}x, RRDB ${r.nb} blocks (nf ${r.nf}), flow L ${L} K ${kText}, ${A} transition steps per level, coupling width ${hidden}, ${nStack} stacked RRDB blocks${split ? '' : ', no splits'}${published ? ` — the ${published} layout` : ''}`,
    config,
    assumed,
    rename,
  };
}
