/** A seeded xorshift32 stream, uniform in [-1, 1): reproducible test data without the engine's Rng. */
export function xorshift32(seed: number): () => number {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2147483648 - 1;
  };
}
