// The native addon, loaded once per process (and once per worker: its state is per environment).
import native from './native.cjs';

export interface HwInfoRaw {
  type: number;
  capabilities: bigint;
  maxPasidLog2: number;
  data: Uint8Array;
}

export interface NativeEventPump {
  /** Held weakly: the caller keeps them alive. onWritten gets the outcome of answers the pump
   *  wrote after a batch, when the control block's notify slot asked for it. */
  setCallbacks(onBatch: (view: Uint8Array, byteLength: number) => void, onError: (err: Error) => void,
    onWritten?: (failed: Int32Array | undefined) => void): void;
  /** The answer buffer the pump writes from, and the control block (binding.pumpControl). */
  setAnswers(answers: Uint8Array, control: Int32Array): void;
  start(): void;
  /** Whether the poll handle keeps the event loop alive (initially not). */
  ref(on: boolean): void;
  stop(): void;
  read(): void;
  write(responses: Uint8Array): Int32Array | undefined;
  /** Writes the answers waiting in the answer buffer: [index, errno] pairs of refusals, if any. */
  writeAnswers(): Int32Array | undefined;
  /** Blocks in a serve loop on this thread until stopped (control stop slot, or wakeFd signalled). */
  serve(wakeFd: number, idleMs: number): 'stopped' | 'closed';
  /** The demand pager's map-and-answer step before each delivery (native/map_step.h); none: off. */
  setMapStep(step?: MapStepConfig): void;
  close(): void;
}

/** Indexes into the pump's control block: Int32 slots, then Float64 counters. */
export interface PumpControl {
  answers: number; notify: number; writes: number; stop: number; deferRef: number; ref: number;
  answered: number; refused: number; batches: number; delivered: number; errors: number;
  /** Its size in bytes. */
  bytes: number;
}

/** The pager counters the map step counts in: their indexes in `counters`. */
export type MapStepSlots = Record<'served' | 'faults' | 'pages' | 'success' | 'spurious' | 'mappedPages' | 'aroundPages' | 'mappedNow' | 'peak', number>;

export interface MapStepConfig {
  /** The IOAS handle's token the pages are mapped through. */
  token: number;
  iova: number;
  pages: number;
  pageSize: number;
  faultAround: number;
  writable: boolean;
  policy: boolean;
  /** A byte per window page (MAP_STEP.mapped, filled, filling). */
  state: Uint8Array;
  /** The header (MAP_STEP.credit, lowWater, logLength), then the log. */
  block: Float64Array;
  counters: Float64Array<ArrayBufferLike>;
  slots: MapStepSlots;
}

/** The map step's shared block and page state bits (native/map_step.h). */
export interface MapStepLayout {
  credit: number; lowWater: number; logLength: number; header: number; entry: number;
  mapped: number; filled: number; filling: number;
}

export interface VfioRegionInfoRaw {
  flags: number;
  size: bigint;
  offset: bigint;
}

export type IoctlName =
  | 'IOMMU_DESTROY' | 'IOMMU_IOAS_ALLOC' | 'IOMMU_IOAS_ALLOW_IOVAS' | 'IOMMU_IOAS_COPY' | 'IOMMU_IOAS_IOVA_RANGES' | 'IOMMU_IOAS_MAP'
  | 'IOMMU_IOAS_UNMAP' | 'IOMMU_OPTION' | 'IOMMU_VFIO_IOAS' | 'IOMMU_HWPT_ALLOC' | 'IOMMU_GET_HW_INFO' | 'IOMMU_HWPT_SET_DIRTY_TRACKING'
  | 'IOMMU_HWPT_GET_DIRTY_BITMAP' | 'IOMMU_HWPT_INVALIDATE' | 'IOMMU_FAULT_QUEUE_ALLOC' | 'IOMMU_VIOMMU_ALLOC' | 'IOMMU_VDEVICE_ALLOC'
  | 'IOMMU_VEVENTQ_ALLOC' | 'IOMMU_TEST_CMD' | 'VFIO_DEVICE_GET_INFO' | 'VFIO_DEVICE_GET_REGION_INFO' | 'VFIO_DEVICE_RESET'
  | 'VFIO_DEVICE_BIND_IOMMUFD' | 'VFIO_DEVICE_ATTACH_IOMMUFD_PT' | 'VFIO_DEVICE_DETACH_IOMMUFD_PT';

