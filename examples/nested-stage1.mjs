// Nested translation on the real path, run in the rig by `npm run demo:nested` (it boots --qemu nested).
//
// The VMM owns stage 2: an IOAS mapping guest RAM at guest-physical addresses (GPAs). The guest owns
// stage 1: page tables, in memory stage 2 maps, from the device's addresses (IOVAs) to GPAs; this
// script plays the guest with a VtdStage1Table. The device (the rig's PRI test device) sits on a
// nested HWPT with a fault queue: a DMA that misses in stage 1 becomes a PCIe page request on that
// queue; the handler (the guest's, which a VMM forwards through its vIOMMU) installs stage-1
// entries, invalidates once per batch and answers SUCCESS, and the device retries through both stages.
// Exit status: 0 all done, bytes match; 1 a check failed; 2 no PRI device or no nesting (not in
// `--qemu nested`); 3 a kernel stop: Linux 6.12 leaves ATS off under a nested domain (no page requests).
import { release } from 'node:os';
import { allocPages, bindVfioPci, findPciDevices, HWPT_ALLOC_NEST_PARENT, Iommufd, PCI_EXT_CAP_ID_ATS, pciExtendedCapabilities, PGFAULT_PERM_WRITE, readPciConfig, VfioDevice } from 'iommufd';
import { PRI_TESTDEV_DEVICE_ID, PRI_TESTDEV_SLOTS, PRI_TESTDEV_VENDOR_ID, PriTestDevice, VtdStage1Table } from 'iommufd/testing';

const PAGE = 4096;
const GPA = 0x2_0000_0000n, TABLES = 0x3_0000_0000n; // stage 2: guest RAM and the guest's page tables
const PAGES = 64; // 256 KiB of guest RAM
const IOVA = 0x4000_0000n, IOVA_END = IOVA + BigInt(PAGES * PAGE); // stage 1: where the guest shows the device its RAM
const address = findPciDevices(PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID)[0];
if (!address) { console.error('no PRI test device (1234:11e9): run this in the rig with --qemu nested (npm run demo:nested)'); process.exit(2); }
bindVfioPci(address);
const ram = new Uint8Array(allocPages(PAGES * PAGE));
for (let i = 0; i < ram.length; i++) ram[i] = (i * 7 + (i >> 12)) & 0xff;

async function main(iommufd, dev) {
  const deviceId = dev.bind(iommufd);
  if (!dev.hwInfo().vtd?.ecap.nest) { console.error('this IOMMU has no nested translation (VT-d ecap NEST): boot the rig with --qemu nested'); return 2; }
  // The VMM: all of guest RAM in stage 2, and the device on stage 2 alone (the guest's IOMMU is off at boot).
  const ioas = iommufd.allocIoas();
  ioas.map(ram, { iova: GPA });
  const parent = iommufd.allocHwpt({ deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
  dev.attach(parent);
  // The guest turns its IOMMU on: empty stage-1 tables; the VMM replaces the device's domain by a nested one.
  const table = new VtdStage1Table(ioas, { iova: TABLES });
  const faults = iommufd.allocFaultQueue();
  const hwpt = iommufd.allocHwpt({ deviceId, parentId: parent.id, faultQueue: faults, stage1: { type: 'vtd-s1', pgtblAddr: table.root } });
  dev.attach(hwpt);
  // Page requests need the device's ATS on (the ATS control register's enable bit, config + 6, bit 15).
  const config = readPciConfig(address);
  const ats = pciExtendedCapabilities(config).find((c) => c.id === PCI_EXT_CAP_ID_ATS);
  if (!ats || !(config[ats.offset + 7] & 0x80)) {
    console.error(`kernel stop: Linux ${release()} left ATS off under the nested domain (6.12's intel_nested_attach_dev does), so the device ` +
      'can send no page request and no stage-1 fault reaches user space; nested stage-1 faults need Linux 7.x');
    return 3;
  }
  const device = new PriTestDevice(dev);
  console.log(`${address}: on nested HWPT ${hwpt.id} (stage 1 at 0x${table.root.toString(16)}) over NEST_PARENT ${parent.id}; ${PAGES} pages of guest RAM at GPA 0x${GPA.toString(16)}, none in stage 1`);

  // The handler: per batch of fault groups, stage-1 entries IOVA + n pages -> GPA + n pages, ONE
  // invalidation for all of them (the guest's IOTLB flush), then the answers. Outside guest RAM: INVALID.
  let installed = 0, invalidations = 0;
  const handler = (async () => {
    for await (const batch of faults.batches()) {
      const ok = batch.map((g) => g.faults.every((f) => f.addr >= IOVA && f.addr < IOVA_END));
      const entries = batch.filter((_, i) => ok[i]).flatMap((g) => g.faults).map((f) => {
        table.map(f.addr, GPA + (f.addr - IOVA), { writable: (f.perm & PGFAULT_PERM_WRITE) !== 0 });
        return { addr: f.addr, npages: 1n };
      });
      if (entries.length) { hwpt.invalidate(entries); invalidations++; installed += entries.length; }
      batch.forEach((g, i) => g.answer(ok[i] ? 'success' : 'invalid'));
      console.log(`  batch: ${batch.length} group(s), ${entries.length} stage-1 entries from 0x${batch[0].faults[0].addr.toString(16)}, ${entries.length ? 1 : 'no'} invalidation -> ${ok.every(Boolean) ? 'SUCCESS' : 'INVALID'}`);
    }
  })();

  // The device: 8 jobs reading 8 pages of guest RAM each through stage 1, all in flight, half of
  // them asking for their missing pages in groups; then one job outside guest RAM.
  const jobPages = PAGES / PRI_TESTDEV_SLOTS;
  const done = await Promise.all(Array.from({ length: PRI_TESTDEV_SLOTS }, (_, s) => {
    device.start(s, { iova: IOVA + BigInt(s * jobPages * PAGE), offset: s * jobPages * PAGE, length: jobPages * PAGE, group: s % 2 === 1 });
    return device.wait(s);
  }));
  const outside = await device.run(0, { iova: IOVA_END + 0x10_0000n, offset: 0, length: 64 });
  const same = Buffer.compare(device.readMemory(0, ram.length), ram) === 0;
  console.log(`jobs: ${done.filter((r) => r.status === 'done').length}/${done.length} done, ${done.reduce((n, r) => n + r.pageRequests, 0)} page requests, ${installed} stage-1 entries in ${invalidations} invalidations; bytes ${same ? 'match' : 'DIFFER'}`);
  console.log(`job outside guest RAM: ${outside.status} (error ${outside.error}: the device saw INVALID)`);
  await faults.close();
  await handler;
  return same && done.every((r) => r.status === 'done') && installed === PAGES && outside.status === 'error' ? 0 : 1;
}

const iommufd = Iommufd.open();
const dev = VfioDevice.openPci(address);
try { process.exitCode = await main(iommufd, dev); } finally { dev.close(); await iommufd.close(); }
