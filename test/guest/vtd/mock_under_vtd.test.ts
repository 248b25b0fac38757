// Why the 6.12 mock-device suite boots with intel_iommu=off: with VT-d active, 6.12's test device
// cannot attach, while 7.x attaches it beside VT-d. Both sides are asserted, on the real kernel.
import { describe, expect, it } from 'vitest';
import { Iommufd } from '../../../lib/index.js';
import { MockDevice } from '../../../lib/testing.js';
import { kernelVersion } from '../rig.js';

describe('the kernel test device beside intel-iommu', () => {
  const [major] = kernelVersion();
  it(major >= 7 ? 'attaches on 7.x' : 'is refused with EINVAL on 6.12', async () => {
    const iommufd = Iommufd.open();
    try {
      const ioas = iommufd.allocIoas();
      if (major >= 7) {
        expect(MockDevice.create(iommufd, ioas.id).deviceId).toBeGreaterThan(0);
      } else {
        expect(() => MockDevice.create(iommufd, ioas.id)).toThrow(
          expect.objectContaining({ code: 'EINVAL', syscall: 'IOMMU_TEST_OP_MOCK_DOMAIN' }));
      }
    } finally {
      await iommufd.close();
    }
  });
});
