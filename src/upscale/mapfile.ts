/** Decoding map images (temperature maps, masks) with sharp: Node only (the web page paints its maps). */
import { loadImage, type RawPixels } from '../io/image.js';
import { lumaMap, type Map1 } from './tempmap.js';

/** What a map may be given as: a file path, encoded image bytes, or raw pixels (see io/image.ts). */
export type MapInput = string | Buffer | Uint8Array | RawPixels;

/**
 * Decode a map image (any format and size; colour images count by their luma, alpha is ignored)
 * into a one-channel map in [0, 1]. Errors name `what` ("temperature map", "mask").
 */
export async function loadMap(input: MapInput, what: string): Promise<Map1> {
  const name = typeof input === 'string' ? input : input instanceof Uint8Array ? '<buffer>' : 'raw pixels';
  let img;
  try {
    img = await loadImage(input);
  } catch (e) {
    const msg = (e as Error).message.replace(/^Cannot read image [^:]*: /, '');
    throw new Error(`Cannot read the ${what} ${name}: ${msg}`);
  }
  return lumaMap(img.rgb);
}
