// WebAssembly entry point of the srflow kernels. The math is the native engine's own sources
// (../engine.inc through ../isa_scalar.cc and isa_simd128.cc); this file provides what the
// addon's pool.cc and addon.cc provide natively, for a freestanding wasm32 module with no
// imports:
//   - a small thread-safe allocator over the module's linear memory (memory.grow);
//   - parallel_run / num_threads / scratch / tune (common.h). Single-threaded build: chunks run
//     in order on the calling thread. Threaded build (SRF_WASM_THREADS, shared memory): every
//     JS thread (Web Worker / worker_threads) instantiates the same module over the same shared
//     memory and parks in srf_worker_main(tid); parallel_run publishes a job that the workers
//     and the calling thread claim chunk by chunk (the scheme of ../pool.cc, with
//     memory.atomic.wait/notify instead of a condition variable);
//   - exported C functions (srf_*) with the addon's argument conventions.
#include <cstddef>
#include <cstdint>

#include "../common.h"
#include "wasm_isa.h"

#define SRF_EXPORT(name) extern "C" __attribute__((export_name(#name), used))

extern "C" unsigned char __heap_base;  // first free byte after data and stack (wasm-ld)

namespace {

// ------------------------------------------------------------------------------------------
// atomics (plain loads/stores in the single-threaded build, where there are no atomics)

template <class T>
inline T ld(const T* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
template <class T>
inline void st(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

struct SpinLock {
  int v = 0;
  void lock() {
    while (__atomic_exchange_n(&v, 1, __ATOMIC_ACQUIRE)) {
      while (__atomic_load_n(&v, __ATOMIC_RELAXED)) {
      }
    }
  }
  void unlock() { __atomic_store_n(&v, 0, __ATOMIC_RELEASE); }
};

// ------------------------------------------------------------------------------------------
// allocator: address-ordered blocks with 64-byte headers (payloads are 64-byte aligned),
// first fit, split, coalesce on free; the heap grows with memory.grow.

constexpr size_t kAlign = 64;
struct Blk {
  size_t size;  // payload bytes (multiple of kAlign)
  Blk* prev;    // previous block in address order
  Blk* next;    // next block in address order
  int free;
  int pad_[16 - 4];
};
static_assert(sizeof(Blk) == kAlign, "block header is one alignment unit");

SpinLock g_heap_lock;
Blk* g_first = nullptr;
Blk* g_last = nullptr;
uintptr_t g_heap_end = 0;

inline size_t round_up(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

bool grow_to(uintptr_t end) {
  const size_t have = __builtin_wasm_memory_size(0) * 65536ul;
  if (end <= have) return true;
  const size_t pages = (end - have + 65535) / 65536;
  return __builtin_wasm_memory_grow(0, pages) != (size_t)-1;
}

void* heap_alloc(size_t n) {
  if (n == 0) n = 1;
  if (n > 0xF0000000u) return nullptr;
  n = round_up(n);
  g_heap_lock.lock();
  if (!g_heap_end) g_heap_end = round_up((uintptr_t)&__heap_base);
  Blk* b = g_first;
  for (; b; b = b->next)
    if (b->free && b->size >= n) break;
  if (!b) {
    if (g_last && g_last->free) {  // extend the free block at the end
      const uintptr_t end = (uintptr_t)(g_last + 1) + n;
      if (!grow_to(end)) {
        g_heap_lock.unlock();
        return nullptr;
      }
      g_last->size = n;
      g_heap_end = end;
      b = g_last;
    } else {
      const uintptr_t at = g_heap_end, end = at + sizeof(Blk) + n;
      if (end < at || !grow_to(end)) {
        g_heap_lock.unlock();
        return nullptr;
      }
      b = reinterpret_cast<Blk*>(at);
      b->size = n;
      b->prev = g_last;
      b->next = nullptr;
      if (g_last) g_last->next = b;
      else g_first = b;
      g_last = b;
      g_heap_end = end;
    }
  } else if (b->size >= n + 2 * sizeof(Blk)) {  // split
    Blk* r = reinterpret_cast<Blk*>(reinterpret_cast<unsigned char*>(b + 1) + n);
    r->size = b->size - n - sizeof(Blk);
    r->free = 1;
    r->prev = b;
    r->next = b->next;
    if (b->next) b->next->prev = r;
    else g_last = r;
    b->next = r;
    b->size = n;
  }
  b->free = 0;
  g_heap_lock.unlock();
  return b + 1;
}

void heap_free(void* p) {
  if (!p) return;
  g_heap_lock.lock();
  Blk* b = static_cast<Blk*>(p) - 1;
  b->free = 1;
  if (b->next && b->next->free) {  // merge with the next block
    Blk* nx = b->next;
    b->size += sizeof(Blk) + nx->size;
    b->next = nx->next;
    if (nx->next) nx->next->prev = b;
    else g_last = b;
  }
  if (b->prev && b->prev->free) {  // merge into the previous block
    Blk* pv = b->prev;
    pv->size += sizeof(Blk) + b->size;
    pv->next = b->next;
    if (b->next) b->next->prev = pv;
    else g_last = pv;
  }
  g_heap_lock.unlock();
}

// ------------------------------------------------------------------------------------------
// per-thread grow-only scratch

struct ScratchSet {
  float* p[srf::NUM_SLOTS];
  size_t cap[srf::NUM_SLOTS];
};
#if defined(SRF_WASM_THREADS)
thread_local ScratchSet t_scratch;
#else
ScratchSet t_scratch;
#endif

// ------------------------------------------------------------------------------------------
// pool

int g_nt = 1;  // threads taking part in parallel_run (the caller + workers 1..g_nt-1)

#if defined(SRF_WASM_THREADS)
struct Job {
  uint32_t gen;      // bumped for every job: workers wait on it
  uint32_t id;       // job number (owner only)
  uint64_t state;    // (job id << 32) | next chunk
  srf::ChunkFn fn;
  void* ctx;
  int nchunks;
  int nt;            // threads allowed to take part (tid < nt)
  int done;          // chunks completed
  int running;       // a parallel_run is in progress (nested/concurrent calls run serially)
};
Job g_job;

void work(int tid, uint32_t id, srf::ChunkFn fn, void* ctx, int nchunks) {
  uint64_t s = ld(&g_job.state);
  for (;;) {
    if (uint32_t(s >> 32) != id) return;
    const int c = int(uint32_t(s));
    if (c >= nchunks) return;
    if (!__atomic_compare_exchange_n(&g_job.state, &s, s + 1, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
    fn(ctx, c, tid);
    __atomic_fetch_add(&g_job.done, 1, __ATOMIC_ACQ_REL);
    s = ld(&g_job.state);
  }
}
#endif

const srf::IsaImpl* g_isa = &srf::isa_simd128;

}  // namespace

// ------------------------------------------------------------------------------------------
// common.h

namespace srf {

void parallel_run(int nchunks, ChunkFn fn, void* ctx) {
  if (nchunks <= 0) return;
#if defined(SRF_WASM_THREADS)
  int expect = 0;
  if (g_nt > 1 && nchunks > 1 &&
      __atomic_compare_exchange_n(&g_job.running, &expect, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    const uint32_t id = ++g_job.id;
    __atomic_store_n(&g_job.fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&g_job.ctx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&g_job.nchunks, nchunks, __ATOMIC_RELAXED);
    __atomic_store_n(&g_job.nt, g_nt, __ATOMIC_RELAXED);
    __atomic_store_n(&g_job.done, 0, __ATOMIC_RELAXED);
    st(&g_job.state, uint64_t(id) << 32);
    __atomic_fetch_add(&g_job.gen, 1, __ATOMIC_ACQ_REL);
    __builtin_wasm_memory_atomic_notify(reinterpret_cast<int*>(&g_job.gen), 0x7fffffff);
    work(0, id, fn, ctx, nchunks);
    // Wait for the chunks, not for the workers: a worker that wakes late finds none left.
    while (ld(&g_job.done) != nchunks) {
    }
    st(&g_job.running, 0);
    return;
  }
#endif
  for (int c = 0; c < nchunks; ++c) fn(ctx, c, 0);
}

int num_threads() { return g_nt; }

void set_num_threads(int n) {
#if defined(SRF_WASM_THREADS)
  g_nt = n < 1 ? 1 : n > kMaxThreads ? kMaxThreads : n;
#else
  (void)n;
  g_nt = 1;
#endif
}

int tune(const char* name, int def) {
  (void)name;
  return def;
}

// The Winograd 3x3 convolution (../winograd.inc) is not used by the wasm kernels: its transforms
// have no SIMD-128 version and were not measured there, so they keep the direct path.
int winograd_mode() { return 0; }
void set_winograd(int mode) { (void)mode; }

float* scratch(int slot, size_t nfloats) {
  ScratchSet& s = t_scratch;
  if (nfloats > s.cap[slot]) {
    heap_free(s.p[slot]);
    const size_t cap = nfloats + nfloats / 4 + 64;
    s.p[slot] = static_cast<float*>(heap_alloc(cap * sizeof(float)));
    if (!s.p[slot]) {
      s.cap[slot] = 0;
      __builtin_trap();  // out of memory: surfaces in JS as a RuntimeError
    }
    s.cap[slot] = cap;
  }
  return s.p[slot];
}

}  // namespace srf

// ------------------------------------------------------------------------------------------
// memory functions the compiler may call

extern "C" {
void* memset(void* d, int c, size_t n) {
  unsigned char* p = static_cast<unsigned char*>(d);
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)c;
  return d;
}
void* memcpy(void* __restrict d, const void* __restrict s, size_t n) {
  unsigned char* p = static_cast<unsigned char*>(d);
  const unsigned char* q = static_cast<const unsigned char*>(s);
  for (size_t i = 0; i < n; ++i) p[i] = q[i];
  return d;
}
void* memmove(void* d, const void* s, size_t n) {
  unsigned char* p = static_cast<unsigned char*>(d);
  const unsigned char* q = static_cast<const unsigned char*>(s);
  if (p < q)
    for (size_t i = 0; i < n; ++i) p[i] = q[i];
  else
    for (size_t i = n; i-- > 0;) p[i] = q[i];
  return d;
}
}

// ------------------------------------------------------------------------------------------
// exports (argument conventions of ../addon.cc; the caller validates lengths)

SRF_EXPORT(srf_malloc) void* srf_malloc(size_t n) { return heap_alloc(n); }
SRF_EXPORT(srf_free) void srf_free(void* p) { heap_free(p); }

// 1: simd128 (default), 0: the portable scalar path. Returns the level in use.
SRF_EXPORT(srf_set_simd) int srf_set_simd(int level) {
  g_isa = level >= 1 ? &srf::isa_simd128 : &srf::isa_scalar;
  return level >= 1 ? 1 : 0;
}
SRF_EXPORT(srf_simd_level) int srf_simd_level() { return g_isa == &srf::isa_simd128 ? 1 : 0; }

SRF_EXPORT(srf_conv2d)
void srf_conv2d(const float* x, const float* w, const float* bias, int n, int cin, int h, int wd, int cout, int kh,
                int kw, int pad, float* out) {
  srf::ConvFwdJob j;
  j.x = x;
  j.W = w;
  j.bias = bias;
  j.out = out;
  j.n = n;
  j.cin = cin;
  j.h = h;
  j.w = wd;
  j.kh = kh;
  j.kw = kw;
  j.padh = pad;
  j.padw = pad;
  j.oh = h + 2 * pad - kh + 1;
  j.ow = wd + 2 * pad - kw + 1;
  j.M = cout;
  j.flip = false;
  j.wcin = cin;
  j.accumulate = false;
  g_isa->conv_fwd(j);
}

SRF_EXPORT(srf_conv2d_backward_data)
void srf_conv2d_backward_data(const float* gy, const float* w, int n, int cin, int h, int wd, int cout, int kh, int kw,
                              int pad, float* gx, int accumulate) {
  // Transposed convolution of gy with flipped, transposed weights: padding kh-1-pad.
  srf::ConvFwdJob j;
  j.x = gy;
  j.W = w;
  j.out = gx;
  j.accumulate = accumulate != 0;
  j.bias = nullptr;
  j.n = n;
  j.cin = cout;
  j.h = h + 2 * pad - kh + 1;
  j.w = wd + 2 * pad - kw + 1;
  j.kh = kh;
  j.kw = kw;
  j.padh = kh - 1 - pad;
  j.padw = kw - 1 - pad;
  j.oh = h;
  j.ow = wd;
  j.M = cin;
  j.flip = true;
  j.wcin = cin;
  g_isa->conv_fwd(j);
}

SRF_EXPORT(srf_conv2d_backward_filter)
void srf_conv2d_backward_filter(const float* gy, const float* x, int n, int cin, int h, int wd, int cout, int kh,
                                int kw, int pad, float* gw, float* gb, int accumulate) {
  srf::ConvBwfJob j;
  j.gy = gy;
  j.x = x;
  j.gw = gw;
  j.gb = gb;
  j.accumulate = accumulate != 0;
  j.n = n;
  j.cin = cin;
  j.h = h;
  j.w = wd;
  j.cout = cout;
  j.kh = kh;
  j.kw = kw;
  j.pad = pad;
  j.oh = h + 2 * pad - kh + 1;
  j.ow = wd + 2 * pad - kw + 1;
  g_isa->conv_bwf(j);
}

SRF_EXPORT(srf_matmul)
void srf_matmul(const float* a, const float* b, int m, int k, int n, int ta, int tb, float* out, int accumulate) {
  srf::GemmJob j;
  j.a = a;
  j.b = b;
  j.m = m;
  j.k = k;
  j.n = n;
  j.ta = ta != 0;
  j.tb = tb != 0;
  j.out = out;
  j.accumulate = accumulate != 0;
  g_isa->gemm(j);
}

SRF_EXPORT(srf_num_threads) int srf_num_threads() { return srf::num_threads(); }
SRF_EXPORT(srf_set_num_threads) int srf_set_num_threads(int n) {
  srf::set_num_threads(n);
  return srf::num_threads();
}

#if defined(SRF_WASM_THREADS)
extern "C" void __wasm_init_tls(void* mem);

SRF_EXPORT(srf_threads_supported) int srf_threads_supported() { return 1; }
SRF_EXPORT(srf_tls_size) size_t srf_tls_size() { return __builtin_wasm_tls_size(); }
SRF_EXPORT(srf_tls_align) size_t srf_tls_align() { return __builtin_wasm_tls_align(); }
// Every instance (the calling thread's and each worker's) calls this once with its own block of
// srf_tls_size() bytes aligned to srf_tls_align(), after setting its __stack_pointer.
SRF_EXPORT(srf_thread_init) void srf_thread_init(void* tls) { __wasm_init_tls(tls); }

// A worker's loop: never returns (the JS thread is terminated to stop it).
SRF_EXPORT(srf_worker_main) void srf_worker_main(int tid) {
  uint32_t seen = ld(&g_job.gen);
  for (;;) {
    uint32_t g;
    int spins = 0;
    while ((g = ld(&g_job.gen)) == seen) {
      if (++spins > 20000) {
        __builtin_wasm_memory_atomic_wait32(reinterpret_cast<int*>(&g_job.gen), (int)seen, -1);
        spins = 0;
      }
    }
    seen = g;
    const uint64_t s = ld(&g_job.state);
    srf::ChunkFn fn = __atomic_load_n(&g_job.fn, __ATOMIC_RELAXED);
    void* ctx = __atomic_load_n(&g_job.ctx, __ATOMIC_RELAXED);
    const int n = __atomic_load_n(&g_job.nchunks, __ATOMIC_RELAXED);
    const int nt = __atomic_load_n(&g_job.nt, __ATOMIC_RELAXED);
    if (tid < nt) work(tid, uint32_t(s >> 32), fn, ctx, n);
  }
}
#else
SRF_EXPORT(srf_threads_supported) int srf_threads_supported() { return 0; }
#endif
