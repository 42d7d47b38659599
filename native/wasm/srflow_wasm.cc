// What the WebAssembly module needs beyond the native sources it shares with the addon (the C API
// ../capi.cc, the pool ../pool.cc, ../elementwise.cc and the engine through ../isa_scalar.cc and
// isa_simd128.cc): its memory functions for the JS side, the threads' set-up, and the few hooks
// that emscripten's C library expects from a JS runtime, which this freestanding module has not.
// The allocator is emscripten's emmalloc (linked from its system libraries by
// scripts/build-wasm.sh; thread-safe with a spin lock in the threaded build).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "../capi.h"
#include "../common.h"

// ------------------------------------------------------------------------------------------
// emscripten's sbrk grows the heap through this hook (in a JS runtime it is an import).
extern "C" int emscripten_resize_heap(size_t size) {
  const size_t have = __builtin_wasm_memory_size(0) * 65536ul;
  if (size <= have) return 1;
  return __builtin_wasm_memory_grow(0, (size - have + 65535) / 65536) != (size_t)-1;
}

// Compiled with -mbulk-memory, these are memory.copy / memory.fill (for the C library's callers).
extern "C" {
void* memcpy(void* __restrict d, const void* __restrict s, size_t n) { return __builtin_memcpy(d, s, n); }
void* memmove(void* d, const void* s, size_t n) { return __builtin_memmove(d, s, n); }
void* memset(void* d, int c, size_t n) { return __builtin_memset(d, c, n); }
}

// ------------------------------------------------------------------------------------------
// memory for the JS side's arguments (64-byte aligned, as the engine's own scratch)

SRF_API(srf_malloc) void* srf_malloc(size_t n) { return std::aligned_alloc(64, (n + 63) & ~size_t(63)); }
SRF_API(srf_free) void srf_free(void* p) { std::free(p); }

#if defined(SRF_WASM_THREADS)
// ------------------------------------------------------------------------------------------
// threads: every JS thread instantiates the module over the same shared memory

extern "C" void __wasm_init_tls(void* mem);

SRF_API(srf_threads_supported) int srf_threads_supported() { return 1; }
SRF_API(srf_tls_size) size_t srf_tls_size() { return __builtin_wasm_tls_size(); }
SRF_API(srf_tls_align) size_t srf_tls_align() { return __builtin_wasm_tls_align(); }
// Every instance (the calling thread's and each worker's) calls this once with its own block of
// srf_tls_size() bytes aligned to srf_tls_align(), after setting its __stack_pointer.
SRF_API(srf_thread_init) void srf_thread_init(void* tls) { __wasm_init_tls(tls); }

// A worker's loop: never returns (the JS thread is terminated to stop it).
SRF_API(srf_worker_main) void srf_worker_main(int tid) { srf::pool_worker_loop(tid); }
#else
SRF_API(srf_threads_supported) int srf_threads_supported() { return 0; }
#endif
