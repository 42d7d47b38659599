/**
 * The validation vocabulary (in the style of sharp's lib/is.js): small predicates and the one error
 * wording, "Expected <what> for <name> but received <value>". It sits below every layer (it
 * imports nothing), so the kernels, the library and the CLI all check and word their errors alike.
 */

/** A value that is set (not undefined, not null). */
export const defined = <T>(v: T | undefined | null): v is T => v !== undefined && v !== null;
export const bool = (v: unknown): v is boolean => typeof v === 'boolean';
export const string = (v: unknown): v is string => typeof v === 'string';
/** A finite number. */
export const number = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const integer = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
/** An integer ≥ min. */
export const intAtLeast = (v: unknown, min: number): v is number => integer(v) && v >= min;
export const positiveInt = (v: unknown): v is number => intAtLeast(v, 1);
export const nonNegativeInt = (v: unknown): v is number => intAtLeast(v, 0);
/** A finite number in [lo, hi]. */
export const inRange = (v: unknown, lo: number, hi: number): v is number => number(v) && v >= lo && v <= hi;
export const inArray = <T>(v: unknown, list: readonly T[]): v is T => list.includes(v as T);
export const float32Array = (v: unknown): v is Float32Array => v instanceof Float32Array;
/** A parsed YAML/JSON mapping, an options bag. */
export type PlainObject = Record<string, unknown>;
/** An object that is not an array. */
export const plainObject = (v: unknown): v is PlainObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** How a received value is shown in an error: strings quoted, arrays and objects as JSON, others as they print. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined || typeof v !== 'object') return String(v);
  if (ArrayBuffer.isView(v)) return `${v.constructor.name} of length ${(v as unknown as { length: number }).length}`;
  try {
    return JSON.stringify(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** The one wording of a bad parameter: "Expected <expected> for <name> but received <actual>". */
export function invalidParameterError(name: string, expected: string, actual: unknown): Error {
  return new Error(`Expected ${expected} for ${name} but received ${show(actual)}`);
}

/** Throws invalidParameterError unless `ok`. */
export function check(ok: boolean, name: string, expected: string, actual: unknown): void {
  if (!ok) throw invalidParameterError(name, expected, actual);
}

/** `v`, or `def` when it is undefined or null; any other value must pass `ok`. */
export function orDefault<T>(v: unknown, def: T, name: string, ok: (x: unknown) => boolean, expected: string): T {
  if (v === undefined || v === null) return def;
  check(ok(v), name, expected, v);
  return v as T;
}

/** Checks an integer ≥ 1 (`name`: how the caller knows it). */
export function checkPositiveInt(v: unknown, name: string): asserts v is number {
  check(positiveInt(v), name, 'a positive integer', v);
}

/** A planar float image: channels × height × width values, channel-major. */
export interface PlanarLike {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Checks a planar float32 image (with `channels` channels when given). */
export function checkPlanar(img: PlanarLike, name: string, channels?: number): void {
  if (!img || !float32Array(img.data)) throw new Error(`Expected a Planar image with Float32Array data for ${name} but received ${typeof img}`);
  if (channels !== undefined) check(img.channels === channels, `${name}.channels`, `${channels}`, img.channels);
  else checkPositiveInt(img.channels, `${name}.channels`);
  checkPositiveInt(img.height, `${name}.height`);
  checkPositiveInt(img.width, `${name}.width`);
  const n = img.channels * img.height * img.width;
  if (img.data.length !== n)
    throw new Error(`Expected ${n} values (${img.channels}×${img.height}×${img.width}) for ${name}.data but received ${img.data.length}`);
}

/** The one wording of a file that cannot be read: "Cannot read <what> <path>: file not found | it is a folder | <the system's reason>". */
export function fileReadError(what: string, path: string, e: unknown): Error {
  const code = (e as { code?: string } | null)?.code;
  const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'file not found' : code === 'EISDIR' ? 'it is a folder, not a file' : (e as Error).message;
  return new Error(`Cannot read ${what} ${path}: ${why}`);
}
