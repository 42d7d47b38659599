/**
 * Seeded pseudo-random numbers (sfc32) with a saveable state, so that sampling, initialisation and
 * training are reproducible and a resumed run continues the exact same random stream.
 */

/** A uniform [0, 1) generator function. */
export type RandomFn = () => number;

/** splitmix32 step: a good 32-bit mixer used for seeding. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Hash a seed (number or string) to a 32-bit integer. */
function seedTo32(seed: number | string): number {
  if (typeof seed === 'number') {
    if (!Number.isFinite(seed)) throw new Error(`Expected a finite number or a string for seed but received ${seed}`);
    // Fold in the high part of large integers so seeds above 2^32 still differ.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    return (lo ^ Math.imul(hi, 0x27d4eb2d)) >>> 0;
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** mulberry32: a tiny 32-bit-state generator returning uniform [0, 1). */
export function mulberry32(seed: number): RandomFn {
  let a = seedTo32(seed);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** sfc32 generator with saveable state. `next` is bound, so it can be passed as a RandomFn. */
export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(seed: number | string = 0) {
    let s = seedTo32(seed);
    s = splitmix32(s);
    this.a = s;
    s = splitmix32(s);
    this.b = s;
    s = splitmix32(s);
    this.c = s;
    this.d = 1;
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform [0, 1) with 32 bits of resolution. */
  next: RandomFn = () => this.nextUint32() / 4294967296;

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Expected a positive integer for n but received ${n}`);
    return Math.min(n - 1, Math.floor(this.next() * n));
  }

  /** Standard normal (Box–Muller, one value per two uniforms). */
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  fillNormal(out: Float32Array | Float64Array, std = 1, mean = 0): void {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
  }

  fillUniform(out: Float32Array | Float64Array, lo = 0, hi = 1): void {
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * this.next();
  }

  /** The full state: four uint32 values (JSON-serialisable). */
  state(): number[] {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /** Restore a state from `state()`. */
  setState(s: readonly number[]): void {
    if (!Array.isArray(s) || s.length !== 4 || !s.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
      throw new Error(`Expected an array of four uint32 values for rng state but received ${JSON.stringify(s)}`);
    }
    this.a = s[0] | 0;
    this.b = s[1] | 0;
    this.c = s[2] | 0;
    this.d = s[3] | 0;
  }

  /** An independent child generator (advances this one by four draws). */
  split(): Rng {
    const child = new Rng(0);
    child.setState([splitmix32(this.nextUint32() ^ 0xa5a5a5a5), splitmix32(this.nextUint32()), splitmix32(this.nextUint32() ^ 0x5a5a5a5a), this.nextUint32()]);
    for (let i = 0; i < 15; i++) child.nextUint32();
    return child;
  }

  /** A copy with the same state. */
  clone(): Rng {
    const r = new Rng(0);
    r.setState(this.state());
    return r;
  }
}
