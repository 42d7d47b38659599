// Splits a training checkpoint into parameters + state (DST) and Adam's moments
// (DST with .optimizer.safetensors), each small enough to commit; `srflow train --resume DST` reads both.
//   node --import tsx scripts/split-checkpoint.ts runs/srflow-4x-flow/latest.safetensors models/training/srflow-4x-flow.safetensors
import { splitCheckpoint } from '../src/train/checkpoint.js';

const [src, dst] = process.argv.slice(2);
if (!src || !dst) {
  console.error('usage: node --import tsx scripts/split-checkpoint.ts SRC.safetensors DST.safetensors');
  process.exit(2);
}
try {
  const r = splitCheckpoint(src, dst);
  console.log(`wrote ${r.model} and ${r.optimizer}`);
} catch (e) {
  console.error(`split-checkpoint: ${(e as Error).message}`);
  process.exit(1);
}
