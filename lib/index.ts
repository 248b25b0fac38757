export { Iommufd, type HwInfo } from './iommufd.js';
export { Ioas, IOAS_MAP_FIXED_IOVA, IOAS_MAP_READABLE, IOAS_MAP_WRITEABLE, type IovaRange, type MapOptions } from './ioas.js';
export {
  Hwpt, HWPT_ALLOC_DIRTY_TRACKING, HWPT_ALLOC_NEST_PARENT, HWPT_ALLOC_PASID, HWPT_DATA_NONE, HWPT_DATA_VTD_S1,
  HWPT_FAULT_ID_VALID, type HwptAllocOptions,
} from './hwpt.js';
export { FaultGroup, FaultQueue, type CloseResult, type FaultQueueOptions, type FaultQueueStats } from './fault_queue.js';
export {
  decodeFaultGroups, FAULT_RECORD_SIZE, FAULT_RESPONSE_SIZE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS,
  PGFAULT_FLAGS_LAST_PAGE, PGFAULT_FLAGS_PASID_VALID, PGFAULT_PERM_EXEC, PGFAULT_PERM_PRIV, PGFAULT_PERM_READ,
  PGFAULT_PERM_WRITE, type FaultRecord, type ResponseCode,
} from './fault.js';
export { ErrorCodes, IommufdError } from './errors.js';
