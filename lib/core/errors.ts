// Errors shaped like Node's SystemError: `code` ("EINVAL", or "ERR_IOMMUFD_*" for the library's
// own), `errno` (negative, as in Node, for kernel errors), `syscall` (the ioctl or syscall name).
import { constants } from 'node:os';
import { binding } from './binding.js';

class IommufdErrorClass extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;

  constructor(message: string, code: string, errno?: number, syscall?: string) {
    super(message);
    this.name = 'IommufdError';
    this.code = code;
    if (errno !== undefined) this.errno = errno;
    if (syscall !== undefined) this.syscall = syscall;
  }
}

// One class per process even when both the ESM and the CommonJS build are loaded (they share the
// addon), so `instanceof IommufdError` holds whichever build threw.
const shared = Symbol.for('iommufd.IommufdError');
export const IommufdError: typeof IommufdErrorClass = ((globalThis as Record<symbol, unknown>)[shared] ??= IommufdErrorClass) as typeof IommufdErrorClass;
export type IommufdError = IommufdErrorClass;
binding.setErrorClass(IommufdError);

/** An error as a worker posts it: the structured clone of an Error keeps its message and stack but
 *  drops `code`, `errno` and `syscall` (and the class), so they travel as fields. */
export interface PostedError { message: string; stack?: string; code: string; errno?: number; syscall?: string }

export function toPosted(e: unknown): PostedError | unknown {
  // Without a code, the clone is as good (and keeps a TypeError's class).
  if (!(e instanceof Error) || typeof (e as Partial<IommufdError>).code !== 'string') return e;
  const { code, errno, syscall } = e as Partial<IommufdError>;
  return { message: e.message, stack: e.stack, code, errno, syscall, posted: true };
}

/** The error toPosted() posted, as an IommufdError. */
export function fromPosted(p: unknown): unknown {
  if (typeof p !== 'object' || p === null || !(p as { posted?: boolean }).posted) return p;
  const { message, stack, code, errno, syscall } = p as PostedError;
  const e = new IommufdError(message, code, errno, syscall);
  if (stack) e.stack = stack;
  return e;
}

/** The library's own error codes (kernel errors carry the errno name instead; argument errors
 *  Node's ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE and ERR_OUT_OF_RANGE: see args.ts). */
export const ErrorCodes = {
  /** The object (iommufd, fault queue, ...) was closed or destroyed. */
  CLOSED: 'ERR_IOMMUFD_CLOSED',
  /** A fault group was answered a second time. */
  ALREADY_ANSWERED: 'ERR_IOMMUFD_ALREADY_ANSWERED',
  /** A fault group's cookie now names a newer group: the kernel auto-answered this one. */
  FAULT_STALE: 'ERR_IOMMUFD_FAULT_STALE',
  /** A FaultBatch was used after its handler returned (its bytes are the next read's by then). */
  BATCH_ENDED: 'ERR_IOMMUFD_BATCH_ENDED',
  /** The queue is being served by a serve loop (serve(), serveInWorker()), or is iterated. */
  SERVING: 'ERR_IOMMUFD_SERVING',
  /** A vEVENTQ overflowed and its iterator was asked to end there (overflow: 'throw'). */
  VEVENTS_LOST: 'ERR_IOMMUFD_VEVENTS_LOST',
  /** A VFIO device was used before VfioDevice.bind(). */
  NOT_BOUND: 'ERR_IOMMUFD_NOT_BOUND',
  /** Binding a PCI device to vfio-pci through sysfs failed. */
  PCI_BIND: 'ERR_IOMMUFD_PCI_BIND',
  /** Hwpt.invalidate() on a HWPT that is not a nested one of a known stage-1 type. */
  NOT_NESTED: 'ERR_IOMMUFD_NOT_NESTED',
  /** A DemandPager's policy hook did not settle within its policyTimeoutMs (the fault was answered INVALID). */
  POLICY_TIMEOUT: 'ERR_IOMMUFD_POLICY_TIMEOUT',
} as const;

/** ERR_IOMMUFD_CLOSED: `call` ('Ioas.map') was made on (or with) `what`, which is closed. */
export function closedError(call: string, what: string): IommufdError {
  return new IommufdError(`${call}: ${what} is closed`, ErrorCodes.CLOSED);
}

const errnoNames = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** A kernel refusal of one fault response, as write(2) reported it. */
export function responseError(errno: number, cookie: number): IommufdError {
  const code = errnoNames.get(errno) ?? `E${errno}`;
  const why = errno === constants.errno.EINVAL ? 'the kernel has no pending fault group with this cookie (answered already, or auto-answered INVALID on detach/replace/destroy)' : 'write failed';
  return new IommufdError(`${code}: fault response for cookie ${cookie} refused: ${why}`, code, -errno, 'write');
}
