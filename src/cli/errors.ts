import { invalidParameterError } from '../is.js';

/** CLI error handling: one clear line, exit 2 for usage errors and 1 for failures; stacks with --verbose. */
import { UsageError } from '../errors.js';
export { UsageError };

/** Parse helpers for option values: each names the option in "Expected X for NAME but received V". */
export function parseNumber(v: string, name: string, check: (x: number) => boolean = Number.isFinite, what = 'a number'): number {
  const x = Number(v);
  if (v.trim() === '' || !check(x)) throw new UsageError(invalidParameterError(name, what, v).message);
  return x;
}
export const parseInteger = (v: string, name: string, min = 0) => parseNumber(v, name, (x) => Number.isInteger(x) && x >= min, `an integer ≥ ${min}`);
export const parseNonNegative = (v: string, name: string) => parseNumber(v, name, (x) => Number.isFinite(x) && x >= 0, 'a finite number ≥ 0');
export function parseList(v: string, name: string): number[] {
  return v.split(',').map((s) => parseNonNegative(s, name));
}
