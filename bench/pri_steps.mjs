// Where a `for await` round trip on the real path goes, step by step, beside the batch view's (a
// diagnostic of npm run bench:pri's paging rows; run it in a --qemu iopf or nested boot, after
// npm run build:ts):
//
//   npx iommufd-rig --qemu iopf -- node bench/pri_steps.mjs [ITERS] [ROUNDS] [view,await+spy,await]
//
// One page request at a time from the PRI test device, mapped and answered as bench:pri's rows
// do. Stamps: t0 the GO write; tcb the pump's call into JS (the batch view's handler, or for
// "await+spy" a batch handler that answers nothing, so every group goes on to the loop); t1 the
// loop body (the handler for the view); t2 answered (respond() settled; the view's flush()
// returned); t3 the device done. Prints the p50 of each step per variant and round, in us.
import { Iommufd, VfioDevice, allocPages, bindVfioPci, findPciDevices } from '../dist/esm/index.js';
import { PriTestDevice, PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID } from '../dist/esm/testing.js';

const now = () => process.hrtime.bigint();
const ITERS = Number(process.argv[2] ?? 300);
const ROUNDS = Number(process.argv[3] ?? 3);
const VARIANTS = (process.argv[4] ?? 'view,await+spy,await').split(',');
const WARMUP = 30;
const BASE = 0x1_0000_0000n;
const address = findPciDevices(PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID)[0];
if (!address) throw new Error('no PRI test device: boot the rig with --qemu iopf or nested');
bindVfioPci(address);
const page = allocPages(4096);
new Uint8Array(page).fill(0x5a);
let nextPage = 0;

// Bounded: the device fails a job within its timeout (5 s); a fault not delivered in 10 s is lost.
function spinDone(pri) {
  const until = Date.now() + 10_000;
  for (let n = 0; ; n++) {
    const s = pri.status(0);
    if (s === 'done') return;
    if (s === 'error') throw new Error(`the device failed the job: ${JSON.stringify(pri.result(0), (k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
    if ((n & 63) === 63 && Date.now() > until) throw new Error(`job still ${s} after 10 s`);
  }
}
const p50 = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return Number((s[s.length >> 1] / 1000).toFixed(1));
};

async function run(variant) {
  const iommufd = Iommufd.open();
  const dev = VfioDevice.openPci(address);
  try {
    const deviceId = dev.bind(iommufd);
    const ioas = iommufd.allocIoas();
    const queue = iommufd.allocFaultQueue();
    dev.attach(iommufd.allocHwpt({ deviceId, parentId: ioas.id, faultQueue: queue }));
    const pri = new PriTestDevice(dev);
    const steps = { toJs: [], toLoop: [], handler: [], completion: [], total: [] };
    let tcb = 0n;
    let t1 = 0n;
    let t2 = 0n;
    let handled = () => {};
    if (variant === 'view') {
      queue.setBatchHandler((batch) => {
        tcb = t1 = now();
        for (let g = 0; g < batch.groupCount; g++) ioas.map(page, { iova: batch.addressBigInt(batch.first(g)) });
        batch.answerAll();
        batch.flush();
        t2 = now();
        handled();
      });
    } else if (variant === 'await+spy') {
      queue.setBatchHandler(() => { tcb = now(); });
    }
    const groups = queue.groups();
    // The waits are bounded by one watchdog for the run, not a timer and a race per wait (which
    // the loop's steps would measure): with no fault handled for 10 s it fails the view's wait
    // and closes the queue, which ends the loop's next().
    let i = 0;
    let seen = -1;
    let lost;
    let stall = () => {};
    const watchdog = setInterval(() => {
      if (i === seen) {
        lost = new Error(`${variant}: no fault handled for 10 s (at fault ${i})`);
        stall(lost);
        void queue.close();
      }
      seen = i;
    }, 10_000);
    try {
      for (; i < WARMUP + ITERS; i++) {
        const done = new Promise((resolve, reject) => { handled = resolve; stall = reject; });
        pri.prepare(0, { iova: BASE + BigInt(nextPage++ * 4096), offset: 0, length: 64 });
        const t0 = now();
        pri.go(0);
        if (variant === 'view') {
          await done;
        } else {
          const { value: group, done: ended } = await groups.next();
          if (ended) throw lost ?? new Error('the queue ended');
          t1 = now();
          ioas.map(page, { iova: group.faults[0].addr });
          await group.respond();
          t2 = now();
        }
        spinDone(pri);
        const t3 = now();
        if (i < WARMUP) continue;
        if (variant !== 'await') {
          steps.toJs.push(Number(tcb - t0));
          steps.toLoop.push(Number(t1 - tcb));
        }
        steps.handler.push(Number(t2 - t1));
        steps.completion.push(Number(t3 - t2));
        steps.total.push(Number(t3 - t0));
      }
    } finally {
      clearInterval(watchdog);
    }
    await queue.close();
    return Object.fromEntries(Object.entries(steps).filter(([, v]) => v.length).map(([k, v]) => [k, p50(v)]));
  } finally {
    dev.close();
    await iommufd.close();
  }
}

for (let round = 0; round < ROUNDS; round++) {
  for (const variant of round % 2 ? [...VARIANTS].reverse() : VARIANTS) {
    console.log(JSON.stringify({ round: round + 1, variant, ...(await run(variant)) }));
  }
}
