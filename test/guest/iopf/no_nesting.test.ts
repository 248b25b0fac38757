// Nesting refused on a real VT-d without it: --qemu iopf boots QEMU's intel-iommu without
// x-nesting, so ECAP.NEST is 0 and intel-iommu offers neither a NEST_PARENT HWPT
// (intel_iommu_domain_alloc_second_stage / 6.12 intel_iommu_domain_alloc_user: EOPNOTSUPP) nor,
// then, a VT-d stage-1 HWPT (the iommufd core refuses a parent made without NEST_PARENT: EINVAL).
// The mock's version is test/guest/mock/invalidate.test.ts.
import { describe, expect, it } from 'vitest';
import { HWPT_ALLOC_NEST_PARENT } from '../../../lib/index.js';
import { bound, useVfioPci } from './helpers.js';

useVfioPci();

type Err = Error & { code?: string; errno?: number; syscall?: string };
function thrown(f: () => unknown): Err | undefined {
  try {
    f();
  } catch (e) {
    return e as Err;
  }
  return undefined;
}

describe('a VT-d without nesting (ECAP.NEST=0)', () => {
  it('the IOMMU says so: ECAP.NEST is 0', () => {
    const { dev } = bound();
    expect(dev.hwInfo().vtd?.ecap.nest).toBe(false);
  });

  it('a NEST_PARENT HWPT is refused with ENOTSUP, and the error says nesting is what is missing, and that this IOMMU has none', () => {
    const { iommufd, deviceId, ioas } = bound();
    const err = thrown(() => iommufd.allocHwpt({ deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT }));
    expect(err).toMatchObject({ name: 'IommufdError', code: 'ENOTSUP', errno: -95, syscall: 'IOMMU_HWPT_ALLOC' });
    expect(err!.message).toMatch(/HWPT_ALLOC_NEST_PARENT needs an IOMMU with nesting \(VT-d ECAP\.NEST, with first- and second-stage support\); this device's IOMMU has none \(ECAP\.NEST=0\)$/);
    // A paging HWPT without the flag is made as before.
    expect(iommufd.allocHwpt({ deviceId, parentId: ioas.id }).id).toBeGreaterThan(0);
  });

  it('a VT-d stage-1 HWPT (over the only parent there can be, a plain paging HWPT) is refused, and the error says what nesting needs and that this IOMMU has none', () => {
    const { iommufd, deviceId, ioas } = bound();
    const paging = iommufd.allocHwpt({ deviceId, parentId: ioas.id });
    const err = thrown(() => iommufd.allocHwpt({ deviceId, parentId: paging.id, stage1: { type: 'vtd-s1', pgtblAddr: 0x10_0000n } }));
    expect(err).toMatchObject({ name: 'IommufdError', syscall: 'IOMMU_HWPT_ALLOC' });
    expect(['ENOTSUP', 'EINVAL']).toContain(err!.code);
    expect(err!.message).toMatch(/a VT-d stage-1 HWPT needs an IOMMU with nesting \(VT-d ECAP\.NEST, with first- and second-stage support\) and a parent HWPT allocated with HWPT_ALLOC_NEST_PARENT on it; this device's IOMMU has none \(ECAP\.NEST=0\)/);
  });
});
