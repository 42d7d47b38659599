// N-API bindings for the srflow native kernels. All calls are synchronous: the JS thread takes
// part in the computation and returns when the pool is done.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "capi.h"

namespace {

int parse_level(const std::string& s) {  // capi.h levels
  if (s == "avx512") return 2;
  if (s == "avx2") return 1;
  if (s == "scalar" || s == "none" || s == "portable") return 0;
  return -1;
}

// SRFLOW_SIMD=avx512|avx2|scalar caps the instruction set (read once, at the first kernel call).
void init_isa() {
  static bool done = false;
  if (done) return;
  done = true;
  const char* e = std::getenv("SRFLOW_SIMD");
  srf_set_simd(e && *e ? parse_level(e) : -1);
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

bool flag(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }

// conv2d(x, w, bias|null, n, cin, h, w, cout, kh, kw, pad, out)
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  const Geom g = geom(info, 3);
  const float* x = f32(info, 0, "x", sz(g.n, g.cin, g.h, g.w));
  const float* w = f32(info, 1, "w", sz(g.cout, g.cin, g.kh, g.kw));
  const float* bias = f32(info, 2, "bias", sz(g.cout), true);
  float* out = f32(info, 11, "out", sz(g.n, g.cout, g.oh, g.ow));
  init_isa();
  srf_conv2d(x, w, bias, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, out);
  return info.Env().Undefined();
}

// conv2dBackwardData(gy, w, n, cin, h, w, cout, kh, kw, pad, gx, accumulate)
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  const Geom g = geom(info, 2);
  const float* gy = f32(info, 0, "gy", sz(g.n, g.cout, g.oh, g.ow));
  const float* w = f32(info, 1, "w", sz(g.cout, g.cin, g.kh, g.kw));
  float* gx = f32(info, 10, "gx", sz(g.n, g.cin, g.h, g.w));
  init_isa();
  srf_conv2d_backward_data(gy, w, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, gx, flag(info, 11));
  return info.Env().Undefined();
}

// conv2dBackwardFilter(gy, x, n, cin, h, w, cout, kh, kw, pad, gw, gb|null, accumulate)
Napi::Value Conv2dBackwardFilter(const Napi::CallbackInfo& info) {
  const Geom g = geom(info, 2);
  const float* gy = f32(info, 0, "gy", sz(g.n, g.cout, g.oh, g.ow));
  const float* x = f32(info, 1, "x", sz(g.n, g.cin, g.h, g.w));
  float* gw = f32(info, 10, "gw", sz(g.cout, g.cin, g.kh, g.kw));
  float* gb = f32(info, 11, "gb", sz(g.cout), true);
  init_isa();
  srf_conv2d_backward_filter(gy, x, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.pad, gw, gb, flag(info, 12));
  return info.Env().Undefined();
}

// matmul(a, b, m, k, n, transA, transB, out, accumulate)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const int m = int_arg(info, 2, "m", 0);
  const int k = int_arg(info, 3, "k", 0);
  const int n = int_arg(info, 4, "n", 0);
  const float* a = f32(info, 0, "a", sz(m, k));
  const float* b = f32(info, 1, "b", sz(k, n));
  float* out = f32(info, 7, "out", sz(m, n));
  init_isa();
  srf_matmul(a, b, m, k, n, flag(info, 5), flag(info, 6), out, flag(info, 8));
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

struct Chan {
  int n, c, hw;
};

// chan(info, i): n, c, hw at info[i..i+2]
Chan chan(const Napi::CallbackInfo& info, size_t i) {
  return Chan{int_arg(info, i, "n", 1), int_arg(info, i + 1, "c", 1), int_arg(info, i + 2, "hw", 1)};
}

// channelAffine(x, n, c, hw, bias, mul, relu, out)
Napi::Value ChannelAffine(const Napi::CallbackInfo& info) {
  const Chan j = chan(info, 1);
  const size_t total = sz(j.n, j.c, j.hw);
  const float* x = f32(info, 0, "x", total);
  const float* bias = f32(info, 4, "bias", sz(j.c));
  const float* mul = f32(info, 5, "mul", sz(j.c));
  float* out = f32(info, 7, "out", total);
  srf_channel_affine(x, j.n, j.c, j.hw, bias, mul, flag(info, 6), out);
  return info.Env().Undefined();
}

