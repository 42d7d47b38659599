// Element-wise and per-channel kernels of the flow (the fused ops of src/tensor/fused.ts, the RRDB's
// leaky ReLU and residual axpy, Adam). They are memory-bound: one pass over the data, split into
// chunks on the thread pool, the loops vectorised by the compiler for each instruction set
// (function multi-versioning picks AVX-512, AVX2 or the portable build at load time).
//
// Determinism: every reduction (per-channel or per-sample sums) is owned by one chunk and summed in
// a fixed order in double precision, so results never depend on scheduling or on the thread count.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common.h"

#if defined(SRF_X86) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define SRF_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SRF_CLONES
#endif

namespace srf {

namespace {

constexpr long kGrain = 1L << 15;  // elements per chunk of the pure element-wise ops

template <class F>
void par_for(int nchunks, F& f) {
  if (nchunks <= 1) {
    for (int c = 0; c < nchunks; ++c) f(c);
    return;
  }
  parallel_run(
      nchunks, [](void* ctx, int chunk, int) { (*static_cast<F*>(ctx))(chunk); }, &f);
}

// Runs body(c) for each channel c in [0, C); serially when the whole tensor is small.
template <class F>
void per_channel(int C, long total, F& body) {
  if (total < 2 * kGrain) {
    for (int c = 0; c < C; ++c) body(c);
    return;
  }
  par_for(C, body);
}

template <class F>
void per_range(long n, F& body) {  // body(i0, i1)
  const int nchunks = (int)((n + kGrain - 1) / kGrain);
  auto f = [&](int c) {
    const long i0 = (long)c * kGrain;
    body(i0, i0 + kGrain < n ? i0 + kGrain : n);
  };
  par_for(nchunks, f);
}

// exp(x) in float32 without libm, so that the loops around it vectorise: 2^n · p(r) with
// x = n·ln2 + r, |r| ≤ ln2/2, p of degree 6 (Cephes expf coefficients); relative error ≈ 1e-7.
// Arguments are clamped to [-87.3, 88.7] (no overflow to inf: the sigmoid needs exp(-x) → 1e38, fine).
static inline float fexp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.f;
  const int32_t e = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

static inline float fsig(float v) { return 1.f / (1.f + fexp(-v)); }

SRF_CLONES void affine_row(const float* x, float* o, long n, float b, float m, bool relu) {
  if (relu)
    for (long i = 0; i < n; ++i) {
      const float v = (x[i] + b) * m;
      o[i] = v > 0.f ? v : 0.f;
    }
  else
    for (long i = 0; i < n; ++i) o[i] = (x[i] + b) * m;
}

SRF_CLONES void affine_bwd_row(const float* __restrict__ g, const float* __restrict__ out, float* __restrict__ gx,
                               long n, float m, bool relu, double* sb, double* ss) {
  // sums of g and of g*out over the row in 16 lanes (a fixed order); gx = g * m (g masked by the ReLU)
  float s0[16] = {}, s1[16] = {};
  long i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) {
      const float o = out[i + l];
      const float gi = (relu && o <= 0.f) ? 0.f : g[i + l];
      s0[l] += gi;
      s1[l] += gi * o;
    }
  float t0 = 0.f, t1 = 0.f;
  for (; i < n; ++i) {
    const float gi = (relu && out[i] <= 0.f) ? 0.f : g[i];
    t0 += gi;
    t1 += gi * out[i];
  }
  for (int l = 0; l < 16; ++l) {
    t0 += s0[l];
    t1 += s1[l];
  }
  *sb += t0;
  *ss += t1;
  if (gx) {
    if (relu)
      for (long k = 0; k < n; ++k) gx[k] = out[k] <= 0.f ? 0.f : g[k] * m;
    else
      for (long k = 0; k < n; ++k) gx[k] = g[k] * m;
  }
}

SRF_CLONES void afn_row(const float* h, const float* rs, const float* rc, float* o, long n, float eps, bool inverse) {
  if (!inverse)
    for (long i = 0; i < n; ++i) o[i] = (h[i] + rs[i]) * (fsig(rc[i] + 2.f) + eps);
  else
    for (long i = 0; i < n; ++i) o[i] = h[i] / (fsig(rc[i] + 2.f) + eps) - rs[i];
}

SRF_CLONES void afn_bwd_row(const float* __restrict__ g, const float* __restrict__ h, const float* __restrict__ rs,
                            const float* __restrict__ rc, float* __restrict__ gh, float* __restrict__ grs,
                            float* __restrict__ grc, long n, float eps, bool inverse) {
  if (!inverse) {
    if (gh)
      for (long i = 0; i < n; ++i) gh[i] = g[i] * (fsig(rc[i] + 2.f) + eps);
    if (grs)
      for (long i = 0; i < n; ++i) {
        const float s = fsig(rc[i] + 2.f);
        grs[i] += g[i] * (s + eps);
        grc[i] += g[i] * (h[i] + rs[i]) * s * (1.f - s);
      }
  } else {
    if (gh)
      for (long i = 0; i < n; ++i) gh[i] = g[i] / (fsig(rc[i] + 2.f) + eps);
    if (grs)
      for (long i = 0; i < n; ++i) {
        const float s = fsig(rc[i] + 2.f);
        const float scale = s + eps;
        grs[i] -= g[i];
        grc[i] += (-g[i] * h[i] / (scale * scale)) * s * (1.f - s);
      }
  }
}

SRF_CLONES double logscale_row(const float* rc, long n, float eps) {
  float s = 0.f;
  for (long i = 0; i < n; ++i) s += std::log(fsig(rc[i] + 2.f) + eps);
  return s;
}

SRF_CLONES void logscale_bwd_row(const float* rc, float* gr, long n, float g, float eps) {
  for (long i = 0; i < n; ++i) {
    const float s = fsig(rc[i] + 2.f);
    gr[i] = g * s * (1.f - s) / (s + eps);
  }
}

SRF_CLONES void leaky_range(const float* x, float* o, long i0, long i1, float slope) {
  for (long i = i0; i < i1; ++i) o[i] = x[i] > 0.f ? x[i] : x[i] * slope;
}

SRF_CLONES void leaky_bwd_range(const float* g, const float* x, float* gx, long i0, long i1, float slope, bool acc) {
  if (acc)
    for (long i = i0; i < i1; ++i) gx[i] += x[i] > 0.f ? g[i] : g[i] * slope;
  else
    for (long i = i0; i < i1; ++i) gx[i] = x[i] > 0.f ? g[i] : g[i] * slope;
}

SRF_CLONES void axpy_range(float a, const float* x, const float* y, float* o, long i0, long i1) {
  for (long i = i0; i < i1; ++i) o[i] = a * x[i] + y[i];
}

SRF_CLONES void add_range(const float* x, float* o, long i0, long i1) {
  for (long i = i0; i < i1; ++i) o[i] += x[i];
}

SRF_CLONES void adam_range(float* p, const float* g, float* m, float* v, long i0, long i1, double b1, double b2,
                           double step, double bc2s, double eps, double wd) {
  // the same double-precision arithmetic as the TypeScript step (bit-identical results)
  for (long i = i0; i < i1; ++i) {
    const double gi = wd != 0.0 ? (double)g[i] + wd * (double)p[i] : (double)g[i];
    const double mi = b1 * (double)m[i] + (1.0 - b1) * gi;
    const double vi = b2 * (double)v[i] + (1.0 - b2) * gi * gi;
    m[i] = (float)mi;
    v[i] = (float)vi;
    p[i] = (float)((double)p[i] - (step * mi) / (std::sqrt(vi) / bc2s + eps));
  }
}

}  // namespace