export interface Binding {
  setErrorClass(cls: Function): void;
  open(path?: string): number;
  close(fd: number): void;
  destroy(fd: number, id: number): void;
  getHwInfo(fd: number, devId: number, dataLen?: number): HwInfoRaw;
  ioasAlloc(fd: number): number;
  ioasIovaRanges(fd: number, ioasId: number): { ranges: { start: bigint; last: bigint }[]; alignment: bigint };
  ioasMap(fd: number, ioasId: number, memory: ArrayBuffer | ArrayBufferView, iova: bigint | undefined, flags: number): bigint;
  ioasUnmap(fd: number, ioasId: number, iova: bigint, length: bigint): bigint;
  /** An IOAS handle (native/ioas_handle.cc): a token any thread maps `memory` by; the calling
   *  thread owns it and keeps `memory` referenced until ioasHandleClose (or the IOAS's destroy,
   *  the iommufd's close, this thread's end). */
  ioasHandleOpen(fd: number, ioasId: number, memory: ArrayBuffer | SharedArrayBuffer | ArrayBufferView): { token: number; pageOffset: number };
  /** Ends the handle (waiting for a map in flight on another thread); the bytes ever mapped through it. */
  ioasHandleClose(token: number): bigint;
  /** IOMMU_IOAS_MAP of [offset, offset + length) of the handle's memory; iova as given (number or
   *  bigint), undefined: the kernel picks. A closed handle: IommufdError ERR_IOMMUFD_CLOSED. */
  ioasHandleMap<I extends number | bigint>(token: number, offset: number, length: number, iova: I | undefined, flags: number): I;
  ioasHandleUnmap<I extends number | bigint>(token: number, iova: I, length: I): I;
  hwptAlloc(fd: number, options: { devId: number; ptId: number; flags?: number; faultId?: number; dataType?: number; data?: Uint8Array;
    vtdS1?: { pgtblAddr: bigint; addrWidth: number; sre: boolean; eafe: boolean; wpe: boolean } }): number;
  /** IOMMU_HWPT_INVALIDATE of `entries` in one ioctl; a refusal throws with `done` (entries processed). */
  hwptInvalidate(fd: number, hwptId: number, kind: 'vtd-s1' | 'selftest',
    entries: readonly ({ addr: bigint; npages: bigint; leaf: boolean } | { iotlbId: number; all: boolean; flags: number })[]): number;
  /** enum iommu_hwpt_data_type, and the mock driver's own type. */
  hwptDataTypes: Readonly<{ none: number; vtdS1: number; selftest: number }>;
  faultQueueAlloc(fd: number): { id: number; fd: number };
  /** Reads fault records, or vEVENTs with `veventDataSize` data bytes each. `borrowed`: a serve
   *  loop's pump on a fd another thread owns (never closes it). */
  EventPump: new (fd: number, bufferRecords?: number, borrowed?: boolean, veventDataSize?: number) => NativeEventPump;
  pumpControl: Readonly<PumpControl>;
  mapStep: Readonly<MapStepLayout>;
  /** A non-blocking eventfd (a serve loop's wake-up); closed with close(). */
  eventfd(): number;
  eventfdSignal(fd: number): void;
  viommuAlloc(fd: number, options: { devId: number; hwptId: number; type: number; data?: Uint8Array }): number;
  vdeviceAlloc(fd: number, viommuId: number, devId: number, virtId: bigint): number;
  viommuTypes: Readonly<{ armSmmuv3: number; tegra241Cmdqv: number; selftest: number }>;
  veventqAlloc(fd: number, viommuId: number, type: number, depth: number): { id: number; fd: number };
  /** vEVENTQ record layouts from native/uapi.h: header size, LOST flag, data size by type. */
  vevent: Readonly<{ headerSize: number; flagLostEvents: number; maxDepth: number; dataSize: Readonly<Record<number, number>>;
    types: Readonly<{ armSmmuv3: number; tegra241Cmdqv: number; selftest: number }> }>;
  /** The most records a pump's read buffer may hold. */
  pumpMaxRecords: number;
  /** A wake-up's share: the pump yields to the event loop after this many batches or ms. */
  pumpTurn: Readonly<{ batches: number; ms: number }>;
  vfioBindIommufd(fd: number, iommufd: number): number;
  vfioAttachPt(fd: number, ptId: number, pasid?: number): number;
  vfioDetachPt(fd: number, pasid?: number): void;
  vfioGetInfo(fd: number): { flags: number; numRegions: number; numIrqs: number };
  vfioRegionInfo(fd: number, index: number): VfioRegionInfoRaw;
  vfioReset(fd: number): void;
  vfioRead(fd: number, offset: bigint, into: Uint8Array): number;
  vfioWrite(fd: number, offset: bigint, data: Uint8Array): number;
  /** mode 0 plain, 1 MAP_HUGETLB, 2 THP aligned to `align` + MADV_HUGEPAGE. */
  allocPages(length: number, mode?: number, align?: number): ArrayBuffer;
  /** One ioctl with `arg` passed in place: its return value (>= 0), or -errno. */
  probeIoctl(fd: number, request: number, arg: Uint8Array): number;
  /** The ioctl request numbers of native/uapi.h: lib/ numbers no ioctl of its own. */
  ioctls: Readonly<Record<IoctlName, number>>;
  /** Argument values the probe puts into the ioctls it builds by hand (from native/uapi.h). */
  probeConstants: Readonly<{ IOMMU_VEVENTQ_TYPE_SELFTEST: number; VFIO_DEVICE_ATTACH_PASID: number }>;
  selftest: {
    mockDomain(fd: number, ptId: number): { stdevId: number; hwptId: number; idevId: number };
    mockDomainReplace(fd: number, stdevId: number, ptId: number): void;
    triggerIopf(fd: number, fault: { devId: number; pasid?: number; grpid?: number; perm?: number; addr?: bigint }, count?: number): void;
    triggerVevent(fd: number, devId: number, count?: number): void;
    /** Whether entry `iotlbId` of a mock nested HWPT's IOTLB holds `value`. */
    mockCheckIotlb(fd: number, hwptId: number, iotlbId: number, value: number): boolean;
    /** Entries in a mock nested HWPT's IOTLB (ids 0..iotlbNum-1). */
    iotlbNum: number;
  };
}

export const binding = native as Binding;

/** The layout of the control block JS and a native pump share (answers, counters, stop). */
export const CONTROL = binding.pumpControl;
export const MAP_STEP = binding.mapStep;