// channelAffineBackward(g, out, n, c, hw, mul, relu, gx|null, sb(f64 c), ss(f64 c))
Napi::Value ChannelAffineBackward(const Napi::CallbackInfo& info) {
  const Chan j = chan(info, 2);
  const size_t total = sz(j.n, j.c, j.hw);
  const float* g = f32(info, 0, "g", total);
  const float* out = f32(info, 1, "out", total);
  const float* mul = f32(info, 5, "mul", sz(j.c));
  float* gx = f32(info, 7, "gx", total, true);
  double* sb = f64(info, 8, "sb", sz(j.c));
  double* ss = f64(info, 9, "ss", sz(j.c));
  srf_channel_affine_backward(g, out, j.n, j.c, j.hw, mul, flag(info, 6), gx, sb, ss);
  return info.Env().Undefined();
}

// affineFromNet(h, raw, n, c, hw, rb, eps, inverse, out)
Napi::Value AffineFromNet(const Napi::CallbackInfo& info) {
  const Chan j = chan(info, 2);
  const int rb = int_arg(info, 5, "rb", 0);
  const size_t total = sz(j.n, j.c, j.hw);
  const float* h = f32(info, 0, "h", total);
  const float* raw = f32(info, 1, "raw", sz(rb ? j.n : 1, 2 * j.c, j.hw));
  float* out = f32(info, 8, "out", total);
  srf_affine_from_net(h, raw, j.n, j.c, j.hw, rb, (float)num_arg(info, 6, "eps"), flag(info, 7), out);
  return info.Env().Undefined();
}

// affineFromNetBackward(g, h, raw, n, c, hw, rb, eps, inverse, gh|null, gr|null)
Napi::Value AffineFromNetBackward(const Napi::CallbackInfo& info) {
  const Chan j = chan(info, 3);
  const int rb = int_arg(info, 6, "rb", 0);
  const size_t total = sz(j.n, j.c, j.hw);
  const float* g = f32(info, 0, "g", total);
  const float* h = f32(info, 1, "h", total);
  const size_t rsize = sz(rb ? j.n : 1, 2 * j.c, j.hw);
  const float* raw = f32(info, 2, "raw", rsize);
  float* gh = f32(info, 9, "gh", total, true);
  float* gr = f32(info, 10, "gr", rsize, true);
  srf_affine_from_net_backward(g, h, raw, j.n, j.c, j.hw, rb, (float)num_arg(info, 7, "eps"), flag(info, 8), gh, gr);
  return info.Env().Undefined();
}

// sumLogScale(raw, n, c, hw, eps, out(f64 n)): c = half the channels of raw
Napi::Value SumLogScale(const Napi::CallbackInfo& info) {
  const Chan j = chan(info, 1);
  const float* raw = f32(info, 0, "raw", sz(j.n, 2 * j.c, j.hw));
  double* out = f64(info, 5, "out", sz(j.n));
  srf_sum_log_scale(raw, j.n, j.c, j.hw, (float)num_arg(info, 4, "eps"), out);
  return info.Env().Undefined();
}

// sumLogScaleBackward(raw, n, c, hw, eps, g(n), gr): writes the scale channels of gr
Napi::Value SumLogScaleBackward(const Napi::CallbackInfo& info) {
  const Chan j = chan(info, 1);
  const size_t rsize = sz(j.n, 2 * j.c, j.hw);
  const float* raw = f32(info, 0, "raw", rsize);
  const float* g = f32(info, 5, "g", sz(j.n));
  float* gr = f32(info, 6, "gr", rsize);
  srf_sum_log_scale_backward(raw, j.n, j.c, j.hw, (float)num_arg(info, 4, "eps"), g, gr);
  return info.Env().Undefined();
}

// leakyRelu(x, slope, out)
Napi::Value LeakyRelu(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 0, "x");
  srf_leaky_relu(f32(info, 0, "x", n), (long)n, (float)num_arg(info, 1, "slope"), f32(info, 2, "out", n));
  return info.Env().Undefined();
}

// leakyReluBackward(g, x, slope, gx, accumulate)
Napi::Value LeakyReluBackward(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 0, "g");
  srf_leaky_relu_backward(f32(info, 0, "g", n), f32(info, 1, "x", n), (long)n, (float)num_arg(info, 2, "slope"),
                          f32(info, 3, "gx", n), flag(info, 4));
  return info.Env().Undefined();
}

