// A driver for the rig's PRI test device (iommufd-pri-testdev, 1234:11e9; its QEMU source is
// scripts/qemu/hw/iommufd-pri-testdev.c): a PCIe DMA engine with PASID, ATS and PRI that sends
// page requests for the pages it finds missing, through the emulated intel-iommu to the kernel
// and on to a FaultQueue, and retries when answered. Everything goes through the VFIO device's
// region reads and writes: no mmap, no interrupts (completion is polled).
import {
  checkBytes, checkInteger, checkOptions, checkU32, checkU64, invalidArgType, invalidArgValue, optionalBoolean, optionalInteger,
  outOfRange,
} from '../core/args.js';
import { closedError } from '../core/errors.js';
import { VfioDevice } from '../device/vfio_device.js';

export const PRI_TESTDEV_VENDOR_ID = 0x1234;
export const PRI_TESTDEV_DEVICE_ID = 0x11e9;
/** Job slots: jobs that can run, and fault, at once. */
export const PRI_TESTDEV_SLOTS = 8;
/** Bytes of device memory (BAR2) that jobs copy from or into. */
export const PRI_TESTDEV_MEMORY = 256 * 1024;

const REG_ID = 0x000;
const REG_IRQ_STATUS = 0x008;
const REG_TIMEOUT_MS = 0x00c;
const REG_PR_SENT = 0x010;
const REG_PR_RESP = 0x014;
const REG_OUTSTANDING = 0x018;
const REG_MAX_OUTSTANDING = 0x01c;
const REG_PRQ_FULL = 0x020;
const REG_STALE = 0x024;
const REG_PRI_ALLOC = 0x028;
const SLOT_BASE = 0x100;
const SLOT_SIZE = 0x40;
const S_IOVA = 0x00;
const S_BUF_OFFSET = 0x08;
const S_LEN = 0x0c;
const S_FLAGS = 0x10;
const S_PASID = 0x14;
const S_GO = 0x18;
const S_STATUS = 0x1c;
const S_ERROR = 0x20;
const S_PR_SENT = 0x24;
const S_PR_RESP = 0x28;
const S_DONE = 0x2c;
const S_FAULT_ADDR = 0x30;
const S_RESP_CODE = 0x38;
const S_PRGI = 0x3c;
const FLAG_WRITE = 1;
const FLAG_GROUP = 2;
const BAR_REGS = 0;
const BAR_MEMORY = 2;
const PCI_COMMAND = 0x04;
const PCI_COMMAND_MASTER = 0x4;

export type PriJobStatus = 'idle' | 'running' | 'waiting' | 'done' | 'error';
const STATUS: PriJobStatus[] = ['idle', 'running', 'waiting', 'done', 'error'];

/** The device's ERROR register. 0x100 | errno: the IOMMU refused the page request. */
export const PriTestdevError = {
  NONE: 0,
  /** The page group response was INVALID. */
  INVALID: 1,
  /** The page group response was FAILURE (a PRI response iommufd does not send). */
  FAILURE: 2,
  /** The page was still not there after a SUCCESS response. */
  STILL_MISSING: 3,
  /** No response (or no free request credit) within the device's timeout. */
  TIMEOUT: 4,
  BAD_JOB: 5,
  DMA: 6,
  /** PRI, ATS or PASID was turned off, or the device was reset, under the job. */
  OFF: 7,
  /** The IOMMU failed the translation request outright (QEMU's -EFAULT: a second-stage fault
   *  under nested translation, recorded as a non-recoverable DMA fault): no page request. */
  TRANSLATION_FAULT: 8,
} as const;

export interface PriJob {
  /** Where the device reads or writes, in the address space of `pasid`. */
  iova: bigint;
  /** Offset into the device memory (BAR2). */
  offset: number;
  length: number;
  /** true: device memory -> IOVA (a DMA write); false: IOVA -> device memory. */
  write?: boolean;
  /** The PASID the device tags requests with; 0 (default) is the RID's domain. */
  pasid?: number;
  /** On a miss, request all missing pages of the rest of the job in one page request group. */
  group?: boolean;
}

export interface PriJobResult {
  status: PriJobStatus;
  /** PriTestdevError value. */
  error: number;
  /** Bytes copied. */
  done: number;
  /** Page requests this job sent, and responses it saw. */
  pageRequests: number;
  responses: number;
  /** The last page it requested. */
  faultAddress: bigint;
  /** The last response's code: 0 success, 1 invalid, 2 failure. */
  responseCode: number;
  /** The last page request group index it used. */
  prgi: number;
}

export interface PriTestdevCounters {
  pageRequests: number;
  responses: number;
  /** Page requests awaiting a response now, and the most ever at once. */
  outstanding: number;
  maxOutstanding: number;
  /** Requests the IOMMU refused because its page request queue was full (the device retried). */
  queueFull: number;
  /** Responses that matched no waiting job. */
  stale: number;
  /** Outstanding page requests the OS allocated to the device (PRI capability). */
  priAlloc: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Drives one PRI test device opened through VFIO (bound to an iommufd and attached by the caller). */
export class PriTestDevice {
  readonly device: VfioDevice;

