// AVX-512 kernels (MR x NR = 8 x 32 register tile). Compiled for the whole file with a target
// pragma, called only when the CPU supports AVX-512 F/BW/DQ/VL (selected at run time).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cstdint>
#include <cstring>

#include "common.h"

#if defined(SRF_X86)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#endif

namespace srf {
namespace avx512 {

#ifndef SRF_AVX512_MR
#define SRF_AVX512_MR 8
#endif
#ifndef SRF_AVX512_NV
#define SRF_AVX512_NV 2
#endif
constexpr int NV = SRF_AVX512_NV;
constexpr int MR = SRF_AVX512_MR;
constexpr int NR = 16 * NV;

static int kc_max() { static const int v = tune("KC", 768); return v; }
static int nct_max() { static const int v = tune("NCT", 4); return v; }
static int mpb_max() { static const int v = tune("MPB", 32); return v; }
static int pb_bwf() { static const int v = (tune("PB", 128) + 15) / 16 * 16; return v; }
static int loop_order() { static const int v = tune("ORDER", 1) - 1; return v; }
#define LOOP_ORDER loop_order()
static long a_private_max() { static const long v = tune("APRIV", 262144); return v; }
#define A_PRIVATE_MAX a_private_max()
#define KC_MAX kc_max()
#define NCT_MAX nct_max()
#define MPB_MAX mpb_max()
#define PB_BWF pb_bwf()

static inline __mmask16 lane_mask(int n) {  // first n lanes (n may be <= 0 or >= 16)
  return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

static void ukr(int kc, const float* __restrict A, const float* __restrict B, float* C, long ldc, int mr, int nv,
                int mode, const float* bias) {
  __m512 c[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[i][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int p = 0; p < kc; ++p) {
    __m512 b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(B + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(A[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[i][v] = _mm512_fmadd_ps(a, b[v], c[i][v]);
    }
    A += MR;
    B += NR;
  }
  __mmask16 mk[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) mk[v] = lane_mask(nv - 16 * v);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
    float* cr = C + i * ldc;
    if (mode == 1) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[i][v] = _mm512_add_ps(c[i][v], _mm512_maskz_loadu_ps(mk[v], cr + 16 * v));
    } else if (mode == 2) {
      const __m512 bv = _mm512_set1_ps(bias[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[i][v] = _mm512_add_ps(c[i][v], bv);
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(cr + 16 * v, mk[v], c[i][v]);
  }
}

static void ukr_rows(int kc, const float* const* rows, const float* __restrict B, float* C, long ldc, int mr, int mode) {
  __m512 c[MR][NV];
  const float* r[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    r[i] = rows[i];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[i][v] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int p = 0; p < kc; ++p) {
    __m512 b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(B + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(r[i][p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[i][v] = _mm512_fmadd_ps(a, b[v], c[i][v]);
    }
    B += NR;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
    float* cr = C + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      _mm512_storeu_ps(cr + 16 * v, mode ? _mm512_add_ps(c[i][v], _mm512_loadu_ps(cr + 16 * v)) : c[i][v]);
  }
}

static inline uint64_t range_mask(int lo, int hi) {
  if (hi <= lo) return 0;
  const uint64_t h = hi >= 64 ? ~uint64_t(0) : ((uint64_t(1) << hi) - 1);
  return h & ~((uint64_t(1) << lo) - 1);
}

static inline void row_load(float* dst, const float* src, int lo, int hi) {
  const uint64_t m = range_mask(lo, hi);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v)
    _mm512_store_ps(dst + 16 * v, _mm512_maskz_loadu_ps((__mmask16)(m >> (16 * v)), src + 16 * v));
}

typedef uint64_t RowMask;
struct SegEnt {
  long off;
  RowMask m;
};
static inline RowMask make_mask(int lo, int hi) { return range_mask(lo, hi); }

static inline void row_pack1(float* dst, const float* plane, const SegEnt& e) {
  const float* src = plane + e.off;
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v)
    _mm512_store_ps(dst + 16 * v, _mm512_maskz_loadu_ps((__mmask16)(e.m >> (16 * v)), src + 16 * v));
}

static inline void row_pack(float* dst, const float* plane, const SegEnt* e, int nseg) {
  __m512 r[NV];
  const float* src = plane + e[0].off;
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) r[v] = _mm512_maskz_loadu_ps((__mmask16)(e[0].m >> (16 * v)), src + 16 * v);
  for (int g = 1; g < nseg; ++g) {
    src = plane + e[g].off;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) r[v] = _mm512_mask_loadu_ps(r[v], (__mmask16)(e[g].m >> (16 * v)), src + 16 * v);
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) _mm512_store_ps(dst + 16 * v, r[v]);
}

constexpr int TB = 16;
static inline __m512 unpacklo_pd(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
static inline __m512 unpackhi_pd(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
static inline void transpose_tile(const float* s, long lds, float* d, long ldd) {
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(s + i * lds);
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = unpacklo_pd(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = unpackhi_pd(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = unpacklo_pd(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = unpackhi_pd(t[4 * i + 1], t[4 * i + 3]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512 u0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88), u1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
    const __m512 u2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88),
                 u3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
    _mm512_storeu_ps(d + (j + 0) * ldd, _mm512_shuffle_f32x4(u0, u2, 0x88));
    _mm512_storeu_ps(d + (j + 8) * ldd, _mm512_shuffle_f32x4(u0, u2, 0xDD));
    _mm512_storeu_ps(d + (j + 4) * ldd, _mm512_shuffle_f32x4(u1, u3, 0x88));
    _mm512_storeu_ps(d + (j + 12) * ldd, _mm512_shuffle_f32x4(u1, u3, 0xDD));
  }
}

#define SRF_WINO_AVX2 1  // winograd.inc: 8-lane transforms with AVX2 intrinsics
#include "engine.inc"

}  // namespace avx512
}  // namespace srf

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace srf {
const IsaImpl isa_avx512 = {"avx512", avx512::conv_fwd, avx512::conv_bwf, avx512::gemm};
}

#endif  // SRF_X86
