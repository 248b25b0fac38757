// The argument checks of the calls that need no kernel, walked on the host from test/api/spec.ts:
// the pure decoders and byte-array helpers, allocPages (an mmap), FaultBatch and VeventBatch over
// synthetic records (the guest walks them over the kernel's too), and PriTestDevice over a
// VfioDevice-shaped fake, which only shows that its checks come before any device access and let
// good calls through to the device; no device behaviour is claimed (the iopf guest has the device).
import { afterAll, describe, it } from 'vitest';
import type { AnswerBuffer } from '../../lib/fault/answers.js';
import { FAULT_RECORD_SIZE, PGFAULT_FLAGS_LAST_PAGE } from '../../lib/fault/fault.js';
import { FaultBatch } from '../../lib/fault/fault_batch.js';
import { VfioDevice } from '../../lib/index.js';
import { PriTestDevice, VEVENTQ_TYPE_SELFTEST } from '../../lib/testing.js';
import { VeventBatch } from '../../lib/vevent/vevent_batch.js';
import { expectNoFailures, type Harness, lazyWorld, walk, type Walked } from '../api/cases.js';
import { type CallSpec, type ReceiverKind, spec, type World } from '../api/spec.js';

/** A live FaultBatch over `groups` single-record groups, and a way to end it. */
function faultBatch(groups = 8): FaultBatch {
  const bytes = new Uint8Array(groups * FAULT_RECORD_SIZE);
  const v = new DataView(bytes.buffer);
  for (let g = 0; g < groups; g++) {
    v.setUint32(g * FAULT_RECORD_SIZE, PGFAULT_FLAGS_LAST_PAGE, true);
    v.setUint32(g * FAULT_RECORD_SIZE + 36, 100 + g, true);
  }
  const sink = { add: () => 0 } as unknown as AnswerBuffer;
  const batch = new FaultBatch(sink, { flush() {}, stop() {}, keep: () => ({}) as never });
  batch._begin(bytes, bytes.byteLength);
  return batch;
}

/** A live VeventBatch of `n` selftest events (sequence 0..n-1). */
function veventBatch(n = 4): VeventBatch {
  const bytes = new Uint8Array(n * 12);
  const v = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) {
    v.setUint32(i * 12 + 4, i, true);
    v.setUint32(i * 12 + 8, 0x99, true);
  }
  const batch = new VeventBatch(VEVENTQ_TYPE_SELFTEST, 4);
  batch._begin(bytes, bytes.byteLength);
  return batch;
}

/** A VfioDevice-shaped fake of a PRI test device: it answers the ID register and "done" for every slot's STATUS. */
function fakeDevice(): VfioDevice & { closed: boolean } {
  const status = (off: number) => off >= 0x100 && (off - 0x100) % 0x40 === 0x1c;
  return Object.create(VfioDevice.prototype, {
    closed: { value: false, writable: true },
    path: { value: '/dev/vfio/devices/fake' },
    pciAddress: { value: undefined },
    readBar: { value: (_bar: number, off: number) => (off === 0 ? 0x11e9 : status(off) ? 3 : 0) },
    writeBar: { value: () => {} },
    readConfig: { value: () => 0 },
    writeConfig: { value: () => {} },
    read: { value: (_i: number, _o: number, n: number) => new Uint8Array(n) },
    write: { value: () => {} },
  });
}

const host: Harness = {
  world: () => lazyWorld({
    faultBatch: () => faultBatch(),
    veventBatch: () => veventBatch(),
    vfio: () => fakeDevice(),
    pri: (w) => new PriTestDevice(w.vfio),
    closedArg: () => ({ VfioDevice: Object.assign(fakeDevice(), { closed: true }) }),
  }),
  closed(kind: ReceiverKind, args: (w: World) => unknown[]) {
    const w = host.world() as World;
    const made = args(w);
    const receiver = w[kind as 'faultBatch' | 'veventBatch' | 'pri'];
    if (kind === 'faultBatch' || kind === 'veventBatch') w[kind]._end();
    else if (kind === 'pri') (w.pri.device as VfioDevice & { closed: boolean }).closed = true;
    else throw new Error(`no closed ${kind} on the host`);
    return [{ receiver, args: made }];
  },
};

const onHost = (s: CallSpec) => !s.internal && (s.runner === 'host' || s.runner === 'pri' || s.receiver === 'faultBatch' || s.receiver === 'veventBatch');
const walked: Walked[] = [];

describe('every argument check, on the host', () => {
  for (const s of spec.filter(onHost)) {
    it(s.call, async () => {
      const r = await walk(s, host);
      walked.push(r);
      expectNoFailures(s.call, r.failures);
    });
  }
});

afterAll(() => {
  const cases = walked.reduce((n, r) => n + r.cases, 0);
  console.log(`host: ${walked.length} calls walked, ${cases} cases (${walked.reduce((n, r) => n + r.runs, 0)} runs)`);
});
