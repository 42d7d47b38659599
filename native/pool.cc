// The thread pool (parallel_run) and per-thread grow-only scratch buffers, for the Node addon and
// for the WebAssembly module alike. The chunk-claiming logic (class Pool) is written once; what
// differs by platform sits behind class Parker (how an idle worker sleeps and is woken) and in the
// few lines that start the workers:
//   native: std::thread workers; an idle worker spins ~150 us, then sleeps on a condition variable;
//   wasm (threaded build, SRF_WASM_THREADS): every JS worker thread instantiates the module over
//     the same shared memory and enters srf_worker_main(tid) (native/wasm/srflow_wasm.cc), which
//     runs Pool::loop; an idle worker spins, then sleeps in memory.atomic.wait32 on the job
//     counter, woken by memory.atomic.notify. Workers join as they start (set_num_threads).
//   wasm (single-threaded build): parallel_run runs the chunks in order on the calling thread.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common.h"

#if defined(__wasm__)
#define SRF_POOL_WASM 1
#else
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { asm volatile("yield" ::: "memory"); }
#else
static inline void cpu_relax() {}
#endif

namespace srf {

namespace {

// ------------------------------------------------------------------------------------------
// Parker: an idle worker waits for the job counter to move past `seen`; the publisher moves it.

#if defined(SRF_POOL_WASM)
class Parker {
 public:
  // Returns once *gen != seen.
  void idle_wait(std::atomic<uint32_t>& gen, uint32_t seen) {
    int spins = 0;
    while (gen.load(std::memory_order_acquire) == seen) {
      if (++spins > 20000) {
#if defined(SRF_WASM_THREADS)
        __builtin_wasm_memory_atomic_wait32(reinterpret_cast<int*>(&gen), (int)seen, -1);
#endif
        spins = 0;
      }
    }
  }
  void publish(std::atomic<uint32_t>& gen) {
    gen.fetch_add(1, std::memory_order_acq_rel);
#if defined(SRF_WASM_THREADS)
    __builtin_wasm_memory_atomic_notify(reinterpret_cast<int*>(&gen), 0x7fffffffu);
#endif
  }
};
#else
constexpr int kSpinMicros = 150;  // how long an idle worker spins before sleeping

class Parker {
 public:
  void idle_wait(std::atomic<uint32_t>& gen, uint32_t seen) {
    auto t0 = std::chrono::steady_clock::now();
    int spins = 0;
    while (gen.load(std::memory_order_acquire) == seen) {
      cpu_relax();
      if ((++spins & 63) == 0 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(kSpinMicros)) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return gen.load(std::memory_order_acquire) != seen; });
        return;
      }
    }
  }
  void publish(std::atomic<uint32_t>& gen) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      gen.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};
#endif

// ------------------------------------------------------------------------------------------
// Pool: jobs of nchunks chunks claimed by the calling thread (tid 0) and the workers.

class Pool {
 public:
  Pool() = default;  // one thread; constexpr, so a global Pool needs no constructor call (wasm has none)
  explicit Pool(int nt) : nt_(nt < 1 ? 1 : nt) {}
  int size() const { return nt_; }
  // Threads taking part in later jobs (wasm: workers join as they start; native: fixed).
  void set_size(int nt) { nt_ = nt < 1 ? 1 : nt > kMaxThreads ? kMaxThreads : nt; }

