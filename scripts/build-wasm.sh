#!/usr/bin/env bash
# Rebuilds the WebAssembly kernels under wasm/ from the C++ sources the native addon is built from
# (native/: the C API, the pool, the element-wise kernels, the engine) plus native/wasm/:
#   wasm/srflow-kernels.wasm          single-threaded (plain memory, exported)
#   wasm/srflow-kernels-threads.wasm  threaded (imported shared memory; workers, see src/kernels/wasm.ts)
# Both are freestanding wasm32 modules with SIMD-128 and no imports but (threaded) the memory; the
# C library parts (emmalloc, sbrk, logf) come from emscripten's prebuilt system libraries.
#
# Toolchain, pinned: Debian 12's emscripten 3.1.6 (clang 14), lld 14 (wasm-ld), binaryen 108
# (wasm-opt): apt-get install -y emscripten lld. Another version gives other bytes, so the script
# refuses it (SRFLOW_WASM_ANY_TOOLCHAIN=1 builds anyway, for experiments; do not commit the result).
# The output is deterministic: no paths, timestamps, build ids or producer names in the modules;
# `npm run build:wasm` in a clean clone reproduces the committed wasm/ byte for byte
# (`bash scripts/build-wasm.sh --check` rebuilds into a temporary directory and compares).
set -euo pipefail
cd "$(dirname "$0")/.."

EMCC_WANT="3.1.6"
CLANG_WANT="14.0.6"
LLD_WANT="14.0.6"
BINARYEN_WANT="108"

CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1

die() { echo "build-wasm: $*" >&2; exit 1; }
command -v emcc >/dev/null || die "emcc not found (apt-get install -y emscripten lld)"
command -v wasm-ld >/dev/null || die "wasm-ld not found (apt-get install -y lld)"
command -v wasm-opt >/dev/null || die "wasm-opt not found (apt-get install -y binaryen)"
CLANG=$(command -v clang-14 || true)
[ -n "$CLANG" ] || die "clang-14 not found (apt-get install -y emscripten lld)"

# emcc only supplies the target's headers and flags (-c); it must be the pinned release.
# (sed reads all of its input: no SIGPIPE under pipefail)
emcc_v=$(emcc --version 2>/dev/null | sed -n '1s/.* \([0-9][0-9.]*\) .*/\1/p')
clang_v=$("$CLANG" --version | sed -n '1s/.*version \([0-9][0-9.]*\).*/\1/p')
lld_v=$(wasm-ld --version | sed -n 's/.*LLD \([0-9][0-9.]*\).*/\1/p')
binaryen_v=$(wasm-opt --version | sed -n 's/.*version \([0-9][0-9]*\).*/\1/p')
if [ "$emcc_v" != "$EMCC_WANT" ] || [ "$clang_v" != "$CLANG_WANT" ] || [ "$lld_v" != "$LLD_WANT" ] ||
  [ "$binaryen_v" != "$BINARYEN_WANT" ]; then
  msg="found emscripten ${emcc_v:-?}, clang ${clang_v:-?}, lld ${lld_v:-?}, binaryen ${binaryen_v:-?}, but wasm/ is built with the pinned"
  msg="$msg emscripten $EMCC_WANT, clang $CLANG_WANT, lld $LLD_WANT, binaryen $BINARYEN_WANT (Debian 12: apt-get install -y emscripten lld)"
  if [ "${SRFLOW_WASM_ANY_TOOLCHAIN:-}" = 1 ]; then echo "build-wasm: warning: $msg" >&2; else die "$msg"; fi
fi

SYSLIB="$(em-config CACHE)/sysroot/lib/wasm32-emscripten"
[ -f "$SYSLIB/libemmalloc-noerrno.a" ] || die "emscripten's system libraries not found under $SYSLIB"

SRC=(native/capi.cc native/pool.cc native/elementwise.cc native/isa_scalar.cc native/wasm/isa_simd128.cc
     native/wasm/srflow_wasm.cc)
# -ffile-prefix-map and -fno-ident: nothing of the build directory or compiler in the objects
CFLAGS=(-O3 -std=c++17 -msimd128 -mbulk-memory -mmutable-globals -mnontrapping-fptoint -msign-ext
        -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-math-errno -fno-trapping-math -DNDEBUG
        -fvisibility=hidden "-ffile-prefix-map=$PWD=." -fno-ident)
# 64 KiB pages: 32 initial (2 MiB: 1 MiB stack + data), up to 65536 (4 GiB)
LDFLAGS=(--no-entry --gc-sections --strip-all -z stack-size=1048576 --stack-first
         --initial-memory=2097152 --max-memory=4294967296)

OUTDIR=wasm
[ $CHECK = 1 ] && OUTDIR=$(mktemp -d)
OBJ=$(mktemp -d)
cleanup() {
  rm -rf "$OBJ"
  if [ $CHECK = 1 ]; then rm -rf "$OUTDIR"; fi
}
trap cleanup EXIT
mkdir -p "$OUTDIR"

build() {  # build <name> <lib suffix> <extra cflags...> -- <extra ldflags...>
  local name=$1 sfx=$2; shift 2
  local cf=() lf=() seen=0 pids=()
  for a in "$@"; do
    if [ "$a" = "--" ]; then seen=1; continue; fi
    if [ $seen = 0 ]; then cf+=("$a"); else lf+=("$a"); fi
  done
  local objs=()
  for s in "${SRC[@]}"; do
    local o="$OBJ/$name-$(basename "$s" .cc).o"
    emcc -c "${CFLAGS[@]}" "${cf[@]}" "$s" -o "$o" &
    pids+=($!)
    objs+=("$o")
  done
  for p in "${pids[@]}"; do wait "$p"; done
  local out="$OUTDIR/$name.wasm"
  wasm-ld "${LDFLAGS[@]}" "${lf[@]}" "${objs[@]}" \
    "$SYSLIB/libemmalloc$sfx-noerrno.a" "$SYSLIB/libc$sfx.a" "$SYSLIB/libcompiler_rt$sfx.a" -o "$out"
  wasm-opt -O3 --strip-debug --strip-producers --enable-simd --enable-bulk-memory --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-threads "$out" -o "$out"
  chmod 644 "$out"
  if [ $CHECK = 1 ]; then
    cmp -s "$out" "wasm/$name.wasm" || die "wasm/$name.wasm differs from a rebuild of the sources: run npm run build:wasm and commit wasm/"
    echo "wasm/$name.wasm: reproduced ($(wc -c <"$out") bytes)"
  else
    echo "wasm/$name.wasm: $(wc -c <"$out") bytes, sha256 $(sha256sum "$out" | cut -c1-16)"
  fi
}

build srflow-kernels "" --
build srflow-kernels-threads -mt -matomics -DSRF_WASM_THREADS -- --shared-memory --import-memory --export=__stack_pointer
