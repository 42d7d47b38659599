/**
 * `srflow transfer --target a.png --source b.png --mask m.png -o out.png`: transplant the source's
 * high-frequency content into the masked region of the target in the latent space (src/edit/transfer.ts).
 *
 * Every input is read and checked (sizes, an empty mask) before the model runs; the output is
 * written atomically, only on success.
 */
import type { Command } from 'commander';
import { loadModelArg, parseScale } from './model-arg.js';
import { UsageError } from './errors.js';
import { oneLineErrors, toJson } from './progress.js';
import { parseFormat } from './upscale.js';
import { encodeImage, loadImage, writeFileAtomicAsync } from '../io/image.js';
import { loadMap } from '../upscale/mapfile.js';
import { maskCoverage, transferContent } from '../edit/transfer.js';
import { checkOutputPath, refuseOverwrite } from './edit-common.js';
import { modelOption, scaleOption, configOption, jsonOption, outputImageOption } from './options.js';

interface TransferCliOptions {
  target: string;
  source: string;
  mask: string;
  output: string;
  model?: string;
  config?: string;
  scale?: string;
  format?: string;
  quality: string;
  consistency: string;
  json?: boolean;
  quiet?: boolean;
}

export function registerTransfer(program: Command): void {
  const cmd = program
    .command('transfer')
    .description("transplant a source image's detail into a masked region of a target, in the latent space, keeping the target's LR")
    .requiredOption('--target <image>', 'the image to edit')
    .requiredOption('--source <image>', 'the image whose detail is transplanted (same size as the target)')
    .requiredOption('--mask <image>', "grayscale mask, same size: white = take the source's detail, black = keep the target, gray = blend")
    .addOption(outputImageOption())
    .addOption(modelOption())
    .addOption(scaleOption())
    .addOption(configOption())
    .option('--consistency <mode>', "exact: project the result so that its bicubic downscale equals the target's (default), or none", 'exact')
    .option('--format <fmt>', 'png, jpg or webp (default: from the -o extension)')
    .option('--quality <q>', 'JPEG/WebP quality, 1..100', '95')
    .addOption(jsonOption())
    .option('--quiet', 'print nothing')
    .addHelpText(
      'after',
      `
Both images are encoded with the flow, each given its own bicubic LR; inside the mask the target's
latents are replaced by the source's (the mask is averaged over each latent's footprint, so gray
and soft edges blend), and the result is decoded against the target's LR: the target's structure
and colours with the source's texture. Outside the mask the target comes back (up to a few pixels
where the flow's receptive field crosses the mask's edge). With --consistency exact (default) the
result is then projected so that its bicubic downscale equals the target's (LR-PSNR ≥ 60 dB when
the size is a multiple of the scale). Sizes of target, source and mask must match.

Exit codes: 0 success, 1 failure (unreadable input, size mismatch, empty mask), 2 usage error.`,
    );
  oneLineErrors(cmd);
  cmd.action(async (o: TransferCliOptions) => {
    const format = checkOutputPath(o.output, o.format !== undefined ? parseFormat(o.format) : undefined);
    const quality = Number(o.quality);
    if (!(Number.isInteger(quality) && quality >= 1 && quality <= 100))
      throw new UsageError(`Expected an integer from 1 to 100 for --quality but received ${JSON.stringify(o.quality)}`);
    if (o.consistency !== 'exact' && o.consistency !== 'none')
      throw new UsageError(`Expected exact or none for --consistency but received ${JSON.stringify(o.consistency)}`);
    refuseOverwrite(o.output, [o.target, o.source, o.mask]);
    const t0 = performance.now();
    const target = await loadImage(o.target);
    const source = await loadImage(o.source);
    const mask = await loadMap(o.mask, 'mask');
    if (source.width !== target.width || source.height !== target.height) {
      throw new Error(`Expected the source ${o.source} to be the target's size (${target.width}×${target.height}) but it is ${source.width}×${source.height}`);
    }
    if (mask.width !== target.width || mask.height !== target.height) {
      throw new Error(`Expected the mask ${o.mask} to be the target's size (${target.width}×${target.height}) but it is ${mask.width}×${mask.height}`);
    }
    maskCoverage(mask, `mask ${o.mask}`);
    const model = await loadModelArg(o, parseScale(o.scale));
    const r = transferContent(model, target.rgb, source.rgb, mask, { consistency: o.consistency === 'exact' });
    const bytes = await encodeImage(
      { rgb: r.image, alpha: target.alpha, grayscale: target.grayscale, bitDepth: format === 'png' ? target.bitDepth : 8 },
      { format, quality },
    );
    await writeFileAtomicAsync(o.output, bytes);
    const info = {
      output: o.output,
      width: r.image.width,
      height: r.image.height,
      maskFraction: r.maskFraction,
      lrPsnrBefore: Number.isFinite(r.lrPsnrBefore) ? r.lrPsnrBefore : null,
      lrPsnr: Number.isFinite(r.lrPsnr) ? r.lrPsnr : null,
      consistencyIterations: r.iterations,
      seconds: (performance.now() - t0) / 1000,
    };
    if (o.json) process.stdout.write(`${toJson(info)}\n`);
    else if (!o.quiet) process.stdout.write(`${o.output} (${r.image.width}×${r.image.height}, ${(100 * r.maskFraction).toFixed(1)}% masked)\n`);
  });
}
