// N-API bindings for the srflow native kernels. All calls are synchronous: the JS thread takes
// part in the computation and returns when the pool is done.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"

namespace {

using srf::IsaImpl;

const IsaImpl* g_isa = nullptr;

int best_level() {  // 2 = avx512, 1 = avx2, 0 = scalar
#if defined(SRF_X86) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
  return 0;
}

int parse_level(const std::string& s) {
  if (s == "avx512") return 2;
  if (s == "avx2") return 1;
  if (s == "scalar" || s == "none" || s == "portable") return 0;
  return -1;
}

const IsaImpl* isa_for(int level) {
#if defined(SRF_X86)
  if (level >= 2) return &srf::isa_avx512;
  if (level == 1) return &srf::isa_avx2;
#endif
  (void)level;
  return &srf::isa_scalar;
}

void select_isa(int want) {
  const int best = best_level();
  g_isa = isa_for(want < 0 || want > best ? best : want);
}

const IsaImpl& isa() {
  if (!g_isa) {
    const char* e = std::getenv("SRFLOW_SIMD");
    select_isa(e && *e ? parse_level(e) : -1);
  }
  return *g_isa;
}

// A typed-array argument of the expected element type and length (or null when nullable).
template <class T>
T* typed(const Napi::CallbackInfo& info, size_t i, const char* what, size_t expect, napi_typedarray_type ty,
                              const char* tyname, bool nullable) {
  Napi::Value v = info[i];
  if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != ty)
    throw Napi::TypeError::New(info.Env(), std::string("Expected a ") + tyname + " for " + what);
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  if (a.ElementLength() != expect)
    throw Napi::RangeError::New(info.Env(), std::string("Expected ") + std::to_string(expect) + " elements for " +
                                                what + " but received " + std::to_string(a.ElementLength()));
  return a.Data();
}

float* f32(const Napi::CallbackInfo& info, size_t i, const char* what, size_t expect, bool nullable = false) {
  return typed<float>(info, i, what, expect, napi_float32_array, "Float32Array", nullable);
}

int int_arg(const Napi::CallbackInfo& info, size_t i, const char* what, int min) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("Expected a number for ") + what);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min) || d > 2147483647.0 || d != static_cast<double>(static_cast<long long>(d)))
    throw Napi::RangeError::New(info.Env(), std::string("Invalid ") + what);
  return static_cast<int>(d);
}

struct Geom {
  int n, cin, h, w, cout, kh, kw, pad, oh, ow;
};

Geom geom(const Napi::CallbackInfo& info, size_t i) {
  Geom g;
  g.n = int_arg(info, i, "n", 1);
  g.cin = int_arg(info, i + 1, "cin", 1);
  g.h = int_arg(info, i + 2, "h", 1);
  g.w = int_arg(info, i + 3, "w", 1);
  g.cout = int_arg(info, i + 4, "cout", 1);
  g.kh = int_arg(info, i + 5, "kh", 1);
  g.kw = int_arg(info, i + 6, "kw", 1);
  g.pad = int_arg(info, i + 7, "pad", 0);
  g.oh = g.h + 2 * g.pad - g.kh + 1;
  g.ow = g.w + 2 * g.pad - g.kw + 1;
  if (g.oh < 1 || g.ow < 1) throw Napi::RangeError::New(info.Env(), "convolution output would be empty");
  return g;
}

size_t sz(long long a, long long b = 1, long long c = 1, long long d = 1) { return (size_t)(a * b * c * d); }

// conv2d(x, w, bias|null, n, cin, h, w, cout, kh, kw, pad, out)
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  Geom g = geom(info, 3);
  srf::ConvFwdJob j;
  j.x = f32(info, 0, "x", sz(g.n, g.cin, g.h, g.w));
  j.W = f32(info, 1, "w", sz(g.cout, g.cin, g.kh, g.kw));
  j.bias = f32(info, 2, "bias", sz(g.cout), true);
  j.out = f32(info, 11, "out", sz(g.n, g.cout, g.oh, g.ow));
  j.n = g.n;
  j.cin = g.cin;
  j.h = g.h;
  j.w = g.w;
  j.kh = g.kh;
  j.kw = g.kw;
  j.padh = g.pad;
  j.padw = g.pad;
  j.oh = g.oh;
  j.ow = g.ow;
  j.M = g.cout;
  j.flip = false;
  j.wcin = g.cin;
  j.accumulate = false;
  isa().conv_fwd(j);
  return info.Env().Undefined();
}

