// AVX2 + FMA kernels (MR x NR = 6 x 16 register tile), selected at run time.
#include <cstdint>
#include <cstring>

#include "common.h"

#if defined(SRF_X86)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

namespace srf {
namespace avx2 {

constexpr int NV = 2;
constexpr int MR = 6;
constexpr int NR = 8 * NV;

static int kc_max() { static const int v = tune("KC", 384); return v; }
static int nct_max() { static const int v = tune("NCT", 16); return v; }
static int mpb_max() { static const int v = tune("MPB", 48); return v; }
static int pb_bwf() { static const int v = (tune("PB", 128) + 15) / 16 * 16; return v; }
static int loop_order() { static const int v = tune("ORDER", 1) - 1; return v; }
#define LOOP_ORDER loop_order()
static long a_private_max() { static const long v = tune("APRIV", 262144); return v; }
#define A_PRIVATE_MAX a_private_max()
#define KC_MAX kc_max()
#define NCT_MAX nct_max()
#define MPB_MAX mpb_max()
#define PB_BWF pb_bwf()

static inline __m256i lane_mask(int lo, int hi, int base) {  // lanes base+l in [lo, hi)
  const __m256i idx = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(base));
  return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(lo - 1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx));
}

static void ukr(int kc, const float* __restrict A, const float* __restrict B, float* C, long ldc, int mr, int nv,
                int mode, const float* bias) {
  __m256 c[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[i][v] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int p = 0; p < kc; ++p) {
    __m256 b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm256_load_ps(B + 8 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(A + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[i][v] = _mm256_fmadd_ps(a, b[v], c[i][v]);
    }
    A += MR;
    B += NR;
  }
  if (nv >= NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= mr) break;
      float* cr = C + i * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        __m256 r = c[i][v];
        if (mode == 1) r = _mm256_add_ps(r, _mm256_loadu_ps(cr + 8 * v));
        else if (mode == 2) r = _mm256_add_ps(r, _mm256_set1_ps(bias[i]));
        _mm256_storeu_ps(cr + 8 * v, r);
      }
    }
  } else {
    alignas(32) float t[NR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= mr) break;
      float* cr = C + i * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm256_store_ps(t + 8 * v, c[i][v]);
      for (int jj = 0; jj < nv; ++jj) {
        float r = t[jj];
        if (mode == 1) r += cr[jj];
        else if (mode == 2) r += bias[i];
        cr[jj] = r;
      }
    }
  }
}

static void ukr_rows(int kc, const float* const* rows, const float* __restrict B, float* C, long ldc, int mr, int mode) {
  __m256 c[MR][NV];
  const float* r[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    r[i] = rows[i];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[i][v] = _mm256_setzero_ps();
  }
#pragma GCC unroll 2
  for (int p = 0; p < kc; ++p) {
    __m256 b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm256_load_ps(B + 8 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(r[i] + p);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[i][v] = _mm256_fmadd_ps(a, b[v], c[i][v]);
    }
    B += NR;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
    float* cr = C + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      _mm256_storeu_ps(cr + 8 * v, mode ? _mm256_add_ps(c[i][v], _mm256_loadu_ps(cr + 8 * v)) : c[i][v]);
  }
}

static inline void row_load(float* dst, const float* src, int lo, int hi) {
  if (lo == 0 && hi == NR) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm256_store_ps(dst + 8 * v, _mm256_loadu_ps(src + 8 * v));
    return;
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) _mm256_store_ps(dst + 8 * v, _mm256_maskload_ps(src + 8 * v, lane_mask(lo, hi, 8 * v)));
}

struct RowMask {
  __m256i v[NV];
};
struct SegEnt {
  long off;
  RowMask m;
};
static inline RowMask make_mask(int lo, int hi) {
  RowMask m;
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) m.v[v] = lane_mask(lo, hi, 8 * v);
  return m;
}

static inline void row_pack1(float* dst, const float* plane, const SegEnt& e) {
  const float* src = plane + e.off;
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) _mm256_store_ps(dst + 8 * v, _mm256_maskload_ps(src + 8 * v, e.m.v[v]));
}

static inline void row_pack(float* dst, const float* plane, const SegEnt* e, int nseg) {
  __m256 r[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) r[v] = _mm256_maskload_ps(plane + e[0].off + 8 * v, e[0].m.v[v]);
  for (int g = 1; g < nseg; ++g) {
    const float* src = plane + e[g].off;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      r[v] = _mm256_blendv_ps(r[v], _mm256_maskload_ps(src + 8 * v, e[g].m.v[v]), _mm256_castsi256_ps(e[g].m.v[v]));
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) _mm256_store_ps(dst + 8 * v, r[v]);
}

constexpr int TB = 8;
static inline void transpose_tile(const float* s, long lds, float* d, long ldd) {
  __m256 r[8], t[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * lds);
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    _mm256_storeu_ps(d + j * ldd, _mm256_permute2f128_ps(r[j], r[4 + j], 0x20));
    _mm256_storeu_ps(d + (j + 4) * ldd, _mm256_permute2f128_ps(r[j], r[4 + j], 0x31));
  }
}

#define SRF_WINO_AVX2 1  // winograd.inc: 8-lane transforms with AVX2 intrinsics
#include "engine.inc"

}  // namespace avx2
}  // namespace srf

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace srf {
const IsaImpl isa_avx2 = {"avx2", avx2::conv_fwd, avx2::conv_bwf, avx2::gemm};
}

#endif  // SRF_X86
