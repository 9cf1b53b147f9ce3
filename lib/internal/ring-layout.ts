// The SPSC ring's shared layout, mirrored from native/src/queue/spsc_ring.h (the
// header comment there draws it). Indices here are Int32Array element offsets.
// test/ring.test.ts checks that both sides agree byte for byte.
export const RingLayout = {
  WRITE: 0, // byte 0: u32 producer index
  READ: 16, // byte 64: u32 consumer index
  MAGIC: 32, // byte 128
  CAPACITY: 33, // byte 132
  ITEM_SIZE: 34, // byte 136
  CLOSED: 35, // byte 140
  NOT_EMPTY_SEQ: 48, // byte 192
  NOT_EMPTY_WAITERS: 49,
  NOT_FULL_SEQ: 64, // byte 256
  NOT_FULL_WAITERS: 65,
  HEADER_BYTES: 320,
  MAGIC_VALUE: 0x4752594d,
  MAX_CAPACITY: 2 ** 30,
} as const;
