// Guest suite: runs inside the rig (npm run test:guest), against the real kernel.
// test/guest/any: every boot; mock: where the kernel's test device binds; vtd: intel-iommu on.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/guest/**/*.test.ts'],
    // One kernel, one set of devices: files run one after another so they cannot disturb each other.
    fileParallelism: false,
    // Under TCG everything is ~10-50x slower than on hardware.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