void ew_channel_affine(const ChanJob& j, const float* bias, const float* mul, bool relu) {
  auto body = [&](int c) {
    for (int b = 0; b < j.n; ++b) {
      const long o = ((long)b * j.c + c) * j.hw;
      affine_row(j.x + o, j.out + o, j.hw, bias[c], mul[c], relu);
    }
  };
  per_channel(j.c, (long)j.n * j.c * j.hw, body);
}

void ew_channel_affine_bwd(const ChanJob& j, const float* g, const float* mul, bool relu, float* gx, double* sb,
                           double* ss) {
  auto body = [&](int c) {
    double a = 0, b2 = 0;
    for (int b = 0; b < j.n; ++b) {
      const long o = ((long)b * j.c + c) * j.hw;
      affine_bwd_row(g + o, j.out + o, gx ? gx + o : nullptr, j.hw, mul[c], relu, &a, &b2);
    }
    sb[c] = a;
    ss[c] = b2;
  };
  per_channel(j.c, (long)j.n * j.c * j.hw, body);
}

void ew_affine_from_net(const ChanJob& j, const float* raw, int rb, float eps, bool inverse) {
  auto body = [&](int c) {
    for (int b = 0; b < j.n; ++b) {
      const long o = ((long)b * j.c + c) * j.hw;
      const long rs = ((long)rb * b * 2 * j.c + 2L * c) * j.hw;
      afn_row(j.x + o, raw + rs, raw + rs + j.hw, j.out + o, j.hw, eps, inverse);
    }
  };
  per_channel(j.c, (long)j.n * j.c * j.hw, body);
}

