// PCI helpers against a real sysfs: a well-formed address with no device behind it.
import { describe, expect, it } from 'vitest';
import { bindVfioPci, IommufdError, readPciConfig, unbindVfioPci } from '../../../lib/index.js';

describe('PCI helpers on an address with no device', () => {
  it('bindVfioPci, unbindVfioPci and readPciConfig say ENOENT and name the device', () => {
    for (const call of [bindVfioPci, unbindVfioPci, readPciConfig]) {
      let err: unknown;
      try {
        call('0000:00:1f.7');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IommufdError);
      expect(err).toMatchObject({ code: 'ENOENT', errno: -2, message: expect.stringMatching(new RegExp(`^ENOENT: ${call.name}: no PCI device 0000:00:1f\\.7`)) });
    }
  });
});
