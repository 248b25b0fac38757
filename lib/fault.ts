// Decoding of struct iommu_hwpt_pgfault records (pure: no kernel, no native code).
//
// Layout (include/uapi/linux/iommufd.h), 40 bytes, host byte order (little-endian on x86/arm64):
//   0 flags, 4 dev_id, 8 pasid, 12 grpid, 16 perm, 20 __reserved, 24 addr (u64), 32 length, 36 cookie

export const FAULT_RECORD_SIZE = 40;
export const FAULT_RESPONSE_SIZE = 8;

/** iommu_hwpt_pgfault.flags */
export const PGFAULT_FLAGS_PASID_VALID = 1 << 0;
export const PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
const PGFAULT_FLAGS_KNOWN = PGFAULT_FLAGS_PASID_VALID | PGFAULT_FLAGS_LAST_PAGE;

/** iommu_hwpt_pgfault.perm */
export const PGFAULT_PERM_READ = 1 << 0;
export const PGFAULT_PERM_WRITE = 1 << 1;
export const PGFAULT_PERM_EXEC = 1 << 2;
export const PGFAULT_PERM_PRIV = 1 << 3;

/** iommu_hwpt_page_response.code */
export const PAGE_RESP_SUCCESS = 0;
export const PAGE_RESP_INVALID = 1;
export type ResponseCode = 'success' | 'invalid';

/** One page request record. */
export interface FaultRecord {
  /** PGFAULT_FLAGS_* bits, masked to the documented ones. */
  readonly flags: number;
  /** The iommufd device id (the dev_id of VFIO bind / the mock device's idev). */
  readonly deviceId: number;
  /** The PASID, when the request carried one (PGFAULT_FLAGS_PASID_VALID). */
  readonly pasid: number | undefined;
  /** The PRI page request group index. */
  readonly groupId: number;
  /** PGFAULT_PERM_* bits. */
  readonly perm: number;
  /** The faulting I/O virtual address (page aligned as the device sent it). */
  readonly addr: bigint;
  /** Length of the request (0 for PRI: one page). */
  readonly length: number;
  /** The kernel's cookie for the group: the handle the response names. */
  readonly cookie: number;
}

/**
 * Splits `byteLength` bytes of fault records into groups. The kernel copies whole groups only and
 * every record of a group carries the group's cookie; only the last has LAST_PAGE. A record with a
 * different cookie also starts a new group, so a group is never merged with its neighbour.
 */
export function decodeFaultGroups(bytes: Uint8Array, byteLength = bytes.byteLength): FaultRecord[][] {
  if (byteLength % FAULT_RECORD_SIZE !== 0) {
    throw new RangeError(`fault records: ${byteLength} bytes is not a multiple of ${FAULT_RECORD_SIZE}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, byteLength);
  const groups: FaultRecord[][] = [];
  let current: FaultRecord[] = [];
  for (let off = 0; off < byteLength; off += FAULT_RECORD_SIZE) {
    const flags = view.getUint32(off, true) & PGFAULT_FLAGS_KNOWN;
    const record: FaultRecord = {
      flags,
      deviceId: view.getUint32(off + 4, true),
      pasid: flags & PGFAULT_FLAGS_PASID_VALID ? view.getUint32(off + 8, true) : undefined,
      groupId: view.getUint32(off + 12, true),
      perm: view.getUint32(off + 16, true),
      addr: view.getBigUint64(off + 24, true),
      length: view.getUint32(off + 32, true),
      cookie: view.getUint32(off + 36, true),
    };
    if (current.length > 0 && current[0].cookie !== record.cookie) {
      groups.push(current);
      current = [];
    }
    current.push(record);
    if (flags & PGFAULT_FLAGS_LAST_PAGE) {
      groups.push(current);
      current = [];
    }
  }
  // A group without LAST_PAGE at the end of a read cannot come from the kernel (it copies whole
  // groups); keep it rather than lose records, so it can still be answered.
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Encodes struct iommu_hwpt_page_response {u32 cookie; u32 code}. */
export function encodeResponse(target: DataView, offset: number, cookie: number, code: number): void {
  target.setUint32(offset, cookie, true);
  target.setUint32(offset + 4, code, true);
}
