// The real-path benchmark's backstop (bench/pri_bench.mjs): every wait of a run must end. The
// device bounds its own waits (TIMEOUT_MS: a job without a response fails after 5 s) and the C
// client's poll(2) gives up after 10 s, but a Node shape may wait where no timer can fire: in a
// serve() loop, or on a promise whose fault never comes. This worker watches a progress counter
// that the runs bump once per fault; when it stands still for `stallMs` it prints what the device
// and the guest kernel say (so the report tells a page request never sent, sent and not delivered,
// delivered and not answered, or answered and not seen by the device) and ends the process.
import { Worker } from 'node:worker_threads';

// Int32 slots of the shared block.
const BEATS = 0;
const PAUSED = 1;
const STOP = 2;
const VFIO_FD = 3;
const STEP = 4; // the fault (iteration or page count) the run is at
const HANDLED = 5; // handler calls the run counted (where it can)
const LABEL = 8; // then up to 256 bytes of label

const watcher = `
const { workerData } = require('node:worker_threads');
const { readFileSync, readSync, writeSync } = require('node:fs');
const p = new Int32Array(workerData.shared);
const label = new Uint8Array(workerData.shared, ${LABEL * 4});
const { stallMs } = workerData;
let last = -1, since = Date.now();
function reg(fd, off) {
  const b = Buffer.alloc(4);
  try { readSync(fd, b, 0, 4, off); return b.readUInt32LE(0); } catch (e) { return e.code; }
}
for (;;) {
  Atomics.wait(p, ${STOP}, 0, 500);
  if (Atomics.load(p, ${STOP})) break;
  const beats = Atomics.load(p, ${BEATS});
  if (beats !== last || Atomics.load(p, ${PAUSED})) { last = beats; since = Date.now(); continue; }
  if (Date.now() - since < stallMs) continue;
  const fd = Atomics.load(p, ${VFIO_FD});
  const text = Buffer.from(label.subarray(0, label.indexOf(0))).toString();
  const lines = ['[bench:pri] STALLED ' + (Date.now() - since) + ' ms in ' + text + ' at fault ' + Atomics.load(p, ${STEP}) + ' (handler calls counted: ' + Atomics.load(p, ${HANDLED}) + ')'];
  if (fd > 0) {
    const slot = (n, o) => reg(fd, 0x100 + 0x40 * n + o);
    const names = ['idle', 'running', 'waiting', 'done', 'error'];
    lines.push('  device: page requests sent ' + reg(fd, 0x10) + ', responses ' + reg(fd, 0x14) + ', outstanding ' + reg(fd, 0x18) +
      ', PRQ full ' + reg(fd, 0x20) + ', stale responses ' + reg(fd, 0x24) + ', PRI allocation ' + reg(fd, 0x28) + ', finished slots 0x' + Number(reg(fd, 0x8)).toString(16));
    for (let n = 0; n < 8; n++) {
      const st = slot(n, 0x1c);
      if (st === 0) continue;
      lines.push('  slot ' + n + ': ' + (names[st] ?? st) + ', error ' + slot(n, 0x20) + ', requests ' + slot(n, 0x24) + ', responses ' + slot(n, 0x28) +
        ', bytes done ' + slot(n, 0x2c) + ', last request 0x' + (BigInt(slot(n, 0x34)) << 32n | BigInt(slot(n, 0x30))).toString(16) + ', response code ' + slot(n, 0x38));
    }
  }
  try {
    for (const l of readFileSync('/proc/interrupts', 'utf8').split('\\n')) if (/dmar|prq|DMAR/.test(l)) lines.push('  /proc/interrupts:' + l.replace(/\\s+/g, ' '));
  } catch {}
  // fd 2 directly: a worker's process.stderr goes through the main thread, which may be stuck.
  writeSync(2, lines.join('\\n') + '\\n');
  process.kill(process.pid, 'SIGTERM');
  break;
}
`;

/** Starts the watcher; the run reports progress through the returned object. */
export function startWatchdog(stallMs) {
  const shared = new SharedArrayBuffer(LABEL * 4 + 256);
  const p = new Int32Array(shared);
  const label = new Uint8Array(shared, LABEL * 4);
  Atomics.store(p, PAUSED, 1); // until the first run
  const worker = new Worker(watcher, { eval: true, workerData: { shared, stallMs } });
  worker.unref();
  return {
    /** A new run: what it is and the VFIO device fd to read the device's registers through. */
    run(text, vfioFd = 0) {
      label.fill(0);
      label.set(new TextEncoder().encode(text).subarray(0, 255));
      Atomics.store(p, VFIO_FD, vfioFd);
      Atomics.store(p, STEP, 0);
      Atomics.store(p, HANDLED, 0);
      Atomics.store(p, PAUSED, 0);
      Atomics.add(p, BEATS, 1);
    },
    /** Progress: fault `step` is done. */
    beat(step) {
      p[STEP] = step;
      Atomics.add(p, BEATS, 1);
    },
    handled() { p[HANDLED]++; },
    /** Not watched (a C run: its own waits are bounded, and execFileSync's timeout bounds it). */
    pause() { Atomics.store(p, PAUSED, 1); Atomics.store(p, VFIO_FD, 0); },
    stop() { Atomics.store(p, STOP, 1); Atomics.notify(p, STOP); },
  };
}
