// The C API (capi.h): builds the kernels' job descriptions (common.h) once for both callers, the
// Node addon and the WebAssembly module, and dispatches to the selected instruction set.
#include "capi.h"

#include "common.h"

using namespace srf;

namespace {

#if defined(__wasm__)
const IsaImpl* const kLevels[] = {&isa_scalar, &isa_simd128};
int detect_best() { return 1; }
#elif defined(SRF_X86)
const IsaImpl* const kLevels[] = {&isa_scalar, &isa_avx2, &isa_avx512};
int detect_best() {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
  return 0;
}
#else
const IsaImpl* const kLevels[] = {&isa_scalar};
int detect_best() { return 0; }
#endif

int g_level = -1;  // the level in use (-1: not chosen yet, i.e. the best)

const IsaImpl& isa() {
  if (g_level < 0) g_level = srf_simd_best();
  return *kLevels[g_level];
}

}  // namespace

int srf_simd_best(void) {
  static const int best = detect_best();
  return best;
}

int srf_set_simd(int level) {
  const int best = srf_simd_best();
  g_level = level < 0 || level > best ? best : level;
  return g_level;
}

int srf_simd_level(void) {
  (void)isa();
  return g_level;
}

const char* srf_simd_name(int level) {
  if (level <= 0) return "scalar";
#if defined(__wasm__)
  return "simd128";
#else
  return level == 1 ? "avx2" : "avx512";
#endif
}

int srf_num_threads(void) { return num_threads(); }

int srf_set_num_threads(int n) {
  set_num_threads(n);
  return num_threads();
}

int srf_winograd_mode(void) { return winograd_mode(); }
void srf_set_winograd(int mode) { set_winograd(mode); }

namespace {
// The direct convolution of x (n x cin x h x w) with kh x kw weights into m channels, padded by
// padh, padw. Backward-data is one too: of gy, with the weights flipped and transposed (flip).
ConvFwdJob conv_job(const float* x, const float* w, const float* bias, float* out, int n, int cin, int h, int wd,
                    int m, int kh, int kw, int padh, int padw, bool flip, int wcin, bool accumulate) {
  const int oh = h + 2 * padh - kh + 1, ow = wd + 2 * padw - kw + 1;
  // the fields in order: x, n, cin, h, w, kh, kw, padh, padw, oh, ow, M, W, flip, wcin, bias, out, accumulate
  return ConvFwdJob{x, n, cin, h, wd, kh, kw, padh, padw, oh, ow, m, w, flip, wcin, bias, out, accumulate};
}
}  // namespace

void srf_conv2d(const float* x, const float* w, const float* bias, int n, int cin, int h, int wd, int cout, int kh,
                int kw, int pad, float* out) {
  isa().conv_fwd(conv_job(x, w, bias, out, n, cin, h, wd, cout, kh, kw, pad, pad, false, cin, false));
}

void srf_conv2d_backward_data(const float* gy, const float* w, int n, int cin, int h, int wd, int cout, int kh, int kw,
                              int pad, float* gx, int accumulate) {
  // The transposed convolution of gy (n x cout x oh x ow) with the flipped, transposed weights:
  // padding kh-1-pad, back to h x wd.
  const int oh = h + 2 * pad - kh + 1, ow = wd + 2 * pad - kw + 1;
  isa().conv_fwd(conv_job(gy, w, nullptr, gx, n, cout, oh, ow, cin, kh, kw, kh - 1 - pad, kw - 1 - pad, true, cin,
                          accumulate != 0));
}

void srf_conv2d_backward_filter(const float* gy, const float* x, int n, int cin, int h, int wd, int cout, int kh,
                                int kw, int pad, float* gw, float* gb, int accumulate) {
  const int oh = h + 2 * pad - kh + 1, ow = wd + 2 * pad - kw + 1;
  // ConvBwfJob's fields in order: gy, x, n, cin, h, w, cout, kh, kw, pad, oh, ow, gw, gb, accumulate
  isa().conv_bwf(ConvBwfJob{gy, x, n, cin, h, wd, cout, kh, kw, pad, oh, ow, gw, gb, accumulate != 0});
}

void srf_matmul(const float* a, const float* b, int m, int k, int n, int ta, int tb, float* out, int accumulate) {
  isa().gemm(GemmJob{a, b, m, k, n, ta != 0, tb != 0, out, accumulate != 0});
}

namespace {
ChanJob chan(const float* x, float* out, int n, int c, long hw) { return ChanJob{x, out, n, c, hw}; }
}  // namespace

void srf_channel_affine(const float* x, int n, int c, long hw, const float* bias, const float* mul, int relu,
                        float* out) {
  ew_channel_affine(chan(x, out, n, c, hw), bias, mul, relu != 0);
}

void srf_channel_affine_backward(const float* g, const float* out, int n, int c, long hw, const float* mul, int relu,
                                 float* gx, double* sb, double* ss) {
  ew_channel_affine_bwd(chan(nullptr, const_cast<float*>(out), n, c, hw), g, mul, relu != 0, gx, sb, ss);
}

void srf_affine_from_net(const float* h, const float* raw, int n, int c, long hw, int rb, float eps, int inverse,
                         float* out) {
  ew_affine_from_net(chan(h, out, n, c, hw), raw, rb ? 1 : 0, eps, inverse != 0);
}

void srf_affine_from_net_backward(const float* g, const float* h, const float* raw, int n, int c, long hw, int rb,
                                  float eps, int inverse, float* gh, float* gr) {
  ew_affine_from_net_bwd(chan(h, nullptr, n, c, hw), raw, rb ? 1 : 0, eps, inverse != 0, g, gh, gr);
}

void srf_sum_log_scale(const float* raw, int n, int c, long hw, float eps, double* out) {
  ew_sum_log_scale(raw, n, c, hw, eps, out);
}

void srf_sum_log_scale_backward(const float* raw, int n, int c, long hw, float eps, const float* g, float* gr) {
  ew_sum_log_scale_bwd(raw, n, c, hw, eps, g, gr);
}

void srf_leaky_relu(const float* x, long len, float slope, float* out) { ew_leaky_relu(x, out, len, slope); }

void srf_leaky_relu_backward(const float* g, const float* x, long len, float slope, float* gx, int accumulate) {
  ew_leaky_relu_bwd(g, x, gx, len, slope, accumulate != 0);
}

void srf_axpy(float alpha, const float* x, const float* y, long len, float* out) { ew_axpy(alpha, x, y, out, len); }

void srf_add_into(const float* x, long len, float* out) { ew_add_into(x, out, len); }

void srf_adam(float* p, const float* g, float* m, float* v, long len, double beta1, double beta2, double step_size,
              double bc2sqrt, double eps, double weight_decay) {
  ew_adam(p, g, m, v, len, beta1, beta2, step_size, bc2sqrt, eps, weight_decay);
}
