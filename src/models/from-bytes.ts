/**
 * A model from a file's bytes already in memory (the browser: a file the user picked, read with
 * File.arrayBuffer(); nothing is uploaded): a native srflow model file (safetensors with its
 * configuration) or a PyTorch checkpoint whose layout is recognised from its tensors (the published
 * SRFlow_*.pth and RRDB_*.pth). No file system access.
 */
import { isLegacyPth, parsePth } from '../io/pth.js';
import { parseSafetensors, type RawTensor } from '../io/safetensors.js';
import { parseConfig, type ModelConfig } from './config.js';
import { inferLayout, isRrdbOpt, parseRrdbConfig, type Layout, type LayoutKind } from './infer-layout.js';
import { NoInitRng } from './no-init.js';
import { RRDBOnlyNet } from './rrdb-model.js';
import { SRFlowNet } from './srflow.js';
import { loadStateDict } from './state.js';
import { applySamplingMetadata } from './file-metadata.js';

export interface NetFromBytes {
  net: SRFlowNet;
  kind: LayoutKind;
  /** The recognised layout (null for a model file whose configuration could not be matched to one). */
  layout: Layout | null;
}

export function netFromBytes(bytes: Uint8Array, name: string): NetFromBytes {
  let tensors: Map<string, RawTensor>;
  let embedded: Record<string, unknown> | null = null;
  let metadata: Record<string, string> = {};
  if (bytes.byteLength >= 4 && ((bytes[0] === 0x50 && bytes[1] === 0x4b) || isLegacyPth(bytes))) {
    tensors = parsePth(bytes, name);
  } else if (bytes.byteLength >= 9 && bytes[8] === 0x7b) {
    const f = parseSafetensors(bytes, name);
    tensors = f.tensors;
    for (const k of [...tensors.keys()]) if (k.startsWith('optimizer.')) tensors.delete(k);
    metadata = f.metadata;
    if (f.metadata.config) embedded = JSON.parse(f.metadata.config) as Record<string, unknown>;
  } else {
    throw new Error(`${name} is not a PyTorch checkpoint (.pth) or an srflow model file (.safetensors)`);
  }
  const shapes = new Map([...tensors].map(([k, t]) => [k, t.shape] as [string, number[]]));
  let layout: Layout | null = null;
  let cfg: ModelConfig;
  let kind: LayoutKind;
  if (embedded) {
    try {
      layout = inferLayout(shapes, name);
    } catch {
      layout = null;
    }
    const rrdb = isRrdbOpt(embedded);
    cfg = rrdb ? parseRrdbConfig(embedded) : parseConfig(embedded);
    kind = rrdb || layout?.kind === 'rrdb' ? 'rrdb' : 'srflow';
  } else {
    layout = inferLayout(shapes, name); // throws naming what is missing
    cfg = layout.config;
    kind = layout.kind;
  }
  const net = kind === 'rrdb' ? new RRDBOnlyNet(cfg, new NoInitRng()) : new SRFlowNet(cfg, new NoInitRng());
  loadStateDict(net, tensors, `model ${name}`, { rename: layout?.rename });
  if (kind === 'srflow') applySamplingMetadata(net, metadata, `model ${name}`);
  return { net, kind, layout };
}
