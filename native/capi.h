// The srflow kernels' C API: the one set of entry points that both the Node addon (addon.cc, which
// validates the JavaScript arguments and calls these) and the WebAssembly module (whose exports
// these are) call. Arguments are trusted: lengths and geometry are checked by the caller.
// Convolutions are stride 1, dilation 1, zero padding `pad` on every side, NCHW / OIHW:
// oh = h + 2*pad - kh + 1, ow = w + 2*pad - kw + 1. Booleans are ints (0 / non-zero).
#pragma once
#include <cstddef>

#if defined(__wasm__)
#define SRF_API(name) extern "C" __attribute__((export_name(#name), used))
#else
#define SRF_API(name) extern "C"
#endif

// Instruction-set levels: 0 = portable C++ (auto-vectorised); native x86: 1 = AVX2+FMA,
// 2 = AVX-512; wasm: 1 = SIMD-128.
SRF_API(srf_simd_best) int srf_simd_best(void);  // the highest level this CPU / module runs
// Selects a level (-1: the best; higher ones are capped at the best); returns the level in use.
SRF_API(srf_set_simd) int srf_set_simd(int level);
SRF_API(srf_simd_level) int srf_simd_level(void);  // the level in use (the best until set)
const char* srf_simd_name(int level);               // "scalar", "avx2", "avx512", "simd128"

SRF_API(srf_num_threads) int srf_num_threads(void);
// Native: n < 1 = all cores (SRFLOW_THREADS). Wasm: the threads taking part (started workers + 1).
SRF_API(srf_set_num_threads) int srf_set_num_threads(int n);

// Winograd F(4x4, 3x3) for 3x3 stride-1 pad-1 convolutions: 1 = where faster, 0 = never, 2 = always;
// srf_set_winograd(-1) goes back to SRFLOW_WINOGRAD's setting (wasm: never used, always 0).
int srf_winograd_mode(void);
void srf_set_winograd(int mode);

// out = conv(x, w) + bias (bias may be null)
SRF_API(srf_conv2d)
void srf_conv2d(const float* x, const float* w, const float* bias, int n, int cin, int h, int wd, int cout, int kh,
                int kw, int pad, float* out);
// gx (+)= dL/dx given gy = dL/dout (a transposed convolution)
SRF_API(srf_conv2d_backward_data)
void srf_conv2d_backward_data(const float* gy, const float* w, int n, int cin, int h, int wd, int cout, int kh, int kw,
                              int pad, float* gx, int accumulate);
// gw (+)= dL/dw, gb (+)= dL/dbias (gb may be null)
SRF_API(srf_conv2d_backward_filter)
void srf_conv2d_backward_filter(const float* gy, const float* x, int n, int cin, int h, int wd, int cout, int kh,
                                int kw, int pad, float* gw, float* gb, int accumulate);
// out[m,n] (+)= op(a)[m,k] * op(b)[k,n], row-major; op = transpose when ta / tb
SRF_API(srf_matmul)
void srf_matmul(const float* a, const float* b, int m, int k, int n, int ta, int tb, float* out, int accumulate);

// Element-wise and per-channel kernels (elementwise.cc; shapes in common.h). x, out: n x c x hw.
SRF_API(srf_channel_affine)
void srf_channel_affine(const float* x, int n, int c, long hw, const float* bias, const float* mul, int relu,
                        float* out);
SRF_API(srf_channel_affine_backward)
void srf_channel_affine_backward(const float* g, const float* out, int n, int c, long hw, const float* mul, int relu,
                                 float* gx, double* sb, double* ss);
SRF_API(srf_affine_from_net)
void srf_affine_from_net(const float* h, const float* raw, int n, int c, long hw, int rb, float eps, int inverse,
                         float* out);
SRF_API(srf_affine_from_net_backward)
void srf_affine_from_net_backward(const float* g, const float* h, const float* raw, int n, int c, long hw, int rb,
                                  float eps, int inverse, float* gh, float* gr);
SRF_API(srf_sum_log_scale)
void srf_sum_log_scale(const float* raw, int n, int c, long hw, float eps, double* out);
SRF_API(srf_sum_log_scale_backward)
void srf_sum_log_scale_backward(const float* raw, int n, int c, long hw, float eps, const float* g, float* gr);
SRF_API(srf_leaky_relu) void srf_leaky_relu(const float* x, long len, float slope, float* out);
SRF_API(srf_leaky_relu_backward)
void srf_leaky_relu_backward(const float* g, const float* x, long len, float slope, float* gx, int accumulate);
SRF_API(srf_axpy) void srf_axpy(float alpha, const float* x, const float* y, long len, float* out);
SRF_API(srf_add_into) void srf_add_into(const float* x, long len, float* out);
SRF_API(srf_adam)
void srf_adam(float* p, const float* g, float* m, float* v, long len, double beta1, double beta2, double step_size,
              double bc2sqrt, double eps, double weight_decay);
