// vEVENTQ record layouts and decoders (pure: no kernel). VeventBatch walks the records and counts
// the losses; see docs/veventq-kernel-facts.md for what the kernel does.
//
// A read() returns whole records: an 8-byte header {flags, sequence} and the type's data (its size
// is the type's: the header has none), or a LOST_EVENTS header alone. Every event the kernel
// reports takes a sequence number, lost ones included, counting 0..INT_MAX and wrapping to 0. A
// LOST_EVENTS header carries the number of the last lost event; once a newer event is queued the
// kernel drops it, and the loss shows only as a gap in the numbers.
import { checkDataView, checkSpan, checkU32 } from '../core/args.js';
import { binding } from '../core/binding.js';

const V = binding.vevent;
export const VEVENT_HEADER_SIZE: number = V.headerSize;
export const VEVENTQ_FLAG_LOST_EVENTS: number = V.flagLostEvents;
/** vEVENTQ types (IOMMU_VEVENTQ_TYPE_*). */
export const VEVENTQ_TYPE_ARM_SMMUV3: number = V.types.armSmmuv3;
export const VEVENTQ_TYPE_TEGRA241_CMDQV: number = V.types.tegra241Cmdqv;
export const VEVENTQ_TYPE_SELFTEST: number = V.types.selftest;

/** Sequence numbers count 0..INT_MAX, then 0 again. */
export const VEVENT_SEQUENCE_SPAN = 2 ** 31;

/** The data size of a vEVENTQ type's records; a RangeError for a type the mirror does not know. */
export function veventDataSize(type: number): number {
  const size = V.dataSize[type];
  if (size === undefined) throw Object.assign(new RangeError(`vEVENTQ type ${type} has no known record layout`), { code: 'ERR_OUT_OF_RANGE' });
  return size;
}

/** A selftest vEVENT (the kernel's test device): the reporting vDEVICE's virtual id, low 32 bits. */
export interface SelftestVevent {
  virtId: number;
}

/**
 * An SMMUv3 event record (struct iommu_vevent_arm_smmuv3: the hardware's 256-bit record, its
 * StreamID replaced by the vDEVICE's virtual id). Field names follow the SMMUv3 architecture;
 * `evt` keeps the four raw little-endian words for whatever this does not name.
 */
export interface ArmSmmuv3Vevent {
  /** Event type, EVTQ_0_ID (0x10 F_TRANSLATION, 0x12 F_ACCESS, 0x13 F_PERMISSION, ...). */
  id: number;
  /** Its architectural name where the kernel documents the id as forwarded, else undefined. */
  name: string | undefined;
  /** SubstreamID valid (SSV) and the SubstreamID (PASID). */
  ssv: boolean;
  ssid: number;
  /** The virtual StreamID (the vDEVICE's virt_id). */
  vsid: number;
  stag: number;
  stall: boolean;
  pnu: boolean;
  ind: boolean;
  rnw: boolean;
  s2: boolean;
  class: number;
  ttRead: boolean;
  /** evt[2]: the input address of the faulting access. */
  inputAddress: bigint;
  /** evt[3] bits 51:12: the IPA (for stage-2 faults; zero otherwise). */
  ipa: bigint;
  evt: readonly [bigint, bigint, bigint, bigint];
}

/** A Tegra241 CMDQV event (struct iommu_vevent_tegra241_cmdqv): the VINTF's 128-bit LVCMDQ_ERR_MAP. */
export interface Tegra241CmdqvVevent {
  lvcmdqErrMap: bigint;
}

export type DecodedVevent = SelftestVevent | ArmSmmuv3Vevent | Tegra241CmdqvVevent;

// The SMMUv3 event ids the uAPI documents as forwarded to a vIOMMU.
const SMMUV3_EVENT_NAMES: Readonly<Record<number, string>> = {
  0x04: 'C_BAD_STE', 0x06: 'F_STREAM_DISABLED', 0x08: 'C_BAD_SUBSTREAMID', 0x0a: 'C_BAD_CD',
  0x10: 'F_TRANSLATION', 0x11: 'F_ADDR_SIZE', 0x12: 'F_ACCESS', 0x13: 'F_PERMISSION',
};

const bit = (v: bigint, n: number): boolean => ((v >> BigInt(n)) & 1n) === 1n;
const bits = (v: bigint, hi: number, lo: number): bigint => (v >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n);

/** Decodes an SMMUv3 vEVENT's 32 data bytes at `offset`. */
export function decodeArmSmmuv3Vevent(view: DataView, offset: number): ArmSmmuv3Vevent {
  const call = 'decodeArmSmmuv3Vevent';
  checkSpan(call, 'offset', offset, V.dataSize[VEVENTQ_TYPE_ARM_SMMUV3], checkDataView(call, 'view', view));
  return smmuv3(view, offset);
}

function smmuv3(view: DataView, offset: number): ArmSmmuv3Vevent {
  const evt = [0, 1, 2, 3].map((i) => view.getBigUint64(offset + 8 * i, true)) as [bigint, bigint, bigint, bigint];
  const [e0, e1, e2, e3] = evt;
  const id = Number(bits(e0, 7, 0));
  return {
    id, name: SMMUV3_EVENT_NAMES[id], ssv: bit(e0, 11), ssid: Number(bits(e0, 31, 12)), vsid: Number(bits(e0, 63, 32)),
    stag: Number(bits(e1, 15, 0)), stall: bit(e1, 31), pnu: bit(e1, 33), ind: bit(e1, 34), rnw: bit(e1, 35), s2: bit(e1, 39),
    class: Number(bits(e1, 41, 40)), ttRead: bit(e1, 44), inputAddress: e2, ipa: bits(e3, 51, 12) << 12n, evt,
  };
}

/**
 * The decoded fields of a vEVENT of `type` whose data starts at `offset`, or undefined for a type
 * this library does not know the layout of (the bytes are still delivered). `view` must hold the
 * type's whole record from `offset` (ERR_OUT_OF_RANGE otherwise).
 */
export function decodeVevent(type: number, view: DataView, offset: number): DecodedVevent | undefined {
  const call = 'decodeVevent';
  checkU32(call, 'type', type);
  checkSpan(call, 'offset', offset, V.dataSize[type] ?? 0, checkDataView(call, 'view', view));
  switch (type) {
    case VEVENTQ_TYPE_SELFTEST: return { virtId: view.getUint32(offset, true) };
    case VEVENTQ_TYPE_ARM_SMMUV3: return smmuv3(view, offset);
    case VEVENTQ_TYPE_TEGRA241_CMDQV:
      return { lvcmdqErrMap: view.getBigUint64(offset, true) | (view.getBigUint64(offset + 8, true) << 64n) };
    default: return undefined;
  }
}
