// The records the gateway's I/O threads and the JS thread exchange, mirrored from
// native/src/io/records.h (the layout is drawn there). test/gateway-records.test.ts
// checks that both sides agree.
export const IN_HEADER = 32;
export const OUT_HEADER = 16;
export const NO_PRIORITY = 0xff;

export const In = {
  PUB: 1,
  SUB: 2,
  UNSUB: 3,
  REQ: 4,
  WS_CLOSED: 5,
  HTTP_REQUEST: 6,
  HTTP_CLOSED: 7,
  EVENTS_END: 8,
} as const;

export const InFlag = {
  HTTP: 1,
  TOKEN_SHIFT: 8,
} as const;

export const Out = {
  HTTP: 1,
  WS_TEXT: 2,
  FANOUT: 3,
  WS_CLOSE: 4,
  CLOSE: 5,
} as const;

export const OutFlag = {
  END: 1,
  CLOSE_AFTER: 2,
} as const;

/** The I/O thread a connection id belongs to. */
export function threadOf(conn: number): number {
  return conn >>> 24;
}