// conv2dBackwardData(gy, w, n, cin, h, w, cout, kh, kw, pad, gx, accumulate)
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  Geom g = geom(info, 2);
  srf::ConvFwdJob j;
  j.x = f32(info, 0, "gy", sz(g.n, g.cout, g.oh, g.ow));
  j.W = f32(info, 1, "w", sz(g.cout, g.cin, g.kh, g.kw));
  j.out = f32(info, 10, "gx", sz(g.n, g.cin, g.h, g.w));
  j.accumulate = info[11].ToBoolean().Value();
  j.bias = nullptr;
  // Transposed convolution of gy with flipped, transposed weights: padding kh-1-pad.
  j.n = g.n;
  j.cin = g.cout;
  j.h = g.oh;
  j.w = g.ow;
  j.kh = g.kh;
  j.kw = g.kw;
  j.padh = g.kh - 1 - g.pad;
  j.padw = g.kw - 1 - g.pad;
  j.oh = g.h;
  j.ow = g.w;
  j.M = g.cin;
  j.flip = true;
  j.wcin = g.cin;
  isa().conv_fwd(j);
  return info.Env().Undefined();
}

// conv2dBackwardFilter(gy, x, n, cin, h, w, cout, kh, kw, pad, gw, gb|null, accumulate)
Napi::Value Conv2dBackwardFilter(const Napi::CallbackInfo& info) {
  Geom g = geom(info, 2);
  srf::ConvBwfJob j;
  j.gy = f32(info, 0, "gy", sz(g.n, g.cout, g.oh, g.ow));
  j.x = f32(info, 1, "x", sz(g.n, g.cin, g.h, g.w));
  j.gw = f32(info, 10, "gw", sz(g.cout, g.cin, g.kh, g.kw));
  j.gb = f32(info, 11, "gb", sz(g.cout), true);
  j.accumulate = info[12].ToBoolean().Value();
  j.n = g.n;
  j.cin = g.cin;
  j.h = g.h;
  j.w = g.w;
  j.cout = g.cout;
  j.kh = g.kh;
  j.kw = g.kw;
  j.pad = g.pad;
  j.oh = g.oh;
  j.ow = g.ow;
  isa().conv_bwf(j);
  return info.Env().Undefined();
}

// matmul(a, b, m, k, n, transA, transB, out, accumulate)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  srf::GemmJob j;
  j.m = int_arg(info, 2, "m", 0);
  j.k = int_arg(info, 3, "k", 0);
  j.n = int_arg(info, 4, "n", 0);
  j.ta = info[5].ToBoolean().Value();
  j.tb = info[6].ToBoolean().Value();
  j.a = f32(info, 0, "a", sz(j.m, j.k));
  j.b = f32(info, 1, "b", sz(j.k, j.n));
  j.out = f32(info, 7, "out", sz(j.m, j.n));
  j.accumulate = info[8].ToBoolean().Value();
  isa().gemm(j);
  return info.Env().Undefined();
}

// ---- element-wise kernels (elementwise.cc) ----
double* f64(const Napi::CallbackInfo& info, size_t i, const char* what, size_t expect) {
  return typed<double>(info, i, what, expect, napi_float64_array, "Float64Array", false);
}

double num_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("Expected a number for ") + what);
  return info[i].As<Napi::Number>().DoubleValue();
}

size_t len_of(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string("Expected a Float32Array for ") + what);
  return v.As<Napi::Float32Array>().ElementLength();
}

// chan(info, i): n, c, hw at info[i..i+2]
srf::ChanJob chan(const Napi::CallbackInfo& info, size_t i) {
  srf::ChanJob j{};
  j.n = int_arg(info, i, "n", 1);
  j.c = int_arg(info, i + 1, "c", 1);
  j.hw = int_arg(info, i + 2, "hw", 1);
  return j;
}

// channelAffine(x, n, c, hw, bias, mul, relu, out)
Napi::Value ChannelAffine(const Napi::CallbackInfo& info) {
  srf::ChanJob j = chan(info, 1);
  const size_t total = sz(j.n, j.c, j.hw);
  j.x = f32(info, 0, "x", total);
  const float* bias = f32(info, 4, "bias", sz(j.c));
  const float* mul = f32(info, 5, "mul", sz(j.c));
  j.out = f32(info, 7, "out", total);
  srf::ew_channel_affine(j, bias, mul, info[6].ToBoolean().Value());
  return info.Env().Undefined();
}

