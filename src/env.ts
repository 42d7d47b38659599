/**
 * The process environment: the one file under src/ that reads (or writes) `process.env`.
 *
 * The library takes options and reads no environment variable; the command line turns the
 * environment into them here and hands them down (src/cli/index.ts → configureEngine):
 *
 * | variable | becomes |
 * |---|---|
 * | SRFLOW_BACKEND=auto\|native\|wasm\|reference\|webgpu | EngineOptions.backend (the CLI's --backend wins) |
 * | SRFLOW_THREADS=n | EngineOptions.threads (native pool, wasm workers; --threads wins) |
 * | SRFLOW_SIMD=avx512\|avx2\|scalar | EngineOptions.simd |
 * | SRFLOW_WINOGRAD=0\|always | EngineOptions.winograd (false, 'always') |
 * | SRFLOW_ELEMENTWISE=js | EngineOptions.elementwise 'js' |
 * | SRFLOW_COND_GROUP=n | EngineOptions.condGroup |
 * | SRFLOW_COND_PHASES=0\|1 | EngineOptions.condPhases |
 * | SRFLOW_COND_KEEP_WEIGHTS=1 | EngineOptions.keepCondWeights |
 * | SRFLOW_DEFAULT_MODEL=path | the commands' default 4x model file |
 * | SRFLOW_MODELS_DIR=dir | the folder of the shipped srflow-4x/8x model files |
 * | SRFLOW_HOME, XDG_CACHE_HOME, LOCALAPPDATA | the model registry's folder (registryHome) |
 *
 * The native addon reads SRFLOW_THREADS, SRFLOW_SIMD and SRFLOW_WINOGRAD once more itself at load
 * (native/); the options set the same settings explicitly. One more variable belongs to the
 * platform, not to srflow: the Vulkan loader's VK_ICD_FILENAMES, which the WebGPU backend sets to
 * SwiftShader when Dawn finds no adapter (vulkanIcd / useVulkanIcd, src/kernels/webgpu.ts).
 *
 * Nothing here runs at import time, and without `process` (a browser) every variable is unset.
 */
import { SIMD_LEVELS, parseBackend, type EngineOptions, type SimdLevel } from './engine-options.js';
import * as is from './is.js';

export type Env = Record<string, string | undefined>;

/** The process's environment (empty without `process`). */
export function processEnv(): Env {
  return typeof process !== 'undefined' && process.env ? process.env : {};
}

const set = (v: string | undefined): v is string => v !== undefined && v !== '';

function flag(env: Env, name: string): boolean | undefined {
  const v = env[name];
  if (!set(v)) return undefined;
  is.check(v === '0' || v === '1', name, '0 or 1', v);
  return v === '1';
}

/** EngineOptions from the SRFLOW_* variables (unset ones are left out; bad ones throw, naming the variable). */
export function engineOptionsFromEnv(env: Env = processEnv()): EngineOptions {
  const o: EngineOptions = {};
  if (set(env.SRFLOW_BACKEND)) o.backend = parseBackend(env.SRFLOW_BACKEND, 'SRFLOW_BACKEND');
  // as the native addon reads them: a value it would ignore is ignored
  const threads = Number(env.SRFLOW_THREADS);
  if (set(env.SRFLOW_THREADS) && is.positiveInt(threads)) o.threads = threads;
  if (is.inArray(env.SRFLOW_SIMD, SIMD_LEVELS)) o.simd = env.SRFLOW_SIMD as SimdLevel;
  if (env.SRFLOW_WINOGRAD === '0') o.winograd = false;
  else if (env.SRFLOW_WINOGRAD === 'always') o.winograd = 'always';
  if (env.SRFLOW_ELEMENTWISE === 'js') o.elementwise = 'js';
  if (set(env.SRFLOW_COND_GROUP)) {
    const n = Number(env.SRFLOW_COND_GROUP);
    is.check(is.nonNegativeInt(n), 'SRFLOW_COND_GROUP', 'a non-negative integer', env.SRFLOW_COND_GROUP);
    o.condGroup = n;
  }
  const phases = flag(env, 'SRFLOW_COND_PHASES');
  if (phases !== undefined) o.condPhases = phases;
  if (env.SRFLOW_COND_KEEP_WEIGHTS === '1') o.keepCondWeights = true;
  return o;
}

/** SRFLOW_DEFAULT_MODEL: the model file the commands use when none is given (undefined: the packaged one). */
export function defaultModelFromEnv(env: Env = processEnv()): string | undefined {
  return set(env.SRFLOW_DEFAULT_MODEL) ? env.SRFLOW_DEFAULT_MODEL : undefined;
}

/** SRFLOW_MODELS_DIR: the folder holding the shipped srflow-4x/8x model files (undefined: the package's models/). */
export function modelsDirFromEnv(env: Env = processEnv()): string | undefined {
  return set(env.SRFLOW_MODELS_DIR) ? env.SRFLOW_MODELS_DIR : undefined;
}

/** The Vulkan loader's driver list (VK_ICD_FILENAMES), if set. */
export function vulkanIcd(): string | undefined {
  const v = processEnv().VK_ICD_FILENAMES;
  return set(v) ? v : undefined;
}

/** Point the Vulkan loader at `icd` (read when Dawn makes its next instance). */
export function useVulkanIcd(icd: string): void {
  if (typeof process !== 'undefined') process.env.VK_ICD_FILENAMES = icd;
}
