/**
 * The names and shapes of a state dict in the published layout, written from
 * ../shared/docs/srflow-model.md §6 (independently of src/models): RRDBNet (`RRDB.` prefix, or bare
 * for an RRDB_*.pth) and FlowUpsamplerNet's flat `layers` list.
 */
export interface PublishedLayoutSpec {
  scale: number;
  nb: number;
  L?: number;
  K?: number;
  A?: number;
  hidden?: number;
  nStack?: number;
  nf?: number;
  gc?: number;
  split?: boolean;
}

function conv(out: Map<string, number[]>, p: string, cin: number, cout: number, k = 3): void {
  out.set(`${p}.weight`, [cout, cin, k, k]);
  out.set(`${p}.bias`, [cout]);
}

/** A bare RRDBNet state dict (the published RRDB_*.pth), or with `prefix` (`RRDB.` inside SRFlow). */
export function rrdbShapes(scale: number, nb: number, prefix = '', nf = 64, gc = 32): Map<string, number[]> {
  const m = new Map<string, number[]>();
  conv(m, `${prefix}conv_first`, 3, nf);
  for (let i = 0; i < nb; i++) {
    for (let r = 1; r <= 3; r++) for (let c = 1; c <= 5; c++) conv(m, `${prefix}RRDB_trunk.${i}.RDB${r}.conv${c}`, nf + (c - 1) * gc, c === 5 ? nf : gc);
  }
  conv(m, `${prefix}trunk_conv`, nf, nf);
  const nUp = Math.max(2, Math.log2(scale));
  for (let u = 1; u <= nUp; u++) conv(m, `${prefix}upconv${u}`, nf, nf);
  conv(m, `${prefix}HRconv`, nf, nf);
  conv(m, `${prefix}conv_last`, nf, 3);
  return m;
}

/** A whole SRFlow state dict in the published layout. */
export function srflowShapes(s: PublishedLayoutSpec): Map<string, number[]> {
  const { scale, nb } = s;
  const L = s.L ?? 3;
  const K = s.K ?? 16;
  const A = s.A ?? 2;
  const hidden = s.hidden ?? 64;
  const nf = s.nf ?? 64;
  const nStack = s.nStack ?? 4;
  const split = s.split ?? true;
  const cond = nf * (nStack + 1);
  const m = rrdbShapes(scale, nb, 'RRDB.', nf, s.gc ?? 32);
  let n = 0;
  let C = 3;
  const P = 'flowUpsamplerNet.layers.';
  const actnorm = (p: string, c: number) => {
    m.set(`${p}.bias`, [1, c, 1, 1]);
    m.set(`${p}.logs`, [1, c, 1, 1]);
  };
  const net = (p: string, cin: number, cout: number) => {
    m.set(`${p}.0.weight`, [hidden, cin, 3, 3]);
    actnorm(`${p}.0.actnorm`, hidden);
    m.set(`${p}.2.weight`, [hidden, hidden, 1, 1]);
    actnorm(`${p}.2.actnorm`, hidden);
    m.set(`${p}.4.weight`, [cout, hidden, 3, 3]);
    m.set(`${p}.4.bias`, [cout]);
    m.set(`${p}.4.logs`, [cout, 1, 1]);
  };
  for (let l = 1; l <= L; l++) {
    n++; // squeeze: no tensors
    C *= 4;
    for (let a = 0; a < A; a++, n++) {
      actnorm(`${P}${n}.actnorm`, C);
      m.set(`${P}${n}.invconv.weight`, [C, C]);
    }
    for (let k = 0; k < K; k++, n++) {
      actnorm(`${P}${n}.actnorm`, C);
      m.set(`${P}${n}.invconv.weight`, [C, C]);
      const c1 = Math.floor(C / 2);
      net(`${P}${n}.affine.fAffine`, c1 + cond, 2 * (C - c1));
      net(`${P}${n}.affine.fFeatures`, cond, 2 * C);
    }
    if (split && l < L - 1) {
      const keep = C - Math.round(C / 2);
      m.set(`${P}${n}.conv.weight`, [2 * (C - keep), keep, 3, 3]);
      m.set(`${P}${n}.conv.bias`, [2 * (C - keep)]);
      m.set(`${P}${n}.conv.logs`, [2 * (C - keep), 1, 1]);
      n++;
      C = keep;
    }
  }
  m.set('flowUpsamplerNet.f.0.weight', [split ? 96 : 384, cond, 3, 3]);
  m.set('flowUpsamplerNet.f.0.bias', [split ? 96 : 384]);
  return m;
}
