/** Checks shared by the editing commands (restore, transfer): output path and format, no overwriting an input. */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { UsageError } from './errors.js';

/** The output format (from --format or the extension) after checking the folder exists. */
export function checkOutputPath(path: string, given: 'png' | 'jpg' | 'webp' | undefined): 'png' | 'jpg' | 'webp' {
  const ext = extname(path).slice(1).toLowerCase();
  const fromExt = ext === 'png' || ext === 'webp' ? ext : ext === 'jpg' || ext === 'jpeg' ? 'jpg' : null;
  const format = given ?? fromExt;
  if (!format) throw new UsageError(`Expected a file name ending in .png, .jpg, .jpeg or .webp (or --format) for -o but received ${JSON.stringify(path)}`);
  if (given && fromExt && given !== fromExt) throw new UsageError(`-o ${path} does not match --format ${given}`);
  const dir = dirname(path);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(`Cannot write ${path}: the folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`Cannot write ${path}: ${dir} is not a folder`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new UsageError(`Cannot write ${path}: a folder is in the way`);
  return format;
}

function same(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return existsSync(a) && existsSync(b) && realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Refuse to write the output over one of the inputs. */
export function refuseOverwrite(output: string, inputs: string[]): void {
  for (const i of inputs) if (same(output, i)) throw new UsageError(`Refusing to overwrite the input ${i} with the output; choose another -o`);
}
