// AVX-512 kernels (MR x NR = 8 x 32 register tile): ukr_x86.inc (the micro-kernels, packing and
// transpose, then engine.inc) over this file's 16-lane vector type. Compiled for that target,
// called only when the CPU supports AVX-512 F/BW/DQ/VL (selected at run time).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cstdint>
#include <cstring>

#include "common.h"

#if defined(SRF_X86)
#include <immintrin.h>

SRF_TARGET_BEGIN("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")

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

struct VIsa {  // 16 floats
  typedef __m512 reg;
  typedef __mmask16 mask;
  static constexpr int L = 16;
  static inline mask lanes(int lo, int hi) {
    lo = lo < 0 ? 0 : lo;
    hi = hi > 16 ? 16 : hi;
    return hi <= lo ? (mask)0 : (mask)(((1u << hi) - 1) & ~((1u << lo) - 1));
  }
  static inline reg maskz_loadu(mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static inline reg mask_loadu(reg src, mask m, const float* p) { return _mm512_mask_loadu_ps(src, m, p); }
  static inline void mask_storeu(float* p, mask m, reg r) { _mm512_mask_storeu_ps(p, m, r); }
  // transpose_tile's last stage: the 128-bit blocks of r (after the shared stages, ukr_x86.inc) to the rows of d
  static inline void store_blocks(const reg* r, float* d, long ldd) {
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
};
#define SRF_MM(op) _mm512_##op

#include "ukr_x86.inc"  // the micro-kernels over V, then engine.inc

}  // namespace avx512
}  // namespace srf

SRF_TARGET_END

namespace srf {
const IsaImpl isa_avx512 = {"avx512", avx512::conv_fwd, avx512::conv_bwf, avx512::gemm};
}

#endif  // SRF_X86