// channelAffineBackward(g, out, n, c, hw, mul, relu, gx|null, sb(f64 c), ss(f64 c))
Napi::Value ChannelAffineBackward(const Napi::CallbackInfo& info) {
  srf::ChanJob j = chan(info, 2);
  const size_t total = sz(j.n, j.c, j.hw);
  const float* g = f32(info, 0, "g", total);
  j.out = f32(info, 1, "out", total);
  const float* mul = f32(info, 5, "mul", sz(j.c));
  float* gx = f32(info, 7, "gx", total, true);
  double* sb = f64(info, 8, "sb", sz(j.c));
  double* ss = f64(info, 9, "ss", sz(j.c));
  srf::ew_channel_affine_bwd(j, g, mul, info[6].ToBoolean().Value(), gx, sb, ss);
  return info.Env().Undefined();
}

// affineFromNet(h, raw, n, c, hw, rb, eps, inverse, out)
Napi::Value AffineFromNet(const Napi::CallbackInfo& info) {
  srf::ChanJob j = chan(info, 2);
  const int rb = int_arg(info, 5, "rb", 0);
  const size_t total = sz(j.n, j.c, j.hw);
  j.x = f32(info, 0, "h", total);
  const float* raw = f32(info, 1, "raw", sz(rb ? j.n : 1, 2 * j.c, j.hw));
  j.out = f32(info, 8, "out", total);
  srf::ew_affine_from_net(j, raw, rb ? 1 : 0, (float)num_arg(info, 6, "eps"), info[7].ToBoolean().Value());
  return info.Env().Undefined();
}

// affineFromNetBackward(g, h, raw, n, c, hw, rb, eps, inverse, gh|null, gr|null)
Napi::Value AffineFromNetBackward(const Napi::CallbackInfo& info) {
  srf::ChanJob j = chan(info, 3);
  const int rb = int_arg(info, 6, "rb", 0);
  const size_t total = sz(j.n, j.c, j.hw);
  const float* g = f32(info, 0, "g", total);
  j.x = f32(info, 1, "h", total);
  const size_t rsize = sz(rb ? j.n : 1, 2 * j.c, j.hw);
  const float* raw = f32(info, 2, "raw", rsize);
  float* gh = f32(info, 9, "gh", total, true);
  float* gr = f32(info, 10, "gr", rsize, true);
  srf::ew_affine_from_net_bwd(j, raw, rb ? 1 : 0, (float)num_arg(info, 7, "eps"), info[8].ToBoolean().Value(), g, gh, gr);
  return info.Env().Undefined();
}

// sumLogScale(raw, n, c, hw, eps, out(f64 n)): c = half the channels of raw
Napi::Value SumLogScale(const Napi::CallbackInfo& info) {
  srf::ChanJob j = chan(info, 1);
  const float* raw = f32(info, 0, "raw", sz(j.n, 2 * j.c, j.hw));
  double* out = f64(info, 5, "out", sz(j.n));
  srf::ew_sum_log_scale(raw, j.n, j.c, j.hw, (float)num_arg(info, 4, "eps"), out);
  return info.Env().Undefined();
}

// sumLogScaleBackward(raw, n, c, hw, eps, g(n), gr): writes the scale channels of gr
Napi::Value SumLogScaleBackward(const Napi::CallbackInfo& info) {
  srf::ChanJob j = chan(info, 1);
  const size_t rsize = sz(j.n, 2 * j.c, j.hw);
  const float* raw = f32(info, 0, "raw", rsize);
  const float* g = f32(info, 5, "g", sz(j.n));
  float* gr = f32(info, 6, "gr", rsize);
  srf::ew_sum_log_scale_bwd(raw, j.n, j.c, j.hw, (float)num_arg(info, 4, "eps"), g, gr);
  return info.Env().Undefined();
}

// leakyRelu(x, slope, out)
Napi::Value LeakyRelu(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 0, "x");
  srf::ew_leaky_relu(f32(info, 0, "x", n), f32(info, 2, "out", n), (long)n, (float)num_arg(info, 1, "slope"));
  return info.Env().Undefined();
}

// leakyReluBackward(g, x, slope, gx, accumulate)
Napi::Value LeakyReluBackward(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 0, "g");
  srf::ew_leaky_relu_bwd(f32(info, 0, "g", n), f32(info, 1, "x", n), f32(info, 3, "gx", n), (long)n,
                         (float)num_arg(info, 2, "slope"), info[4].ToBoolean().Value());
  return info.Env().Undefined();
}

// axpy(alpha, x, y, out): out = alpha*x + y
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 1, "x");
  srf::ew_axpy((float)num_arg(info, 0, "alpha"), f32(info, 1, "x", n), f32(info, 2, "y", n), f32(info, 3, "out", n), (long)n);
  return info.Env().Undefined();
}

// addInto(x, out): out += x
Napi::Value AddInto(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 0, "x");
  srf::ew_add_into(f32(info, 0, "x", n), f32(info, 1, "out", n), (long)n);
  return info.Env().Undefined();
}

