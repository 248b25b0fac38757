// What every kernel object needs from the iommufd it lives in (the kernel's iommufd_ctx). The
// Iommufd class implements it; objects and queues hold this interface, never the class, so no
// concern imports the factory that makes it.

export interface HwInfo {
  /** IOMMU_HW_INFO_TYPE_*: 1 = Intel VT-d, 2 = ARM SMMUv3, 0xfeedbeef = the kernel's test device. */
  type: number;
  /** IOMMU_HW_CAP_* bits. */
  capabilities: bigint;
  /** PASID width; 0 means no PASID support. */
  maxPasidLog2: number;
  /** The IOMMU driver's own info (struct iommu_hw_info_vtd for VT-d). */
  data: Uint8Array;
}

/** What an iommufd closes before itself: its fault queues and vEVENTQs. */
export interface ClosableQueue {
  close(): Promise<unknown>;
}

export interface IommufdContext {
  /** The /dev/iommu file descriptor; throws ERR_IOMMUFD_CLOSED once closed. */
  readonly fd: number;
  readonly closed: boolean;
  /** IOMMU_DESTROY of any object id. */
  destroy(id: number): void;
  /** IOMMU_GET_HW_INFO for a device bound to this iommufd (its device id). */
  getHwInfo(deviceId: number): HwInfo;
  /** @internal Makes a queue over the object `id` just allocated (destroyed again if that
   *  throws), to be closed with this iommufd. */
  _adopt<Q extends ClosableQueue>(make: () => Q, id: number): Q;
  /** @internal A queue of this iommufd was closed. */
  _forget(queue: ClosableQueue | undefined): void;
}

/**
 * IOMMU_DESTROY of a queue's object once its fd is closed (the fd holds a reference the kernel
 * refuses the destroy over). False while something else still holds it (EBUSY: a HWPT holds its
 * fault object); true when it is gone, also when the iommufd was closed (which freed it) or the
 * object was destroyed by id already (ENOENT).
 */
export function destroyObject(iommufd: IommufdContext, id: number): boolean {
  if (iommufd.closed) return true;
  try {
    iommufd.destroy(id);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EBUSY') return false;
    if (code !== 'ENOENT') throw e;
  }
  return true;
}
