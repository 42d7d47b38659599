/**
 * The temperature brush: paint, over the input image, where the model may invent detail. The
 * painted map (white = the chosen τ, unpainted = τ 0, the deterministic mean) is sent with a run
 * as the engine's temperature map (src/upscale/tempmap.ts: resized to the output and averaged over
 * each latent's footprint). The mask lives at the input's resolution in an offscreen canvas
 * (alpha = weight); the visible canvas shows the image with the painted region tinted.
 */

export interface TemperatureMap {
  width: number;
  height: number;
  /** One value per input pixel, in [0, 1]. */
  data: Float32Array;
}

export interface Brush {
  /** A new input image: the mask is cleared. */
  setImage(bitmap: ImageBitmap): void;
  /** The painted map when the brush is on, else null (uniform τ). */
  map(): TemperatureMap | null;
  /** Whether the brush is on. */
  enabled(): boolean;
}

const DISPLAY_WIDTH = 384;

/**
 * Wire the brush controls inside `root`: a checkbox [data-brush=on], a size slider
 * [data-brush=size], an erase checkbox [data-brush=erase], a clear button [data-brush=clear],
 * a fill button [data-brush=fill] and a container [data-brush=canvas].
 */
export function createBrush(root: HTMLElement): Brush {
  const q = <T extends HTMLElement>(k: string) => root.querySelector(`[data-brush=${k}]`) as T;
  const on = q<HTMLInputElement>('on');
  const size = q<HTMLInputElement>('size');
  const erase = q<HTMLInputElement>('erase');
  const clear = q<HTMLButtonElement>('clear');
  const fill = q<HTMLButtonElement>('fill');
  const holder = q<HTMLElement>('canvas');
  const view = document.createElement('canvas');
  view.style.touchAction = 'none';
  view.style.cursor = 'crosshair';
  view.style.maxWidth = '100%';
  view.id = 'brush-view';
  holder.replaceChildren(view);
  let image: ImageBitmap | null = null;
  let mask: OffscreenCanvas | null = null;
  let drawing = false;
  let last: { x: number; y: number } | null = null;

  const redraw = () => {
    if (!image || !mask) return;
    const g = view.getContext('2d')!;
    g.globalCompositeOperation = 'source-over';
    g.imageSmoothingEnabled = false;
    g.drawImage(image, 0, 0, view.width, view.height);
    // the painted region tinted: the mask's alpha as a red overlay
    const tint = new OffscreenCanvas(view.width, view.height);
    const t = tint.getContext('2d')!;
    t.imageSmoothingEnabled = false;
    t.drawImage(mask, 0, 0, view.width, view.height);
    t.globalCompositeOperation = 'source-in';
    t.fillStyle = 'rgba(239, 68, 68, 0.45)';
    t.fillRect(0, 0, view.width, view.height);
    g.drawImage(tint, 0, 0);
  };

  const toImage = (ev: PointerEvent) => {
    const r = view.getBoundingClientRect();
    const s = image ? image.width / r.width : 1;
    return { x: (ev.clientX - r.left) * s, y: (ev.clientY - r.top) * (image ? image.height / r.height : 1) };
  };

  const stroke = (a: { x: number; y: number }, b: { x: number; y: number }) => {
    if (!mask || !image) return;
    const g = mask.getContext('2d')!;
    const radius = (Number(size.value) / 100) * Math.max(image.width, image.height) * 0.5;
    g.globalCompositeOperation = erase.checked ? 'destination-out' : 'source-over';
    g.strokeStyle = '#fff';
    g.fillStyle = '#fff';
    g.lineCap = 'round';
    g.lineWidth = 2 * radius;
    g.beginPath();
    g.moveTo(a.x, a.y);
    g.lineTo(b.x, b.y);
    g.stroke();
    g.beginPath();
    g.arc(b.x, b.y, radius, 0, 2 * Math.PI);
    g.fill();
    redraw();
  };

  view.addEventListener('pointerdown', (ev) => {
    if (!on.checked || !image) return;
    drawing = true;
    view.setPointerCapture(ev.pointerId);
    last = toImage(ev);
    stroke(last, last);
  });
  view.addEventListener('pointermove', (ev) => {
    if (!drawing || !last) return;
    const p = toImage(ev);
    stroke(last, p);
    last = p;
  });
  const end = () => {
    drawing = false;
    last = null;
  };
  view.addEventListener('pointerup', end);
  view.addEventListener('pointercancel', end);
  clear.addEventListener('click', () => {
    if (!mask) return;
    mask.getContext('2d')!.clearRect(0, 0, mask.width, mask.height);
    redraw();
  });
  fill.addEventListener('click', () => {
    if (!mask) return;
    const g = mask.getContext('2d')!;
    g.globalCompositeOperation = 'source-over';
    g.fillStyle = '#fff';
    g.fillRect(0, 0, mask.width, mask.height);
    redraw();
  });
  const sync = () => {
    holder.hidden = !on.checked;
    for (const c of [size, erase, clear, fill]) c.disabled = !on.checked;
  };
  on.addEventListener('change', sync);
  sync();

  return {
    setImage(bitmap) {
      image = bitmap;
      mask = new OffscreenCanvas(bitmap.width, bitmap.height);
      const scale = Math.max(1, Math.floor(DISPLAY_WIDTH / bitmap.width));
      view.width = bitmap.width * scale;
      view.height = bitmap.height * scale;
      view.style.width = `${Math.min(DISPLAY_WIDTH, bitmap.width * scale)}px`;
      redraw();
    },
    map() {
      if (!on.checked || !mask) return null;
      const d = mask.getContext('2d')!.getImageData(0, 0, mask.width, mask.height).data;
      const data = new Float32Array(mask.width * mask.height);
      for (let i = 0; i < data.length; i++) data[i] = d[4 * i + 3] / 255;
      return { width: mask.width, height: mask.height, data };
    },
    enabled: () => on.checked,
  };
}
