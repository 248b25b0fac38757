// PCI capability parsing on synthetic config space: the rig's edu device is conventional PCI with
// no extended capabilities, so the PCIe (ATS/PRI/PASID) walk is proven here byte for byte.
import { describe, expect, it } from 'vitest';
import {
  PCI_CAP_ID_EXP, PCI_CAP_ID_MSI, PCI_EXT_CAP_ID_ATS, PCI_EXT_CAP_ID_PASID, PCI_EXT_CAP_ID_PRI, pciCapabilities,
  pciExtendedCapabilities,
} from '../../lib/device/pci.js';

/** A config space with a standard list and (for PCIe) an extended list, each [id, offset] in order. */
function config(std: [number, number][], ext: [number, number][] = [], size = ext.length ? 4096 : 256): Uint8Array {
  const c = new Uint8Array(size);
  const v = new DataView(c.buffer);
  if (std.length) {
    c[0x06] = 0x10; // PCI_STATUS_CAP_LIST
    c[0x34] = std[0][1];
    std.forEach(([id, at], i) => {
      c[at] = id;
      c[at + 1] = std[i + 1]?.[1] ?? 0;
    });
  }
  ext.forEach(([id, at], i) => v.setUint32(at, id | (1 << 16) | ((ext[i + 1]?.[1] ?? 0) << 20), true));
  return c;
}

describe('pciCapabilities', () => {
  it('walks the standard list in order', () => {
    expect(pciCapabilities(config([[PCI_CAP_ID_MSI, 0x40], [PCI_CAP_ID_EXP, 0x60]]))).toEqual([
      { id: PCI_CAP_ID_MSI, offset: 0x40 }, { id: PCI_CAP_ID_EXP, offset: 0x60 },
    ]);
  });

  it('is empty without the capability-list status bit', () => {
    const c = config([[PCI_CAP_ID_MSI, 0x40]]);
    c[0x06] = 0;
    expect(pciCapabilities(c)).toEqual([]);
  });

  it('stops on a list that loops back on itself', () => {
    const c = config([[PCI_CAP_ID_MSI, 0x40]]);
    c[0x41] = 0x40;
    expect(pciCapabilities(c).length).toBeLessThanOrEqual(48);
  });
});

describe('pciExtendedCapabilities', () => {
  it('finds ATS, PRI and PASID with their versions', () => {
    const c = config([[PCI_CAP_ID_EXP, 0x40]], [[PCI_EXT_CAP_ID_ATS, 0x100], [PCI_EXT_CAP_ID_PRI, 0x140], [PCI_EXT_CAP_ID_PASID, 0x180]]);
    expect(pciExtendedCapabilities(c)).toEqual([
      { id: PCI_EXT_CAP_ID_ATS, version: 1, offset: 0x100 },
      { id: PCI_EXT_CAP_ID_PRI, version: 1, offset: 0x140 },
      { id: PCI_EXT_CAP_ID_PASID, version: 1, offset: 0x180 },
    ]);
  });

  it('is empty for 256-byte config space and for an all-zero or all-ones header', () => {
    expect(pciExtendedCapabilities(config([[PCI_CAP_ID_MSI, 0x40]]))).toEqual([]);
    const zero = new Uint8Array(4096);
    expect(pciExtendedCapabilities(zero)).toEqual([]);
    const ones = new Uint8Array(4096);
    new DataView(ones.buffer).setUint32(0x100, 0xffffffff, true);
    expect(pciExtendedCapabilities(ones)).toEqual([]);
  });

  it('stops on a next pointer below 0x100 or past the end', () => {
    const c = config([], [[PCI_EXT_CAP_ID_ATS, 0x100]]);
    new DataView(c.buffer).setUint32(0x100, PCI_EXT_CAP_ID_ATS | (0x80 << 20), true);
    expect(pciExtendedCapabilities(c)).toHaveLength(1);
  });
});
