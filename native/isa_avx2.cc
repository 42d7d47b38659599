// AVX2 + FMA kernels (MR x NR = 6 x 16 register tile), selected at run time. The micro-kernels are
// ukr_x86.inc over this file's 8-lane vector type; the transpose is its own.
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
constexpr int KC_DEFAULT = 384, NCT_DEFAULT = 16, MPB_DEFAULT = 48;

struct V {  // 8 floats
  typedef __m256 reg;
  typedef __m256i mask;
  static constexpr int L = 8;
  static inline reg zero() { return _mm256_setzero_ps(); }
  static inline reg set1(float f) { return _mm256_set1_ps(f); }
  static inline reg load(const float* p) { return _mm256_load_ps(p); }
  static inline reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, reg r) { _mm256_store_ps(p, r); }
  static inline void storeu(float* p, reg r) { _mm256_storeu_ps(p, r); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static inline reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static inline mask lanes(int lo, int hi) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(lo - 1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx));
  }
  static inline reg maskz_loadu(mask m, const float* p) { return _mm256_maskload_ps(p, m); }
  static inline reg mask_loadu(reg src, mask m, const float* p) {
    return _mm256_blendv_ps(src, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static inline void mask_storeu(float* p, mask m, reg r) { _mm256_maskstore_ps(p, m, r); }
};

#include "ukr_x86.inc"

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
