// Kernel fault injection (fail-nth, as tools/testing/selftests/iommu/iommufd_fail_nth.c sets it
// up: test/guest/fail_nth.ts) over the VFIO calls on a real device: the rig's PRI test device on
// vfio-pci behind the emulated intel-iommu. For N = 1, 2, ... until the call succeeds, each
// injected failure must be a typed error naming the ioctl, leave no fd and no object, and let the
// device close and the iommufd close; a fresh iommufd works (test/guest/fixtures/fail-nth-core.mjs).
// On 6.12 a paging HWPT takes no fault queue and there is no PASID attach: those calls are
// asserted refused, the rest swept. VfioDevice.bind is not swept on the real device: its injected
// failures reach the ACPI interpreter (vfio-pci's pci_enable_device evaluates _PRT), whose error
// paths corrupted it on 7.2.13 (an oops at a later close); fixtures/fail-nth-vfio.mjs says more.
import { describe, expect, it } from 'vitest';
import { listCases, report, sweep, useFailNth } from '../fail_nth.js';
import { kernelVersion } from '../rig.js';
import { ADDRESS, pagingFaultSupported, useVfioPci } from './helpers.js';

const [major, minor] = kernelVersion();
const pasidAttach = major > 6 || (major === 6 && minor >= 15);
useVfioPci();
const { warnings } = useFailNth();

const NO_PAGING_FAULT = { code: 'ENOTSUP', syscall: 'IOMMU_HWPT_ALLOC' };
const NO_PASID_ATTACH = { code: 'EINVAL', syscall: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', message: expect.stringMatching(/not supported by this kernel/) };
const NO_PASID_DETACH = { ...NO_PASID_ATTACH, syscall: 'VFIO_DEVICE_DETACH_IOMMUFD_PT' };

// Each call, whether this kernel takes it, and the refusal when it does not.
const calls: [string, boolean, object | undefined][] = [
  ['Iommufd.getHwInfo (VT-d)', true, undefined],
  ['VfioDevice.attach (IOAS)', true, undefined],
  ['Iommufd.allocHwpt (VT-d paging)', true, undefined],
  ['VfioDevice.attach (paging HWPT)', true, undefined],
  ['Iommufd.allocHwpt (VT-d paging, faultQueue)', pagingFaultSupported(), NO_PAGING_FAULT],
  ['VfioDevice.attach (fault HWPT)', pagingFaultSupported(), NO_PAGING_FAULT],
  ['VfioDevice.replace (IOAS to fault HWPT)', pagingFaultSupported(), NO_PAGING_FAULT],
  ['VfioDevice.attachPasid (fault HWPT)', pasidAttach, NO_PASID_ATTACH],
  ['VfioDevice.detachPasid', pasidAttach, NO_PASID_DETACH],
  ['VfioDevice.detach', true, undefined],
];

describe('fail-nth over the VFIO calls on the PRI test device', () => {
  it('the fixture sweeps exactly these calls', async () => {
    expect(await listCases('fail-nth-vfio.mjs', [ADDRESS])).toEqual(calls.map(([name]) => name));
  });

  it.each(calls)('%s: every injected allocation failure a typed error, nothing left, until it succeeds', async (name, present, refusal) => {
    const s = await sweep('fail-nth-vfio.mjs', name, [ADDRESS]);
    // Swept where the kernel takes the call, refused as known where it does not: never a skip.
    expect(s.present, `${name} on ${major}.${minor}: ${JSON.stringify(s.refusal)}`).toBe(present);
    if (!present) {
      expect(s.refusal).toMatchObject(refusal!);
      console.log(`fail-nth ${name}: refused by ${major}.${minor} (${s.refusal!.code}, ${s.refusal!.syscall}): not swept`);
      return;
    }
    expect(s.failures).toEqual([]);
    console.log(report(s));
    expect(warnings(), 'no kernel WARN or BUG during the sweep').toEqual([]);
  }, 300_000);
});
