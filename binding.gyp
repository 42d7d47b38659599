{
  "variables": {
    "srflow_tuning%": "<!(node -p \"process.env.SRFLOW_TUNING === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "srflow_native",
      "sources": [
        "native/addon.cc",
        "native/pool.cc",
        "native/capi.cc",
        "native/elementwise.cc",
        "native/isa_scalar.cc",
        "native/isa_avx2.cc",
        "native/isa_avx512.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "conditions": [["srflow_tuning==1", { "defines": ["SRFLOW_TUNING"] }]],
      "cflags!": ["-fno-exceptions", "-O2", "-O1", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20", "-O2", "-O1", "-O0"],
      "cflags": ["-O3", "-fexceptions", "-fno-math-errno", "-fno-trapping-math", "-pthread"],
      "cflags_cc": ["-O3", "-std=c++17", "-fexceptions", "-fno-math-errno", "-fno-trapping-math", "-pthread"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_OPTIMIZATION_LEVEL": "3",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] }
      }
    }
  ]
}
