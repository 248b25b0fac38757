// PCI devices through sysfs: binding one to vfio-pci, and the capabilities in its config space that
// decide what the IOMMU can do with it (ATS, PRI and PASID are what I/O page faults need).
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { basename } from 'node:path';
import { checkInteger, checkUint8Array, invalidArgType, invalidArgValue } from '../core/args.js';
import { ErrorCodes, IommufdError } from '../core/errors.js';

const SYSFS = '/sys/bus/pci';

/** Standard capability IDs (PCI_CAP_ID_*). */
export const PCI_CAP_ID_PM = 0x01;
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;

/** Extended capability IDs (PCI_EXT_CAP_ID_*), in PCIe extended config space (0x100 up). */
export const PCI_EXT_CAP_ID_ATS = 0x0f;
export const PCI_EXT_CAP_ID_PRI = 0x13;
export const PCI_EXT_CAP_ID_PASID = 0x1b;

/** Code of the error bindVfioPci throws when the device did not end up on vfio-pci. */

export interface PciCapability {
  id: number;
  /** Offset of the capability header in config space. */
  offset: number;
}

export interface PciExtendedCapability extends PciCapability {
  version: number;
}

export interface PciIommuFeatures {
  /** Has a PCI Express capability; without it there is no extended config space. */
  express: boolean;
  /** Address Translation Services: the device may cache translations (needed for PRI). */
  ats: boolean;
  /** Page Request Interface: the device can raise I/O page faults. */
  pri: boolean;
  /** Process Address Space ID: the device can tag DMA with a PASID. */
  pasid: boolean;
}

const ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** Checks a PCI address in sysfs form ('0000:00:01.0') and returns it. */
export function pciAddress(address: string, call: string): string {
  if (typeof address !== 'string') throw invalidArgType(call, 'address', "a PCI address string ('0000:00:01.0')", address);
  if (!ADDRESS.test(address)) throw invalidArgValue(call, 'address', "a PCI address in sysfs form, domain included, lower case ('0000:00:01.0')", address);
  return address;
}

/** PCI addresses of the devices with this vendor and device ID. */
export function findPciDevices(vendor: number, device: number): string[] {
  checkInteger('findPciDevices', 'vendor', vendor, 0, 0xffff);
  checkInteger('findPciDevices', 'device', device, 0, 0xffff);
  const hex = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
  return readdirSync(`${SYSFS}/devices`).filter((address) => {
    const dir = `${SYSFS}/devices/${address}`;
    return readFileSync(`${dir}/vendor`, 'utf8').trim() === hex(vendor) && readFileSync(`${dir}/device`, 'utf8').trim() === hex(device);
  });
}

/** The device's sysfs directory; a well-formed address with no device is a typed ENOENT. */
function deviceDir(address: string, op: string): string {
  const dir = `${SYSFS}/devices/${pciAddress(address, op)}`;
  if (!existsSync(dir)) {
    throw new IommufdError(`ENOENT: ${op}: no PCI device ${address} (${dir} does not exist)`, 'ENOENT', -constants.errno.ENOENT, 'open');
  }
  return dir;
}

/** The driver bound to the device, if any. */
export function pciDriver(address: string): string | undefined {
  const link = `${SYSFS}/devices/${pciAddress(address, 'pciDriver')}/driver`;
  return existsSync(link) ? basename(readlinkSync(link)) : undefined;
}

/**
 * Binds the device to vfio-pci: sets driver_override, unbinds the current driver and asks the
 * bus to probe again. Needs root. Returns the driver it was bound to before (undefined if none).
 * A device already on vfio-pci is left alone.
 */
export function bindVfioPci(address: string): string | undefined {
  const op = 'bindVfioPci';
  const dir = deviceDir(address, op);
  const previous = pciDriver(address);
  if (previous === 'vfio-pci') return previous;
  // driver_override first: once unbound, nothing else may grab the device before vfio-pci does.
  writeFileSync(`${dir}/driver_override`, 'vfio-pci');
  if (previous !== undefined) writeFileSync(`${dir}/driver/unbind`, address);
  writeFileSync(`${SYSFS}/drivers_probe`, address);
  const now = pciDriver(address);
  if (now !== 'vfio-pci') {
    throw new IommufdError(
      `${op}: ${address} is bound to ${now ?? 'no driver'} after probing, not vfio-pci (is CONFIG_VFIO_PCI built in or loaded?)`,
      ErrorCodes.PCI_BIND,
    );
  }
  return previous;
}

