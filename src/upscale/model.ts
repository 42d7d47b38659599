/** The shipped default model and model resolution for the upscaler. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModel, SRFlowModel } from '../models/api.js';

/**
 * `models/srflow-4x.safetensors` in the package root (this file is two levels down both as
 * src/upscale/model.ts and as dist/upscale/model.js). SRFLOW_DEFAULT_MODEL overrides it.
 */
export function defaultModelPath(): string {
  const env = process.env.SRFLOW_DEFAULT_MODEL;
  if (env) return env;
  return fileURLToPath(new URL('../../models/srflow-4x.safetensors', import.meta.url));
}

export class DefaultModelMissingError extends Error {
  override name = 'DefaultModelMissingError';
}

/**
 * A loaded model, a path to load, or (undefined) the default model. `hint` says how to pass a
 * model in the message when the default one is not installed.
 */
export async function resolveModel(
  model: SRFlowModel | string | undefined,
  opts: { config?: string | Record<string, unknown>; hint?: string } = {},
): Promise<SRFlowModel> {
  if (model instanceof SRFlowModel) return model;
  if (model === undefined) {
    const path = defaultModelPath();
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
