// Best-of-60 time of one forward 3x3 pad-1 convolution, direct or Winograd, on the AVX2 path,
// measured with the TSC (the minimum filters out preemption on a shared machine). Build and run
// from the repository root:
//   g++ -O3 -std=c++17 -fno-math-errno -fno-trapping-math -pthread bench/conv-min.cc native/pool.cc -o /tmp/conv-min
//   SRFLOW_THREADS=1 /tmp/conv-min CIN COUT SIZE [BATCH] [MODE: 0 direct, 2 Winograd]
// The GFLOP/s count the direct convolution's FLOPs (2*9*Cin*Cout*pixels) in both modes.
#include "../native/isa_avx2.cc"
#include <x86intrin.h>
#include <cstdio>
#include <vector>
#include <cstdlib>
using namespace srf::avx2;
int main(int argc, char** argv) {
  const double tsc_ghz = 2.45;  // this machine's TSC rate (lscpu: 4890 BogoMIPS)
  const int cin = atoi(argv[1]), cout = atoi(argv[2]), sz = atoi(argv[3]), n = argc > 4 ? atoi(argv[4]) : 1;
  const int mode = argc > 5 ? atoi(argv[5]) : 2;  // 2 wino, 0 direct
  srf::set_winograd(mode);
  std::vector<float> x((size_t)n*cin*sz*sz), W((size_t)cout*cin*9), out((size_t)n*cout*sz*sz);
  for (auto& v : x) v = rand() / (float)RAND_MAX - 0.5f;
  for (auto& v : W) v = (rand() / (float)RAND_MAX - 0.5f) * 0.1f;
  srf::ConvFwdJob j{};
  j.x = x.data(); j.n = n; j.cin = cin; j.h = sz; j.w = sz; j.kh = 3; j.kw = 3; j.padh = 1; j.padw = 1; j.oh = sz; j.ow = sz;
  j.M = cout; j.W = W.data(); j.flip = false; j.wcin = cin; j.bias = nullptr; j.out = out.data(); j.accumulate = false;
  double best = 1e300;
  for (int s = 0; s < 60; ++s) { unsigned long long t0 = __rdtsc(); conv_fwd(j); unsigned long long t1 = __rdtsc(); if (t1 - t0 < best) best = t1 - t0; }
  const double fl = 2.0 * 9 * cin * cout * (double)n * sz * sz;
  printf("%d->%d %dx%d n%d mode %d: %.3f ms (TSC at 2.45 GHz), %.1f direct-GFLOP/s\n", cin, cout, sz, sz, n, mode, best / tsc_ghz / 1e6, fl / (best / tsc_ghz / 1e9) / 1e9);
}