void ew_affine_from_net_bwd(const ChanJob& j, const float* raw, int rb, float eps, bool inverse, const float* g,
                            float* gh, float* gr) {
  // per channel: batches in order, so a broadcast raw (rb = 0) accumulates deterministically
  auto body = [&](int c) {
    for (int b = 0; b < j.n; ++b) {
      const long o = ((long)b * j.c + c) * j.hw;
      const long rs = ((long)rb * b * 2 * j.c + 2L * c) * j.hw;
      afn_bwd_row(g + o, j.x + o, raw + rs, raw + rs + j.hw, gh ? gh + o : nullptr, gr ? gr + rs : nullptr,
                  gr ? gr + rs + j.hw : nullptr, j.hw, eps, inverse);
    }
  };
  per_channel(j.c, (long)j.n * j.c * j.hw, body);
}

void ew_sum_log_scale(const float* raw, int n, int c, long hw, float eps, double* out) {
  // partial[b*c + ch] then summed over ch in order
  double* part = static_cast<double*>(std::malloc(sizeof(double) * (size_t)n * c));
  if (!part) out_of_memory();
  auto body = [&](int ch) {
    for (int b = 0; b < n; ++b) part[(long)b * c + ch] = logscale_row(raw + ((long)b * 2 * c + 2L * ch + 1) * hw, hw, eps);
  };
  per_channel(c, (long)n * c * hw, body);
  for (int b = 0; b < n; ++b) {
    double s = 0;
    for (int ch = 0; ch < c; ++ch) s += part[(long)b * c + ch];
    out[b] = s;
  }
  std::free(part);
}

void ew_sum_log_scale_bwd(const float* raw, int n, int c, long hw, float eps, const float* g, float* gr) {
  auto body = [&](int ch) {
    for (int b = 0; b < n; ++b) {
      const long rc = ((long)b * 2 * c + 2L * ch + 1) * hw;
      logscale_bwd_row(raw + rc, gr + rc, hw, g[b], eps);
    }
  };
  per_channel(c, (long)n * c * hw, body);
}

void ew_leaky_relu(const float* x, float* out, long n, float slope) {
  auto body = [&](long i0, long i1) { leaky_range(x, out, i0, i1, slope); };
  per_range(n, body);
}

void ew_leaky_relu_bwd(const float* g, const float* x, float* gx, long n, float slope, bool acc) {
  auto body = [&](long i0, long i1) { leaky_bwd_range(g, x, gx, i0, i1, slope, acc); };
  per_range(n, body);
}

void ew_axpy(float a, const float* x, const float* y, float* out, long n) {
  auto body = [&](long i0, long i1) { axpy_range(a, x, y, out, i0, i1); };
  per_range(n, body);
}

void ew_add_into(const float* x, float* out, long n) {
  auto body = [&](long i0, long i1) { add_range(x, out, i0, i1); };
  per_range(n, body);
}

void ew_adam(float* p, const float* g, float* m, float* v, long n, double b1, double b2, double step, double bc2s,
             double eps, double wd) {
  auto body = [&](long i0, long i1) { adam_range(p, g, m, v, i0, i1, b1, b2, step, bc2s, eps, wd); };
  per_range(n, body);
}

}  // namespace srf