  constructor(device: VfioDevice) {
    const call = 'new PriTestDevice';
    if (!(device instanceof VfioDevice)) throw invalidArgType(call, 'device', 'a VfioDevice', device);
    if (device.closed) throw closedError(call, 'device (VfioDevice)');
    this.device = device;
    const id = device.readBar(BAR_REGS, REG_ID);
    if ((id & 0xffff) !== PRI_TESTDEV_DEVICE_ID) {
      const error = invalidArgValue(call, 'device', `an iommufd-pri-testdev (${PRI_TESTDEV_VENDOR_ID.toString(16)}:${PRI_TESTDEV_DEVICE_ID.toString(16)})`, device);
      error.message += ` (${device.pciAddress ?? device.path}: ID register 0x${id.toString(16)})`;
      throw error;
    }
    // vfio-pci turns bus mastering off whenever the device is opened or closed; DMA needs it.
    device.writeConfig(PCI_COMMAND, device.readConfig(PCI_COMMAND, 2) | PCI_COMMAND_MASTER, 2);
  }

  /** Device version (ID register bits 16-31). */
  get version(): number { return this.#dev('PriTestDevice.version').readBar(BAR_REGS, REG_ID) >>> 16; }

  /** How long the device waits for a response or a request credit before it fails the job. */
  get timeoutMs(): number { return this.#dev('PriTestDevice.timeoutMs').readBar(BAR_REGS, REG_TIMEOUT_MS); }
  set timeoutMs(ms: number) {
    const call = 'PriTestDevice.timeoutMs';
    checkU32(call, 'timeoutMs', ms);
    this.#dev(call).writeBar(BAR_REGS, REG_TIMEOUT_MS, ms);
  }

  // The VFIO device, for a call that needs it open.
  #dev(call: string): VfioDevice {
    if (this.device.closed) throw closedError(call, 'its VFIO device');
    return this.device;
  }

  /** Starts `job` in `slot` (0-7): prepare() then go(). The slot must not be running. */
  start(slot: number, job: PriJob): void {
    this.#prepare('PriTestDevice.start', slot, job);
    this.#dev('PriTestDevice.start').writeBar(BAR_REGS, slotBase(slot, 'PriTestDevice.start') + S_GO, 1);
  }

  /**
   * Writes `job` into the slot's registers without starting it (the slot must not be running).
   * The fields are checked against their registers' widths; whether the job fits the device
   * memory and the PASID width is the device's word (ERROR 5, a bad job).
   */
  prepare(slot: number, job: PriJob): void {
    this.#prepare('PriTestDevice.prepare', slot, job);
  }

  #prepare(call: string, slot: number, job: PriJob): void {
    const base = slotBase(slot, call);
    const o = checkOptions<PriJob>(call, job, false, 'job');
    const iova = checkU64(call, 'job.iova', o.iova);
    const offset = checkU32(call, 'job.offset', o.offset);
    const length = checkU32(call, 'job.length', o.length);
    const write = optionalBoolean(call, 'job.write', o.write);
    const pasid = optionalInteger(call, 'job.pasid', o.pasid, 0, 2 ** 32 - 1) ?? 0;
    const group = optionalBoolean(call, 'job.group', o.group);
    const dev = this.#dev(call);
    dev.writeBar(BAR_REGS, base + S_IOVA, Number(iova & 0xffffffffn));
    dev.writeBar(BAR_REGS, base + S_IOVA + 4, Number(iova >> 32n));
    dev.writeBar(BAR_REGS, base + S_BUF_OFFSET, offset);
    dev.writeBar(BAR_REGS, base + S_LEN, length);
    dev.writeBar(BAR_REGS, base + S_FLAGS, (write ? FLAG_WRITE : 0) | (group ? FLAG_GROUP : 0));
    dev.writeBar(BAR_REGS, base + S_PASID, pasid);
  }

  /** Starts the job last prepared in `slot` (one register write). */
  go(slot: number): void {
    const call = 'PriTestDevice.go';
    this.#dev(call).writeBar(BAR_REGS, slotBase(slot, call) + S_GO, 1);
  }

