/** `--model X` on the command line: a model file path, or the name of a model in the registry. */
import { existsSync } from 'node:fs';
import { ModelRegistry, registryHome } from '../registry/index.js';
import { resolveModel, ScaleMismatchError, SHIPPED_SCALES, type ShippedScale } from '../upscale/model.js';
import type { SRFlowModel } from '../models/api.js';
import { UsageError } from './errors.js';
import { defaultModelFromEnv, modelsDirFromEnv, processEnv, type Env } from '../env.js';

/** The registry of this user ($SRFLOW_HOME or the platform's cache folder). */
export function userRegistry(env: Env = processEnv()): ModelRegistry {
  return new ModelRegistry(registryHome(env));
}

/**
 * Resolve a `--model` value: an existing file is used as it is; otherwise a registered model of that
 * name (with its stored configuration when one was given on adding); otherwise the value is taken as
 * a path (so the loader reports the missing file) when it looks like one, else an error naming both.
 * `config` is the command's --config, which wins over a registered configuration.
 */
export function resolveModelArg<T extends string | undefined>(
  arg: T,
  config?: string,
  env: Env = processEnv(),
): { model: T; config?: string | Record<string, unknown> } {
  if (arg === undefined || existsSync(arg)) return { model: arg, config };
  const reg = userRegistry(env);
  const r = reg.resolve(arg);
  if (r) return { model: r.path as T, config: config ?? r.config };
  if (/[\\/]/.test(arg) || /\.(pth|pt|safetensors)$/i.test(arg)) return { model: arg, config };
  let names: string[] = [];
  try {
    names = reg.list().map((e) => e.name);
  } catch {
    // an unreadable registry: report the missing model only
  }
  throw new Error(
    `No model file and no registered model named ${JSON.stringify(arg)}${names.length ? ` (registered: ${names.join(', ')})` : ''}; see srflow models list`,
  );
}

/**
 * Arguments for `resolveModel` from a command's --model and --config (registered names resolved;
 * without --model, SRFLOW_DEFAULT_MODEL or the packaged model).
 */
export function modelArgs(
  model: string | undefined,
  config: string | undefined,
  hint: string,
  env: Env = processEnv(),
): [string | undefined, { config?: string | Record<string, unknown>; hint: string; defaultModel?: string }] {
  const r = resolveModelArg(model, config);
  return [r.model, { config: r.config, hint, defaultModel: defaultModelFromEnv(env) }];
}

/** How to pass a model, in the message when the default one is not installed. */
export const MODEL_HINT = 'pass --model PATH or NAME (a .safetensors srflow model, a published .pth checkpoint, or a model registered with srflow models add)';

/** `--model` on the commands that take a default model. */
export const MODEL_HELP =
  'model file or registered name (default: the shipped model of --scale, models/srflow-4x.safetensors in the package, or $SRFLOW_DEFAULT_MODEL)';

/** `--scale` on the commands that take a default model (the help text names both shipped files). */
export const SCALE_HELP =
  "without --model, the shipped model of this scale: 4 (models/srflow-4x.safetensors) or 8 (models/srflow-8x.safetensors); with --model, the scale it must have (default: 4, or the model's)";

/** --scale's value: 4 or 8 (a usage error otherwise), or undefined when not given. */
export function parseScale(v: string | undefined): ShippedScale | undefined {
  if (v === undefined) return undefined;
  const s = Number(v);
  if (v.trim() === '' || !SHIPPED_SCALES.includes(s as ShippedScale)) throw new UsageError(`Expected 4 or 8 for --scale but received ${JSON.stringify(v)}`);
  return s as ShippedScale;
}

/**
 * A command's model from --model, --config and --scale (`parseScale`'d): `resolveModel` with the
 * shipped models from $SRFLOW_MODELS_DIR when set. A --model whose scale is not --scale is a usage
 * error naming both.
 */
export async function loadModelArg(o: { model?: string; config?: string }, scale: ShippedScale | undefined, env: Env = processEnv()): Promise<SRFlowModel> {
  const [model, opts] = modelArgs(o.model, o.config, MODEL_HINT, env);
  try {
    return await resolveModel(model, { ...opts, scale, modelsDir: modelsDirFromEnv(env) });
  } catch (e) {
    if (e instanceof ScaleMismatchError) {
      throw new UsageError(
        `--scale ${e.wanted} does not match the model ${e.model}, which upscales ${e.modelScale}×: leave --scale out, or pass a model of scale ${e.wanted}`,
      );
    }
    throw e;
  }
}
