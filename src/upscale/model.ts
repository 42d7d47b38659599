/** The shipped models (4x and 8x) and model resolution for the upscaler. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, SRFlowModel } from '../models/api.js';

/** The scales srflow ships a model for: models/srflow-4x.safetensors and models/srflow-8x.safetensors. */
export const SHIPPED_SCALES = [4, 8] as const;
export type ShippedScale = (typeof SHIPPED_SCALES)[number];

/** A scale option's value, checked: 4 or 8 (a plain Error naming `name` otherwise). */
export function checkScale(scale: unknown, name = 'scale'): ShippedScale {
  if (!SHIPPED_SCALES.includes(scale as ShippedScale)) {
    throw new Error(`Expected ${SHIPPED_SCALES.join(' or ')} for ${name} but received ${typeof scale === 'string' ? JSON.stringify(scale) : String(scale)}`);
  }
  return scale as ShippedScale;
}

/**
 * The shipped model of a scale: `srflow-<scale>x.safetensors` in `modelsDir`, by default the
 * package's models/ folder (this file is two levels down both as src/upscale/model.ts and as
 * dist/upscale/model.js).
 */
export function shippedModelPath(scale: ShippedScale = 4, modelsDir?: string): string {
  const file = `srflow-${checkScale(scale)}x.safetensors`;
  return modelsDir !== undefined ? join(modelsDir, file) : fileURLToPath(new URL(`../../models/${file}`, import.meta.url));
}

/**
 * The default model of a scale: the shipped one (`shippedModelPath`); for 4x, `defaultModel` (the
 * CLI's SRFLOW_DEFAULT_MODEL, read in src/env.ts) replaces it.
 */
export function defaultModelPath(scale: ShippedScale = 4, modelsDir?: string, defaultModel?: string): string {
  if (defaultModel && scale === 4) return defaultModel;
  return shippedModelPath(scale, modelsDir);
}

export class DefaultModelMissingError extends Error {
  override name = 'DefaultModelMissingError';
}

/** A model whose scale is not the one asked for (`scale` with an explicit model). */
export class ScaleMismatchError extends Error {
  override name = 'ScaleMismatchError';
  constructor(
    /** The model (a path, or 'the given model'). */
    readonly model: string,
    /** The model's scale. */
    readonly modelScale: number,
    /** The scale asked for. */
    readonly wanted: number,
  ) {
    super(`Expected a model of scale ${wanted} but ${model} upscales ${modelScale}×: leave the scale out, or pass a model of scale ${wanted}`);
  }
}

/**
 * A loaded model, a path to load, or (undefined) the default model of `scale` (default 4). With
 * `scale`, a given model must have that scale (ScaleMismatchError otherwise). `hint` says how to
 * pass a model in the message when the default one is not installed; `modelsDir` is where the
 * shipped models are (default: the package's models/).
 */
export async function resolveModel(
  model: SRFlowModel | string | undefined,
  opts: { config?: string | Record<string, unknown>; hint?: string; scale?: number; modelsDir?: string; defaultModel?: string } = {},
): Promise<SRFlowModel> {
  const scale = opts.scale === undefined ? undefined : checkScale(opts.scale);
  const checked = (m: SRFlowModel, what: string): SRFlowModel => {
    if (scale !== undefined && m.scale !== scale) {
      throw new ScaleMismatchError(what, m.scale, scale);
    }
    return m;
  };
  if (model instanceof SRFlowModel) return checked(model, 'the given model');
  if (model === undefined) {
    const path = defaultModelPath(scale ?? 4, opts.modelsDir, opts.defaultModel);
    if (!existsSync(path)) {
      const what = scale === 8 ? `The shipped 8x model is not installed (${path} is missing)` : `The default model is not installed (${path} is missing)`;
      throw new DefaultModelMissingError(`${what}: ${opts.hint ?? 'pass a model (the model option: an SRFlowModel or a model file path)'}`);
    }
    return checked(await loadModel(path, { config: opts.config }), path);
  }
  if (typeof model !== 'string' || !model) {
    throw new Error(`Expected an SRFlowModel or a model file path for model but received ${model === null ? 'null' : typeof model}`);
  }
  return checked(await loadModel(model, { config: opts.config }), model);
}
