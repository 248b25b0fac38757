// The rig itself: the facts every other guest test builds on.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { rig } from '../rig.js';

function pciDevices(): { address: string; vendor: string; device: string }[] {
  const base = '/sys/bus/pci/devices';
  return readdirSync(base).map((address) => ({
    address,
    vendor: readFileSync(`${base}/${address}/vendor`, 'utf8').trim(),
    device: readFileSync(`${base}/${address}/device`, 'utf8').trim(),
  }));
}

describe('rig guest', () => {
  it('runs inside the rig', () => {
    expect(rig.inGuest).toBe(true);
  });

  it('boots the kernel the rig built', () => {
    expect(rig.kernelRelease).toMatch(/^\d+\.\d+\.\d+$/);
    expect(release().startsWith(rig.kernelRelease)).toBe(true);
    if (rig.kernel === '6.12') expect(release()).toMatch(/^6\.12\./);
  });

  it('has /dev/iommu as a character device', () => {
    expect(statSync('/dev/iommu').isCharacterDevice()).toBe(true);
  });

  it('has the intel-iommu DMAR unit up exactly when booted with intel_iommu=on', () => {
    expect(readFileSync('/proc/cmdline', 'utf8')).toContain(`intel_iommu=${rig.intelIommu ? 'on' : 'off'}`);
    expect(existsSync('/sys/class/iommu/dmar0')).toBe(rig.intelIommu);
    if (rig.intelIommu) {
      // The edu device sits behind the DMAR unit.
      const edu = pciDevices().find((d) => d.vendor === '0x1234' && d.device === '0x11e8');
      expect(readdirSync(`/sys/bus/pci/devices/${edu!.address}/iommu_group/devices`)).toContain(edu!.address);
    }
  });

  it('has the QEMU edu DMA test device (1234:11e8)', () => {
    expect(pciDevices()).toContainEqual(expect.objectContaining({ vendor: '0x1234', device: '0x11e8' }));
  });

  it('has the kernel iommufd test device built in', () => {
    // CONFIG_IOMMUFD_TEST registers a selftest IOMMU instance at boot.
    expect(readdirSync('/sys/class/iommu').some((n) => n.startsWith('iommufd_selftest'))).toBe(true);
  });
});
