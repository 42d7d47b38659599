/**
 * Pixel helpers on Planar images with no dependency (the browser bundle imports them: nothing here
 * may pull in sharp or node: modules, unlike the rest of src/io/image.ts).
 */
import type { Planar } from './image.js';

/** Clip every value to [0, 1] in place (NaN → 0). */
export function clip01(img: Planar): Planar {
  const d = img.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    d[i] = v > 0 ? (v < 1 ? v : 1) : 0;
  }
  return img;
}