/**
 * Undoes bindVfioPci: clears driver_override, unbinds the device from vfio-pci and asks the bus to
 * probe again, so the device's own driver (if the kernel has one) takes it. Returns that driver.
 */
export function unbindVfioPci(address: string): string | undefined {
  const dir = deviceDir(address, 'unbindVfioPci');
  // An empty line clears the override; without it the device would go back to vfio-pci.
  writeFileSync(`${dir}/driver_override`, '\n');
  if (pciDriver(address) === 'vfio-pci') writeFileSync(`${dir}/driver/unbind`, address);
  writeFileSync(`${SYSFS}/drivers_probe`, address);
  return pciDriver(address);
}

/**
 * The device's config space from sysfs: 4096 bytes for a PCI Express device, 256 for a
 * conventional one. Without root the kernel gives only the first 64 bytes.
 */
export function readPciConfig(address: string): Uint8Array {
  return new Uint8Array(readFileSync(`${deviceDir(address, 'readPciConfig')}/config`));
}

const PCI_STATUS = 0x06;
const PCI_STATUS_CAP_LIST = 0x10;
const PCI_CAPABILITY_LIST = 0x34;
const PCI_CFG_SPACE_SIZE = 256;

/** The standard capability list (from offset 0x34), in list order. */
export function pciCapabilities(config: Uint8Array): PciCapability[] {
  checkUint8Array('pciCapabilities', 'config', config);
  const caps: PciCapability[] = [];
  if (config.length < 64 || !(config[PCI_STATUS] & PCI_STATUS_CAP_LIST)) return caps;
  // Pointers are dword aligned (low two bits reserved); 48 entries is the most 256 bytes can hold,
  // so a looping list from a broken device cannot hang us.
  for (let at = config[PCI_CAPABILITY_LIST] & ~3; at >= 0x40 && at + 1 < config.length && caps.length < 48; at = config[at + 1] & ~3) {
    caps.push({ id: config[at], offset: at });
  }
  return caps;
}

/** The extended capability list (from offset 0x100); empty for config space of 256 bytes or less. */
export function pciExtendedCapabilities(config: Uint8Array): PciExtendedCapability[] {
  checkUint8Array('pciExtendedCapabilities', 'config', config);
  const caps: PciExtendedCapability[] = [];
  if (config.length <= PCI_CFG_SPACE_SIZE) return caps;
  const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
  // Header: id in bits 0-15, version 16-19, next offset 20-31. An all-zero or all-ones header at
  // 0x100 means there is no list.
  for (let at = PCI_CFG_SPACE_SIZE; at >= PCI_CFG_SPACE_SIZE && at + 4 <= config.length && caps.length < 960; ) {
    const header = view.getUint32(at, true);
    if (header === 0 || header === 0xffffffff) break;
    caps.push({ id: header & 0xffff, version: (header >>> 16) & 0xf, offset: at });
    at = (header >>> 20) & ~3;
  }
  return caps;
}

/** Whether the device has the capabilities the IOMMU needs for translation caching, page requests and PASIDs. */
export function pciIommuFeatures(address: string): PciIommuFeatures {
  const config = new Uint8Array(readFileSync(`${deviceDir(address, 'pciIommuFeatures')}/config`));
  // Below 64 bytes there is not even a capability pointer; at 64 the rest was withheld (no root).
  if (config.length <= 64) {
    throw new IommufdError(`EACCES: pciIommuFeatures: only ${config.length} bytes of ${address}'s config space are readable (root is needed for the rest)`, 'EACCES', -constants.errno.EACCES, 'read');
  }
  const ext = new Set(pciExtendedCapabilities(config).map((c) => c.id));
  return {
    express: pciCapabilities(config).some((c) => c.id === PCI_CAP_ID_EXP),
    ats: ext.has(PCI_EXT_CAP_ID_ATS),
    pri: ext.has(PCI_EXT_CAP_ID_PRI),
    pasid: ext.has(PCI_EXT_CAP_ID_PASID),
  };
}
