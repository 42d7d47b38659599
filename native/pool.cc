// Persistent thread pool (workers spin briefly, then sleep on a condition variable) and
// per-thread grow-only scratch buffers.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

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

constexpr int kSpinMicros = 150;  // how long an idle worker spins before sleeping

class Pool {
 public:
  explicit Pool(int nt) : nt_(nt < 1 ? 1 : nt) {
    for (int t = 1; t < nt_; ++t) workers_.emplace_back([this, t] { loop(t); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_.store(true, std::memory_order_release);
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& th : workers_) th.join();
  }
  int size() const { return nt_; }

  void run(int nchunks, ChunkFn fn, void* ctx) {
    if (nchunks <= 0) return;
    // Serial when there is one thread or one chunk, or when another JS thread (a worker_threads
    // Worker with its own instance of the addon) is already using the pool.
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (nt_ == 1 || nchunks == 1 || !busy.owns_lock()) {
      for (int c = 0; c < nchunks; ++c) fn(ctx, c, 0);
      return;
    }
    const uint32_t g = ++job_;
    // First retire the previous job's slots (new job number, nothing claimable), then change the
    // job fields. A worker late from the previous job may read the new fields (nchunks_ in
    // particular) together with the previous job's number; without this it could still find that
    // job's slots and, with the new larger chunk count, claim a chunk that does not exist, run
    // the new job's function early and count it in done_ (a chunk run twice, done_ past nchunks
    // and this thread waiting forever). With it, any slot it reads after the new fields carries
    // the new job number and it returns.
    for (int t = 0; t < nt_; ++t) slots_[t].v.store((uint64_t(g) << 32) | 0x7fffffffu, std::memory_order_relaxed);
    fn_.store(fn, std::memory_order_release);
    ctx_.store(ctx, std::memory_order_release);
    nchunks_.store(nchunks, std::memory_order_release);
    done_.store(0, std::memory_order_relaxed);
    for (int t = 0; t < nt_; ++t)
      slots_[t].v.store((uint64_t(g) << 32) | uint32_t(slot_begin(t, nchunks)), std::memory_order_release);
    job_gen_.store(g, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lk(mu_);
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work(0, g, fn, ctx, nchunks);
    // Wait for the chunks, not for the workers: a worker that wakes late finds no chunk left.
    int spins = 0;
    while (done_.load(std::memory_order_acquire) != nchunks) {
      if (++spins < 20000) cpu_relax();
      else std::this_thread::yield();
    }
  }

 private:
  int slot_begin(int t, int n) const { return (int)((long)n * t / nt_); }

  // Claims chunks of job g until none is left (or the job has been replaced): first from this
  // thread's own contiguous share of the chunks (so that a thread tends to touch the same data
  // on every call), then from the other threads' shares.
  void work(int tid, uint32_t g, ChunkFn fn, void* ctx, int nchunks) {
    for (int k = 0; k < nt_; ++k) {
      const int s = (tid + k) % nt_;
      const int end = slot_begin(s + 1, nchunks);
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
  void loop(int tid) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t g = gen_.load(std::memory_order_acquire);
      if (g == seen) {
        auto t0 = std::chrono::steady_clock::now();
        int spins = 0;
        while ((g = gen_.load(std::memory_order_acquire)) == seen) {
          cpu_relax();
          if ((++spins & 63) == 0 &&
              std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(kSpinMicros)) {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return gen_.load(std::memory_order_acquire) != seen; });
            g = gen_.load(std::memory_order_acquire);
            break;
          }
        }
      }
      seen = g;
      if (stop_.load(std::memory_order_acquire)) return;
      // The job fields are read before claiming a chunk; a successful claim proves they belong
      // to the job of the claimed chunk (the next job is published only after it completes).
      const uint32_t jg = job_gen_.load(std::memory_order_acquire);
      ChunkFn fn = fn_.load(std::memory_order_acquire);
      void* ctx = ctx_.load(std::memory_order_acquire);
      const int n = nchunks_.load(std::memory_order_acquire);
      work(tid, jg, fn, ctx, n);
    }
  }

  int nt_;
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<bool> stop_{false};
  uint32_t job_ = 0;
  struct alignas(128) Slot {
    std::atomic<uint64_t> v{0};  // (job << 32) | next chunk of this thread's share
  };
  Slot slots_[kMaxThreads];
  std::atomic<uint32_t> job_gen_{0};
  std::atomic<ChunkFn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int> nchunks_{0};
  std::atomic<int> done_{0};
};

std::mutex g_pool_mu;
Pool* g_pool = nullptr;

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
  if (!g_pool) g_pool = new Pool(default_threads());
  return *g_pool;
}

struct ScratchSet {
  float* p[NUM_SLOTS] = {};
  size_t cap[NUM_SLOTS] = {};
  ~ScratchSet() {
    for (int i = 0; i < NUM_SLOTS; ++i) std::free(p[i]);
  }
};
thread_local ScratchSet t_scratch;

}  // namespace

void parallel_run(int nchunks, ChunkFn fn, void* ctx) { pool().run(nchunks, fn, ctx); }

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  if (n < 1) n = default_threads();
  if (n > kMaxThreads) n = kMaxThreads;
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (g_pool && g_pool->size() == n) return;
  delete g_pool;
  g_pool = new Pool(n);
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

float* scratch(int slot, size_t nfloats) {
  ScratchSet& s = t_scratch;
  if (nfloats > s.cap[slot]) {
    std::free(s.p[slot]);
    size_t cap = nfloats + nfloats / 4 + 64;
    size_t bytes = (cap * sizeof(float) + 63) & ~size_t(63);
    s.p[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!s.p[slot]) {
      s.cap[slot] = 0;
      std::abort();
    }
    s.cap[slot] = bytes / sizeof(float);
  }
  return s.p[slot];
}

}  // namespace srf
