/** `--model X` on the command line: a model file path, or the name of a model in the registry. */
import { existsSync } from 'node:fs';
import { ModelRegistry, registryHome } from '../registry/index.js';
import { defaultModelFromEnv, processEnv, type Env } from '../env.js';

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
export function resolveModelArg<T extends string | undefined>(arg: T, config?: string, env: Env = processEnv()): { model: T; config?: string | Record<string, unknown> } {
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
  throw new Error(`No model file and no registered model named ${JSON.stringify(arg)}${names.length ? ` (registered: ${names.join(', ')})` : ''}; see srflow models list`);
}

/**
 * Arguments for `resolveModel` from a command's --model and --config (registered names resolved;
 * without --model, SRFLOW_DEFAULT_MODEL or the packaged model).
 */
export function modelArgs(model: string | undefined, config: string | undefined, hint: string): [string | undefined, { config?: string | Record<string, unknown>; hint: string; defaultModel?: string }] {
  const r = resolveModelArg(model, config);
  return [r.model, { config: r.config, hint, defaultModel: defaultModelFromEnv() }];
}
