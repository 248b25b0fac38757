// IOAS plumbing against the real kernel: IOVA ranges, map, unmap, destroy.
import { afterEach, describe, expect, it } from 'vitest';
import { allocPages, Iommufd } from '../../../lib/index.js';
import { MockDevice } from '../../../lib/testing.js';

const open: Iommufd[] = [];
afterEach(async () => {
  for (const fd of open.splice(0)) await fd.close();
});
function iommufd(): Iommufd {
  const fd = Iommufd.open();
  open.push(fd);
  return fd;
}

// The test device's aperture (drivers/iommu/iommufd/iommufd_test.h: MOCK_APERTURE_START/LAST).
const MOCK_APERTURE_START = 1n << 24n;
const MOCK_APERTURE_LAST = (1n << 31n) - 1n;

describe('IOAS', () => {
  it('spans the whole IOVA space until a device narrows it to its aperture', () => {
    const fd = iommufd();
    const ioas = fd.allocIoas();
    expect(ioas.iovaRanges().ranges).toEqual([{ start: 0n, last: 2n ** 64n - 1n }]);
    MockDevice.create(fd, ioas.id);
    const { ranges, alignment } = ioas.iovaRanges();
    expect(ranges).toEqual([{ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST }]);
    expect(alignment).toBeGreaterThan(0n);
  });

  it('maps memory where the kernel chooses, or at a fixed IOVA, and unmaps it', () => {
    const fd = iommufd();
    const ioas = fd.allocIoas();
    MockDevice.create(fd, ioas.id);
    const memory = allocPages(256 * 1024);
    const iova = ioas.map(memory);
    expect(iova).toBeGreaterThanOrEqual(MOCK_APERTURE_START);
    expect(iova + BigInt(memory.byteLength) - 1n).toBeLessThanOrEqual(MOCK_APERTURE_LAST);
    const fixed = 0x4000_0000n;
    expect(ioas.map(memory, { iova: fixed, writable: false })).toBe(fixed);
    // The same IOVA twice: the kernel refuses the overlap.
    expect(() => ioas.map(memory, { iova: fixed })).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'IOMMU_IOAS_MAP' }));
    // Outside the device's aperture.
    expect(() => ioas.map(memory, { iova: 0x1000n })).toThrow(expect.objectContaining({ syscall: 'IOMMU_IOAS_MAP' }));
    expect(ioas.unmap(fixed)).toBe(BigInt(memory.byteLength));
    expect(() => ioas.unmap(fixed, BigInt(memory.byteLength))).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'IOMMU_IOAS_UNMAP' }));
    expect(ioas.unmap()).toBe(BigInt(memory.byteLength));
  });

  it('is EBUSY to destroy while a device is attached, and gone afterwards', () => {
    const fd = iommufd();
    const ioas = fd.allocIoas();
    const dev = MockDevice.create(fd, ioas.id);
    expect(() => ioas.destroy()).toThrow(expect.objectContaining({ code: 'EBUSY', syscall: 'IOMMU_DESTROY' }));
    dev.destroy();
    ioas.destroy();
    expect(() => fd.destroy(ioas.id)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'IOMMU_DESTROY' }));
    // The object remembers: its id may name a newer object by now, so it is never passed on again.
    expect(() => ioas.iovaRanges()).toThrow(expect.objectContaining({ code: 'ERR_IOMMUFD_CLOSED', message: expect.stringMatching(/^Ioas\.iovaRanges: IOAS \d+ \(destroyed\)/) }));
    ioas.destroy(); // a no-op the second time
  });

  it('GET_HW_INFO on the test device reports the selftest type and register value', () => {
    const fd = iommufd();
    const ioas = fd.allocIoas();
    const dev = MockDevice.create(fd, ioas.id);
    const info = fd.getHwInfo(dev.deviceId);
    expect(info.type).toBe(0xfeedbeef); // IOMMU_HW_INFO_TYPE_SELFTEST
    // struct iommu_test_hw_info {u32 flags; u32 test_reg = IOMMU_HW_INFO_SELFTEST_REGVAL}
    expect(new DataView(info.data.buffer, info.data.byteOffset).getUint32(4, true)).toBe(0xdeadbeef);
  });
});
