// The DemandPager on the real path, run in the rig by `npm run demo:pager` (it boots --qemu iopf).
//
// The VMM's side of demand paging in a few lines: 16 MiB of guest RAM behind an IOAS with nothing
// mapped, and a budget of 256 KiB of it mapped (so pinned) at once. The rig's PRI test device
// copies random pages of guest RAM, 64 times the budget in all; each first touch is a PCIe page
// request, which the pager's worker maps and answers in the addon (no JS per fault), unmapping the
// oldest pages to stay within the budget. The bytes the device copied are checked.
import { allocPages, bindVfioPci, DemandPager, findPciDevices, Iommufd, VfioDevice } from 'iommufd';
import { PRI_TESTDEV_DEVICE_ID, PRI_TESTDEV_SLOTS, PRI_TESTDEV_VENDOR_ID, PriTestDevice } from 'iommufd/testing';

const PAGE = 4096;
const RAM = { iova: 0x1000_0000n, bytes: 16 << 20 };
const BUDGET = 256 << 10;
const JOB_PAGES = 4; // per job: 4 pages, one page request each
const ROUNDS = (64 * BUDGET) / (PRI_TESTDEV_SLOTS * JOB_PAGES * PAGE);

const address = findPciDevices(PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID)[0];
if (!address) {
  console.error('no PRI test device (1234:11e9): run this in the rig with --qemu iopf (npm run demo:pager)');
  process.exit(2);
}
bindVfioPci(address);

const ram = new Uint8Array(allocPages(RAM.bytes));
for (let i = 0; i < ram.length; i += 4) ram[i] = (i >> 12) & 0xff; // each page says which it is
let seed = 23;
const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);

const iommufd = Iommufd.open();
try {
  const dev = VfioDevice.openPci(address);
  const deviceId = dev.bind(iommufd);
  const ioas = iommufd.allocIoas();
  const faults = iommufd.allocFaultQueue();
  dev.attach(iommufd.allocHwpt({ deviceId, parentId: ioas.id, faultQueue: faults }));
  const device = new PriTestDevice(dev);

  const pager = await DemandPager.start({ ioas, faultQueue: faults, memory: ram, iova: RAM.iova, budget: BigInt(BUDGET) });
  pager.on('faultError', (err, { cause, iova }) => console.error(`fault error (${cause}) at 0x${iova.toString(16)}: ${err.message}`));
  let same = true;
  let peakSeen = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const jobs = Array.from({ length: PRI_TESTDEV_SLOTS }, (_, slot) => {
      const page = Math.floor(random() * (RAM.bytes / PAGE - JOB_PAGES));
      device.start(slot, { iova: RAM.iova + BigInt(page * PAGE), offset: slot * JOB_PAGES * PAGE, length: JOB_PAGES * PAGE });
      return device.wait(slot, { timeoutMs: 10_000 }).then((result) => ({ result, slot, page }));
    });
    for (const { result, slot, page } of await Promise.all(jobs)) {
      const copied = device.readMemory(slot * JOB_PAGES * PAGE, JOB_PAGES * PAGE);
      same &&= result.status === 'done' && Buffer.compare(copied, ram.subarray(page * PAGE, (page + JOB_PAGES) * PAGE)) === 0;
    }
    peakSeen = Math.max(peakSeen, pager.stats.mappedBytes);
  }
  const { stats } = await pager.close();
  dev.close();
  console.log(`${ROUNDS * PRI_TESTDEV_SLOTS} DMA jobs over ${RAM.bytes >> 20} MiB of guest RAM: ${stats.faults} page requests, ` +
    `${stats.servedNatively} of them mapped and answered in the addon, ${stats.faults - stats.servedNatively} through JS`);
  console.log(`mapped ${stats.mappedPages} pages, evicted ${stats.evictedPages}; at most ${stats.peakMappedBytes >> 10} KiB mapped (budget ${BUDGET >> 10} KiB)`);
  console.log(`read to answer: p50 ${stats.latency.p50} us, p99 ${stats.latency.p99} us; bytes ${same ? 'match' : 'DIFFER'}`);
  process.exitCode = same && stats.peakMappedBytes <= BUDGET && peakSeen <= BUDGET && stats.invalid === 0 ? 0 : 1;
} finally {
  await iommufd.close();
}
