// Shared declarations for the srflow native kernels: job descriptions, the thread pool,
// per-thread scratch memory and the per-ISA entry points.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace srf {

// A stride-1 2-D convolution computed as out[b, m, :, :] = sum_k A[m, k] * col_k(x[b]) where
// col_k is the im2col row of k = (ci, ky, kx). Used for the forward pass (A = W) and for the
// backward-data pass (a transposed convolution: A = W transposed and flipped, x = gy).
struct ConvFwdJob {
  const float* x;  // n x cin x h x w
  int n, cin, h, w;
  int kh, kw, padh, padw;  // padding may be negative (backward-data of a 1x1 conv with pad > 0)
  int oh, ow;
  int M;              // output channels
  const float* W;     // forward weights [cout][cin_fwd][kh][kw]
  bool flip;          // false: A[m][k] = W[m][k]; true (backward-data): A[ci][(co,ky,kx)] = W[co][ci][kh-1-ky][kw-1-kx]
  int wcin;           // cin of the forward weights (== M when flip)
  const float* bias;  // per output channel, or null
  float* out;         // n x M x oh x ow
  bool accumulate;
};

// gw[co][ci][ky][kx] (+)= sum_{b,y,x} gy[b,co,y,x] * xpad[b,ci,y+ky,x+kx]; gb[co] (+)= sum gy.
struct ConvBwfJob {
  const float* gy;  // n x cout x oh x ow
  const float* x;   // n x cin x h x w
  int n, cin, h, w, cout, kh, kw, pad, oh, ow;
  float* gw;
  float* gb;  // or null
  bool accumulate;
};

// out[m,n] (+)= op(a)[m,k] * op(b)[k,n] (row-major).
struct GemmJob {
  const float* a;
  const float* b;
  int m, k, n;
  bool ta, tb;
  float* out;
  bool accumulate;
};

// ---- element-wise and per-channel kernels (elementwise.cc) ----
// x and out are n x c x hw (NCHW with hw = H*W).
struct ChanJob {
  const float* x;
  float* out;
  int n, c;
  long hw;
};
void ew_channel_affine(const ChanJob& j, const float* bias, const float* mul, bool relu);
// j.out is the forward output; sb[c] = sum of g, ss[c] = sum of g*out (after the ReLU mask); gx may be null.
void ew_channel_affine_bwd(const ChanJob& j, const float* g, const float* mul, bool relu, float* gx, double* sb, double* ss);
// raw: (n or 1) x 2c x hw, shift = raw[:, 0::2], scale = sigmoid(raw[:, 1::2] + 2) + eps; rb = 1 or 0 (broadcast).
void ew_affine_from_net(const ChanJob& j, const float* raw, int rb, float eps, bool inverse);
// j.x is the forward input h; gh (overwritten) and gr (accumulated) may be null.
void ew_affine_from_net_bwd(const ChanJob& j, const float* raw, int rb, float eps, bool inverse, const float* g, float* gh, float* gr);
void ew_sum_log_scale(const float* raw, int n, int c, long hw, float eps, double* out);
void ew_sum_log_scale_bwd(const float* raw, int n, int c, long hw, float eps, const float* g, float* gr);
void ew_leaky_relu(const float* x, float* out, long n, float slope);
void ew_leaky_relu_bwd(const float* g, const float* x, float* gx, long n, float slope, bool acc);
void ew_axpy(float a, const float* x, const float* y, float* out, long n);
void ew_add_into(const float* x, float* out, long n);
void ew_adam(float* p, const float* g, float* m, float* v, long n, double b1, double b2, double step, double bc2s, double eps, double wd);

// ---- thread pool (pool.cc: native and wasm) ----
// Runs fn(ctx, chunk, tid) for chunk in [0, nchunks) on the pool (the calling thread takes
// part as tid 0), handing chunks out dynamically. Blocks until all chunks are done.
constexpr int kMaxThreads = 256;
typedef void (*ChunkFn)(void* ctx, int chunk, int tid);
void parallel_run(int nchunks, ChunkFn fn, void* ctx);
int num_threads();
void set_num_threads(int n);

