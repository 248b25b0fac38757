// Asking the kernel whether a node knows an ioctl, without running it. The request numbers come
// from the addon (binding.ioctls, from native/uapi.h): lib/ numbers no ioctl of its own.
import { binding } from '../core/binding.js';
import type { Tri } from './types.js';
import { errnoName } from './util.js';

/**
 * Whether the iommufd behind `fd` knows ioctl `request`, without running it: a 4 KiB argument
 * whose last byte is not zero. A command the kernel knows copies its struct (far smaller) and
 * refuses the non-zero tail with E2BIG before doing anything; an unknown one answers ENOTTY.
 * Returns E2BIG's / ENOTTY's name, or another errno name if the kernel said something else.
 */
export function ioctlKnown(fd: number, request: number): { known: Tri; errno: string } {
  const arg = new Uint8Array(4096);
  new DataView(arg.buffer).setUint32(0, arg.length, true);
  arg[arg.length - 1] = 1;
  const rc = binding.probeIoctl(fd, request, arg);
  const errno = rc < 0 ? errnoName(rc) : 'OK';
  return { known: errno === 'E2BIG' ? 'yes' : errno === 'ENOTTY' ? 'no' : 'unknown', errno };
}

/** Commands every iommufd knows (since Linux 6.2, the first with iommufd). */
const IDENTITY = ['IOMMU_DESTROY', 'IOMMU_IOAS_ALLOC'] as const;

/**
 * Whether the node behind `fd` is an iommufd: it knows the commands every iommufd knows (E2BIG
 * for the oversized argument of ioctlKnown). Anything else that opens, /dev/null say, answers
 * ENOTTY: a node that knows no iommufd ioctl is not an iommufd.
 */
export function iommufdIdentity(fd: number): { iommufd: boolean; errno: string; detail: string } {
  const answers = IDENTITY.map((name) => ({ name, ...ioctlKnown(fd, binding.ioctls[name]) }));
  if (answers.some((a) => a.known === 'yes')) return { iommufd: true, errno: 'E2BIG', detail: 'it knows the iommufd ioctls' };
  const errnos = [...new Set(answers.map((a) => a.errno))];
  const asked = answers.map((a) => a.name).join(' and ');
  const detail = errnos.length === 1 && errnos[0] === 'ENOTTY'
    ? `it knows no iommufd ioctl (${asked} answer ENOTTY)`
    : `it answers ${answers.map((a) => `${a.name} with ${a.errno}`).join(' and ')}, where an iommufd answers E2BIG`;
  return { iommufd: false, errno: errnos[0], detail };
}
