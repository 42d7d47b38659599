// AVX-512 kernels (MR x NR = 8 x 32 register tile); the micro-kernels are ukr_x86.inc over this
// file's 16-lane vector type, the transpose its own. Compiled for the whole file with a target
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
constexpr int KC_DEFAULT = 768, NCT_DEFAULT = 4, MPB_DEFAULT = 32;

struct V {  // 16 floats
  typedef __m512 reg;
  typedef __mmask16 mask;
  static constexpr int L = 16;
  static inline reg zero() { return _mm512_setzero_ps(); }
  static inline reg set1(float f) { return _mm512_set1_ps(f); }
  static inline reg load(const float* p) { return _mm512_load_ps(p); }
  static inline reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, reg r) { _mm512_store_ps(p, r); }
  static inline void storeu(float* p, reg r) { _mm512_storeu_ps(p, r); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static inline reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static inline mask lanes(int lo, int hi) {
    lo = lo < 0 ? 0 : lo;
    hi = hi > 16 ? 16 : hi;
    return hi <= lo ? (mask)0 : (mask)(((1u << hi) - 1) & ~((1u << lo) - 1));
  }
  static inline reg maskz_loadu(mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static inline reg mask_loadu(reg src, mask m, const float* p) { return _mm512_mask_loadu_ps(src, m, p); }
  static inline void mask_storeu(float* p, mask m, reg r) { _mm512_mask_storeu_ps(p, m, r); }
};

#include "ukr_x86.inc"

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
