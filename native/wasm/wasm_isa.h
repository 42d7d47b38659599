// Declarations for the WebAssembly build (srflow_wasm.cc): the SIMD-128 instruction-set entry
// points, next to the portable ones of ../isa_scalar.cc.
#pragma once
#include "../common.h"

namespace srf {
extern const IsaImpl isa_simd128;
}  // namespace srf
