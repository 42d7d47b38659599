// WebAssembly SIMD-128 kernels (MR x NR = 4 x 8 register tile: 8 f32x4 accumulators), the wasm
// counterpart of isa_avx2.cc: only the micro-kernels and packing helpers are written here; the
// blocked GEMM / convolution engine is the shared ../engine.inc.
#include <wasm_simd128.h>

#include <cstdint>

#include "../common.h"

namespace srf {
namespace simd128 {

#ifndef SRF_SIMD128_MR
#define SRF_SIMD128_MR 4
#endif
#ifndef SRF_SIMD128_NV
#define SRF_SIMD128_NV 2
#endif
constexpr int NV = SRF_SIMD128_NV;
constexpr int MR = SRF_SIMD128_MR;
constexpr int NR = 4 * NV;

constexpr int KC_DEFAULT = 256, NCT_DEFAULT = 32, MPB_DEFAULT = 64;

static inline void store_rows(const v128_t (&c)[MR][NV], float* C, long ldc, int mr, int nv, int mode,
                              const float* bias) {
  if (nv >= NR) {
    for (int i = 0; i < MR; ++i) {
      if (i >= mr) break;
      float* cr = C + i * ldc;
      for (int v = 0; v < NV; ++v) {
        v128_t r = c[i][v];
        if (mode == 1) r = wasm_f32x4_add(r, wasm_v128_load(cr + 4 * v));
        else if (mode == 2) r = wasm_f32x4_add(r, wasm_f32x4_splat(bias[i]));
        wasm_v128_store(cr + 4 * v, r);
      }
    }
  } else {
    alignas(16) float t[NR];
    for (int i = 0; i < MR; ++i) {
      if (i >= mr) break;
      float* cr = C + i * ldc;
      for (int v = 0; v < NV; ++v) wasm_v128_store(t + 4 * v, c[i][v]);
      for (int jj = 0; jj < nv; ++jj) {
        float r = t[jj];
        if (mode == 1) r += cr[jj];
        else if (mode == 2) r += bias[i];
        cr[jj] = r;
      }
    }
  }
}

static void ukr(int kc, const float* __restrict A, const float* __restrict B, float* C, long ldc, int mr, int nv,
                int mode, const float* bias) {
  v128_t c[MR][NV];
#pragma clang loop unroll(full)
  for (int i = 0; i < MR; ++i)
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; ++v) c[i][v] = wasm_f32x4_splat(0.f);
  for (int p = 0; p < kc; ++p) {
    v128_t b[NV];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; ++v) b[v] = wasm_v128_load(B + 4 * v);
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; ++i) {
      const v128_t a = wasm_v128_load32_splat(A + i);
#pragma clang loop unroll(full)
      for (int v = 0; v < NV; ++v) c[i][v] = wasm_f32x4_add(c[i][v], wasm_f32x4_mul(a, b[v]));
    }
    A += MR;
    B += NR;
  }
  store_rows(c, C, ldc, mr, nv, mode, bias);
}

static void ukr_rows(int kc, const float* const* rows, const float* __restrict B, float* C, long ldc, int mr, int mode) {
  v128_t c[MR][NV];
  const float* r[MR];
#pragma clang loop unroll(full)
  for (int i = 0; i < MR; ++i) {
    r[i] = rows[i];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; ++v) c[i][v] = wasm_f32x4_splat(0.f);
  }
  for (int p = 0; p < kc; ++p) {
    v128_t b[NV];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; ++v) b[v] = wasm_v128_load(B + 4 * v);
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; ++i) {
      const v128_t a = wasm_v128_load32_splat(r[i] + p);
#pragma clang loop unroll(full)
      for (int v = 0; v < NV; ++v) c[i][v] = wasm_f32x4_add(c[i][v], wasm_f32x4_mul(a, b[v]));
    }
    B += NR;
  }
  store_rows(c, C, ldc, mr, NR, mode, nullptr);
}

#define SRF_COPY_ROW(dst, src) \
  for (int v = 0; v < NV; ++v) wasm_v128_store((dst) + 4 * v, wasm_v128_load((src) + 4 * v))
#include "../pack_ranges.inc"
#undef SRF_COPY_ROW

constexpr int TB = 4;
static inline void transpose_tile(const float* s, long lds, float* d, long ldd) {
  const v128_t r0 = wasm_v128_load(s), r1 = wasm_v128_load(s + lds);
  const v128_t r2 = wasm_v128_load(s + 2 * lds), r3 = wasm_v128_load(s + 3 * lds);
  const v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
  const v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
  wasm_v128_store(d, wasm_i64x2_shuffle(t0, t2, 0, 2));
  wasm_v128_store(d + ldd, wasm_i64x2_shuffle(t0, t2, 1, 3));
  wasm_v128_store(d + 2 * ldd, wasm_i64x2_shuffle(t1, t3, 0, 2));
  wasm_v128_store(d + 3 * ldd, wasm_i64x2_shuffle(t1, t3, 1, 3));
}

#include "../engine.inc"

}  // namespace simd128

const IsaImpl isa_simd128 = {"simd128", simd128::conv_fwd, simd128::conv_bwf, simd128::gemm};

}  // namespace srf
