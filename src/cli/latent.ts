/**
 * `srflow encode` (HR image → latents file) and `srflow decode` (LR image + latents → SR image).
 *
 * Latents file: safetensors with `z.0 … z.{n-1}` in the published order (each split level's ε from
 * the first level upwards, then z_L), shapes [1, C, H, W], and metadata `format: srflow-latents`,
 * `scale`, `lr_width`, `lr_height`, `hr_width`, `hr_height`, `nll` (bits per HR pixel, the
 * published objective) and `nll_bits_per_dim`.
 */
import type { Command } from 'commander';
import { loadModelArg, parseScale } from './model-arg.js';
import { statSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import { UsageError, parseNonNegative } from './errors.js';
import { oneLineErrors, toJson } from './progress.js';
import { parseFormat } from './upscale.js';
import { encodeImage, loadImage, writeFileAtomicAsync, type Planar } from '../io/image.js';
import { imresize, upscaleBicubic } from '../data/bicubic.js';
import { readSafetensors, writeSafetensors, type RawTensor } from '../io/safetensors.js';
import { bitsPerDim } from '../metrics/index.js';
import { sizeMultiple } from '../upscale/engine.js';
import { clip01, crop } from '../upscale/pad.js';
import { Tensor } from '../tensor/tensor.js';
import { addBackendOption, applyBackend, withWebGpu } from './backend.js';
import { fileReadError } from '../is.js';
import { modelOption, scaleOption, configOption, jsonOption, outputImageOption } from './options.js';

export const LATENTS_FORMAT = 'srflow-latents';

function checkFolder(path: string, what: string): void {
  const dir = dirname(path);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(`Cannot write ${what} ${path}: the folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`Cannot write ${what} ${path}: ${dir} is not a folder`);
  try {
    if (statSync(path).isDirectory()) throw new UsageError(`Cannot write ${what} ${path}: a folder is in the way`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
}

export function registerLatent(program: Command): void {
  const enc = program
    .command('encode')
    .description('encode an HR image (given its LR) into the latents of the flow, with its NLL')
    .addOption(modelOption())
    .addOption(scaleOption())
    .addOption(configOption())
    .requiredOption('--hr <image>', 'HR image')
    .option('--lr <image>', 'LR image, exactly HR / scale (default: MATLAB bicubic of the HR)')
    .requiredOption('-o, --output <file>', 'latents file (.safetensors)')
    .addOption(jsonOption())
    .option('--quiet', 'print nothing')
    .addHelpText(
      'after',
      `
Without --lr the HR image is cropped (top-left) to a multiple of scale × the model's LR multiple
and its LR made by MATLAB bicubic (8-bit path for 8-bit images). With --lr the sizes must match
exactly. The file holds z.0 … z.{n-1} (published order) and metadata (scale, LR/HR size, NLL).`,
    );
  addBackendOption(enc);
  oneLineErrors(enc);
  enc.action(
    async (o: {
      model?: string;
      config?: string;
      scale?: string;
      hr: string;
      lr?: string;
      output: string;
      json?: boolean;
      quiet?: boolean;
      backend?: string;
    }) => {
      const backend = applyBackend(o.backend);
      checkFolder(o.output, 'latents');
      const model = await loadModelArg(o, parseScale(o.scale));
      const s = model.scale;
      const m = sizeMultiple(model);
      const hrImg = await loadImage(o.hr);
      let hr: Planar;
      let lr: Planar;
      if (o.lr !== undefined) {
        const lrImg = await loadImage(o.lr);
        lr = lrImg.rgb;
        hr = hrImg.rgb;
        if (hr.width !== lr.width * s || hr.height !== lr.height * s) {
          throw new Error(`Expected the HR image to be ${s}× the LR (${lr.width * s}×${lr.height * s}) but ${o.hr} is ${hr.width}×${hr.height}`);
        }
        if (lr.width % m || lr.height % m) {
          throw new Error(`Expected LR width and height divisible by ${m} for this model but ${o.lr} is ${lr.width}×${lr.height}`);
        }
      } else {
        const q = s * m;
        const H = Math.floor(hrImg.height / q) * q;
        const W = Math.floor(hrImg.width / q) * q;
        if (H === 0 || W === 0)
          throw new Error(`Cannot encode ${o.hr}: ${hrImg.width}×${hrImg.height} is smaller than ${q}×${q} (scale × the model's LR multiple)`);
        hr = crop(hrImg.rgb, 0, 0, H, W);
        lr = imresize(hr, 1 / s, { uint8: hrImg.bitDepth === 8 });
      }
      const hrT = new Tensor(hr.data, [1, 3, hr.height, hr.width]);
      const lrT = new Tensor(lr.data, [1, 3, lr.height, lr.width]);
      const r =
        backend === 'webgpu'
          ? await withWebGpu(model.net, async (g) => {
              const e = await g.encodeLr(hrT, lrT);
              return { latents: e.latents, nll: e.nll.data as Float32Array };
            })
          : model.encode(hrT, lrT);
      const tensors = new Map<string, RawTensor>();
      r.latents.forEach((z, i) => tensors.set(`z.${i}`, { shape: z.shape, data: z.data as Float32Array }));
      const nll = r.nll[0];
      const meta = {
        format: LATENTS_FORMAT,
        format_version: '1',
        scale: String(s),
        lr_width: String(lr.width),
        lr_height: String(lr.height),
        hr_width: String(hr.width),
        hr_height: String(hr.height),
        latents: String(r.latents.length),
        nll: String(nll),
        nll_bits_per_dim: String(bitsPerDim(nll)),
      };
      try {
        writeSafetensors(o.output, tensors, meta);
      } catch (e) {
        throw new Error(`Cannot write latents ${o.output}: ${(e as Error).message}`);
      }
      const info = {
        output: o.output,
        scale: s,
        hr: { width: hr.width, height: hr.height },
        lr: { width: lr.width, height: lr.height },
        shapes: r.latents.map((z) => z.shape),
        nll,
        nllBitsPerDim: bitsPerDim(nll),
      };
      if (o.json) process.stdout.write(`${toJson(info)}\n`);
      else if (!o.quiet) {
        process.stdout.write(
          `${o.output}: ${r.latents.length} latents for a ${hr.width}×${hr.height} HR image (LR ${lr.width}×${lr.height}), NLL ${bitsPerDim(nll).toFixed(4)} bits/dim\n`,
        );
      }
    },
  );

  const dec = program
    .command('decode')
    .description('decode latents (from encode) against an LR image into an SR image')
    .addOption(modelOption())
    .addOption(scaleOption())
    .addOption(configOption())
    .requiredOption('--lr <image>', 'LR image (the size the latents were made for)')
    .requiredOption('--latents <file>', 'latents file from srflow encode')
    .addOption(outputImageOption())
    .option('--temperature <t>', 'multiply the loaded latents by t (1 = as encoded, 0 = the mode)', '1')
    .option('--format <fmt>', 'png, jpg or webp (default: from the -o extension)')
    .addOption(jsonOption())
    .option('--quiet', 'print nothing');
  addBackendOption(dec);
  oneLineErrors(dec);
  dec.action(
    async (o: {
      model?: string;
      config?: string;
      scale?: string;
      lr: string;
      latents: string;
      output: string;
      temperature: string;
      format?: string;
      json?: boolean;
      quiet?: boolean;
      backend?: string;
    }) => {
      const backend = applyBackend(o.backend);
      const t = parseNonNegative(o.temperature, '--temperature');
      const given = o.format !== undefined ? parseFormat(o.format) : undefined;
      const ext = extname(o.output).slice(1).toLowerCase();
      const format = given ?? (ext === 'png' || ext === 'webp' ? ext : ext === 'jpg' || ext === 'jpeg' ? 'jpg' : null);
      if (!format)
        throw new UsageError(`Expected a file name ending in .png, .jpg, .jpeg or .webp (or --format) for -o but received ${JSON.stringify(o.output)}`);
      checkFolder(o.output, 'image');
      const model = await loadModelArg(o, parseScale(o.scale));
      let file;
      try {
        file = readSafetensors(o.latents);
      } catch (e) {
        throw fileReadError('latents', o.latents, e);
      }
      if (file.metadata.format !== undefined && file.metadata.format !== LATENTS_FORMAT) {
        throw new Error(`Cannot read latents ${o.latents}: its format is '${file.metadata.format}', not ${LATENTS_FORMAT} (a model file?)`);
      }
      const lrImg = await loadImage(o.lr);
      const lr = lrImg.rgb;
      const m = sizeMultiple(model);
      const metaScale = file.metadata.scale !== undefined ? Number(file.metadata.scale) : model.scale;
      if (metaScale !== model.scale) throw new Error(`The latents ${o.latents} were made by a ${metaScale}x model but this model is ${model.scale}x`);
      const mw = Number(file.metadata.lr_width);
      const mh = Number(file.metadata.lr_height);
      if (Number.isFinite(mw) && Number.isFinite(mh) && (mw !== lr.width || mh !== lr.height)) {
        throw new Error(`The latents ${o.latents} were made for a ${mw}×${mh} LR image but ${o.lr} is ${lr.width}×${lr.height}`);
      }
      if (lr.width % m || lr.height % m)
        throw new Error(`Expected LR width and height divisible by ${m} for this model but ${o.lr} is ${lr.width}×${lr.height}`);
      const shapes = model.latentShapes([1, 3, lr.height, lr.width]);
      const latents: Tensor[] = shapes.map((shape, i) => {
        const z = file.tensors.get(`z.${i}`);
        if (!z) throw new Error(`Cannot read latents ${o.latents}: z.${i} is missing (this model needs z.0 … z.${shapes.length - 1})`);
        if (z.shape.length !== 4 || z.shape.some((d, j) => d !== shape[j])) {
          throw new Error(`The latents ${o.latents} do not fit this model and LR image: z.${i} is [${z.shape}] but [${shape}] is needed`);
        }
        const data = Float32Array.from(z.data);
        if (t !== 1) for (let k = 0; k < data.length; k++) data[k] *= t;
        return new Tensor(data, shape);
      });
      if (file.tensors.has(`z.${shapes.length}`)) throw new Error(`The latents ${o.latents} hold more than the ${shapes.length} latents this model needs`);
      const lrT = new Tensor(lr.data, [1, 3, lr.height, lr.width]);
      const r = backend === 'webgpu' ? await withWebGpu(model.net, (g) => g.decodeLr(lrT, latents)) : model.decode(lrT, latents);
      const rgb = clip01({ data: r.sr.data as Float32Array, channels: 3, height: lr.height * model.scale, width: lr.width * model.scale });
      const alpha = lrImg.alpha ? clip01(upscaleBicubic(lrImg.alpha, model.scale)) : null;
      const bytes = await encodeImage({ rgb, alpha, grayscale: lrImg.grayscale, bitDepth: format === 'png' ? lrImg.bitDepth : 8 }, { format });
      await writeFileAtomicAsync(o.output, bytes);
      const info = { output: o.output, width: rgb.width, height: rgb.height, temperature: t, latents: shapes.length };
      if (o.json) process.stdout.write(`${toJson(info)}\n`);
      else if (!o.quiet) process.stdout.write(`${o.output} (${rgb.width}×${rgb.height})\n`);
    },
  );
}
