// Host tests: pure logic (decoding, grouping, error mapping) and packaging. Everything that touches the
// kernel runs in the guest (vitest.guest.config.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/package/**/*.test.ts'],
    // npm pack runs prebuildify (a native build) and the install goes through the registry.
    // prebuildify rebuilds build/ under the other files' feet: run the files one after another.
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