// axpy(alpha, x, y, out): out = alpha*x + y
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 1, "x");
  srf_axpy((float)num_arg(info, 0, "alpha"), f32(info, 1, "x", n), f32(info, 2, "y", n), (long)n, f32(info, 3, "out", n));
  return info.Env().Undefined();
}

// addInto(x, out): out += x
Napi::Value AddInto(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 0, "x");
  srf_add_into(f32(info, 0, "x", n), (long)n, f32(info, 1, "out", n));
  return info.Env().Undefined();
}

// adam(p, g, m, v, beta1, beta2, stepSize, bc2sqrt, eps, weightDecay)
Napi::Value Adam(const Napi::CallbackInfo& info) {
  const size_t n = len_of(info, 0, "p");
  srf_adam(f32(info, 0, "p", n), f32(info, 1, "g", n), f32(info, 2, "m", n), f32(info, 3, "v", n), (long)n,
           num_arg(info, 4, "beta1"), num_arg(info, 5, "beta2"), num_arg(info, 6, "stepSize"),
           num_arg(info, 7, "bc2sqrt"), num_arg(info, 8, "eps"), num_arg(info, 9, "weightDecay"));
  return info.Env().Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), srf_set_num_threads(int_arg(info, 0, "threads", 0)));
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), srf_num_threads()); }

Napi::Value SimdLevel(const Napi::CallbackInfo& info) {
  init_isa();
  return Napi::String::New(info.Env(), srf_simd_name(srf_simd_level()));
}

// setSimd(level): force 'avx512' | 'avx2' | 'scalar' (capped at what the CPU supports) or
// 'auto'; returns the level in use.
Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  std::string s = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string("auto");
  const int lv = s == "auto" ? -1 : parse_level(s);
  if (lv < 0 && s != "auto") throw Napi::RangeError::New(info.Env(), "unknown SIMD level " + s);
  init_isa();
  return Napi::String::New(info.Env(), srf_simd_name(srf_set_simd(lv)));
}

// setWinograd(true | false | 'always' | 'auto'): use the Winograd 3x3 convolution where it is
// faster / never / for every 3x3 stride-1 pad-1 convolution / as SRFLOW_WINOGRAD says (0 = never,
// always, else where faster). Returns the mode in use: true, false or 'always'.
Napi::Value WinoMode(Napi::Env env) {
  const int m = srf_winograd_mode();
  if (m == 2) return Napi::String::New(env, "always");
  return Napi::Boolean::New(env, m != 0);
}

Napi::Value SetWinograd(const Napi::CallbackInfo& info) {
  Napi::Value v = info[0];
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  if (v.IsBoolean()) srf_set_winograd(v.As<Napi::Boolean>().Value() ? 1 : 0);
  else if (s == "auto") srf_set_winograd(-1);
  else if (s == "always") srf_set_winograd(2);
  else throw Napi::TypeError::New(info.Env(), "setWinograd expects true, false, 'always' or 'auto'");
  return WinoMode(info.Env());
}

Napi::Value WinogradEnabled(const Napi::CallbackInfo& info) { return WinoMode(info.Env()); }

Napi::Value SupportedSimd(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  const int best = srf_simd_best();
  const char* names[] = {"scalar", "avx2", "avx512"};
  for (int i = 0; i <= best; ++i) a.Set(i, names[i]);
  return a;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } fns[] = {
    {"conv2d", Conv2d}, {"conv2dBackwardData", Conv2dBackwardData}, {"conv2dBackwardFilter", Conv2dBackwardFilter},
    {"matmul", Matmul}, {"channelAffine", ChannelAffine}, {"channelAffineBackward", ChannelAffineBackward},
    {"affineFromNet", AffineFromNet}, {"affineFromNetBackward", AffineFromNetBackward}, {"sumLogScale", SumLogScale},
    {"sumLogScaleBackward", SumLogScaleBackward}, {"leakyRelu", LeakyRelu}, {"leakyReluBackward", LeakyReluBackward},
    {"axpy", Axpy}, {"addInto", AddInto}, {"adam", Adam}, {"setNumThreads", SetNumThreads},
    {"getNumThreads", GetNumThreads}, {"simdLevel", SimdLevel}, {"setSimd", SetSimd}, {"setWinograd", SetWinograd},
    {"winogradEnabled", WinogradEnabled}, {"supportedSimd", SupportedSimd},
  };
  for (const auto& f : fns) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
  return exports;
}

}  // namespace

NODE_API_MODULE(srflow_native, Init)
