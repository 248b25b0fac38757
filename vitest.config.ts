// Host unit tests: pure logic only (decoding, grouping, error mapping). Everything that touches the
// kernel runs in the guest (vitest.guest.config.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
  },
});
