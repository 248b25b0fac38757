// Decoding of struct iommu_hwpt_pgfault records (pure: no kernel, no native code).
//
// Layout (include/uapi/linux/iommufd.h), 40 bytes, host byte order (little-endian on x86/arm64):
//   0 flags, 4 dev_id, 8 pasid, 12 grpid, 16 perm, 20 __reserved, 24 addr (u64), 32 length, 36 cookie
import { checkDataView, checkFunction, checkSpan, checkUint8Array, integerError } from '../core/args.js';

export const FAULT_RECORD_SIZE = 40;
export const FAULT_RESPONSE_SIZE = 8;
/** @internal Where a record's cookie is (the field every answer names). */
export const PGFAULT_COOKIE = 36;

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
/** @internal The response codes, as answer() and respond() take them. */
export const RESPONSE_CODES: readonly ResponseCode[] = ['success', 'invalid'];

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

/** Decodes the record at `offset`. */
export function decodeFaultRecord(view: DataView, offset: number): FaultRecord {
  checkSpan('decodeFaultRecord', 'offset', offset, FAULT_RECORD_SIZE, checkDataView('decodeFaultRecord', 'view', view));
  const flags = view.getUint32(offset, true) & PGFAULT_FLAGS_KNOWN;
  return {
    flags,
    deviceId: view.getUint32(offset + 4, true),
    pasid: flags & PGFAULT_FLAGS_PASID_VALID ? view.getUint32(offset + 8, true) : undefined,
    groupId: view.getUint32(offset + 12, true),
    perm: view.getUint32(offset + 16, true),
    addr: view.getBigUint64(offset + 24, true),
    length: view.getUint32(offset + 32, true),
    cookie: view.getUint32(offset + PGFAULT_COOKIE, true),
  };
}

/**
 * Finds the groups in `byteLength` bytes of fault records without decoding them: calls
 * `onGroup(offset, count)` for each. The kernel copies whole groups only and every record of a
 * group carries the group's cookie; only the last has LAST_PAGE. A record with a different cookie
 * also starts a new group, so a group is never merged with its neighbour; a trailing group without
 * LAST_PAGE (which the kernel never sends) is kept rather than lost, so it can still be answered.
 */
export function forEachFaultGroup(view: DataView, byteLength: number, onGroup: (offset: number, count: number) => void): void {
  const call = 'forEachFaultGroup';
  checkDataView(call, 'view', view);
  checkRecordBytes(call, byteLength, view.byteLength);
  checkFunction(call, 'onGroup', onGroup);
  let start = 0;
  for (let off = 0; off < byteLength; off += FAULT_RECORD_SIZE) {
    if (off > start && view.getUint32(off + PGFAULT_COOKIE, true) !== view.getUint32(start + PGFAULT_COOKIE, true)) {
      onGroup(start, (off - start) / FAULT_RECORD_SIZE);
      start = off;
    }
    if (view.getUint32(off, true) & PGFAULT_FLAGS_LAST_PAGE) {
      onGroup(start, (off + FAULT_RECORD_SIZE - start) / FAULT_RECORD_SIZE);
      start = off + FAULT_RECORD_SIZE;
    }
  }
  if (start < byteLength) onGroup(start, (byteLength - start) / FAULT_RECORD_SIZE);
}

/** Splits `byteLength` bytes of fault records into groups of decoded records. */
export function decodeFaultGroups(bytes: Uint8Array, byteLength?: number): FaultRecord[][] {
  checkUint8Array('decodeFaultGroups', 'bytes', bytes);
  byteLength = checkRecordBytes('decodeFaultGroups', byteLength === undefined ? bytes.byteLength : byteLength, bytes.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, byteLength);
  const groups: FaultRecord[][] = [];
  forEachFaultGroup(view, byteLength, (offset, count) => {
    const records: FaultRecord[] = [];
    for (let i = 0; i < count; i++) records.push(decodeFaultRecord(view, offset + i * FAULT_RECORD_SIZE));
    groups.push(records);
  });
  return groups;
}

/** A byteLength of whole records within `available` bytes. */
function checkRecordBytes(call: string, byteLength: unknown, available: number): number {
  const most = available - (available % FAULT_RECORD_SIZE);
  if (typeof byteLength === 'number' && Number.isInteger(byteLength) && byteLength >= 0 && byteLength <= most && byteLength % FAULT_RECORD_SIZE === 0) return byteLength;
  throw integerError(call, 'byteLength', byteLength, 0, most, `a multiple of ${FAULT_RECORD_SIZE} from 0 to ${most} (whole records within the ${available} bytes given)`);
}

/** Encodes struct iommu_hwpt_page_response {u32 cookie; u32 code}. */
export function encodeResponse(target: DataView, offset: number, cookie: number, code: number): void {
  // setUint32 would wrap a negative or too-large number into some other cookie.
  if (typeof cookie !== 'number' || typeof code !== 'number' || cookie >>> 0 !== cookie || code >>> 0 !== code) throw new RangeError(`encodeResponse: cookie ${cookie} and code ${code} must be unsigned 32-bit integers`);
  target.setUint32(offset, cookie, true);
  target.setUint32(offset + 4, code, true);
}
