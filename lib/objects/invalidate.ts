// User-owned stage 1: the data a nested HWPT is allocated with (IOMMU_HWPT_DATA_VTD_S1) and the
// cache invalidations its owner issues after changing the tables (IOMMU_HWPT_INVALIDATE), checked
// here and encoded by the addon (native/hwpt.cc), whose uAPI mirror holds the layouts.
import { binding } from '../core/binding.js';
import { checkNumberOf, checkOneOf, checkOptions, checkU32, checkU64, invalidArgType, optionalBoolean } from '../core/args.js';
import { ErrorCodes, IommufdError } from '../core/errors.js';

/** enum iommu_hwpt_data_type (the mock driver's own type is in iommufd/testing). */
export const HWPT_DATA_NONE: number = binding.hwptDataTypes.none;
export const HWPT_DATA_VTD_S1: number = binding.hwptDataTypes.vtdS1;

/** An Intel VT-d stage-1 (first-stage) table that user space owns: struct iommu_hwpt_vtd_s1. */
export interface VtdStage1 {
  type: 'vtd-s1';
  /** The root table's address as stage 2 sees it: an IOVA of the parent's IOAS, 4 KiB aligned. */
  pgtblAddr: bigint;
  /** 48 (4-level tables, the default) or 57 (5-level: the IOMMU needs 5-level first-stage support). */
  addrWidth?: 48 | 57;
  /** Supervisor requests allowed (needs VT-d ECAP.SRS). */
  sre?: boolean;
  /** Extended accessed flag (needs ECAP.EAFS). */
  eafe?: boolean;
  /** Write protect: supervisor writes honour read-only entries. */
  wpe?: boolean;
}

/** One range to drop from a VT-d stage-1 HWPT's caches (IOTLB and device TLBs). */
export interface VtdS1Invalidation {
  /** 4 KiB aligned. */
  addr: bigint;
  /** Pages from addr; 2^64-1 with addr 0: everything. */
  npages: bigint;
  /** Only leaf entries changed (IOMMU_VTD_INV_FLAGS_LEAF): the paging-structure caches stay. */
  leaf?: boolean;
}

/** One entry of the kernel test device's mock IOTLB to clear (struct iommu_hwpt_invalidate_selftest). */
export interface SelftestInvalidation {
  /** Which entry (0..3; the kernel refuses more with EINVAL). */
  iotlbId?: number;
  /** Every entry (IOMMU_TEST_INVALIDATE_FLAG_ALL). */
  all?: boolean;
  /** Raw flags beyond `all` (the kernel refuses unknown ones with EOPNOTSUPP). */
  flags?: number;
}

export type Invalidation = VtdS1Invalidation | SelftestInvalidation;

/** @internal The checked stage-1 data for the addon. */
export function checkStage1(call: string, value: unknown): { pgtblAddr: bigint; addrWidth: number; sre: boolean; eafe: boolean; wpe: boolean } {
  const s = checkOptions<VtdStage1>(call, value, false, 'options.stage1');
  checkOneOf(call, 'options.stage1.type', s.type, ['vtd-s1']);
  const pgtblAddr = checkU64(call, 'options.stage1.pgtblAddr', s.pgtblAddr);
  const addrWidth = s.addrWidth === undefined ? 48 : checkNumberOf(call, 'options.stage1.addrWidth', s.addrWidth, [48, 57]);
  return {
    pgtblAddr, addrWidth,
    sre: optionalBoolean(call, 'options.stage1.sre', s.sre) ?? false,
    eafe: optionalBoolean(call, 'options.stage1.eafe', s.eafe) ?? false,
    wpe: optionalBoolean(call, 'options.stage1.wpe', s.wpe) ?? false,
  };
}

const why: Record<'vtd-s1' | 'selftest', Record<string, string>> = {
  'vtd-s1': {
    EOPNOTSUPP: 'flags the kernel does not know', ENOTSUP: 'flags the kernel does not know',
    EINVAL: 'addr is not 4 KiB aligned, or npages is 2^64-1 (everything) with a non-zero addr',
  },
  selftest: {
    EOPNOTSUPP: 'flags the mock does not know', ENOTSUP: 'flags the mock does not know',
    EINVAL: 'iotlbId is past the mock IOTLB (ids 0..3)',
  },
};

/**
 * @internal IOMMU_HWPT_INVALIDATE of `entries` on a nested HWPT of `dataType`, in one ioctl.
 * The kernel stops at the first entry it refuses: the error says which, why, and (as `done`) how
 * many before it took effect.
 */
export function invalidate(call: string, fd: number, hwptId: number, dataType: number, entries: unknown): number {
  const kind = dataType === HWPT_DATA_VTD_S1 ? 'vtd-s1' : dataType === binding.hwptDataTypes.selftest ? 'selftest' : undefined;
  if (kind === undefined) {
    throw new IommufdError(`${call}: HWPT ${hwptId} is not a nested HWPT of a stage-1 type this library knows (VT-d stage 1, the test device's): ` +
      'user space invalidates only the caches of a stage 1 it owns', ErrorCodes.NOT_NESTED);
  }
  if (!Array.isArray(entries)) throw invalidArgType(call, 'entries', 'an array', entries);
  const checked = entries.map((e: unknown, i) => {
    const o = checkOptions<Record<string, unknown>>(call, e, false, `entries[${i}]`);
    if (kind === 'vtd-s1') {
      return {
        addr: checkU64(call, `entries[${i}].addr`, o.addr),
        npages: checkU64(call, `entries[${i}].npages`, o.npages),
        leaf: optionalBoolean(call, `entries[${i}].leaf`, o.leaf) ?? false,
      };
    }
    return {
      iotlbId: o.iotlbId === undefined ? 0 : checkU32(call, `entries[${i}].iotlbId`, o.iotlbId),
      all: optionalBoolean(call, `entries[${i}].all`, o.all) ?? false,
      flags: o.flags === undefined ? 0 : checkU32(call, `entries[${i}].flags`, o.flags),
    };
  });
  try {
    return binding.hwptInvalidate(fd, hwptId, kind, checked);
  } catch (e) {
    const err = e as IommufdError & { done?: number };
    if (!(err instanceof IommufdError) || err.done === undefined || err.done >= checked.length) throw e;
    const refused = Object.assign(new IommufdError(
      `${err.code}: IOMMU_HWPT_INVALIDATE of HWPT ${hwptId}: entry ${err.done} of ${checked.length} refused` +
      `${why[kind][err.code] ? ` (${why[kind][err.code]})` : ''}; the ${err.done} before it took effect, none after it`,
      err.code, err.errno, err.syscall), { done: err.done });
    throw refused;
  }
}
