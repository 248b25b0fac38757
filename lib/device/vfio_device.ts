// VfioDevice: a device bound to vfio-pci, through its VFIO cdev (/dev/vfio/devices/vfioN), bound to
// an iommufd and attached to an IOAS or HWPT. Its DMA then goes through that page table.
import { readdirSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { binding } from '../core/binding.js';
import {
  checkBytes, checkId, checkInstance, checkInteger, checkNumberOf, checkSameIommufd, checkString, checkU32, invalidArgType, outOfRange,
} from '../core/args.js';
import { closedError, ErrorCodes, IommufdError } from '../core/errors.js';
import { decodeHwInfo, type DecodedHwInfo } from './hw_info.js';
import { Hwpt } from '../objects/hwpt.js';
import { Ioas } from '../objects/ioas.js';
import { Iommufd } from '../objects/iommufd.js';
import { pciAddress } from './pci.js';
import { noPageFaults, stage1Lacks, stage1Refused } from './attach_errors.js';

/** VFIO_DEVICE_FLAGS_* (VfioDeviceInfo.flags) */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;

/** VFIO_REGION_INFO_FLAG_* (VfioRegionInfo.flags) */
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

/** vfio-pci's fixed region indexes: BARs 0-5 are 0-5. */
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;

/** Code of the error thrown by operations that need bind() first. */

export interface VfioDeviceInfo {
  /** VFIO_DEVICE_FLAGS_* */
  flags: number;
  numRegions: number;
  numIrqs: number;
}

export interface VfioRegionInfo {
  index: number;
  /** VFIO_REGION_INFO_FLAG_* */
  flags: number;
  size: bigint;
  /** Where the region starts in the device fd (for pread/pwrite/mmap). */
  offset: bigint;
}

/** What a device attaches to: an IOAS (the kernel makes or reuses a HWPT for it), a HWPT, or an id. */
export type AttachTarget = { readonly id: number } | number;

export type AccessWidth = 1 | 2 | 4;

const ATTACH = 'VFIO_DEVICE_ATTACH_IOMMUFD_PT';
const DETACH = 'VFIO_DEVICE_DETACH_IOMMUFD_PT';

export class VfioDevice {
  /** The cdev path it was opened from. */
  readonly path: string;
  /** Its PCI address ('0000:00:01.0') when it is a PCI device. */
  readonly pciAddress: string | undefined;
  #fd: number;
  #iommufd: Iommufd | undefined;
  #deviceId = 0;
  // What attach() last succeeded with: the attachment to re-establish after a failed replace.
  #attached: AttachTarget | undefined;
  #regions = new Map<number, VfioRegionInfo>();
  #pasidAttach: boolean | undefined;

  private constructor(path: string, fd: number, address: string | undefined) {
    this.path = path;
    this.#fd = fd;
    this.pciAddress = address;
  }

  /** Opens a VFIO cdev (/dev/vfio/devices/vfioN). Nothing but bind() works until it is bound. */
  static open(path: string): VfioDevice {
    checkString('VfioDevice.open', 'path', path);
    // sysfs links the cdev to its device; for PCI the device directory is named by its address.
    let address: string | undefined;
    try {
      address = basename(realpathSync(`/sys/class/vfio-dev/${basename(path)}/device`));
    } catch {
      address = undefined;
    }
    if (address !== undefined && !/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(address)) address = undefined;
    return new VfioDevice(path, binding.open(path), address);
  }

  /** Opens the VFIO cdev of the PCI device at `address` ('0000:00:01.0'); it must be on vfio-pci. */
  static openPci(address: string): VfioDevice {
    const op = 'VfioDevice.openPci';
    const dir = `/sys/bus/pci/devices/${pciAddress(address, op)}/vfio-dev`;
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => /^vfio\d+$/.test(n));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      names = [];
    }
    if (names.length !== 1) {
      throw new IommufdError(
        `ENOENT: ${op}: ${address} has no VFIO cdev (${dir}): bind it to vfio-pci (bindVfioPci) on a kernel with CONFIG_VFIO_DEVICE_CDEV`,
        'ENOENT', -2, 'open',
      );
    }
    return new VfioDevice(`/dev/vfio/devices/${names[0]}`, binding.open(`/dev/vfio/devices/${names[0]}`), address);
  }

  /** The device fd; throws once closed. */
  get fd(): number {
    return this.#fdFor('VfioDevice.fd');
  }

  #fdFor(call: string): number {
    if (this.#fd < 0) throw closedError(call, this.#name());
    return this.#fd;
  }

  get closed(): boolean { return this.#fd < 0; }

  /** The iommufd it is bound to, if any. */
  get iommufd(): Iommufd | undefined { return this.#iommufd; }

  /** Its iommufd device id (dev_id for HWPT_ALLOC and GET_HW_INFO); throws before bind(). */
  get deviceId(): number {
    this.#bound('VfioDevice.deviceId');
    return this.#deviceId;
  }

  /**
   * VFIO_DEVICE_BIND_IOMMUFD: makes the device usable and hands its DMA to the iommufd (blocked
   * until attached). Returns the device id. A device binds once; closing it unbinds.
   */
  bind(iommufd: Iommufd): number {
    const call = 'VfioDevice.bind';
    checkInstance(call, 'iommufd', iommufd, Iommufd, 'an Iommufd', (i) => i.closed);
    this.#deviceId = binding.vfioBindIommufd(this.#fdFor(call), iommufd.fd);
    this.#iommufd = iommufd;
    return this.#deviceId;
  }

  /**
   * VFIO_DEVICE_ATTACH_IOMMUFD_PT: routes the device's DMA (without PASID) through an IOAS or a
   * HWPT. Returns the id of the HWPT now in use (for an IOAS, the one the kernel made or reused).
   * On an attached device this replaces the HWPT without a window of blocked DMA.
   */
  attach(target: AttachTarget): number {
    return this.#attach('VfioDevice.attach', target);
  }

  #attach(call: string, target: AttachTarget): number {
    this.#bound(call);
    const ptId = this.#targetId(target, call);
    try {
      const hwptId = binding.vfioAttachPt(this.#fd, ptId);
      this.#attached = target;
      return hwptId;
    } catch (e) {
      throw this.#explainAttach(e, target);
    }
  }

  /** Moves an attached device to another IOAS or HWPT: the same ioctl as attach(). */
  replace(target: AttachTarget): number {
    return this.#attach('VfioDevice.replace', target);
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT: the device's DMA is blocked again. */
  detach(): void {
    this.#bound('VfioDevice.detach');
    binding.vfioDetachPt(this.#fd);
    this.#attached = undefined;
  }

  /**
   * Attaches one PASID of the device to an IOAS or HWPT (replacing its current one). Linux 6.15+;
   * older kernels refuse it with EINVAL, reported as "not supported by this kernel". A HWPT for
   * PASID use must be allocated with HWPT_ALLOC_PASID.
   */
  attachPasid(pasid: number, target: AttachTarget): number {
    const call = 'VfioDevice.attachPasid';
    this.#bound(call);
    checkPasid(pasid, call);
    const ptId = this.#targetId(target, call);
    try {
      return binding.vfioAttachPt(this.#fd, ptId, pasid);
    } catch (e) {
      throw this.#explainPasid(e, pasid, ATTACH, target);
    }
  }

  /** Detaches one PASID; the kernel ignores a PASID that is not attached. Linux 6.15+. */
  detachPasid(pasid: number): void {
    const call = 'VfioDevice.detachPasid';
    this.#bound(call);
    checkPasid(pasid, call);
    try {
      binding.vfioDetachPt(this.#fd, pasid);
    } catch (e) {
      throw this.#explainPasid(e, pasid, DETACH);
    }
  }

  /**
   * Whether this kernel and device driver take VFIO_DEVICE_ATTACH_PASID. Probed once by attaching
   * a PASID to object id 0, which never exists: a kernel that knows the flag looks the id up and
   * answers ENOENT (changing nothing); one that does not rejects the flag with EINVAL, and a driver
   * without PASID support answers EOPNOTSUPP (code 'ENOTSUP').
   */
  supportsPasidAttach(): boolean {
    this.#bound('VfioDevice.supportsPasidAttach');
    if (this.#pasidAttach === undefined) {
      try {
        binding.vfioAttachPt(this.#fd, 0, 1);
        this.#pasidAttach = true;
      } catch (e) {
        const code = (e as IommufdError).code;
        if (code !== 'ENOENT' && code !== 'EINVAL' && code !== 'ENOTSUP') throw e;
        this.#pasidAttach = code === 'ENOENT';
      }
    }
    return this.#pasidAttach;
  }

  /** VFIO_DEVICE_GET_INFO */
  info(): VfioDeviceInfo {
    return binding.vfioGetInfo(this.#fdFor('VfioDevice.info'));
  }

  /** VFIO_DEVICE_GET_REGION_INFO (cached: regions do not move while the device is open). */
  regionInfo(index: number): VfioRegionInfo {
    const call = 'VfioDevice.regionInfo';
    return this.#region(call, checkU32(call, 'index', index));
  }

  #region(call: string, index: number): VfioRegionInfo {
    const fd = this.#fdFor(call);
    let region = this.#regions.get(index);
    if (region === undefined) {
      region = { index, ...binding.vfioRegionInfo(fd, index) };
      this.#regions.set(index, region);
    }
    return region;
  }

  /** Reads `length` bytes at `offset` in a region (pread on the device fd). */
  read(index: number, offset: number, length: number): Uint8Array {
    const call = 'VfioDevice.read';
    return this.#read(call, checkU32(call, 'index', index), offset, length);
  }

  #read(call: string, index: number, offset: number, length: number): Uint8Array {
    checkInteger(call, 'length', length, 0, 2 ** 31 - 1);
    const at = this.#at(call, index, offset, length);
    const into = new Uint8Array(length);
    const n = binding.vfioRead(this.#fd, at, into);
    if (n !== length) throw shortAccess('pread', this.#name(), index, offset, n, length);
    return into;
  }

  /** Writes `data` (an ArrayBuffer, a SharedArrayBuffer or any view of one) at `offset` in a
   *  region (pwrite on the device fd). */
  write(index: number, offset: number, data: ArrayBuffer | SharedArrayBuffer | ArrayBufferView): void {
    const call = 'VfioDevice.write';
    checkU32(call, 'index', index);
    this.#write(call, index, offset, checkBytes(call, 'data', data));
  }

  #write(call: string, index: number, offset: number, data: Uint8Array): void {
    const at = this.#at(call, index, offset, data.length);
    const n = binding.vfioWrite(this.#fd, at, data);
    if (n !== data.length) throw shortAccess('pwrite', this.#name(), index, offset, n, data.length);
  }

  /** A little-endian value from PCI config space (as vfio-pci presents it). */
  readConfig(offset: number, width: AccessWidth = 4): number {
    const call = 'VfioDevice.readConfig';
    return getLE(this.#read(call, VFIO_PCI_CONFIG_REGION_INDEX, offset, checkWidth(width, call)), width);
  }

  writeConfig(offset: number, value: number, width: AccessWidth = 4): void {
    const call = 'VfioDevice.writeConfig';
    this.#write(call, VFIO_PCI_CONFIG_REGION_INDEX, offset, setLE(value, checkWidth(width, call), call));
  }

  /**
   * A register of a BAR, read with exactly one access of `width` bytes: vfio-pci turns an aligned
   * pread of 1, 2 or 4 bytes into one device access of that size, as MMIO registers require.
   */
  readBar(bar: number, offset: number, width: AccessWidth = 4): number {
    const call = 'VfioDevice.readBar';
    return getLE(this.#read(call, checkBar(bar, call), offset, checkWidth(width, call)), width);
  }

  writeBar(bar: number, offset: number, value: number, width: AccessWidth = 4): void {
    const call = 'VfioDevice.writeBar';
    checkBar(bar, call);
    this.#write(call, bar, offset, setLE(value, checkWidth(width, call), call));
  }

  /** VFIO_DEVICE_RESET; EINVAL when the device has no reset method (no VFIO_DEVICE_FLAGS_RESET). */
  reset(): void {
    binding.vfioReset(this.#fdFor('VfioDevice.reset'));
  }

  /** IOMMU_GET_HW_INFO for this device, decoded. */
  hwInfo(): DecodedHwInfo {
    const call = 'VfioDevice.hwInfo';
    this.#bound(call);
    if (this.#iommufd!.closed) throw closedError(call, `the iommufd ${this.#name()} is bound to`);
    return decodeHwInfo(this.#iommufd!.getHwInfo(this.#deviceId));
  }

  /**
   * Closes the device fd. The kernel detaches every PASID and the device, then unbinds it from the
   * iommufd, so HWPTs it was attached to can be destroyed afterwards. Close devices before their
   * iommufd (`using` after `await using iommufd` does). Safe to call twice.
   */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#iommufd = undefined;
    this.#attached = undefined;
    binding.close(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #name(): string {
    return this.pciAddress === undefined ? this.path : `${this.pciAddress} (${this.path})`;
  }

  #bound(call: string): void {
    if (this.#fd < 0) throw closedError(call, this.#name());
    if (this.#iommufd === undefined) {
      throw new IommufdError(`${call}: ${this.#name()} is not bound to an iommufd; call bind() first`, ErrorCodes.NOT_BOUND);
    }
  }

  // Where `length` bytes at `offset` of region `index` are in the device fd; they must fit the region.
  #at(call: string, index: number, offset: number, length: number): bigint {
    checkInteger(call, 'offset', offset, 0, Number.MAX_SAFE_INTEGER);
    const region = this.#region(call, index);
    if (BigInt(offset) + BigInt(length) > region.size) {
      const size = Number(region.size);
      const where = `region ${index} of ${this.#name()} has ${size} bytes`;
      if (offset >= size) throw outOfRange(call, 'offset', `below ${size} (${where})`, offset);
      throw outOfRange(call, 'length', `at most ${size - offset} at offset ${offset} (${where})`, length);
    }
    return region.offset + BigInt(offset);
  }

  /** The target's object id; an IOAS or HWPT of another iommufd would name some other object here. */
  #targetId(target: AttachTarget, call: string): number {
    if (target instanceof Hwpt || target instanceof Ioas) {
      if (target.destroyed || target.iommufd.closed) throw closedError(call, `target (${target instanceof Hwpt ? 'HWPT' : 'IOAS'} ${target.id})`);
      checkSameIommufd(call, 'target', target, this.#iommufd, 'an IOAS or HWPT of the iommufd the device is bound to');
    }
    return idOf(target, call);
  }

  // ENODEV on attaching a fault-capable HWPT: the IOMMU driver could not turn on page requests for
  // the device. EINVAL on attaching a VT-d stage-1 HWPT: the IOMMU lacks what its stage-1 data asks
  // for. Say which side lacks what, from the device's config space and the IOMMU's caps.
  // intel-iommu blocks the device's translation before it finds either out and the core does not
  // undo it, so a replace that fails this way leaves DMA blocked while the kernel still reports the
  // old attachment (attaching that again is a no-op): detach and attach again to restore it.
  #explainAttach(e: unknown, target: AttachTarget): unknown {
    if (!(e instanceof IommufdError) || !(target instanceof Hwpt)) return e;
    const vtd = () => this.hwInfo().vtd;
    if (e.code === 'ENODEV' && target.faultQueue) {
      return new IommufdError(`ENODEV: ${ATTACH}: ${this.#name()} cannot take I/O page faults, so the fault-capable HWPT ` +
        `${target.id} cannot be attached: ${noPageFaults(this.pciAddress, vtd)}${this.#restore()}`, 'ENODEV', e.errno, e.syscall);
    }
    if (e.code === 'EINVAL' && target.stage1) {
      return new IommufdError(`EINVAL: ${ATTACH}: the IOMMU refused ${this.#name()} on the VT-d stage-1 HWPT ${target.id}: ` +
        `${stage1Refused(target.stage1, vtd)}${this.#restore()}`, 'EINVAL', e.errno, e.syscall);
    }
    return e;
  }

  #restore(): string {
    const previous = this.#attached;
    if (previous === undefined) return '';
    const what = `${previous instanceof Hwpt ? 'HWPT' : previous instanceof Ioas ? 'IOAS' : 'object'} ${idOf(previous, 'attach')}`;
    try {
      binding.vfioDetachPt(this.fd);
      binding.vfioAttachPt(this.fd, idOf(previous, 'attach'));
      return `. The kernel had blocked the device's DMA on the way; it is attached to ${what} again`;
    } catch (r) {
      this.#attached = undefined;
      return `. The kernel had blocked the device's DMA on the way, and re-attaching it to ${what} failed (${(r as Error).message}): it stays detached`;
    }
  }

  // EINVAL or EOPNOTSUPP on a PASID attach or detach: a kernel or VFIO driver without PASID
  // attach says so that way; a kernel with it refuses an attach with EINVAL when the HWPTs
  // involved were not made for PASIDs. Say which, and the rule.
  #explainPasid(e: unknown, pasid: number, ioctl: string, target?: AttachTarget): unknown {
    if (!(e instanceof IommufdError) || (e.code !== 'EINVAL' && e.code !== 'ENOTSUP')) return e;
    let why: string;
    if (!this.supportsPasidAttach()) {
      why = e.code === 'EINVAL'
        ? 'PASID attach is not supported by this kernel (it has no VFIO_DEVICE_ATTACH_PASID; Linux 6.15+ has)'
        : `PASID attach is not supported by ${this.#name()}'s VFIO driver`;
    } else if (e.code === 'EINVAL' && target instanceof Hwpt && target.stage1 && stage1Lacks(target.stage1, () => this.hwInfo().vtd).length) {
      why = `the IOMMU refused PASID ${pasid} of ${this.#name()} on the VT-d stage-1 HWPT ${target.id}: ${stage1Refused(target.stage1, () => this.hwInfo().vtd)}`;
    } else if (e.code === 'EINVAL' && target !== undefined) {
      const rid = this.#attached;
      const ridIs = rid === undefined ? 'it is not attached'
        : rid instanceof Ioas ? `it is attached to IOAS ${rid.id}, whose HWPT the kernel made without HWPT_ALLOC_PASID`
          : `it is attached to ${describeTarget(rid)}`;
      why = `the kernel refused to attach PASID ${pasid} of ${this.#name()} to ${describeTarget(target)}: a PASID attach needs the ` +
        `device's own (RID) attachment to be a PASID-capable HWPT, allocated with HWPT_ALLOC_PASID (${ridIs}), and a ` +
        'PASID-capable HWPT as its target as well; allocate one with HWPT_ALLOC_PASID, replace() the device onto it, then ' +
        'attach the PASID. The IOMMU driver may refuse a PASID attach of its own accord too';
    } else return e;
    return new IommufdError(`${e.code}: ${ioctl} (pasid ${pasid}): ${why}`, e.code, e.errno, e.syscall);
  }
}

function describeTarget(target: AttachTarget): string {
  const what = target instanceof Hwpt ? 'HWPT' : target instanceof Ioas ? 'IOAS' : 'object';
  return `${what} ${typeof target === 'number' ? target : target?.id}`;
}

function idOf(target: AttachTarget, call: string): number {
  if (typeof target === 'number') return checkId(call, 'target', target);
  if (typeof target !== 'object' || target === null) throw invalidArgType(call, 'target', 'an Ioas, a Hwpt or an object id', target);
  return checkId(call, 'target.id', target.id);
}

function checkPasid(pasid: number, call: string): void {
  // PASID 0 is the device's own DMA (IOMMU_NO_PASID): that is attach(). PCIe PASIDs have 20 bits.
  checkInteger(call, 'pasid', pasid, 1, 0xfffff);
}

function checkBar(bar: number, call: string): number {
  return checkInteger(call, 'bar', bar, 0, 5);
}

function checkWidth(width: number, call: string): AccessWidth {
  return checkNumberOf(call, 'width', width, [1, 2, 4] as const);
}

function getLE(bytes: Uint8Array, width: AccessWidth): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return width === 1 ? view.getUint8(0) : width === 2 ? view.getUint16(0, true) : view.getUint32(0, true);
}

function setLE(value: number, width: AccessWidth, call: string): Uint8Array {
  checkInteger(call, 'value', value, 0, 2 ** (8 * width) - 1);
  const bytes = new Uint8Array(width);
  const view = new DataView(bytes.buffer);
  if (width === 1) view.setUint8(0, value);
  else if (width === 2) view.setUint16(0, value, true);
  else view.setUint32(0, value, true);
  return bytes;
}

function shortAccess(syscall: string, name: string, index: number, offset: number, done: number, wanted: number): IommufdError {
  return new IommufdError(`EIO: ${syscall}: ${name} region ${index} at ${offset}: ${done} of ${wanted} bytes`, 'EIO', -5, syscall);
}