// adam(p, g, m, v, beta1, beta2, stepSize, bc2sqrt, eps, weightDecay)
Napi::Value Adam(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 0, "p");
  srf::ew_adam(f32(info, 0, "p", n), f32(info, 1, "g", n), f32(info, 2, "m", n), f32(info, 3, "v", n), (long)n,
               num_arg(info, 4, "beta1"), num_arg(info, 5, "beta2"), num_arg(info, 6, "stepSize"),
               num_arg(info, 7, "bc2sqrt"), num_arg(info, 8, "eps"), num_arg(info, 9, "weightDecay"));
  return info.Env().Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  srf::set_num_threads(int_arg(info, 0, "threads", 0));
  return Napi::Number::New(info.Env(), srf::num_threads());
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), srf::num_threads()); }

Napi::Value SimdLevel(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), isa().name); }

// setSimd(level): force 'avx512' | 'avx2' | 'scalar' (capped at what the CPU supports) or
// 'auto'; returns the level in use.
Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  std::string s = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string("auto");
  const int lv = s == "auto" ? -1 : parse_level(s);
  if (lv < 0 && s != "auto") throw Napi::RangeError::New(info.Env(), "unknown SIMD level " + s);
  select_isa(lv);
  return Napi::String::New(info.Env(), isa().name);
}

// setWinograd(true | false | 'always' | 'auto'): use the Winograd 3x3 convolution where it is
// faster / never / for every 3x3 stride-1 pad-1 convolution / as SRFLOW_WINOGRAD says (0 = never,
// always, else where faster). Returns the mode in use: true, false or 'always'.
Napi::Value WinoMode(Napi::Env env) {
  const int m = srf::winograd_mode();
  if (m == 2) return Napi::String::New(env, "always");
  return Napi::Boolean::New(env, m != 0);
}

Napi::Value SetWinograd(const Napi::CallbackInfo& info) {
  Napi::Value v = info[0];
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  if (v.IsBoolean()) srf::set_winograd(v.As<Napi::Boolean>().Value() ? 1 : 0);
  else if (s == "auto") srf::set_winograd(-1);
  else if (s == "always") srf::set_winograd(2);
  else throw Napi::TypeError::New(info.Env(), "setWinograd expects true, false, 'always' or 'auto'");
  return WinoMode(info.Env());
}

Napi::Value WinogradEnabled(const Napi::CallbackInfo& info) { return WinoMode(info.Env()); }

Napi::Value SupportedSimd(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  const int best = best_level();
  const char* names[] = {"scalar", "avx2", "avx512"};
  for (int i = 0; i <= best; ++i) a.Set(i, names[i]);
  return a;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2d", Napi::Function::New(env, Conv2d, "conv2d"));
  exports.Set("conv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData, "conv2dBackwardData"));
  exports.Set("conv2dBackwardFilter", Napi::Function::New(env, Conv2dBackwardFilter, "conv2dBackwardFilter"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("channelAffine", Napi::Function::New(env, ChannelAffine, "channelAffine"));
  exports.Set("channelAffineBackward", Napi::Function::New(env, ChannelAffineBackward, "channelAffineBackward"));
  exports.Set("affineFromNet", Napi::Function::New(env, AffineFromNet, "affineFromNet"));
  exports.Set("affineFromNetBackward", Napi::Function::New(env, AffineFromNetBackward, "affineFromNetBackward"));
  exports.Set("sumLogScale", Napi::Function::New(env, SumLogScale, "sumLogScale"));
  exports.Set("sumLogScaleBackward", Napi::Function::New(env, SumLogScaleBackward, "sumLogScaleBackward"));
  exports.Set("leakyRelu", Napi::Function::New(env, LeakyRelu, "leakyRelu"));
  exports.Set("leakyReluBackward", Napi::Function::New(env, LeakyReluBackward, "leakyReluBackward"));
  exports.Set("axpy", Napi::Function::New(env, Axpy, "axpy"));
  exports.Set("addInto", Napi::Function::New(env, AddInto, "addInto"));
  exports.Set("adam", Napi::Function::New(env, Adam, "adam"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("simdLevel", Napi::Function::New(env, SimdLevel, "simdLevel"));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd, "setSimd"));
  exports.Set("setWinograd", Napi::Function::New(env, SetWinograd, "setWinograd"));
  exports.Set("winogradEnabled", Napi::Function::New(env, WinogradEnabled, "winogradEnabled"));
  exports.Set("supportedSimd", Napi::Function::New(env, SupportedSimd, "supportedSimd"));
  return exports;
}

}  // namespace

NODE_API_MODULE(srflow_native, Init)
