{
  # The CPU-only addon built with node-gyp (`npm run build:gyp`), the
  # alternative to the CMake build (scripts/build-addon.js). It compiles the
  # engine (cpp/core, with the CUDA stub), the CPU backend and the N-API
  # binding (cpp/napi) into build/Release/focusllm.node.
  #
  # The CPU kernels are compiled once per instruction set, as in
  # cmake/cpu_kernels.cmake: kernels_generic.cpp with the target's baseline
  # flags (inside the addon), kernels_avx2.cpp and kernels_avx512.cpp in two
  # static libraries with their own flags; cpp/cpu/isa.cpp picks one at run
  # time. On other architectures the two x86 files compile to nothing.
  "variables": {
    "focus_x86%": "<!(node -p \"['x64', 'ia32'].includes(process.arch) ? 1 : 0\")"
  },
  "target_defaults": {
    "include_dirs": ["cpp"],
    # Engine errors are C++ exceptions (turned into JavaScript errors by the
    # binding): node-gyp's defaults switch exceptions and RTTI off.
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++14"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O3", "-fPIC"],
    "cflags": ["-O3", "-fPIC"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "GCC_ENABLE_CPP_RTTI": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "MACOSX_DEPLOYMENT_TARGET": "10.15",
      "OTHER_CFLAGS": ["-O3"]
    }
  },
  "targets": [
    {
      "target_name": "focusllm_kernels_avx2",
      "type": "static_library",
      "sources": ["cpp/cpu/kernels_avx2.cpp"],
      "conditions": [
        ["focus_x86==1", {
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mf16c"]}
        }]
      ]
    },
    {
      "target_name": "focusllm_kernels_avx512",
      "type": "static_library",
      "sources": ["cpp/cpu/kernels_avx512.cpp"],
      "conditions": [
        ["focus_x86==1", {
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"]
          }
        }]
      ]
    },
    {
      "target_name": "focusllm",
      "dependencies": ["focusllm_kernels_avx2", "focusllm_kernels_avx512"],
      "sources": [
        # Every engine source except the per-ISA kernels above and any CUDA
        # source (this build has none: cpp/core/cuda_stub.cpp stands in).
        "<!@(node -p \"require('fs').readdirSync('cpp/core').filter(f => f.endsWith('.cpp')).map(f => 'cpp/core/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('cpp/cpu').filter(f => f.endsWith('.cpp') && !/^kernels_avx/.test(f)).map(f => 'cpp/cpu/' + f).join(' ')\")",
        # The N-API binding: every file of cpp/napi/ (addon.cpp is its entry).
        "<!@(node -p \"require('fs').readdirSync('cpp/napi').filter(f => f.endsWith('.cpp')).map(f => 'cpp/napi/' + f).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "libraries": ["-pthread"],
      "ldflags": ["-pthread"]
    }
  ]
}
