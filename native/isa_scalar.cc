// Portable kernels (plain C++, auto-vectorised by the compiler for the baseline ISA).
#include <cstdint>
#include <cstring>

#include "common.h"

namespace srf {
namespace scalar {

constexpr int MR = 4;
constexpr int NR = 8;

constexpr int KC_DEFAULT = 256, NCT_DEFAULT = 32, MPB_DEFAULT = 64;

static void ukr(int kc, const float* __restrict A, const float* __restrict B, float* C, long ldc, int mr, int nv,
                int mode, const float* bias) {
  float c[MR][NR] = {};
  for (int p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      const float a = A[i];
      for (int jj = 0; jj < NR; ++jj) c[i][jj] += a * B[jj];
    }
    A += MR;
    B += NR;
  }
  for (int i = 0; i < mr; ++i) {
    float* cr = C + i * ldc;
    for (int jj = 0; jj < nv; ++jj) {
      float r = c[i][jj];
      if (mode == 1) r += cr[jj];
      else if (mode == 2) r += bias[i];
      cr[jj] = r;
    }
  }
}

static void ukr_rows(int kc, const float* const* rows, const float* __restrict B, float* C, long ldc, int mr, int mode) {
  float c[MR][NR] = {};
  for (int p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      const float a = rows[i][p];
      for (int jj = 0; jj < NR; ++jj) c[i][jj] += a * B[jj];
    }
    B += NR;
  }
  for (int i = 0; i < mr; ++i) {
    float* cr = C + i * ldc;
    for (int jj = 0; jj < NR; ++jj) cr[jj] = mode ? cr[jj] + c[i][jj] : c[i][jj];
  }
}

#include "pack_ranges.inc"

constexpr int TB = 4;
static inline void transpose_tile(const float* s, long lds, float* d, long ldd) {
  for (int r = 0; r < TB; ++r)
    for (int c = 0; c < TB; ++c) d[c * ldd + r] = s[r * lds + c];
}

#include "engine.inc"

}  // namespace scalar

const IsaImpl isa_scalar = {"scalar", scalar::conv_fwd, scalar::conv_bwf, scalar::gemm};

}  // namespace srf
