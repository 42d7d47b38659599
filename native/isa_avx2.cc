// AVX2 + FMA kernels (MR x NR = 6 x 16 register tile), selected at run time: ukr_x86.inc (the
// micro-kernels, packing and transpose, then engine.inc) over this file's 8-lane vector type.
#include <cstdint>
#include <cstring>

#include "common.h"

#if defined(SRF_X86)
#include <immintrin.h>

SRF_TARGET_BEGIN("avx2,fma")

namespace srf {
namespace avx2 {

constexpr int NV = 2;
constexpr int MR = 6;
constexpr int KC_DEFAULT = 384, NCT_DEFAULT = 16, MPB_DEFAULT = 48;

struct VIsa {  // 8 floats
  typedef __m256 reg;
  typedef __m256i mask;
  static constexpr int L = 8;
  static inline mask lanes(int lo, int hi) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(lo - 1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx));
  }
  static inline reg maskz_loadu(mask m, const float* p) { return _mm256_maskload_ps(p, m); }
  static inline reg mask_loadu(reg src, mask m, const float* p) {
    return _mm256_blendv_ps(src, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static inline void mask_storeu(float* p, mask m, reg r) { _mm256_maskstore_ps(p, m, r); }
  // transpose_tile's last stage: the 128-bit blocks of r (after the shared stages, ukr_x86.inc) to the rows of d
  static inline void store_blocks(const reg* r, float* d, long ldd) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      _mm256_storeu_ps(d + j * ldd, _mm256_permute2f128_ps(r[j], r[4 + j], 0x20));
      _mm256_storeu_ps(d + (j + 4) * ldd, _mm256_permute2f128_ps(r[j], r[4 + j], 0x31));
    }
  }
};
#define SRF_MM(op) _mm256_##op

#include "ukr_x86.inc"  // the micro-kernels over V, then engine.inc

}  // namespace avx2
}  // namespace srf

SRF_TARGET_END

namespace srf {
const IsaImpl isa_avx2 = {"avx2", avx2::conv_fwd, avx2::conv_bwf, avx2::gemm};
}

#endif  // SRF_X86
