// iommufd-probe: what this machine can do with iommufd, found by asking the running kernel rather
// than guessing from its version. probe() gathers a report (its JSON form is described by
// schema/probe.schema.json), formatText() and formatJson() render it, main() is the CLI.
//
// The probe never changes the system: it does not load modules or rebind drivers. It opens
// /dev/iommu, creates and destroys a few objects in its own iommufd context, and opens VFIO cdevs
// of devices that are already bound to vfio-pci (binding them to its iommufd until it closes them).
//
// One file per concern:
//   types.ts     the report's types, the exit codes
//   kernel.ts    collector: the kernel, its config and the iommufd node
//   iommus.ts    collector: the IOMMUs in sysfs
//   devices.ts   collector: PCI devices and VFIO cdevs
//   features.ts  collector: uAPI features, each probed with its ioctl
//   nested.ts    collector: the nested path for a device, built as a VMM builds it, and its ATS bit
//   ioctl.ts     asking a node whether it knows an ioctl (numbers from the addon)
//   verdict.ts   can a device take I/O page faults, and every reason not
//   report.ts    probe(): the collectors and the verdicts assembled, the exit code
//   render.ts    the text and JSON renderers
//   cli.ts       arguments, output, exit status
export { main, USAGE, type CliIo } from './cli.js';
export { pcieCapsFrom } from './devices.js';
export { ioctlKnown, iommufdIdentity } from './ioctl.js';
export { explainAbsent, parseKconfig, readKernelConfig } from './kernel.js';
export { probeIommus, vtdNesting } from './iommus.js';
export { formatJson, formatText } from './render.js';
export { probe } from './report.js';
export * from './types.js';
export { errnoName } from './util.js';
export { iopfVerdict, type VerdictInput } from './verdict.js';
