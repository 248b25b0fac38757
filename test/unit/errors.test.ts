// Error mapping: kernel errnos become Node-style SystemErrors named after the call that failed.
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { binding } from '../../lib/core/binding.js';
import { ErrorCodes, fromPosted, IommufdError, responseError, toPosted } from '../../lib/core/errors.js';

describe('native errors', () => {
  it('open of a missing device is an IommufdError with code, negative errno and syscall', () => {
    let err: unknown;
    try {
      binding.open('/nonexistent/iommu');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IommufdError);
    expect(err).toMatchObject({ code: 'ENOENT', errno: -constants.errno.ENOENT, syscall: 'open' });
    expect((err as Error).message).toBe('ENOENT: no such file or directory, open (/nonexistent/iommu)');
  });

  it('an ioctl on a non-iommufd fd names the ioctl', () => {
    // /dev/null exists everywhere and rejects iommufd ioctls with ENOTTY.
    const fd = binding.open('/dev/null');
    try {
      expect(() => binding.ioasAlloc(fd)).toThrow(expect.objectContaining({ code: 'ENOTTY', syscall: 'IOMMU_IOAS_ALLOC' }));
    } finally {
      binding.close(fd);
    }
  });

  it('bad arguments are TypeErrors/RangeErrors that name the operation', () => {
    expect(() => binding.destroy(-1 as number, 1)).toThrow(/IOMMU_DESTROY: fd/);
    expect(() => binding.ioasUnmap(0, 1, 'x' as unknown as bigint, 0n)).toThrow(TypeError);
    expect(() => binding.ioasUnmap(0, 1, -1n, 0n)).toThrow(/IOMMU_IOAS_UNMAP: iova/);
  });
});

describe('responseError', () => {
  it('maps EINVAL to a typed error that explains the missing cookie', () => {
    const e = responseError(constants.errno.EINVAL, 77);
    expect(e).toBeInstanceOf(IommufdError);
    expect(e).toMatchObject({ code: 'EINVAL', errno: -constants.errno.EINVAL, syscall: 'write' });
    expect(e.message).toMatch(/cookie 77/);
  });

  it('library codes are stable strings', () => {
    expect(ErrorCodes).toEqual({
      CLOSED: 'ERR_IOMMUFD_CLOSED', ALREADY_ANSWERED: 'ERR_IOMMUFD_ALREADY_ANSWERED', FAULT_STALE: 'ERR_IOMMUFD_FAULT_STALE',
      BATCH_ENDED: 'ERR_IOMMUFD_BATCH_ENDED', SERVING: 'ERR_IOMMUFD_SERVING', VEVENTS_LOST: 'ERR_IOMMUFD_VEVENTS_LOST',
      NOT_BOUND: 'ERR_IOMMUFD_NOT_BOUND', PCI_BIND: 'ERR_IOMMUFD_PCI_BIND', NOT_NESTED: 'ERR_IOMMUFD_NOT_NESTED', POLICY_TIMEOUT: 'ERR_IOMMUFD_POLICY_TIMEOUT',
    });
  });
});

describe('errors posted by a worker', () => {
  it('keep code, errno and syscall across the structured clone (which drops them), and come back IommufdErrors', () => {
    const e = new IommufdError('EEXIST: file already exists, IOMMU_IOAS_MAP', 'EEXIST', -constants.errno.EEXIST, 'IOMMU_IOAS_MAP');
    expect((structuredClone(e) as IommufdError).code).toBeUndefined(); // why toPosted exists
    const back = fromPosted(structuredClone(toPosted(e))) as IommufdError;
    expect(back).toBeInstanceOf(IommufdError);
    expect(back).toMatchObject({ message: e.message, code: 'EEXIST', errno: -constants.errno.EEXIST, syscall: 'IOMMU_IOAS_MAP', stack: e.stack });
    // No code: posted as it is (the clone keeps a TypeError's class); non-errors pass through.
    const t = fromPosted(structuredClone(toPosted(new TypeError('bad'))));
    expect(t).toBeInstanceOf(TypeError);
    expect(fromPosted(structuredClone(toPosted('text')))).toBe('text');
  });
});
