// Demand paging on the real path, run in the rig by `npm run demo` (it boots --qemu iopf).
//
// A VMM gives a PCIe device an address space with nothing mapped, and maps guest RAM one page at
// a time, when the device first touches it. The device here is the rig's PRI test device: its DMA
// engine finds a page missing, sends a PCIe page request through the emulated intel-iommu to the
// kernel, and waits; this handler maps the page and answers SUCCESS (or INVALID outside guest RAM),
// and the device retries. Every fault below is the device's; the bytes it copies are checked.
import { allocPages, bindVfioPci, findPciDevices, Iommufd, PGFAULT_PERM_WRITE, VfioDevice } from 'iommufd';
import { PRI_TESTDEV_DEVICE_ID, PRI_TESTDEV_SLOTS, PRI_TESTDEV_VENDOR_ID, PriTestDevice } from 'iommufd/testing';

const PAGE = 4096;
const GUEST_RAM = { iova: 0x1000_0000n, pages: 64 }; // 256 KiB of "guest RAM" at 256 MiB
const address = findPciDevices(PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID)[0];
if (!address) {
  console.error('no PRI test device (1234:11e9): run this in the rig with --qemu iopf (npm run demo)');
  process.exit(2);
}
bindVfioPci(address);

// Guest RAM: memory the VMM owns, filled with something recognisable, not yet visible to the device.
const ram = new Uint8Array(allocPages(GUEST_RAM.pages * PAGE));
for (let i = 0; i < ram.length; i++) ram[i] = (i * 7 + (i >> 12)) & 0xff;
const ramEnd = GUEST_RAM.iova + BigInt(ram.length);

const iommufd = Iommufd.open();
try {
  const dev = VfioDevice.openPci(address);
  const deviceId = dev.bind(iommufd);
  const ioas = iommufd.allocIoas(); // empty: every first touch faults
  const faults = iommufd.allocFaultQueue();
  const hwpt = iommufd.allocHwpt({ deviceId, parentId: ioas.id, faultQueue: faults });
  dev.attach(hwpt);
  const device = new PriTestDevice(dev);
  console.log(`${address}: attached to HWPT ${hwpt.id} (fault queue ${faults.id}); guest RAM ${GUEST_RAM.pages} pages at 0x${GUEST_RAM.iova.toString(16)}, none mapped`);

  // The handler: map the page from guest RAM, or refuse an address outside it.
  let mapped = 0;
  const handler = (async () => {
    for await (const group of faults) {
      const ok = group.faults.every((f) => f.addr >= GUEST_RAM.iova && f.addr < ramEnd);
      if (ok) {
        for (const f of group.faults) {
          const off = Number(f.addr - GUEST_RAM.iova);
          ioas.map(ram.subarray(off, off + PAGE), { iova: f.addr, writable: (f.perm & PGFAULT_PERM_WRITE) !== 0 });
          mapped++;
        }
      }
      const f = group.faults[0];
      console.log(`  fault: ${group.faults.length} page(s) from 0x${f.addr.toString(16)} (${f.perm & PGFAULT_PERM_WRITE ? 'write' : 'read'}, pasid ${f.pasid}) -> ${ok ? 'mapped, SUCCESS' : 'INVALID'}`);
      await group.respond(ok ? 'success' : 'invalid');
    }
  })();

  // The device: 8 jobs copying 8 pages of guest RAM each into its own memory, all in flight,
  // half of them asking for their missing pages as one page request group.
  const jobPages = GUEST_RAM.pages / PRI_TESTDEV_SLOTS;
  const jobs = Array.from({ length: PRI_TESTDEV_SLOTS }, (_, s) => {
    device.start(s, { iova: GUEST_RAM.iova + BigInt(s * jobPages * PAGE), offset: s * jobPages * PAGE, length: jobPages * PAGE, group: s % 2 === 1 });
    return device.wait(s);
  });
  // And one job outside guest RAM, which the handler refuses.
  const done = await Promise.all(jobs);
  const outside = await device.run(0, { iova: ramEnd + 0x10_0000n, offset: 0, length: 64 });

  const copied = device.readMemory(0, ram.length);
  const same = Buffer.compare(copied, ram) === 0;
  console.log(`jobs: ${done.filter((r) => r.status === 'done').length}/${done.length} done, ${done.reduce((n, r) => n + r.pageRequests, 0)} page requests, ${mapped} pages mapped on demand; bytes ${same ? 'match' : 'DIFFER'}`);
  console.log(`job outside guest RAM: ${outside.status} (error ${outside.error}: the device saw INVALID)`);
  await faults.close();
  await handler;
  dev.close();
  process.exitCode = same && done.every((r) => r.status === 'done') && mapped === GUEST_RAM.pages && outside.status === 'error' ? 0 : 1;
} finally {
  await iommufd.close();
}
