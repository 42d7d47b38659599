/** The shipped default model and model resolution for the upscaler. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModel, SRFlowModel } from '../models/api.js';

/**
 * `models/srflow-4x.safetensors` in the package root (this file is two levels down both as
 * src/upscale/model.ts and as dist/upscale/model.js). The CLI's SRFLOW_DEFAULT_MODEL (src/env.ts)
 * replaces it through resolveModel's `defaultModel`.
 */
export function defaultModelPath(): string {
  return fileURLToPath(new URL('../../models/srflow-4x.safetensors', import.meta.url));
}

export class DefaultModelMissingError extends Error {
  override name = 'DefaultModelMissingError';
}

/**
 * A loaded model, a path to load, or (undefined) the default model (`defaultModel`, else the
 * packaged one). `hint` says how to pass a model in the message when the default one is not installed.
 */
export async function resolveModel(
  model: SRFlowModel | string | undefined,
  opts: { config?: string | Record<string, unknown>; hint?: string; defaultModel?: string } = {},
): Promise<SRFlowModel> {
  if (model instanceof SRFlowModel) return model;
  if (model === undefined) {
    const path = opts.defaultModel ?? defaultModelPath();
    if (!existsSync(path)) {
      throw new DefaultModelMissingError(`The default model is not installed (${path} is missing): ${opts.hint ?? 'pass a model (the model option: an SRFlowModel or a model file path)'}`);
    }
    return loadModel(path, { config: opts.config });
  }
  if (typeof model !== 'string' || !model) {
    throw new Error(`Expected an SRFlowModel or a model file path for model but received ${model === null ? 'null' : typeof model}`);
  }
  return loadModel(model, { config: opts.config });
}