  void run(int nchunks, ChunkFn fn, void* ctx) {
    if (nchunks <= 0) return;
    // Serial when there is one thread or one chunk, or when another thread is already using the
    // pool (native: a worker_threads Worker with its own instance of the addon; nested calls).
    bool idle = false;
    if (nt_ == 1 || nchunks == 1 || !busy_.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) {
      for (int c = 0; c < nchunks; ++c) fn(ctx, c, 0);
      return;
    }
    const int nt = nt_;
    const uint32_t g = ++job_;
    // The slots move to the new job *before* its fields change. A worker still inside the previous
    // job may read the new chunk count or function while it holds that job's number; had the slots
    // still belonged to the previous job, it could claim an exhausted share's next index with the
    // new count, run a chunk of the wrong job and count it as done for the new one (the count then
    // passed nchunks and run() spun forever: a hang seen in training). With the slots renumbered
    // first, every claim of the previous job fails once any new field is visible.
    for (int t = 0; t < nt; ++t)
      slots_[t].v.store((uint64_t(g) << 32) | uint32_t(slot_begin(t, nt, nchunks)), std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    nchunks_.store(nchunks, std::memory_order_relaxed);
    jnt_.store(nt, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    job_gen_.store(g, std::memory_order_release);
    parker_.publish(gen_);
    work(0, g, fn, ctx, nchunks, nt);
    // Wait for the chunks, not for the workers: a worker that wakes late finds no chunk left.
    int spins = 0;
    while (done_.load(std::memory_order_acquire) != nchunks) {
#if defined(SRF_POOL_WASM)
      (void)spins;
#else
      if (++spins < 20000) cpu_relax();
      else std::this_thread::yield();
#endif
    }
    busy_.store(false, std::memory_order_release);
  }

  // A worker's loop (tid >= 1): returns when stop() is called.
  void loop(int tid) {
    uint32_t seen = 0;
    for (;;) {
      uint32_t g = gen_.load(std::memory_order_acquire);
      if (g == seen) {
        parker_.idle_wait(gen_, seen);
        g = gen_.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop_.load(std::memory_order_acquire)) return;
      // The job fields are read (acquire: before any slot) and then a chunk is claimed; a
      // successful claim proves they belong to the claimed chunk's job: the next job is published
      // only after this one completes, and its slots are renumbered before its fields change.
      const uint32_t jg = job_gen_.load(std::memory_order_acquire);
      ChunkFn fn = fn_.load(std::memory_order_acquire);
      void* ctx = ctx_.load(std::memory_order_acquire);
      const int n = nchunks_.load(std::memory_order_acquire);
      const int nt = jnt_.load(std::memory_order_acquire);
      if (tid < nt) work(tid, jg, fn, ctx, n, nt);
    }
  }

  void stop() {
    stop_.store(true, std::memory_order_release);
    parker_.publish(gen_);
  }

 private:
  static int slot_begin(int t, int nt, int n) { return (int)((long)n * t / nt); }

  // Claims chunks of job g until none is left (or the job has been replaced): first from this
  // thread's own contiguous share of the chunks (so that a thread tends to touch the same data
  // on every call), then from the other threads' shares. nt: the job's thread count.
  void work(int tid, uint32_t g, ChunkFn fn, void* ctx, int nchunks, int nt) {
    for (int k = 0; k < nt; ++k) {
      const int s = (tid + k) % nt;
      const int end = slot_begin(s + 1, nt, nchunks);
      std::atomic<uint64_t>& slot = slots_[s].v;
      uint64_t st = slot.load(std::memory_order_acquire);
      for (;;) {
        if (uint32_t(st >> 32) != g) return;
        const int c = int(uint32_t(st));
        if (c >= end) break;
        if (!slot.compare_exchange_weak(st, st + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
        fn(ctx, c, tid);
        done_.fetch_add(1, std::memory_order_acq_rel);
        st = slot.load(std::memory_order_acquire);
      }
    }
  }

  int nt_ = 1;
  Parker parker_;
  std::atomic<uint32_t> gen_{0};  // bumped for every job (and by stop()): idle workers wait on it
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  uint32_t job_ = 0;
  struct alignas(128) Slot {
    std::atomic<uint64_t> v{0};  // (job << 32) | next chunk of this thread's share
  };
  Slot slots_[kMaxThreads];
  std::atomic<uint32_t> job_gen_{0};
  std::atomic<ChunkFn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int> nchunks_{0};
  std::atomic<int> jnt_{1};
  std::atomic<int> done_{0};
};

// ------------------------------------------------------------------------------------------
// The process's pool

#if defined(SRF_POOL_WASM)
// Constant-initialised (checked by clang): the module runs no global constructors.
__attribute__((require_constant_initialization)) Pool g_pool;
Pool& pool() { return g_pool; }
#else
// Native: the pool with its std::thread workers, re-created when the size changes.
struct NativePool {
  Pool core;
  std::vector<std::thread> workers;
  explicit NativePool(int nt) : core(nt) {
    for (int t = 1; t < core.size(); ++t) workers.emplace_back([this, t] { core.loop(t); });
  }
  ~NativePool() {
    core.stop();
    for (auto& th : workers) th.join();
  }
};

std::mutex g_pool_mu;
NativePool* g_pool = nullptr;

int default_threads() {
  const char* e = std::getenv("SRFLOW_THREADS");
  if (e && *e) {
    int v = std::atoi(e);
    if (v >= 1) return v > kMaxThreads ? kMaxThreads : v;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

Pool& pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) g_pool = new NativePool(default_threads());
  return g_pool->core;
}
#endif

struct ScratchSet {
  float* p[NUM_SLOTS] = {};
  size_t cap[NUM_SLOTS] = {};
#if !defined(SRF_POOL_WASM)  // wasm threads never exit
  ~ScratchSet() {
    for (int i = 0; i < NUM_SLOTS; ++i) std::free(p[i]);
  }
#endif
};
thread_local ScratchSet t_scratch;

}  // namespace

void parallel_run(int nchunks, ChunkFn fn, void* ctx) { pool().run(nchunks, fn, ctx); }

int num_threads() { return pool().size(); }

#if defined(SRF_POOL_WASM)
void set_num_threads(int n) {
#if defined(SRF_WASM_THREADS)
  pool().set_size(n);  // the caller counts only workers that have started
#else
  (void)n;
#endif
}

void pool_worker_loop(int tid) { pool().loop(tid); }

// Tuning knobs and Winograd have no environment here: the defaults (tune(): see common.h). The
// Winograd 3x3 convolution (winograd.inc) is not used by the wasm kernels: its transforms have no
// SIMD-128 version and were not measured there, so they keep the direct path.
int tune(const char*, int def) { return def; }
int winograd_mode() { return 0; }
void set_winograd(int) {}
#else
void set_num_threads(int n) {
  if (n < 1) n = default_threads();
  if (n > kMaxThreads) n = kMaxThreads;
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (g_pool && g_pool->core.size() == n) return;
  delete g_pool;
  g_pool = new NativePool(n);
}

namespace {
int wino_from_env() {
  const char* e = std::getenv("SRFLOW_WINOGRAD");
  if (e && std::strcmp(e, "0") == 0) return 0;
  if (e && std::strcmp(e, "always") == 0) return 2;
  return 1;
}
std::atomic<int> g_wino{-1};
}  // namespace

int winograd_mode() {
  int v = g_wino.load(std::memory_order_relaxed);
  if (v < 0) {
    v = wino_from_env();
    g_wino.store(v, std::memory_order_relaxed);
  }
  return v;
}

void set_winograd(int mode) { g_wino.store(mode < 0 || mode > 2 ? wino_from_env() : mode, std::memory_order_relaxed); }

#if defined(SRFLOW_TUNING)
int tune(const char* name, int def) {
  char key[96];
  std::snprintf(key, sizeof key, "SRFLOW_TUNE_%s", name);
  const char* e = std::getenv(key);
  if (e && *e) {
    int v = std::atoi(e);
    if (v > 0) return v;
  }
  return def;
}
#endif  // SRFLOW_TUNING
#endif

float* scratch(int slot, size_t nfloats) {
  ScratchSet& s = t_scratch;
  if (nfloats > s.cap[slot]) {
    std::free(s.p[slot]);
    size_t cap = nfloats + nfloats / 4 + 64;
    size_t bytes = (cap * sizeof(float) + 63) & ~size_t(63);
    s.p[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!s.p[slot]) {
      s.cap[slot] = 0;
      out_of_memory();
    }
    s.cap[slot] = bytes / sizeof(float);
  }
  return s.p[slot];
}

}  // namespace srf
