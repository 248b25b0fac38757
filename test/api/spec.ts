// The public API of 'iommufd' and 'iommufd/testing', call by call: each call's receiver, its
// parameters and option fields with a type descriptor, a call that must pass the checks, and what
// the call does on a closed receiver. test/api/cases.ts generates every bad argument class from the
// descriptors (wrong type, negative, NaN, fraction, Infinity, too large, BigInt for a number and
// the reverse, null, a closed or foreign object, the byte inputs of every kind) and the runners
// (test/unit/arguments.test.ts, test/guest/*/arguments.test.ts) walk them; test/unit/api_spec.test.ts
// checks that this table names every public call the entry points export.
import type {
  DemandPager, FaultBatch, FaultGroup, FaultQueue, FaultServer, Hwpt, Ioas, IoasHandle, IoasMapper, Iommufd, Vdevice, Vevent, VeventBatch, VeventQueue,
  VfioDevice, Viommu,
} from '../../lib/index.js';
import {
  allocPages, bindVfioPci, FAULT_RECORD_SIZE, HWPT_ALLOC_NEST_PARENT, MAX_BUFFER_RECORDS, VEVENTQ_MAX_DEPTH, VEVENTQ_TYPE_ARM_SMMUV3,
} from '../../lib/index.js';
import type { MockDevice, PriTestDevice, VtdStage1Table } from '../../lib/testing.js';
import {
  HWPT_DATA_SELFTEST, IOMMU_TEST_IOTLB_DEFAULT, MOCK_IOTLB_NUM, PRI_TESTDEV_MEMORY, PRI_TESTDEV_SLOTS, selftestHwptData, VEVENTQ_TYPE_SELFTEST, VIOMMU_TYPE_SELFTEST,
} from '../../lib/testing.js';

/** What a runner has made for the calls it walks (each runner fills what its machine can make). */
export interface World {
  iommufd: Iommufd;
  ioas: Ioas;
  /** An IOAS nothing uses (Iommufd.destroy's valid call destroys it). */
  spareIoas: Ioas;
  dev: MockDevice;
  queue: FaultQueue;
  /** The fault-capable HWPT the mock device is attached to. */
  faultHwpt: Hwpt;
  /** A HWPT_ALLOC_NEST_PARENT HWPT for the mock device. */
  parent: Hwpt;
  /** A nested HWPT of the mock driver's type on `parent` (what Hwpt.invalidate takes entries for). */
  nestedHwpt: Hwpt;
  /** A VT-d stage-1 table in `ioas`. */
  stage1: VtdStage1Table;
  viommu: Viommu;
  vdevice: Vdevice;
  veventQueue: VeventQueue;
  /** Live only while the runner's batch handler runs. */
  faultBatch: FaultBatch;
  faultGroup: FaultGroup;
  server: FaultServer;
  veventBatch: VeventBatch;
  vevent: Vevent;
  vfio: VfioDevice;
  /** The VFIO device before bind() (VfioDevice.bind's receiver). */
  vfioUnbound: VfioDevice;
  /** The PCI address of the device the vtd runner uses (edu). */
  pci: string;
  pri: PriTestDevice;
  /** Objects of another Iommufd, by class name. */
  foreign: Record<string, unknown>;
  /** Closed (or destroyed) objects, by class name. */
  closedArg: Record<string, unknown>;
  /** A handle of `ioas` for 64 KiB of page-aligned memory, and a mapper of it (on this thread). */
  ioasHandle: IoasHandle;
  ioasMapper: IoasMapper;
  /** A demand pager serving `queue` for a window of `ioas`. */
  pager: DemandPager;
}

export type ReceiverKind = 'iommufd' | 'ioas' | 'faultHwpt' | 'nestedHwpt' | 'stage1' | 'dev' | 'queue' | 'faultBatch' | 'faultGroup' | 'server' | 'viommu' | 'vdevice'
  | 'veventQueue' | 'veventBatch' | 'vevent' | 'vfio' | 'vfioUnbound' | 'pri' | 'ioasHandle' | 'ioasMapper' | 'pager';

/** Where a call is walked: the host (pure code, or a fake device), or a guest of the rig. */
export type Runner = 'host' | 'mock' | 'vtd' | 'pri';

export type Ty =
  /** An integer in [min, max]; maxAt: a max that depends on the other arguments or the receiver. */
  | { t: 'int'; min: number; max: number; maxAt?: (args: unknown[], w: World) => number }
  /** A finite number in [min, max], fractions allowed. */
  | { t: 'number'; min: number; max: number }
  /** A number out of a set (an access width). */
  | { t: 'numberOf'; values: number[] }
  /** A bigint in 0..2^64-1. */
  | { t: 'u64' }
  | { t: 'bool' }
  | { t: 'string' }
  /** A path string or a URL. */
  | { t: 'path' }
  /** One of some strings. */
  | { t: 'enum'; values: string[] }
  | { t: 'fn' }
  | { t: 'signal' }
  /** Bytes the call reads: an ArrayBuffer, a SharedArrayBuffer or any view of one. */
  | { t: 'bytes' }
  /** A Uint8Array over any buffer (decoders of byte arrays). */
  | { t: 'u8' }
  /** A DataView over any buffer (decoders of records). */
  | { t: 'dataView' }
  /** A PCI address string in sysfs form. */
  | { t: 'pciAddress' }
  /** Anything the structured clone algorithm copies. */
  | { t: 'cloneable' }
  /** An object of a lib class; closable: a closed one is ERR_IOMMUFD_CLOSED; foreign: another Iommufd's is ERR_INVALID_ARG_VALUE. */
  | { t: 'instance'; cls: string; closable: boolean; foreign: boolean }
  /** What a VFIO device attaches to: an Ioas, a Hwpt, or an object id. */
  | { t: 'target' }
  /** An options object (or a record such as decodeHwInfo's), with its fields. */
  | { t: 'object'; fields: Param[] }
  /** An array; its element is walked as `name[0]`. */
  | { t: 'array'; of: Ty };

export type Code = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE' | 'ERR_IOMMUFD_CLOSED' | 'ERR_IOMMUFD_BATCH_ENDED';

export interface Param {
  /** As the messages name it: 'options.deviceId', 'code', 'target'. A field's name is its path. */
  name: string;
  ty: Ty;
  /** undefined is fine (the default). */
  optional?: boolean;
  /** null is fine. */
  nullable?: boolean;
  /** Bad values beyond the type's classes (a rule of this parameter's own); `args`: the whole call
   *  (a combination of options), `name`: what the message names if not this parameter. */
  extra?: { label: string; value: (w: World, args: unknown[]) => unknown; code: Code; args?: (w: World) => unknown[]; name?: string }[];
  /** The valid call this parameter's cases vary (default: the call's own valid call). */
  base?: (w: World) => unknown[];
  /** Bytes of every kind (a DataView, a SharedArrayBuffer...) are accepted: 'ok' the call then
   *  succeeds, 'kernel' (the default) it reaches the kernel, which may refuse such memory; 'none':
   *  not walked here (the call needs page-aligned memory, which the walk's copies are not). */
  accept?: 'ok' | 'kernel' | 'none';
}

