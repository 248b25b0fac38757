// Which addon build this run tests: the normal one, or (npm run test:sanitize) the ASan + UBSan
// one with the ASan runtime preloaded. A sanitizer run that silently loaded the normal build
// would prove nothing.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import '../../../lib/index.js';

describe('addon build under test', () => {
  const maps = readFileSync('/proc/self/maps', 'utf8');
  if (process.env.IOMMUFD_SANITIZE) {
    it('the sanitizer build, with the ASan and UBSan runtimes mapped', () => {
      expect(maps).toMatch(/build-sanitize\/build\/Release\/iommufd\.node/);
      expect(maps).toMatch(/libasan\.so/);
      expect(maps).toMatch(/libubsan\.so/);
    });
  } else {
    it('the normal build, no sanitizer runtime', () => {
      expect(maps).toMatch(/build\/Release\/iommufd\.node|prebuilds\/linux-x64\//);
      expect(maps).not.toMatch(/build-sanitize|libasan/);
    });
  }
});
