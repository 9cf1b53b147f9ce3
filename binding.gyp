# The shipping build: `npm install` runs node-gyp-build, which loads a prebuild from
# prebuilds/ or compiles this. `npm run prebuild` drives it through prebuildify.
# One target only: prebuildify and node-gyp-build both take the first .node file in
# build/Release. The test build (MYELIN_TEST_HOOKS) is CMakeLists.txt's myelin_test.
{
  'includes': ['native/sources.gypi'],
  'targets': [
    {
      'target_name': 'myelin',
      'sources': [
        '<@(myelin_core_sources)',
        '<@(myelin_binding_sources)',
        '<!(node -p "require(\'path\').relative(process.cwd(), require.resolve(\'@nozbe/simdjson/src/simdjson.cpp\'))")',
      ],
      'include_dirs': [
        'native/src',
        "<!(node -p \"require('node-addon-api').include_dir\")",
        '<!(node -p "require(\'path\').dirname(require.resolve(\'@nozbe/simdjson/src/simdjson.h\'))")',
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        # The backstop: any std::exception (std::bad_alloc from a string or vector in
        # the binding) that escapes an entry point becomes a JS Error instead of
        # reaching std::terminate. Failures with a known cause are caught where they
        # happen and thrown as coded MyelinErrors (native/binding/thread_start.h).
        'NODE_ADDON_API_CPP_EXCEPTIONS_ALL',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'SIMDJSON_EXCEPTIONS=0',
        'SIMDJSON_THREADS_ENABLED=0',
      ],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++17'],
      'cflags': ['-fvisibility=hidden', '-O3'],
      'cflags_cc': ['-std=c++20', '-fexceptions', '-fvisibility=hidden', '-O3'],
      'ldflags': ['-Wl,--exclude-libs,ALL'],
      'conditions': [
        ['OS=="mac"', {
          'xcode_settings': {
            'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
            'CLANG_CXX_LANGUAGE_STANDARD': 'c++20',
            'GCC_SYMBOLS_PRIVATE_EXTERN': 'YES',
          },
        }],
      ],
    },
  ],
}
