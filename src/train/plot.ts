/** Training figures: a loss-curve PNG (SVG rendered by sharp) and image grids. */
import sharp from 'sharp';
import type { Planar } from '../io/image.js';
import { writeFileAtomicAsync } from '../io/image.js';

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) out.push(+t.toPrecision(6));
  return out;
}

/** Line chart of one or more series, each on its own y range (left axis: first series). */
export function lineChartSvg(title: string, xLabel: string, series: Series[], width = 900, height = 420): string {
  const m = { l: 70, r: 70, t: 40, b: 50 };
  const W = width - m.l - m.r;
  const H = height - m.t - m.b;
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const x0 = Math.min(...xs, 0);
  const x1 = Math.max(...xs, 1);
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * W;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="12">`;
  svg += `<rect width="100%" height="100%" fill="white"/><text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${title}</text>`;
  svg += `<rect x="${m.l}" y="${m.t}" width="${W}" height="${H}" fill="none" stroke="#888"/>`;
  for (const t of niceTicks(x0, x1)) svg += `<text x="${sx(t)}" y="${m.t + H + 18}" text-anchor="middle">${t}</text>`;
  svg += `<text x="${m.l + W / 2}" y="${height - 10}" text-anchor="middle">${xLabel}</text>`;
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const ys = s.points.map((p) => p[1]).filter(Number.isFinite);
    let y0 = Math.min(...ys);
    let y1 = Math.max(...ys);
    if (y1 - y0 < 1e-9) {
      y0 -= 0.5;
      y1 += 0.5;
    }
    const sy = (y: number) => m.t + H - ((y - y0) / (y1 - y0)) * H;
    const side = i === 0 ? m.l - 6 : m.l + W + 6;
    const anchor = i === 0 ? 'end' : 'start';
    if (i < 2) for (const t of niceTicks(y0, y1)) svg += `<text x="${side}" y="${sy(t) + 4}" text-anchor="${anchor}" fill="${s.color}">${t}</text>`;
    const d = s.points
      .filter((p) => Number.isFinite(p[1]))
      .map((p, j) => `${j ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`)
      .join('');
    svg += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"/>`;
    if (s.points.length < 60) for (const p of s.points) svg += `<circle cx="${sx(p[0])}" cy="${sy(p[1])}" r="2.5" fill="${s.color}"/>`;
    svg += `<text x="${m.l + 10 + i * 260}" y="${m.t + 16}" fill="${s.color}">● ${s.name}</text>`;
  });
  return svg + '</svg>';
}

export async function writeSvgPng(path: string, svg: string): Promise<void> {
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  await writeFileAtomicAsync(path, png);
}

/** Exponential moving average of a series (for noisy losses). */
export function smooth(points: [number, number][], alpha = 0.05): [number, number][] {
  let m = NaN;
  return points.map(([x, y]) => {
    m = Number.isNaN(m) ? y : m + alpha * (y - m);
    return [x, m];
  });
}

/** Nearest-neighbour enlarge a planar image by an integer factor (to show LR next to HR). */
export function enlargeNearest(img: Planar, f: number): Planar {
  const { channels: c, height: h, width: w } = img;
  const out = new Float32Array(c * h * f * w * f);
  for (let ch = 0; ch < c; ch++)
    for (let y = 0; y < h * f; y++)
      for (let x = 0; x < w * f; x++) {
        out[(ch * h * f + y) * w * f + x] = img.data[(ch * h + Math.floor(y / f)) * w + Math.floor(x / f)];
      }
  return { data: out, channels: c, height: h * f, width: w * f };
}

/** Rows of equally sized RGB images, separated by a 4-pixel white gap, as a PNG file. */
export async function writeGrid(path: string, rows: Planar[][]): Promise<void> {
  const gap = 4;
  const cellH = Math.max(...rows.flat().map((p) => p.height));
  const cellW = Math.max(...rows.flat().map((p) => p.width));
  const cols = Math.max(...rows.map((r) => r.length));
  const H = rows.length * (cellH + gap) + gap;
  const W = cols * (cellW + gap) + gap;
  const buf = Buffer.alloc(H * W * 3, 255);
  rows.forEach((row, r) =>
    row.forEach((img, c) => {
      const oy = gap + r * (cellH + gap);
      const ox = gap + c * (cellW + gap);
      for (let y = 0; y < img.height; y++)
        for (let x = 0; x < img.width; x++)
          for (let ch = 0; ch < 3; ch++) {
            const v = img.data[(Math.min(ch, img.channels - 1) * img.height + y) * img.width + x];
            buf[((oy + y) * W + ox + x) * 3 + ch] = Math.round(Math.min(1, Math.max(0, v)) * 255);
          }
    }),
  );
  const png = await sharp(buf, { raw: { width: W, height: H, channels: 3 } })
    .png()
    .toBuffer();
  await writeFileAtomicAsync(path, png);
}
