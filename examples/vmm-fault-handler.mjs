// An example VMM fault handler, run in the rig by `npm run demo`.
//
// A VMM gives a device a HWPT whose I/O page faults arrive on a fault queue; for each fault group
// it makes the page present (here: checks the address against "guest RAM") and answers SUCCESS,
// or INVALID for an address outside guest RAM. The kernel's iommufd test device plays the device,
// since no QEMU device raises PCIe page requests.
import { Iommufd, PGFAULT_PERM_WRITE } from 'iommufd';
import { MockDevice } from 'iommufd/testing';

const GUEST_RAM = { start: 0x0100_0000n, end: 0x0900_0000n }; // 128 MiB at 16 MiB
const FAULTS = 5000;
const t0 = performance.now();

const iommufd = Iommufd.open();
try {
  const ioas = iommufd.allocIoas();
  const device = MockDevice.create(iommufd, ioas.id);
  const faults = iommufd.allocFaultQueue();
  const hwpt = iommufd.allocHwpt({ deviceId: device.deviceId, parentId: ioas.id, faultQueue: faults });
  device.replace(hwpt.id);
  console.log(`iommufd: IOAS ${ioas.id}, HWPT ${hwpt.id} with fault queue ${faults.id}, device ${device.deviceId} attached`);

  // The "device": a burst of page requests, every 7th one outside guest RAM.
  for (let i = 0; i < FAULTS; i++) {
    const outside = i % 7 === 6;
    const addr = outside ? 0xdead_0000_0000n + BigInt(i) * 0x1000n : GUEST_RAM.start + BigInt(i % 32768) * 0x1000n;
    device.triggerIopf({ groupId: i & 0x1ff, perm: i % 2 ? PGFAULT_PERM_WRITE : 1, addr });
  }
  console.log(`device raised ${FAULTS} page requests`);

  let handled = 0;
  const verdicts = { success: 0, invalid: 0 };
  for await (const group of faults) {
    const ok = group.faults.every((f) => f.addr >= GUEST_RAM.start && f.addr < GUEST_RAM.end);
    const code = ok ? 'success' : 'invalid';
    group.respond(code);
    verdicts[code]++;
    handled++;
    if (handled <= 8) {
      const f = group.faults[0];
      console.log(`  fault ${handled}: device ${f.deviceId} group ${f.groupId} addr 0x${f.addr.toString(16)} ${f.perm & PGFAULT_PERM_WRITE ? 'write' : 'read'} -> ${code}`);
    } else if (handled % 1000 === 0) {
      console.log(`  ... ${handled} handled`);
    }
    if (handled === FAULTS) break;
  }
  await new Promise((r) => setImmediate(r)); // let the last batch of answers reach the kernel
  const s = faults.stats;
  console.log(`handled ${handled} fault groups in ${(performance.now() - t0).toFixed(0)} ms: ${verdicts.success} answered SUCCESS, ${verdicts.invalid} INVALID; kernel accepted ${s.answered}, refused ${s.refused}, pending ${s.pending}`);
  process.exitCode = s.answered === FAULTS && s.refused === 0 ? 0 : 1;
} finally {
  await iommufd.close(); // closes the fault queue first, answering anything left INVALID
}
