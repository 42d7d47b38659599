/**
 * Shared definitions of the job service: job parameters (parsed from a request's query string or
 * multipart fields, every bad value a 400 naming the parameter), the job view the API returns,
 * limits, and the HTTP error type.
 */

export type JobState = 'queued' | 'active' | 'done' | 'failed' | 'cancelled';
export const JOB_STATES: JobState[] = ['queued', 'active', 'done', 'failed', 'cancelled'];

export type OutputFormat = 'png' | 'jpg' | 'webp';

/** What a job asks for; travels with the job (JSON) to whichever worker runs it. */
export interface JobParams {
  temperatures: number[];
  samples: number;
  seed: number;
  scale: number;
  /** A model name from the models folder, or null for the default model. */
  model: string | null;
  format: OutputFormat;
}

/** One output image's description (the bytes are fetched from `url`). */
export interface OutputInfo {
  url: string;
  temperature: number;
  seed: number;
  width: number;
  height: number;
}

/** What GET /v1/jobs/:id returns. */
export interface JobView {
  id: string;
  state: JobState;
  progress: number;
  outputs: OutputInfo[];
  error?: string;
}

/** Limits the server enforces (see docs/SERVING.md). */
export interface Limits {
  /** Largest request body / uploaded file, bytes (413). */
  maxUploadBytes: number;
  /** Most input pixels, width × height (413). */
  maxPixels: number;
  /** Most output images per job, temperatures × samples (400). */
  maxOutputs: number;
  /** Most jobs waiting to start (429). */
  maxQueue: number;
  /** Longest a job may run, ms (the job fails with "timed out"). */
  jobTimeoutMs: number;
  /** How long finished jobs and their outputs are kept, ms (then 404). */
  resultTtlMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxUploadBytes: 20 * 1048576,
  maxPixels: 1048576,
  maxOutputs: 8,
  maxQueue: 100,
  jobTimeoutMs: 300_000,
  resultTtlMs: 3_600_000,
};

/** An error that becomes an HTTP response `{"error": message}` with `status`. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Model names: a file stem in the models folder, never a path. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const PARAMS = ['temperature', 'samples', 'seed', 'scale', 'model', 'format'];

function one(v: unknown, name: string): string {
  if (Array.isArray(v)) throw new HttpError(400, `Expected one value for ${name} but received ${v.length}`);
  return String(v);
}

function num(v: string, name: string, ok: (x: number) => boolean, what: string): number {
  const x = Number(v);
  if (v.trim() === '' || !ok(x)) throw new HttpError(400, `Expected ${what} for ${name} but received ${JSON.stringify(v)}`);
  return x;
}

/**
 * Job parameters from a query string (or multipart fields): temperature (τ ≥ 0 or a comma list,
 * default 0.8), samples (≥ 1, default 1), seed (integer ≥ 0, default 0), scale (default: the
 * model's), model (a name), format (png, jpg or webp; default png). Unknown names are an error.
 */
export function parseJobParams(q: Record<string, unknown>, limits: Pick<Limits, 'maxOutputs'>, defaultScale = 4): JobParams {
  for (const k of Object.keys(q)) {
    if (!PARAMS.includes(k)) throw new HttpError(400, `Unknown parameter ${JSON.stringify(k)} (known: ${PARAMS.join(', ')})`);
  }
  const tRaw = q.temperature === undefined ? '0.8' : one(q.temperature, 'temperature');
  const temperatures = tRaw.split(',').map((s) => num(s, 'temperature', (x) => Number.isFinite(x) && x >= 0, 'a temperature ≥ 0 (or a comma list)'));
  const samples = q.samples === undefined ? 1 : num(one(q.samples, 'samples'), 'samples', (x) => Number.isInteger(x) && x >= 1, 'an integer ≥ 1');
  const seed = q.seed === undefined ? 0 : num(one(q.seed, 'seed'), 'seed', (x) => Number.isSafeInteger(x) && x >= 0, 'an integer ≥ 0');
  const scale = q.scale === undefined ? defaultScale : num(one(q.scale, 'scale'), 'scale', (x) => Number.isInteger(x) && x >= 1, 'an integer ≥ 1');
  let model: string | null = null;
  if (q.model !== undefined) {
    model = one(q.model, 'model');
    if (!MODEL_NAME.test(model))
      throw new HttpError(400, `Expected a model name (letters, digits, '.', '_', '-') for model but received ${JSON.stringify(model)}`);
  }
  let format: OutputFormat = 'png';
  if (q.format !== undefined) {
    const f = one(q.format, 'format').toLowerCase();
    if (f === 'png' || f === 'webp') format = f;
    else if (f === 'jpg' || f === 'jpeg') format = 'jpg';
    else throw new HttpError(400, `Expected png, jpg or webp for format but received ${JSON.stringify(q.format)}`);
  }
  const n = temperatures.length * samples;
  if (n > limits.maxOutputs) {
    throw new HttpError(
      400,
      `Too many outputs: ${temperatures.length} temperature(s) × ${samples} sample(s) = ${n}, above the limit of ${limits.maxOutputs} per job`,
    );
  }
  return { temperatures, samples, seed, scale, model, format };
}

/** Every (temperature, seed) pair of a job, temperatures outermost (as the library orders them). */
export function drawsOf(p: JobParams): { temperature: number; seed: number }[] {
  const out: { temperature: number; seed: number }[] = [];
  for (const t of p.temperatures) for (let i = 0; i < p.samples; i++) out.push({ temperature: t, seed: p.seed + i });
  return out;
}

export const CONTENT_TYPES: Record<OutputFormat, string> = { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp' };