// Out of memory: native aborts; wasm traps (a RuntimeError in JS).
[[noreturn]] inline void out_of_memory() {
#if defined(__wasm__)
  __builtin_trap();
#else
  std::abort();
#endif
}

// ---- per-thread grow-only scratch (pool.cc) ----
enum ScratchSlot { SLOT_A = 0, SLOT_B = 1, SLOT_C = 2, SLOT_X = 3, SLOT_G = 4, SLOT_S = 5, NUM_SLOTS = 6 };
// 64-byte aligned buffer of at least nfloats floats owned by the calling thread; contents are
// preserved only until the next call with the same slot on the same thread.
float* scratch(int slot, size_t nfloats);

// Winograd F(4x4, 3x3) for 3x3 stride-1 pad-1 convolutions (forward and backward-data): 1 =
// where it is faster (large enough), 0 = never (SRFLOW_WINOGRAD=0), 2 = for every such
// convolution (tests). set_winograd(-1) goes back to the environment's setting.
int winograd_mode();
void set_winograd(int mode);

// Integer tuning knob: def, the ISA's setting. A build for tuning experiments (SRFLOW_TUNING defined:
// `SRFLOW_TUNING=1 npm run build`, docs/PERFORMANCE.md) reads SRFLOW_TUNE_<name> from
// the environment instead, once per call site (pool.cc); a normal build has no knobs, only constants.
// The wasm module has no environment: its tune() is pool.cc's out-of-line `return def` (with the
// blocking as compile-time constants clang 14 made its direct convolutions 5 – 14 % slower).
#if defined(SRFLOW_TUNING) || defined(__wasm__)
int tune(const char* name, int def);
#else
constexpr int tune(const char*, int def) { return def; }
#endif

// ---- per-ISA entry points ----
struct IsaImpl {
  const char* name;
  void (*conv_fwd)(const ConvFwdJob&);
  void (*conv_bwf)(const ConvBwfJob&);
  void (*gemm)(const GemmJob&);
};
extern const IsaImpl isa_scalar;
#if defined(__wasm__)
extern const IsaImpl isa_simd128;  // wasm/isa_simd128.cc
// The threaded wasm module: a worker's loop on the pool (pool.cc), entered by srf_worker_main.
void pool_worker_loop(int tid);
#endif
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(SRF_NO_X86)
extern const IsaImpl isa_avx2;
extern const IsaImpl isa_avx512;
#define SRF_X86 1
#endif

// The functions between SRF_TARGET_BEGIN("avx2,fma") and SRF_TARGET_END are compiled for that
// target (the x86 ISA files; selected at run time).
#define SRF_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define SRF_TARGET_BEGIN(t) SRF_PRAGMA(clang attribute push(__attribute__((target(t))), apply_to = function))
#define SRF_TARGET_END SRF_PRAGMA(clang attribute pop)
#else
#define SRF_TARGET_BEGIN(t) SRF_PRAGMA(GCC push_options) SRF_PRAGMA(GCC target(t))
#define SRF_TARGET_END SRF_PRAGMA(GCC pop_options)
#endif

}  // namespace srf

#ifdef SRF_PROF
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
namespace srf {
#ifdef SRF_PROF_CPU
}  // namespace srf
#include <ctime>
namespace srf {
inline double prof_now() { timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
#else
inline double prof_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
#endif
struct ProfTab {
  std::map<std::string, std::pair<double, long>> m;
  ~ProfTab() { for (auto& kv : m) std::fprintf(stderr, "prof %-10s %8.3f ms avg (%ld)\n", kv.first.c_str(), kv.second.first / kv.second.second * 1e3, kv.second.second); }
};
inline void prof_add(const char* n, double dt) { static ProfTab t; auto& e = t.m[n]; e.first += dt; e.second++; }
}  // namespace srf
#endif
