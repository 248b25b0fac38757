// Hwpt.invalidate (IOMMU_HWPT_INVALIDATE) against the kernel's test device: its nested HWPTs keep
// a 4-entry mock IOTLB, set to the HWPT data's value at alloc and to 0 by an invalidation that
// names an entry (IOMMU_TEST_OP_MD_CHECK_IOTLB reads it back), as the kernel's selftest
// iommufd.c's hwpt_invalidate does. Many entries go in one ioctl; a refusal says which entry.
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, HWPT_ALLOC_NEST_PARENT, Iommufd, type Hwpt } from '../../../lib/index.js';
import { checkMockIotlb, HWPT_DATA_SELFTEST, IOMMU_TEST_IOTLB_DEFAULT, MOCK_IOTLB_NUM, MockDevice, selftestHwptData } from '../../../lib/testing.js';
import { closeAll, open } from './helpers.js';

afterEach(closeAll);

function nested() {
  const iommufd = Iommufd.open();
  open.push(iommufd);
  const ioas = iommufd.allocIoas();
  const dev = MockDevice.create(iommufd, ioas.id);
  const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
  const hwpt = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: parent.id, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData() });
  return { iommufd, ioas, dev, parent, hwpt };
}

/** The mock IOTLB as [entry holds the default, ...]: true = still cached, false = invalidated (0). */
function iotlb(hwpt: Hwpt): (boolean | string)[] {
  return Array.from({ length: MOCK_IOTLB_NUM }, (_, id) => {
    if (checkMockIotlb(hwpt, id, IOMMU_TEST_IOTLB_DEFAULT)) return true;
    return checkMockIotlb(hwpt, id, 0) ? false : 'neither';
  });
}

describe('Hwpt.invalidate on the test device', () => {
  it('an entry clears the IOTLB entry it names, `all` every one; nothing else changes', () => {
    const { hwpt } = nested();
    expect(MOCK_IOTLB_NUM).toBe(4);
    expect(hwpt.dataType).toBe(HWPT_DATA_SELFTEST);
    expect(iotlb(hwpt)).toEqual([true, true, true, true]);
    expect(hwpt.invalidate([{ iotlbId: 1 }])).toBe(1);
    expect(iotlb(hwpt)).toEqual([true, false, true, true]);
    expect(hwpt.invalidate([{ iotlbId: 3 }, { iotlbId: 0 }])).toBe(2);
    expect(iotlb(hwpt)).toEqual([false, false, true, false]);
    expect(hwpt.invalidate([{ all: true }])).toBe(1);
    expect(iotlb(hwpt)).toEqual([false, false, false, false]);
    expect(hwpt.invalidate([])).toBe(0);
  });

  it('many entries in one ioctl: 1000 processed', () => {
    const { hwpt } = nested();
    const entries = Array.from({ length: 1000 }, (_, i) => ({ iotlbId: i % 4 }));
    expect(hwpt.invalidate(entries)).toBe(1000);
    expect(iotlb(hwpt)).toEqual([false, false, false, false]);
  });

  it('the kernel stops at the entry it refuses: the error names it, and the ones before took effect', () => {
    const { hwpt } = nested();
    let err: (Error & { code?: string; done?: number; syscall?: string }) | undefined;
    try {
      hwpt.invalidate([{ iotlbId: 0 }, { iotlbId: 2 }, { iotlbId: 9 }, { iotlbId: 3 }]);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err).toMatchObject({ name: 'IommufdError', code: 'EINVAL', syscall: 'IOMMU_HWPT_INVALIDATE', done: 2 });
    expect(err!.message).toMatch(/entry 2 of 4 refused \(iotlbId is past the mock IOTLB \(ids 0\.\.3\)\); the 2 before it took effect, none after it/);
    expect(iotlb(hwpt)).toEqual([false, true, false, true]);

    // Flags the mock does not know: EOPNOTSUPP at the first entry, nothing done.
    expect(() => hwpt.invalidate([{ iotlbId: 1, flags: 1 << 5 }])).toThrow(expect.objectContaining({ code: 'ENOTSUP', done: 0 }));
    expect(iotlb(hwpt)).toEqual([false, true, false, true]);
  });

  it('a paging HWPT has no stage 1 of ours: ERR_IOMMUFD_NOT_NESTED, before any ioctl', () => {
    const { iommufd, ioas, dev } = nested();
    const paging = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id });
    expect(() => paging.invalidate([{ iotlbId: 0 }])).toThrow(expect.objectContaining({ code: ErrorCodes.NOT_NESTED, message: expect.stringMatching(/^Hwpt\.invalidate: HWPT \d+ is not a nested HWPT/) }));
  });

  it('bad entries are typed errors naming the entry', () => {
    const { hwpt } = nested();
    expect(() => hwpt.invalidate('all' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/^Hwpt\.invalidate: entries must be an array/) }));
    expect(() => hwpt.invalidate([{ iotlbId: 0 }, { iotlbId: -1 }])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/entries\[1\]\.iotlbId/) }));
    expect(() => hwpt.invalidate([null as never])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/entries\[0\]/) }));
    expect(iotlb(hwpt)).toEqual([true, true, true, true]);
  });

  it('a destroyed HWPT and a closed iommufd refuse it', async () => {
    const { iommufd, dev, ioas, hwpt } = nested();
    dev.replace(ioas.id);
    hwpt.destroy();
    expect(() => hwpt.invalidate([{ iotlbId: 0 }])).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
    const other = nested();
    await other.iommufd.close();
    expect(() => other.hwpt.invalidate([{ iotlbId: 0 }])).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
    await iommufd.close();
  });
});

describe('a VT-d stage-1 HWPT where there is no VT-d nesting', () => {
  it('the mock refuses the VT-d data type, and the error says what a VT-d stage-1 HWPT needs', () => {
    const { iommufd, dev, parent } = nested();
    let err: (Error & { code?: string }) | undefined;
    try {
      iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: parent.id, stage1: { type: 'vtd-s1', pgtblAddr: 0x10_0000n } });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err).toMatchObject({ name: 'IommufdError', syscall: 'IOMMU_HWPT_ALLOC' });
    expect(['ENOTSUP', 'EINVAL']).toContain(err!.code);
    expect(err!.message).toMatch(/a VT-d stage-1 HWPT needs an IOMMU with nesting \(VT-d ECAP\.NEST/);
  });

  it('stage1 with dataType or data, or a width that is not 48 or 57, is refused before the kernel', () => {
    const { iommufd, dev, parent } = nested();
    const base = { deviceId: dev.deviceId, parentId: parent.id };
    expect(() => iommufd.allocHwpt({ ...base, stage1: { type: 'vtd-s1', pgtblAddr: 0n }, dataType: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => iommufd.allocHwpt({ ...base, stage1: { type: 'vtd-s1', pgtblAddr: 0n, addrWidth: 52 as 48 } })).toThrow(expect.objectContaining({ message: expect.stringMatching(/options\.stage1\.addrWidth/) }));
    expect(() => iommufd.allocHwpt({ ...base, stage1: { type: 'arm' as 'vtd-s1', pgtblAddr: 0n } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/options\.stage1\.type/) }));
    expect(() => iommufd.allocHwpt({ ...base, stage1: { type: 'vtd-s1', pgtblAddr: 1 as unknown as bigint } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/options\.stage1\.pgtblAddr/) }));
  });
});
