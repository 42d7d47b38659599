#!/usr/bin/env bash
# Rebuilds the WebAssembly kernels under wasm/ from the native engine's C++ sources:
#   wasm/srflow-kernels.wasm          single-threaded (plain memory, exported)
#   wasm/srflow-kernels-threads.wasm  threaded (imported shared memory; workers, see src/kernels/wasm.ts)
# Both are freestanding wasm32 modules with SIMD-128 and no imports but (threaded) the memory.
# Toolchain: Debian's emscripten (emcc for the headers and flags) and lld (wasm-ld):
#   apt-get install -y emscripten
set -euo pipefail
cd "$(dirname "$0")/.."

EMCC=${EMCC:-emcc}
WASM_LD=${WASM_LD:-$(command -v wasm-ld || command -v wasm-ld-14 || command -v wasm-ld-15 || command -v wasm-ld-16 || true)}
command -v "$EMCC" >/dev/null || { echo "build-wasm: emcc not found (apt-get install -y emscripten)" >&2; exit 1; }
[ -n "$WASM_LD" ] || { echo "build-wasm: wasm-ld not found (apt-get install -y lld)" >&2; exit 1; }

SRC=(native/isa_scalar.cc native/wasm/isa_simd128.cc native/wasm/srflow_wasm.cc)
CFLAGS=(-O3 -std=c++17 -msimd128 -mbulk-memory -mmutable-globals -mnontrapping-fptoint -msign-ext
        -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-math-errno -fno-trapping-math -DNDEBUG)
# 64 KiB pages: 32 initial (2 MiB: 1 MiB stack + data), up to 65536 (4 GiB)
LDFLAGS=(--no-entry --gc-sections --strip-all -z stack-size=1048576 --stack-first
         --initial-memory=2097152 --max-memory=4294967296)

OBJ=$(mktemp -d)
trap 'rm -rf "$OBJ"' EXIT
mkdir -p wasm

build() {  # build <name> <extra cflags...> -- <extra ldflags...>
  local name=$1; shift
  local cf=() lf=() seen=0
  for a in "$@"; do
    if [ "$a" = "--" ]; then seen=1; continue; fi
    if [ $seen = 0 ]; then cf+=("$a"); else lf+=("$a"); fi
  done
  local objs=()
  for s in "${SRC[@]}"; do
    local o="$OBJ/$name-$(basename "$s" .cc).o"
    "$EMCC" -c "${CFLAGS[@]}" "${cf[@]}" "$s" -o "$o"
    objs+=("$o")
  done
  "$WASM_LD" "${LDFLAGS[@]}" "${lf[@]}" "${objs[@]}" -o "wasm/$name.wasm"
  if command -v wasm-opt >/dev/null; then
    wasm-opt -O3 --enable-simd --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-threads "wasm/$name.wasm" -o "wasm/$name.wasm"
  fi
  chmod 644 "wasm/$name.wasm"
  echo "wasm/$name.wasm: $(wc -c <"wasm/$name.wasm") bytes"
}

build srflow-kernels --
build srflow-kernels-threads -matomics -DSRF_WASM_THREADS -- --shared-memory --import-memory --export=__stack_pointer