  status(slot: number): PriJobStatus {
    const call = 'PriTestDevice.status';
    return STATUS[this.#dev(call).readBar(BAR_REGS, slotBase(slot, call) + S_STATUS)] ?? 'error';
  }

  result(slot: number): PriJobResult {
    const call = 'PriTestDevice.result';
    const base = slotBase(slot, call);
    const dev = this.#dev(call);
    const r = (off: number) => dev.readBar(BAR_REGS, base + off);
    return {
      status: STATUS[r(S_STATUS)] ?? 'error',
      error: r(S_ERROR),
      done: r(S_DONE),
      pageRequests: r(S_PR_SENT),
      responses: r(S_PR_RESP),
      faultAddress: BigInt(r(S_FAULT_ADDR)) | (BigInt(r(S_FAULT_ADDR + 4)) << 32n),
      responseCode: r(S_RESP_CODE),
      prgi: r(S_PRGI),
    };
  }

  /**
   * Resolves with the slot's result once it is done or failed. It polls on timers, so the event
   * loop (and the fault handler on it) keeps running. Rejects after `timeoutMs`.
   */
  async wait(slot: number, options?: { timeoutMs?: number; intervalMs?: number }): Promise<PriJobResult> {
    const call = 'PriTestDevice.wait';
    slotBase(slot, call);
    const o = checkOptions<{ timeoutMs?: number; intervalMs?: number }>(call, options, true);
    const timeoutMs = optionalInteger(call, 'options.timeoutMs', o.timeoutMs, 0, 2 ** 31 - 1) ?? 30_000;
    const intervalMs = optionalInteger(call, 'options.intervalMs', o.intervalMs, 0, 2 ** 31 - 1) ?? 1;
    this.#dev(call);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = this.status(slot);
      if (s === 'done' || s === 'error') return this.result(slot);
      if (Date.now() > end) throw new Error(`PriTestDevice: slot ${slot} still ${s} after ${timeoutMs} ms`);
      await sleep(intervalMs);
    }
  }

  /** Runs `job` in `slot` and waits for it. */
  async run(slot: number, job: PriJob, options?: { timeoutMs?: number; intervalMs?: number }): Promise<PriJobResult> {
    const call = 'PriTestDevice.run';
    // Checked before the job starts: a bad option must not leave a job running unwaited for.
    const o = checkOptions<{ timeoutMs?: number; intervalMs?: number }>(call, options, true);
    optionalInteger(call, 'options.timeoutMs', o.timeoutMs, 0, 2 ** 31 - 1);
    optionalInteger(call, 'options.intervalMs', o.intervalMs, 0, 2 ** 31 - 1);
    this.#prepare(call, slot, job);
    this.#dev(call).writeBar(BAR_REGS, slotBase(slot, call) + S_GO, 1);
    return this.wait(slot, options);
  }

  /** Acknowledges finished slots (IRQ_STATUS bits, one per slot). */
  get finished(): number { return this.#dev('PriTestDevice.finished').readBar(BAR_REGS, REG_IRQ_STATUS); }
  acknowledge(bits = 0xff): void {
    const call = 'PriTestDevice.acknowledge';
    checkInteger(call, 'bits', bits, 0, 0xff);
    this.#dev(call).writeBar(BAR_REGS, REG_IRQ_STATUS, bits);
  }

  counters(): PriTestdevCounters {
    const dev = this.#dev('PriTestDevice.counters');
    const r = (off: number) => dev.readBar(BAR_REGS, off);
    return {
      pageRequests: r(REG_PR_SENT),
      responses: r(REG_PR_RESP),
      outstanding: r(REG_OUTSTANDING),
      maxOutstanding: r(REG_MAX_OUTSTANDING),
      queueFull: r(REG_PRQ_FULL),
      stale: r(REG_STALE),
      priAlloc: r(REG_PRI_ALLOC),
    };
  }

  resetMaxOutstanding(): void { this.#dev('PriTestDevice.resetMaxOutstanding').writeBar(BAR_REGS, REG_MAX_OUTSTANDING, 0); }

  /** `length` bytes of the device memory (BAR2) at `offset`. */
  readMemory(offset: number, length: number): Uint8Array {
    const call = 'PriTestDevice.readMemory';
    checkInteger(call, 'offset', offset, 0, PRI_TESTDEV_MEMORY);
    checkInteger(call, 'length', length, 0, PRI_TESTDEV_MEMORY - offset);
    return this.#dev(call).read(BAR_MEMORY, offset, length);
  }

  /** Writes `bytes` (an ArrayBuffer, a SharedArrayBuffer or any view of one) into the device memory at `offset`. */
  writeMemory(offset: number, bytes: ArrayBuffer | SharedArrayBuffer | ArrayBufferView): void {
    const call = 'PriTestDevice.writeMemory';
    checkInteger(call, 'offset', offset, 0, PRI_TESTDEV_MEMORY);
    const data = checkBytes(call, 'bytes', bytes);
    if (data.byteLength > PRI_TESTDEV_MEMORY - offset) {
      throw outOfRange(call, 'bytes.byteLength', `at most ${PRI_TESTDEV_MEMORY - offset} (the ${PRI_TESTDEV_MEMORY}-byte device memory from offset ${offset})`, data.byteLength);
    }
    this.#dev(call).write(BAR_MEMORY, offset, data);
  }
}

function slotBase(slot: number, call: string): number {
  return SLOT_BASE + checkInteger(call, 'slot', slot, 0, PRI_TESTDEV_SLOTS - 1) * SLOT_SIZE;
}
