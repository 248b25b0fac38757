// EventStream's ref: a queue keeps the event loop alive exactly while a consumer waits on it. While
// the pump's callback runs (the control block's deferRef slot set by the pump), the stream leaves
// what it wants in the ref slot for the pump to apply after, instead of calling pump.ref(); the
// pump's side is native (event_pump.cc, DeferRef) and runs in the guest tests (lifetime fixture).
import { describe, expect, it } from 'vitest';
import { CONTROL } from '../../lib/core/binding.js';
import { EventStream } from '../../lib/core/event_stream.js';

function setup() {
  const calls: boolean[] = [];
  const pump = { start() {}, stop() {}, ref(on: boolean) { calls.push(on); } };
  const slots = new Int32Array(CONTROL.bytes / 4);
  const stream = new EventStream<number>({}, pump, slots, 100, 10);
  return { calls, slots, stream };
}

describe('EventStream ref', () => {
  it('calls pump.ref() when a consumer starts and stops waiting outside the pump callback', async () => {
    const { calls, stream } = setup();
    const next = stream.next();
    expect(calls).toEqual([true]);
    stream.push(1);
    stream.delivered();
    expect(calls).toEqual([true, false]);
    expect(await next).toEqual({ value: 1, done: false });
  });

  it('in the pump callback, leaves only the last wish in the control block and calls nothing', async () => {
    const { calls, slots, stream } = setup();
    const first = stream.next(); // waiting before the callback: ref'd now
    expect(calls).toEqual([true]);
    slots[CONTROL.deferRef] = 1; // what the pump does around its callback
    slots[CONTROL.ref] = -1;
    stream.push(1);
    stream.delivered(); // the consumer is handed its item: no one waits
    expect(slots[CONTROL.ref]).toBe(0);
    expect(await first).toEqual({ value: 1, done: false });
    const second = stream.next(); // ...and waits again in the callback's microtasks
    expect(slots[CONTROL.ref]).toBe(1);
    expect(calls).toEqual([true]);
    slots[CONTROL.deferRef] = 0;
    stream.end();
    expect(await second).toEqual({ value: undefined, done: true });
  });

  it('unref() wins over a waiting consumer, in the callback as outside it', () => {
    const { calls, slots, stream } = setup();
    void stream.next();
    slots[CONTROL.deferRef] = 1;
    stream.ref(false);
    expect(slots[CONTROL.ref]).toBe(0);
    slots[CONTROL.deferRef] = 0;
    stream.ref(true);
    expect(calls).toEqual([true, true]);
  });
});
