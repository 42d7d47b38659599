/**
 * Which model file a job's `model` name means: null → the default model (the shipped one unless
 * --model says otherwise; without --model, a job's scale=8 picks the shipped 8x model);
 * NAME → <models folder>/NAME.safetensors. Names never reach the file
 * system as paths (jobs.ts MODEL_NAME), so a request cannot name an arbitrary file.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelPath, SHIPPED_SCALES, type ShippedScale } from '../upscale/model.js';
import { parseConfig } from '../models/config.js';
import { MODEL_NAME } from './jobs.js';

export interface ModelCatalog {
  /** The default model's file (srflow .safetensors carrying its configuration). */
  defaultModel: string;
  /** Folder of NAME.safetensors models that `model=NAME` selects, if any. */
  modelsDir?: string;
  /** Without --model: the shipped model of each scale, which a job's scale picks when it names no model. */
  shipped?: Partial<Record<ShippedScale, string>>;
}

/**
 * `shippedDir`: the folder of the shipped models (default: the package's models/); `defaultModel`
 * replaces the shipped 4x file (the CLI's SRFLOW_DEFAULT_MODEL).
 */
export function catalog(opts: { model?: string; modelsDir?: string; shippedDir?: string; defaultModel?: string }): ModelCatalog {
  if (opts.model !== undefined) return { defaultModel: opts.model, modelsDir: opts.modelsDir };
  const shipped: Partial<Record<ShippedScale, string>> = {};
  for (const s of SHIPPED_SCALES) shipped[s] = defaultModelPath(s, opts.shippedDir, opts.defaultModel);
  return { defaultModel: shipped[4]!, modelsDir: opts.modelsDir, shipped };
}

/**
 * The file a model name (and, for the default, the job's scale) stands for; throws a message naming
 * the problem when there is none.
 */
export function modelPath(cat: ModelCatalog, name: string | null, scale?: number): string {
  const shipped = scale !== undefined && scale !== 4 ? cat.shipped?.[scale as ShippedScale] : undefined;
  if (name === null && shipped !== undefined) {
    if (!existsSync(shipped)) throw new Error(`The shipped ${scale}x model ${shipped} is missing`);
    return shipped;
  }
  if (name === null) {
    if (!existsSync(cat.defaultModel)) throw new Error(`The default model ${cat.defaultModel} is missing`);
    return cat.defaultModel;
  }
  if (!MODEL_NAME.test(name)) throw new Error(`Unknown model ${JSON.stringify(name)}`);
  if (!cat.modelsDir) throw new Error(`Unknown model ${JSON.stringify(name)}: this server has no models folder (--models-dir)`);
  const p = join(cat.modelsDir, `${name}.safetensors`);
  if (!existsSync(p)) throw new Error(`Unknown model ${JSON.stringify(name)}: no ${name}.safetensors in the models folder`);
  return p;
}

const scales = new Map<string, { mtimeMs: number; scale: number }>();

/**
 * A model file's scale from its safetensors header alone (the embedded configuration), without
 * reading the weights. Throws when the file is not an srflow model carrying its configuration.
 */
export function modelScale(path: string): number {
  const st = statSync(path);
  const hit = scales.get(path);
  if (hit && hit.mtimeMs === st.mtimeMs) return hit.scale;
  const fd = openSync(path, 'r');
  let header: Record<string, unknown>;
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) throw new Error('too short');
    const n = Number(len.readBigUInt64LE(0));
    if (!(n > 0 && n < 100 * 1048576 && 8 + n <= st.size)) throw new Error('bad header length');
    const buf = Buffer.alloc(n);
    if (readSync(fd, buf, 0, n, 8) !== n) throw new Error('truncated header');
    header = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`Cannot read model ${path}: not an srflow .safetensors model (${(e as Error).message})`);
  } finally {
    closeSync(fd);
  }
  const meta = header.__metadata__ as Record<string, string> | undefined;
  if (!meta?.config) throw new Error(`Cannot read model ${path}: it carries no configuration (the server takes srflow .safetensors models)`);
  const scale = parseConfig(JSON.parse(meta.config)).scale;
  scales.set(path, { mtimeMs: st.mtimeMs, scale });
  return scale;
}
