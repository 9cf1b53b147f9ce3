# The one source list. binding.gyp includes this file; CMakeLists.txt parses it.
# Paths are relative to the repository root. Keep one path per line.
{
  'variables': {
    'myelin_core_sources': [
      'native/src/common/status.cc',
      'native/src/queue/wait_strategy.cc',
      'native/src/alloc/slab.cc',
      'native/src/hist/histogram.cc',
      'native/src/json/field_extractor.cc',
      'native/src/route/subject.cc',
      'native/src/route/subject_matcher.cc',
      'native/src/sys/cpu.cc',
      'native/src/http/request_parser.cc',
      'native/src/ws/frame.cc',
      'native/src/ws/handshake.cc',
      'native/src/io/reactor.cc',
      'native/src/io/epoll_reactor.cc',
      'native/src/io/uring_reactor.cc',
      'native/src/io/server.cc',
      'native/src/io/load_client.cc',
    ],
    'myelin_binding_sources': [
      'native/binding/addon.cc',
      'native/binding/errors.cc',
      'native/binding/ring_wrap.cc',
      'native/binding/slab_wrap.cc',
      'native/binding/histogram_wrap.cc',
      'native/binding/json_wrap.cc',
      'native/binding/matcher_wrap.cc',
      'native/binding/cpu_wrap.cc',
      'native/binding/gateway_wrap.cc',
      'native/binding/load_wrap.cc',
    ],
  },
}
