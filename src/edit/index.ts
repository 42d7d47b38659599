/** Editing in the latent space: latent arithmetic, restoration, content transfer (docs/EDITING.md). */
export { scaleLatents, mixLatents, maskLatents, mixLatentsByLevel, normaliseLatents, latentRms } from './latents.js';
export type { LatentWeight, NormaliseOptions } from './latents.js';
export { restoreImage, restoreSetting, RESTORE_FULL, RESTORE_SHIFTS, DEFAULT_RESTORE_TILE } from './restore.js';
export type { RestoreOptions, RestoreReport } from './restore.js';
export { transferContent, maskedBackProjection, maskCoverage } from './transfer.js';
export type { TransferOptions, TransferResult } from './transfer.js';
export { filterChroma, guidedFilter } from './chroma.js';
export { readJpegTables, projectJpegLuma } from './jpeg.js';
export type { JpegTables } from './jpeg.js';
