/** Options that several commands share, each worded once (commander Options, made afresh per command). */
import { Option } from 'commander';
import { MODEL_HELP, SCALE_HELP } from './model-arg.js';

/** --model: a file or a registered name; without it the shipped model of --scale (SRFLOW_DEFAULT_MODEL for 4x). --scale: 4 or 8. */
export const modelOption = () => new Option('--model <path>', MODEL_HELP);
export const scaleOption = () => new Option('--scale <n>', SCALE_HELP);
/** --config: for a checkpoint whose layout is not recognised. */
export const configOption = () =>
  new Option('--config <path>', 'configuration (YAML/JSON), for a .pth checkpoint whose layout is not recognised (wins over the recognised one)');
/** --threads: the kernels' threads. */
export const threadsOption = (what = 'kernel threads') => new Option('--threads <n>', `${what} (default: all cores)`);
/** --json: one JSON object on stdout. */
export const jsonOption = (what = 'print one JSON object') => new Option('--json', what);
/** --samples: samples per temperature. */
export const samplesOption = (what: string, def = '1') => new Option('--samples <n>', what).default(def);
/** --seed: the first random seed. */
export const seedOption = (what = 'random seed (an integer ≥ 0)') => new Option('--seed <n>', what).default('0');
/** -o, --output: the (required) output image of an editing command. */
export const outputImageOption = () => new Option('-o, --output <file>', 'output image (.png, .jpg, .webp)').makeOptionMandatory();
