// The gateway's record and ring layout is drawn twice: native/src/io/records.h with
// native/src/queue/byte_ring.h, and lib/gateway/records.ts with lib/bus/byte-ring.ts.
// The addon reports what it compiled; this checks the two drawings agree.
import { describe, expect, it } from 'vitest';
import { native } from '../lib/internal/native.js';
import { In, InFlag, IN_HEADER, NO_PRIORITY, Out, OutFlag, OUT_HEADER } from '../lib/gateway/records.js';
import { R, RING_HEADER_BYTES } from '../lib/bus/byte-ring.js';

describe('gateway record layout', () => {
  const l = native().gatewayLayout;

  it('headers and constants match', () => {
    expect(l.inHeader).toBe(IN_HEADER);
    expect(l.outHeader).toBe(OUT_HEADER);
    expect(l.noPriority).toBe(NO_PRIORITY);
  });

  it('record kinds and flags match', () => {
    expect(l.in).toEqual({ ...In });
    expect(l.inFlag).toEqual({ ...InFlag });
    expect(l.out).toEqual({ ...Out });
    expect(l.outFlag).toEqual({ ...OutFlag });
  });

  it('the byte ring words match', () => {
    expect(l.ring).toEqual({ ...R, HEADER_BYTES: RING_HEADER_BYTES, WRAP: 0xffffffff });
  });
});