export interface CallSpec {
  /** As a user writes it: 'Iommufd.allocHwpt', 'decodeVevent', 'new PriTestDevice', 'PriTestDevice.timeoutMs' (a setter). */
  call: string;
  kind: 'function' | 'static' | 'method' | 'getter' | 'setter' | 'constructor';
  receiver?: ReceiverKind;
  runner: Runner;
  /** A kernel feature the receiver or the valid call needs: vIOMMU (6.13+), vEVENTQ (6.15+). */
  needs?: 'viommu' | 'veventq';
  params: Param[];
  /** A call that must pass the checks. */
  valid?: (w: World) => unknown[];
  /** 'kernel': the valid call reaches the kernel, whose word may be a refusal (an IommufdError with
   *  a syscall): edu has no PASID and no reset. Default 'ok'. */
  outcome?: 'ok' | 'kernel';
  /** Done before the valid call (serve() needs a fault to read). */
  before?: (w: World) => void;
  /** Done with the valid call's result (stop a server, close a queue). */
  after?: (result: unknown, w: World) => unknown;
  /** On a closed receiver (a closed iommufd, queue or VFIO device, a destroyed object, an ended
   *  batch): 'throws' ERR_IOMMUFD_CLOSED (BATCH_ENDED for batches), 'ok' (close(), destroy(),
   *  stats, next()...), 'none' for calls without a receiver. */
  closed: 'throws' | 'ok' | 'none';
  /** Argument lists still fine on a closed receiver (setBatchHandler(null)). */
  closedOk?: (w: World) => unknown[][];
  /** Argument errors arrive as a rejection, never a throw. */
  async?: boolean;
  /** Listed so the coverage check knows it, not walked: why (an @internal name). */
  internal?: string;
}

// Descriptors.
const U32 = 2 ** 32 - 1;
const int = (min: number, max: number, maxAt?: (args: unknown[], w: World) => number): Ty => ({ t: 'int', min, max, maxAt });
const u32: Ty = int(0, U32);
const id: Ty = int(1, U32);
const u64: Ty = { t: 'u64' };
const bool: Ty = { t: 'bool' };
const fn: Ty = { t: 'fn' };
const signal: Ty = { t: 'signal' };
const bytes: Ty = { t: 'bytes' };
const u8: Ty = { t: 'u8' };
const dataView: Ty = { t: 'dataView' };
const code: Ty = { t: 'enum', values: ['success', 'invalid'] };
const width: Ty = { t: 'numberOf', values: [1, 2, 4] };
const obj = (...fields: Param[]): Ty => ({ t: 'object', fields });
const instance = (cls: string, closable: boolean, foreign: boolean): Ty => ({ t: 'instance', cls, closable, foreign });
const p = (name: string, ty: Ty, more: Partial<Param> = {}): Param => ({ name, ty, ...more });
const opt = (name: string, ty: Ty, more: Partial<Param> = {}): Param => ({ name, ty, optional: true, ...more });

const queueFields = [
  opt('options.highWaterMark', int(1, 2 ** 31)),
  opt('options.lowWaterMark', int(0, 2 ** 31 - 1, (args) => ((args[0] as { highWaterMark?: number } | undefined)?.highWaterMark ?? 4096) - 1)),
  opt('options.bufferRecords', int(1, MAX_BUFFER_RECORDS)),
  opt('options.signal', signal),
];
const iterationOptions = opt('options', obj(opt('options.signal', signal)));

/** The serve-loop handlers module the guest's serve tests use. */
export const handlers = new URL('../guest/fixtures/serve-handlers.mjs', import.meta.url);
const records = (n: number) => new DataView(new ArrayBuffer(n * FAULT_RECORD_SIZE));
const byteLength = (args: unknown[]) => (args[0] as { byteLength: number }).byteLength;

const getters = (cls: ReceiverKind, runner: Runner, names: string[], closed: 'throws' | 'ok', more: Partial<CallSpec> = {}): CallSpec[] =>
  names.map((name) => ({ call: `${className[cls]}.${name}`, kind: 'getter', receiver: cls, runner, params: [], valid: () => [], closed, ...more }));

const className: Record<ReceiverKind, string> = {
  iommufd: 'Iommufd', ioas: 'Ioas', faultHwpt: 'Hwpt', nestedHwpt: 'Hwpt', stage1: 'VtdStage1Table', dev: 'MockDevice', queue: 'FaultQueue', faultBatch: 'FaultBatch', faultGroup: 'FaultGroup',
  server: 'FaultServer', viommu: 'Viommu', vdevice: 'Vdevice', veventQueue: 'VeventQueue', veventBatch: 'VeventBatch', vevent: 'Vevent',
  vfio: 'VfioDevice', vfioUnbound: 'VfioDevice', pri: 'PriTestDevice', ioasHandle: 'IoasHandle', ioasMapper: 'IoasMapper', pager: 'DemandPager',
};

// FaultBatch: the runner's batch holds 8 single-record groups; valid calls take a group each.
const group = int(0, U32, (_args, w) => w.faultBatch.groupCount - 1);
const record = int(0, U32, (_args, w) => w.faultBatch.recordCount - 1);
const batchCall = (name: string, params: Param[], valid: unknown[], more: Partial<CallSpec> = {}): CallSpec => ({
  call: `FaultBatch.${name}`, kind: 'method', receiver: 'faultBatch', runner: 'mock', params, valid: () => valid, closed: 'throws', ...more,
});
const recordAccessors = ['flags', 'deviceId', 'pasid', 'groupId', 'perm', 'address', 'addressBigInt', 'length', 'cookie', 'record']
  .map((name) => batchCall(name, [p('record', record)], [0]));

const event = int(0, U32, (_args, w) => w.veventBatch.length - 1);
const eventAccessors = ['sequence', 'flags', 'isLostHeader', 'lost', 'dataOffset', 'data', 'decode'].map((name): CallSpec => ({
  call: `VeventBatch.${name}`, kind: 'method', receiver: 'veventBatch', runner: 'mock', needs: 'veventq', params: [p('index', event)], valid: () => [0],
  closed: 'throws',
}));

