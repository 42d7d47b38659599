/**
 * `srflow restore degraded.png -o clean.png [--strength s] [--json]`: remove noise and JPEG
 * artifacts at the image's own resolution with the SRFlow model (src/edit/restore.ts).
 */
import type { Command } from 'commander';
import { loadModelArg, parseScale } from './model-arg.js';
import { UsageError, parseNumber, parseInteger } from './errors.js';
import { createProgressBar, oneLineErrors, progressWanted, toJson } from './progress.js';
import { parseFormat } from './upscale.js';
import { encodeImage, loadImage, writeFileAtomicAsync } from '../io/image.js';
import { DEFAULT_RESTORE_TILE, RESTORE_SHIFTS, restoreImage } from '../edit/restore.js';
import { readJpegTables, type JpegTables } from '../edit/jpeg.js';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { checkOutputPath, refuseOverwrite } from './edit-common.js';
import { modelOption, scaleOption, configOption, outputImageOption } from './options.js';

interface RestoreCliOptions {
  output: string;
  model?: string;
  config?: string;
  scale?: string;
  strength: string;
  passes: string;
  tile: string;
  format?: string;
  quality: string;
  json?: boolean;
  quiet?: boolean;
}

export function registerRestore(program: Command): void {
  const cmd = program
    .command('restore')
    .description("remove noise and JPEG artifacts at the image's own resolution by editing its latents")
    .argument('<input>', 'degraded image (PNG, JPEG, WebP, TIFF, …)')
    .addOption(outputImageOption())
    .option('--strength <s>', '0 (leave the image alone) … 1 (full restoration)', '1')
    .option('--passes <n>', `shifted passes averaged, 1 … ${RESTORE_SHIFTS.length} (fewer is faster)`, String(RESTORE_SHIFTS.length))
    .option('--tile <n>', 'tile side in pixels for large images', String(DEFAULT_RESTORE_TILE))
    .addOption(modelOption())
    .addOption(scaleOption())
    .addOption(configOption())
    .option('--format <fmt>', 'png, jpg or webp (default: from the -o extension)')
    .option('--quality <q>', 'JPEG/WebP quality, 1..100', '95')
    .option('--json', 'print one JSON object: what was done, latent statistics, timings')
    .option('--quiet', 'no progress bar and no messages')
    .addHelpText(
      'after',
      `
How: the image is downscaled by the model's scale (bicubic), encoded by the flow given that LR,
its latents are pulled back to what natural detail looks like (channels with more energy than τ
are scaled down to τ; the finest level is damped most), decoded against the same LR, and this is
averaged over shifted passes; a fraction of the input is blended back; the chroma is smoothed
along the luma's edges, and for a JPEG input the luma is kept within the file's quantisation
steps. See docs/EDITING.md for the method and measured gains (JPEG quality 10, Gaussian noise).
Alpha and grayscale are kept.

Exit codes: 0 success, 1 failure (unreadable input or model), 2 usage error.`,
    );
  oneLineErrors(cmd);
  cmd.action(async (input: string, o: RestoreCliOptions) => {
    const strength = parseNumber(o.strength, '--strength', (x) => Number.isFinite(x) && x >= 0 && x <= 1, 'a number from 0 to 1');
    const passes = parseInteger(o.passes, '--passes', 1);
    if (passes > RESTORE_SHIFTS.length)
      throw new UsageError(`Expected an integer from 1 to ${RESTORE_SHIFTS.length} for --passes but received ${JSON.stringify(o.passes)}`);
    const tile = parseInteger(o.tile, '--tile', 32);
    const quality = parseNumber(o.quality, '--quality', (x) => Number.isInteger(x) && x >= 1 && x <= 100, 'an integer from 1 to 100');
    const format = checkOutputPath(o.output, o.format !== undefined ? parseFormat(o.format) : undefined);
    refuseOverwrite(o.output, [input]);
    const t0 = performance.now();
    const img = await loadImage(input);
    // a JPEG file: its luma quantisation table constrains the result (unless EXIF rotated it)
    let jpeg: JpegTables | null = null;
    if (img.format === 'jpeg') {
      const t = readJpegTables(await readFile(input));
      const orientation = (await sharp(input).metadata()).orientation ?? 1;
      if (t && orientation === 1 && t.width === img.width && t.height === img.height) jpeg = t;
    }
    const model = await loadModelArg(o, parseScale(o.scale));
    const bar = createProgressBar(progressWanted(o.quiet || o.json));
    bar.start('restore', 1);
    let r;
    try {
      r = await restoreImage(model, img.rgb, {
        strength,
        passes,
        tile,
        jpeg: strength > 0 ? jpeg : null,
        onProgress: (p) => bar.update({ done: p.done, total: p.total, stage: 'restore' }),
      });
    } finally {
      bar.stop();
    }
    const bytes = await encodeImage(
      { rgb: r.image, alpha: img.alpha, grayscale: img.grayscale, bitDepth: format === 'png' ? img.bitDepth : 8 },
      { format, quality },
    );
    await writeFileAtomicAsync(o.output, bytes);
    const info = {
      input,
      output: o.output,
      width: img.width,
      height: img.height,
      scale: model.scale,
      method:
        'encode given the bicubic LR, shrink latent channels to rms tau, damp levels, decode, average shifted passes, blend input, luma-guided chroma filter, JPEG quantisation constraint (JPEG input)',
      ...r.report,
      tau: Number.isFinite(r.report.tau) ? r.report.tau : null,
      seconds: (performance.now() - t0) / 1000,
    };
    if (o.json) process.stdout.write(`${toJson(info)}\n`);
    else if (!o.quiet) process.stdout.write(`${o.output} (${img.width}×${img.height}, strength ${strength})\n`);
  });
}