const target: Ty = { t: 'target' };
/** A VT-d stage-1 page address: a bigint, 4 KiB aligned, below 2^48. */
const page = (name: string) => p(name, u64, { extra: [
  { label: 'not 4 KiB aligned', value: () => 0x1001n, code: 'ERR_OUT_OF_RANGE' }, { label: '2^48', value: () => 1n << 48n, code: 'ERR_OUT_OF_RANGE' }] });
const offset = int(0, Number.MAX_SAFE_INTEGER);
const EDU_LIVENESS = 0x04;
const PCI_COMMAND = 0x04;

const job = (name: string) => p(name, obj(
  p(`${name}.iova`, u64), p(`${name}.offset`, u32), p(`${name}.length`, u32), opt(`${name}.write`, bool), opt(`${name}.pasid`, u32),
  opt(`${name}.group`, bool)));
const waitOptions = opt('options', obj(opt('options.timeoutMs', int(0, 2 ** 31 - 1)), opt('options.intervalMs', int(0, 2 ** 31 - 1))));
/** A job the iopf runner's device can finish: 64 bytes from a page mapped at this IOVA. */
export const JOB = { iova: 0x10_0000n, offset: 0, length: 64 };

export const spec: CallSpec[] = [
  // ---- objects/: the iommufd and what it makes -------------------------------------------------
  { call: 'Iommufd.open', kind: 'static', runner: 'mock', params: [opt('path', { t: 'string' })], valid: () => ['/dev/iommu'], closed: 'none',
    after: (fd) => (fd as Iommufd).close() },
  ...getters('iommufd', 'mock', ['fd'], 'throws'),
  ...getters('iommufd', 'mock', ['closed'], 'ok'),
  { call: 'Iommufd.allocIoas', kind: 'method', receiver: 'iommufd', runner: 'mock', params: [], valid: () => [], closed: 'throws' },
  { call: 'Iommufd.allocHwpt', kind: 'method', receiver: 'iommufd', runner: 'mock', closed: 'throws',
    params: [p('options', obj(
      p('options.deviceId', id), p('options.parentId', id), opt('options.flags', u32),
      opt('options.faultQueue', instance('FaultQueue', true, true)),
      // A VT-d stage 1 (the rig's VT-d has no nesting: its cases are all refused before the kernel).
      opt('options.stage1', obj(
        p('options.stage1.type', { t: 'enum', values: ['vtd-s1'] }), p('options.stage1.pgtblAddr', u64),
        opt('options.stage1.addrWidth', { t: 'numberOf', values: [48, 57] }),
        opt('options.stage1.sre', bool), opt('options.stage1.eafe', bool), opt('options.stage1.wpe', bool),
      ), {
        base: (w) => [{ deviceId: w.dev.deviceId, parentId: w.parent.id, stage1: { type: 'vtd-s1', pgtblAddr: 0n } }],
        extra: [{ label: 'with options.dataType (it sets it)', value: () => 0, code: 'ERR_INVALID_ARG_VALUE',
          args: (w) => [{ deviceId: w.dev.deviceId, parentId: w.parent.id, stage1: { type: 'vtd-s1', pgtblAddr: 0n }, dataType: HWPT_DATA_SELFTEST }] }],
      }),
      opt('options.dataType', u32),
      // The nested call the driver data belongs to: the mock's own data type, on the nest parent.
      opt('options.data', bytes, { accept: 'ok', base: (w) => [{ deviceId: w.dev.deviceId, parentId: w.parent.id, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData() }] }),
    ))],
    valid: (w) => [{ deviceId: w.dev.deviceId, parentId: w.ioas.id, flags: HWPT_ALLOC_NEST_PARENT }] },
  { call: 'Iommufd.allocFaultQueue', kind: 'method', receiver: 'iommufd', runner: 'mock', closed: 'throws',
    params: [opt('options', obj(...queueFields))], valid: () => [{}], after: (q) => (q as FaultQueue).close() },
  { call: 'Iommufd.allocViommu', kind: 'method', receiver: 'iommufd', runner: 'mock', needs: 'viommu', closed: 'throws',
    params: [p('options', obj(
      p('options.deviceId', id), p('options.parent', instance('Hwpt', true, true)), p('options.type', u32),
      // Bytes of every kind reach the kernel, which says whether this type takes data.
      opt('options.data', bytes, { base: (w) => [{ deviceId: w.dev.deviceId, parent: w.parent, type: VIOMMU_TYPE_SELFTEST, data: new Uint8Array(8) }] }),
    ))],
    valid: (w) => [{ deviceId: w.dev.deviceId, parent: w.parent, type: VIOMMU_TYPE_SELFTEST }] },
  { call: 'Iommufd.destroy', kind: 'method', receiver: 'iommufd', runner: 'mock', params: [p('id', id)], valid: (w) => [w.spareIoas.id], closed: 'throws' },
  { call: 'Iommufd.getHwInfo', kind: 'method', receiver: 'iommufd', runner: 'mock', params: [p('deviceId', id)], valid: (w) => [w.dev.deviceId], closed: 'throws' },
  { call: 'Iommufd.close', kind: 'method', receiver: 'iommufd', runner: 'mock', params: [], valid: () => [], closed: 'ok', async: true },
  { call: 'Iommufd._adopt', kind: 'method', receiver: 'iommufd', runner: 'mock', params: [], closed: 'none', internal: '@internal, \'_\'' },

  { call: 'allocPages', kind: 'function', runner: 'host', closed: 'none', valid: () => [4096],
    params: [
      p('length', int(4096, 2 ** 32 - 4096), { extra: [
        { label: 'not a multiple of the page size', value: () => 4096 + 100, code: 'ERR_OUT_OF_RANGE' },
        { label: 'not a multiple of the huge page size', value: () => 4096, code: 'ERR_OUT_OF_RANGE', args: () => [4096, { hugePages: 'thp' }] },
        { label: 'below one hugetlb page', value: () => 4096, code: 'ERR_OUT_OF_RANGE', args: () => [4096, { hugePages: 'hugetlb' }] }] }),
      opt('options', obj(opt('options.hugePages', { t: 'enum', values: ['hugetlb', 'thp'] })), { base: () => [4096, {}] })] },
  { call: 'Ioas.map', kind: 'method', receiver: 'ioas', runner: 'mock', closed: 'throws',
    params: [p('memory', bytes), opt('options', obj(opt('options.iova', u64), opt('options.readable', bool), opt('options.writable', bool)))],
    valid: () => [allocPages(4096), {}] },
  { call: 'Ioas.unmap', kind: 'method', receiver: 'ioas', runner: 'mock', closed: 'throws',
    params: [opt('iova', u64), opt('length', u64, { extra: [{ label: 'without an iova', value: () => 4096n, code: 'ERR_INVALID_ARG_VALUE' }], base: () => [undefined, 4096n] })],
    before: (w) => { w.ioas.map(allocPages(4096), { iova: 0x4000_0000n }); },
    valid: () => [0x4000_0000n, 4096n] },
  { call: 'Ioas.handle', kind: 'method', receiver: 'ioas', runner: 'mock', closed: 'throws',
    params: [p('memory', bytes, { accept: 'ok', extra: [
      { label: 'a resizable ArrayBuffer', value: () => new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(4096, { maxByteLength: 8192 }), code: 'ERR_INVALID_ARG_VALUE' },
      { label: 'empty', value: () => new ArrayBuffer(0), code: 'ERR_INVALID_ARG_VALUE' }] })],
    valid: () => [allocPages(16384)], after: (h) => (h as IoasHandle).close() },
  ...getters('ioasHandle', 'mock', ['closed'], 'ok'),
  { call: 'IoasHandle.close', kind: 'method', receiver: 'ioasHandle', runner: 'mock', params: [], valid: () => [], closed: 'ok' },
  { call: 'IoasHandle._close', kind: 'method', receiver: 'ioasHandle', runner: 'mock', params: [], closed: 'none', internal: "@internal, '_'" },
  { call: 'IoasMapper.open', kind: 'static', runner: 'host', closed: 'none', valid: () => [{ token: 1, ioasId: 1, length: 4096 }],
    params: [p('descriptor', obj(p('descriptor.token', id), p('descriptor.ioasId', id), p('descriptor.length', int(1, Number.MAX_SAFE_INTEGER))))] },
  { call: 'IoasMapper.map', kind: 'method', receiver: 'ioasMapper', runner: 'mock', closed: 'throws',
    params: [
      p('offset', int(0, U32, (_a, w) => w.ioasMapper.length - 1), { extra: [{ label: 'not a page multiple', value: () => 100, code: 'ERR_OUT_OF_RANGE' }] }),
      p('length', int(4096, U32, (args, w) => w.ioasMapper.length - (args[0] as number)), { extra: [{ label: 'not a page multiple', value: () => 4196, code: 'ERR_OUT_OF_RANGE' }] }),
      opt('options', obj(opt('options.iova', u64), opt('options.readable', bool), opt('options.writable', bool)))],
    valid: () => [4096, 8192, { iova: 0x4000_0000n }] },
  { call: 'IoasMapper.unmap', kind: 'method', receiver: 'ioasMapper', runner: 'mock', closed: 'throws', params: [p('iova', u64), p('length', u64)],
    before: (w) => { w.ioasMapper.map(0, 4096, { iova: 0x4000_0000n }); }, valid: () => [0x4000_0000n, 4096n] },
  ...getters('ioasMapper', 'mock', ['ioasId', 'length'], 'ok'),
  { call: 'Ioas.iovaRanges', kind: 'method', receiver: 'ioas', runner: 'mock', params: [], valid: () => [], closed: 'throws' },
  { call: 'Ioas.destroy', kind: 'method', receiver: 'ioas', runner: 'mock', params: [], valid: () => [], closed: 'ok' },
  ...getters('ioas', 'mock', ['destroyed'], 'ok'),
  { call: 'Hwpt.destroy', kind: 'method', receiver: 'faultHwpt', runner: 'mock', params: [], closed: 'ok',
    before: (w) => w.dev.replace(w.ioas.id), valid: () => [] },
  ...getters('faultHwpt', 'mock', ['destroyed'], 'ok'),
  { call: 'Hwpt.invalidate', kind: 'method', receiver: 'nestedHwpt', runner: 'mock', closed: 'throws',
    // The mock's entry shape; a VT-d stage-1 HWPT's ({addr, npages, leaf}) needs a nesting VT-d, which the rig lacks.
    params: [p('entries', { t: 'array', of: obj(opt('entries[0].iotlbId', u32), opt('entries[0].all', bool), opt('entries[0].flags', u32)) })],
    valid: () => [[{ iotlbId: 0 }, { all: true }]] },
  { call: 'checkMockIotlb', kind: 'function', runner: 'mock', closed: 'none',
    params: [p('hwpt', instance('Hwpt', true, false)), p('iotlbId', int(0, MOCK_IOTLB_NUM - 1)), p('value', u32)],
    valid: (w) => [w.nestedHwpt, 0, IOMMU_TEST_IOTLB_DEFAULT] },
  { call: 'Hwpt.alloc', kind: 'static', runner: 'mock', params: [], closed: 'none', internal: '@internal: Iommufd.allocHwpt is the call' },

  // ---- fault/: queues, groups, batches, serve loops --------------------------------------------
  { call: 'FaultQueue.setBatchHandler', kind: 'method', receiver: 'queue', runner: 'mock', closed: 'throws',
    params: [p('handler', fn, { nullable: true })], valid: () => [() => {}], after: (q) => (q as FaultQueue).setBatchHandler(null),
    closedOk: () => [[null]] },
  { call: 'FaultQueue.serve', kind: 'method', receiver: 'queue', runner: 'mock', closed: 'throws',
    params: [p('handler', fn), opt('options', obj(opt('options.onError', fn), opt('options.idleMs', int(1, 60_000))))],
    before: (w) => w.dev.triggerIopf({ groupId: 1 }),
    valid: () => [(b: FaultBatch) => { b.answerAll(); b.stopServing(); }, {}] },
  { call: 'FaultQueue.serveInWorker', kind: 'method', receiver: 'queue', runner: 'mock', closed: 'throws', async: true,
    params: [p('handlerModule', { t: 'path' }), opt('options', obj(
      opt('options.exportName', { t: 'string' }, { extra: [
        // Checked on the worker, thrown typed on this side (the module's exports are the module's word).
        { label: 'an export that is no function', value: () => 'notAFunction', code: 'ERR_INVALID_ARG_TYPE' },
        { label: 'no such export', value: () => 'nothing', code: 'ERR_INVALID_ARG_VALUE' },
      ] }),
      opt('options.workerData', { t: 'cloneable' }), opt('options.idleMs', int(1, 60_000)), opt('options.stopTimeoutMs', int(0, 2 ** 31 - 1)),
      opt('options.resourceLimits', obj(
        opt('options.resourceLimits.maxYoungGenerationSizeMb', { t: 'number', min: 0, max: 2 ** 32 }),
        opt('options.resourceLimits.maxOldGenerationSizeMb', { t: 'number', min: 0, max: 2 ** 32 }),
        opt('options.resourceLimits.codeRangeSizeMb', { t: 'number', min: 0, max: 2 ** 32 }),
        opt('options.resourceLimits.stackSizeMb', { t: 'number', min: 0, max: 2 ** 32 }),
      )),
    ))],
    valid: () => [handlers, {}], after: (server) => (server as FaultServer).stop() },
  { call: 'FaultQueue.groups', kind: 'method', receiver: 'queue', runner: 'mock', params: [iterationOptions], valid: () => [{}], closed: 'ok' },
  { call: 'FaultQueue.batches', kind: 'method', receiver: 'queue', runner: 'mock', params: [iterationOptions], valid: () => [{}], closed: 'ok' },
  { call: 'FaultQueue.next', kind: 'method', receiver: 'queue', runner: 'mock', params: [], closed: 'ok', async: true,
    before: (w) => w.dev.triggerIopf({ groupId: 2 }), valid: () => [] },
  { call: 'FaultQueue.ref', kind: 'method', receiver: 'queue', runner: 'mock', params: [], valid: () => [], closed: 'ok' },
  { call: 'FaultQueue.unref', kind: 'method', receiver: 'queue', runner: 'mock', params: [], valid: () => [], closed: 'ok' },
  { call: 'FaultQueue.close', kind: 'method', receiver: 'queue', runner: 'mock', params: [], valid: () => [], closed: 'ok', async: true },
  ...getters('queue', 'mock', ['closed', 'stats'], 'ok'),
  { call: 'FaultQueue._respond', kind: 'method', receiver: 'queue', runner: 'mock', params: [], closed: 'none', internal: "@internal, '_'" },

  { call: 'FaultGroup.respond', kind: 'method', receiver: 'faultGroup', runner: 'mock', params: [opt('code', code)], valid: () => ['success'], closed: 'throws' },
  { call: 'FaultGroup.answer', kind: 'method', receiver: 'faultGroup', runner: 'mock', params: [opt('code', code)], valid: () => ['invalid'], closed: 'throws' },
  ...getters('faultGroup', 'mock', ['faults', 'deviceId', 'pasid', 'groupId', 'answered'], 'ok'),

  ...getters('faultBatch', 'mock', ['groupCount', 'recordCount'], 'throws'),
  batchCall('first', [p('group', group)], [0]),
  batchCall('size', [p('group', group)], [0]),
  batchCall('answered', [p('group', group)], [0]),
  ...recordAccessors,
  batchCall('answer', [p('group', group), opt('code', code)], [1, 'success']),
  batchCall('keep', [p('group', group)], [2]),
  batchCall('flush', [], []),
  // In the runner's serve() loop: outside one it is ERR_INVALID_STATE, the documented refusal.
  batchCall('stopServing', [], []),
  batchCall('answerAll', [opt('code', code)], ['invalid']),

  ...getters('server', 'mock', ['serving', 'stats', 'writes'], 'ok'),
  { call: 'FaultServer.stop', kind: 'method', receiver: 'server', runner: 'mock', params: [], valid: () => [], closed: 'ok', async: true },

  { call: 'decodeFaultRecord', kind: 'function', runner: 'host', closed: 'none', valid: () => [records(2), FAULT_RECORD_SIZE],
    params: [p('view', dataView), p('offset', int(0, U32, (args) => byteLength(args) - FAULT_RECORD_SIZE))] },
  { call: 'decodeFaultGroups', kind: 'function', runner: 'host', closed: 'none', valid: () => [new Uint8Array(3 * FAULT_RECORD_SIZE), 2 * FAULT_RECORD_SIZE],
    params: [p('bytes', u8), opt('byteLength', int(0, U32, byteLength), { extra: [{ label: 'not whole records', value: () => FAULT_RECORD_SIZE + 1, code: 'ERR_OUT_OF_RANGE' }] })] },
  { call: 'forEachFaultGroup', kind: 'function', runner: 'host', closed: 'none', valid: () => [records(3), 2 * FAULT_RECORD_SIZE, () => {}],
    params: [p('view', dataView), p('byteLength', int(0, U32, byteLength), { extra: [{ label: 'not whole records', value: () => 7, code: 'ERR_OUT_OF_RANGE' }] }), p('onGroup', fn)] },

  // ---- paging/: the demand pager ----------------------------------------------------------------
  { call: 'DemandPager.start', kind: 'static', runner: 'mock', closed: 'none', async: true,
    params: [p('options', obj(
      p('options.ioas', instance('Ioas', true, false)),
      p('options.faultQueue', instance('FaultQueue', true, true)),
      p('options.memory', bytes, { accept: 'none', extra: [{ label: 'not page aligned', value: () => new Uint8Array(allocPages(8192), 2048, 4096), code: 'ERR_INVALID_ARG_VALUE' }] }),
      p('options.iova', u64, { extra: [
        { label: 'not page aligned', value: () => 0x1000_0800n, code: 'ERR_OUT_OF_RANGE' },
        { label: 'a window outside the IOAS\'s usable ranges', value: () => 0n, code: 'ERR_OUT_OF_RANGE' },
        { label: 'a window ending above 2^53', value: () => 2n ** 53n - 4096n, code: 'ERR_OUT_OF_RANGE' }] }),
      opt('options.length', u64, { extra: [
        { label: 'longer than the memory', value: () => 65536n + 4096n, code: 'ERR_OUT_OF_RANGE' },
        { label: 'not a page multiple', value: () => 5000n, code: 'ERR_OUT_OF_RANGE' }, { label: 'zero', value: () => 0n, code: 'ERR_OUT_OF_RANGE' }] }),
      opt('options.budget', u64, { extra: [
        { label: 'below one page', value: () => 0n, code: 'ERR_OUT_OF_RANGE' },
        { label: 'not a page multiple', value: () => 6000n, code: 'ERR_OUT_OF_RANGE' },
        { label: 'below one page and its fault-around', value: () => 8192n, code: 'ERR_OUT_OF_RANGE',
          args: (w) => [{ ioas: w.ioas, faultQueue: w.queue, memory: allocPages(65536), iova: 0x1000_0000n, faultAround: 2, budget: 8192n }] }] }),
      opt('options.faultAround', int(0, 512)),
      opt('options.writable', bool),
      opt('options.policy', fn),
      opt('options.policyTimeoutMs', int(1, 2 ** 31 - 1)),
      opt('options.nativeStep', bool),
    ))],
    valid: (w) => [{ ioas: w.ioas, faultQueue: w.queue, memory: allocPages(65536), iova: 0x1000_0000n }],
    after: (pager) => (pager as DemandPager).close() },
  { call: 'DemandPager.close', kind: 'method', receiver: 'pager', runner: 'mock', closed: 'ok', async: true,
    params: [opt('options', obj(opt('options.unmap', bool)))], valid: () => [{ unmap: false }] },
  ...getters('pager', 'mock', ['closed', 'stats'], 'ok'),

  // ---- objects/viommu.ts and vevent/: vIOMMUs, vDEVICEs, vEVENTQs ------------------------------
  { call: 'Viommu.allocVdevice', kind: 'method', receiver: 'viommu', runner: 'mock', needs: 'viommu', closed: 'throws',
    params: [p('options', obj(p('options.deviceId', id), p('options.virtId', u64)))], valid: (w) => [{ deviceId: w.dev.deviceId, virtId: 0x99n }] },
  { call: 'Viommu.allocVeventQueue', kind: 'method', receiver: 'viommu', runner: 'mock', needs: 'viommu', closed: 'throws',
    params: [p('options', obj(
      p('options.type', int(1, U32), { extra: [{ label: 'a type with no known layout', value: () => 12345, code: 'ERR_OUT_OF_RANGE' }] }),
      opt('options.depth', int(1, VEVENTQ_MAX_DEPTH)), opt('options.overflow', { t: 'enum', values: ['mark', 'throw'] }), ...queueFields,
    ))],
    // Walked on 6.13+ (its checks come first); the valid call itself needs 6.15 (ENOTTY before).
    outcome: 'kernel',
    valid: () => [{ type: VEVENTQ_TYPE_SELFTEST }], after: (q) => (q as VeventQueue).close() },
  { call: 'Viommu.destroy', kind: 'method', receiver: 'viommu', runner: 'mock', needs: 'viommu', params: [], closed: 'ok',
    before: (w) => w.dev.replace(w.ioas.id), valid: () => [] },
  ...getters('viommu', 'mock', ['destroyed'], 'ok', { needs: 'viommu' }),
  { call: 'Viommu.alloc', kind: 'static', runner: 'mock', params: [], closed: 'none', internal: '@internal: Iommufd.allocViommu is the call' },
  { call: 'Viommu._fd', kind: 'method', receiver: 'viommu', runner: 'mock', params: [], closed: 'none', internal: "@internal, '_'" },
  { call: 'Vdevice.destroy', kind: 'method', receiver: 'vdevice', runner: 'mock', needs: 'viommu', params: [], valid: () => [], closed: 'ok' },
  ...getters('vdevice', 'mock', ['destroyed'], 'ok', { needs: 'viommu' }),
  { call: 'Vdevice._fd', kind: 'method', receiver: 'vdevice', runner: 'mock', params: [], closed: 'none', internal: "@internal, '_'" },

  { call: 'VeventQueue.setBatchHandler', kind: 'method', receiver: 'veventQueue', runner: 'mock', needs: 'veventq', closed: 'throws',
    params: [p('handler', fn, { nullable: true })], valid: () => [() => {}], after: (q) => (q as VeventQueue).setBatchHandler(null),
    closedOk: () => [[null]] },
  { call: 'VeventQueue.events', kind: 'method', receiver: 'veventQueue', runner: 'mock', needs: 'veventq', params: [iterationOptions], valid: () => [{}], closed: 'ok' },
  { call: 'VeventQueue.batches', kind: 'method', receiver: 'veventQueue', runner: 'mock', needs: 'veventq', params: [iterationOptions], valid: () => [{}], closed: 'ok' },
  { call: 'VeventQueue.next', kind: 'method', receiver: 'veventQueue', runner: 'mock', needs: 'veventq', params: [], closed: 'ok', async: true,
    before: (w) => w.dev.triggerVevent(), valid: () => [] },
  { call: 'VeventQueue.ref', kind: 'method', receiver: 'veventQueue', runner: 'mock', needs: 'veventq', params: [], valid: () => [], closed: 'ok' },
  { call: 'VeventQueue.unref', kind: 'method', receiver: 'veventQueue', runner: 'mock', needs: 'veventq', params: [], valid: () => [], closed: 'ok' },
  { call: 'VeventQueue.close', kind: 'method', receiver: 'veventQueue', runner: 'mock', needs: 'veventq', params: [], valid: () => [], closed: 'ok', async: true },
  ...getters('veventQueue', 'mock', ['closed', 'stats'], 'ok', { needs: 'veventq' }),
  ...getters('veventBatch', 'mock', ['length', 'view'], 'throws', { needs: 'veventq' }),
  ...eventAccessors,
  ...getters('vevent', 'mock', ['data', 'decoded'], 'ok', { needs: 'veventq' }),

  { call: 'decodeVevent', kind: 'function', runner: 'host', closed: 'none', valid: () => [VEVENTQ_TYPE_SELFTEST, new DataView(new ArrayBuffer(8)), 4],
    params: [p('type', u32), p('view', dataView), p('offset', int(0, U32, (args) => (args[1] as DataView).byteLength - 4))] },
  { call: 'decodeArmSmmuv3Vevent', kind: 'function', runner: 'host', closed: 'none', valid: () => [new DataView(new ArrayBuffer(40)), 8],
    params: [p('view', dataView), p('offset', int(0, U32, (args) => byteLength(args) - 32))] },

  // ---- device/: VFIO devices, PCI, hardware info -----------------------------------------------
  { call: 'VfioDevice.open', kind: 'static', runner: 'vtd', closed: 'none', params: [p('path', { t: 'string' })],
    valid: (w) => { w.vfio.close(); return [w.vfio.path]; }, after: (d) => (d as VfioDevice).close() },
  { call: 'VfioDevice.openPci', kind: 'static', runner: 'vtd', closed: 'none', params: [p('address', { t: 'pciAddress' })],
    valid: (w) => { w.vfio.close(); return [w.pci]; }, after: (d) => (d as VfioDevice).close() },
  ...getters('vfio', 'vtd', ['fd', 'deviceId'], 'throws'),
  ...getters('vfio', 'vtd', ['closed', 'iommufd'], 'ok'),
  { call: 'VfioDevice.bind', kind: 'method', receiver: 'vfioUnbound', runner: 'vtd', closed: 'throws',
    params: [p('iommufd', instance('Iommufd', true, false))], valid: (w) => [w.iommufd] },
  { call: 'VfioDevice.attach', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', params: [p('target', target)], valid: (w) => [w.ioas] },
  { call: 'VfioDevice.replace', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', params: [p('target', target)], valid: (w) => [w.ioas] },
  { call: 'VfioDevice.detach', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', params: [], before: (w) => w.vfio.attach(w.ioas), valid: () => [] },
  // edu has no PASID capability: the kernel's refusal is the valid call's outcome.
  { call: 'VfioDevice.attachPasid', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', outcome: 'kernel',
    params: [p('pasid', int(1, 0xfffff)), p('target', target)], valid: (w) => [5, w.ioas] },
  { call: 'VfioDevice.detachPasid', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', outcome: 'kernel',
    params: [p('pasid', int(1, 0xfffff))], valid: () => [5] },
  { call: 'VfioDevice.supportsPasidAttach', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', params: [], valid: () => [] },
  { call: 'VfioDevice.info', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', params: [], valid: () => [] },
  { call: 'VfioDevice.regionInfo', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', params: [p('index', u32)], valid: () => [0] },
  { call: 'VfioDevice.read', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws',
    params: [p('index', u32), p('offset', offset, { extra: [{ label: 'past the region', value: () => 0x10_0000, code: 'ERR_OUT_OF_RANGE' }] }),
      p('length', int(0, 2 ** 31 - 1), { extra: [{ label: 'past the region', value: () => 0x10_0001, code: 'ERR_OUT_OF_RANGE' }] })],
    valid: () => [0, 0, 4] },
  { call: 'VfioDevice.write', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws',
    params: [p('index', u32), p('offset', offset, { extra: [{ label: 'past the region', value: () => 0x10_0000, code: 'ERR_OUT_OF_RANGE' }] }), p('data', bytes, { accept: 'ok' })],
    valid: () => [0, EDU_LIVENESS, new Uint8Array(4)] },
  { call: 'VfioDevice.readConfig', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws',
    params: [p('offset', offset), opt('width', width)], valid: () => [PCI_COMMAND, 2] },
  { call: 'VfioDevice.writeConfig', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws',
    params: [p('offset', offset), p('value', int(0, U32, (args) => 2 ** (8 * ((args[2] as number | undefined) ?? 4)) - 1)), opt('width', width)],
    valid: (w) => [PCI_COMMAND, w.vfio.readConfig(PCI_COMMAND, 2), 2] },
  { call: 'VfioDevice.readBar', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws',
    params: [p('bar', int(0, 5)), p('offset', offset), opt('width', width)], valid: () => [0, 0, 4] },
  { call: 'VfioDevice.writeBar', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws',
    params: [p('bar', int(0, 5)), p('offset', offset), p('value', int(0, U32, (args) => 2 ** (8 * ((args[3] as number | undefined) ?? 4)) - 1)), opt('width', width)],
    valid: () => [0, EDU_LIVENESS, 0x1234, 4] },
  // edu has no reset method: EINVAL, the kernel's word.
  { call: 'VfioDevice.reset', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', params: [], valid: () => [], outcome: 'kernel' },
  { call: 'VfioDevice.hwInfo', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'throws', params: [], valid: () => [] },
  { call: 'VfioDevice.close', kind: 'method', receiver: 'vfio', runner: 'vtd', closed: 'ok', params: [], valid: () => [] },

  { call: 'decodeHwInfo', kind: 'function', runner: 'host', closed: 'none',
    params: [p('info', obj(p('info.type', u32), p('info.capabilities', u64), p('info.maxPasidLog2', u32), p('info.data', u8)))],
    valid: () => [{ type: 1, capabilities: 0n, maxPasidLog2: 0, data: new Uint8Array(24) }] },
  { call: 'decodeVtdHwInfo', kind: 'function', runner: 'host', closed: 'none', valid: () => [new Uint8Array(24)],
    params: [p('data', u8, { extra: [{ label: 'shorter than struct iommu_hw_info_vtd', value: () => new Uint8Array(23), code: 'ERR_OUT_OF_RANGE' }] })] },
  { call: 'pciCapabilities', kind: 'function', runner: 'host', closed: 'none', params: [p('config', u8)], valid: () => [new Uint8Array(256)] },
  { call: 'pciExtendedCapabilities', kind: 'function', runner: 'host', closed: 'none', params: [p('config', u8)], valid: () => [new Uint8Array(4096)] },
  { call: 'findPciDevices', kind: 'function', runner: 'vtd', closed: 'none', params: [p('vendor', int(0, 0xffff)), p('device', int(0, 0xffff))],
    valid: () => [0x1234, 0x11e8] },
  { call: 'pciDriver', kind: 'function', runner: 'vtd', closed: 'none', params: [p('address', { t: 'pciAddress' })], valid: (w) => [w.pci] },
  { call: 'readPciConfig', kind: 'function', runner: 'vtd', closed: 'none', params: [p('address', { t: 'pciAddress' })], valid: (w) => [w.pci] },
  { call: 'pciIommuFeatures', kind: 'function', runner: 'vtd', closed: 'none', params: [p('address', { t: 'pciAddress' })], valid: (w) => [w.pci] },
  { call: 'bindVfioPci', kind: 'function', runner: 'vtd', closed: 'none', params: [p('address', { t: 'pciAddress' })], valid: (w) => [w.pci] },
  // The vtd runner closes its device first (vfio-pci's unbind waits for every open fd) and binds it again after.
  { call: 'unbindVfioPci', kind: 'function', runner: 'vtd', closed: 'none', params: [p('address', { t: 'pciAddress' })], valid: (w) => [w.pci],
    after: (_driver, w) => bindVfioPci(w.pci) },

  // ---- core/ -------------------------------------------------------------------------------------
  { call: 'new IommufdError', kind: 'constructor', runner: 'host', params: [], closed: 'none',
    internal: 'an Error class: the library constructs it; a user may too, with any message and code' },

  // Constructors that are no public call: the objects are made by the calls named.
  ...([
    ['Iommufd', 'private: Iommufd.open()'], ['Ioas', '@internal: Iommufd.allocIoas()'], ['Hwpt', 'private: Iommufd.allocHwpt()'],
    ['Viommu', 'private: Iommufd.allocViommu()'], ['Vdevice', '@internal: Viommu.allocVdevice()'],
    ['FaultQueue', '@internal: Iommufd.allocFaultQueue()'], ['FaultGroup', '@internal: the queue delivers them'],
    ['FaultBatch', '@internal: the queue hands one to its handler'], ['FaultServer', '@internal: FaultQueue.serveInWorker()'],
    ['VeventQueue', '@internal: Viommu.allocVeventQueue()'], ['VeventBatch', '@internal: the queue hands one to its handler'],
    ['Vevent', '@internal: the queue delivers them'], ['VfioDevice', 'private: VfioDevice.open(), VfioDevice.openPci()'],
    ['MockDevice', 'private: MockDevice.create()'], ['IoasHandle', '@internal: Ioas.handle()'], ['IoasMapper', 'private: IoasMapper.open()'],
    ['DemandPager', 'private: DemandPager.start()'],
  ] as const).map(([cls, why]): CallSpec => ({ call: `new ${cls}`, kind: 'constructor', runner: 'host', params: [], closed: 'none', internal: why })),

  // ---- iommufd/testing -----------------------------------------------------------------------------
  { call: 'selftestHwptData', kind: 'function', runner: 'host', closed: 'none', params: [opt('iotlb', u32)], valid: () => [0xbadbeef] },
  { call: 'MockDevice.create', kind: 'static', runner: 'mock', closed: 'none',
    params: [p('iommufd', instance('Iommufd', true, false)), p('ptId', id)], valid: (w) => [w.iommufd, w.ioas.id] },
  { call: 'MockDevice.replace', kind: 'method', receiver: 'dev', runner: 'mock', closed: 'throws', params: [p('ptId', id)], valid: (w) => [w.ioas.id] },
  { call: 'MockDevice.triggerIopf', kind: 'method', receiver: 'dev', runner: 'mock', closed: 'throws',
    params: [opt('fault', obj(opt('fault.pasid', u32), opt('fault.groupId', u32), opt('fault.perm', u32), opt('fault.addr', u64))), opt('count', u32)],
    before: (w) => void w.queue, // the device on a fault-capable HWPT whose queue reads (and close() answers) the fault
    valid: () => [{ groupId: 3 }, 1] },
  // Without a selftest vEVENTQ on the device's vIOMMU the kernel refuses it (EOPNOTSUPP).
  { call: 'MockDevice.triggerVevent', kind: 'method', receiver: 'dev', runner: 'mock', closed: 'throws', params: [opt('count', u32)],
    valid: () => [1], outcome: 'kernel' },
  { call: 'MockDevice.destroy', kind: 'method', receiver: 'dev', runner: 'mock', closed: 'ok', params: [], before: (w) => w.dev.replace(w.ioas.id), valid: () => [] },
  ...getters('dev', 'mock', ['destroyed'], 'ok'),

  // VtdStage1Table: its tables live in an IOAS (any: no device needed to map them).
  { call: 'new VtdStage1Table', kind: 'constructor', runner: 'mock', closed: 'none',
    params: [p('ioas', instance('Ioas', true, false)), p('options', obj(
      p('options.iova', u64, { extra: [{ label: 'not 4 KiB aligned', value: () => 0x1001n, code: 'ERR_OUT_OF_RANGE' }] }),
      opt('options.pages', int(1, 65536))))],
    valid: (w) => [w.ioas, { iova: 0x1000_0000n, pages: 4 }], after: (t) => (t as VtdStage1Table).destroy() },
  ...['unmap', 'lookup'].map((name): CallSpec => ({
    call: `VtdStage1Table.${name}`, kind: 'method', receiver: 'stage1', runner: 'mock', closed: 'throws', params: [page('iova')], valid: () => [0x2000_0000n],
  })),
  { call: 'VtdStage1Table.map', kind: 'method', receiver: 'stage1', runner: 'mock', closed: 'throws',
    params: [page('iova'), page('output'), opt('options', obj(opt('options.writable', bool)))], valid: () => [0x2000_0000n, 0x3000_0000n, { writable: false }] },
  ...getters('stage1', 'mock', ['tablePages'], 'ok'),
  { call: 'VtdStage1Table.destroy', kind: 'method', receiver: 'stage1', runner: 'mock', closed: 'ok', params: [], valid: () => [] },

  // PriTestDevice: walked on the host over a VfioDevice-shaped fake (the checks come before any
  // device access; no device behaviour is claimed), and in the iopf guest against the device, its
  // jobs reading a page mapped at JOB.iova.
  { call: 'new PriTestDevice', kind: 'constructor', runner: 'pri', closed: 'none', params: [p('device', instance('VfioDevice', true, false))], valid: (w) => [w.vfio] },
  ...getters('pri', 'pri', ['version', 'finished', 'timeoutMs'], 'throws'),
  { call: 'PriTestDevice.timeoutMs', kind: 'setter', receiver: 'pri', runner: 'pri', closed: 'throws', params: [p('timeoutMs', u32)], valid: () => [100] },
  { call: 'PriTestDevice.start', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws',
    params: [p('slot', int(0, PRI_TESTDEV_SLOTS - 1)), job('job')], valid: () => [0, JOB] },
  { call: 'PriTestDevice.prepare', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws',
    params: [p('slot', int(0, PRI_TESTDEV_SLOTS - 1)), job('job')], valid: () => [0, JOB] },
  ...['go', 'status', 'result'].map((name): CallSpec => ({
    call: `PriTestDevice.${name}`, kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws', params: [p('slot', int(0, PRI_TESTDEV_SLOTS - 1))], valid: () => [0],
  })),
  { call: 'PriTestDevice.wait', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws', async: true,
    params: [p('slot', int(0, PRI_TESTDEV_SLOTS - 1)), waitOptions], before: (w) => w.pri.start(0, JOB), valid: () => [0, { timeoutMs: 10_000 }] },
  { call: 'PriTestDevice.run', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws', async: true,
    params: [p('slot', int(0, PRI_TESTDEV_SLOTS - 1)), job('job'), waitOptions], valid: () => [0, JOB, { timeoutMs: 10_000 }] },
  { call: 'PriTestDevice.acknowledge', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws', params: [opt('bits', int(0, 0xff))], valid: () => [0xff] },
  { call: 'PriTestDevice.counters', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws', params: [], valid: () => [] },
  { call: 'PriTestDevice.resetMaxOutstanding', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws', params: [], valid: () => [] },
  { call: 'PriTestDevice.readMemory', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws',
    params: [p('offset', int(0, PRI_TESTDEV_MEMORY)), p('length', int(0, PRI_TESTDEV_MEMORY, (args) => PRI_TESTDEV_MEMORY - (args[0] as number)))], valid: () => [4096, 64] },
  { call: 'PriTestDevice.writeMemory', kind: 'method', receiver: 'pri', runner: 'pri', closed: 'throws',
    params: [p('offset', int(0, PRI_TESTDEV_MEMORY)),
      p('bytes', bytes, { accept: 'ok', extra: [{ label: 'more bytes than the device memory has from offset', value: () => new Uint8Array(PRI_TESTDEV_MEMORY), code: 'ERR_OUT_OF_RANGE' }] })],
    valid: () => [4096, new Uint8Array(64)] },
];

/** The receivers whose closed state is an ended batch (ERR_IOMMUFD_BATCH_ENDED), not ERR_IOMMUFD_CLOSED. */
export const ENDED: readonly ReceiverKind[] = ['faultBatch', 'veventBatch'];

/** The constants the spec uses, for runners that need them. */
export const constants = { VEVENTQ_TYPE_ARM_SMMUV3 };
