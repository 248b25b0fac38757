// The iommufd-probe command line: arguments, output and exit status (scripts/probe.mjs runs it).
import { probe } from './report.js';
import { formatJson, formatText } from './render.js';
import { ProbeExit, type ProbeReport } from './types.js';

export const USAGE = `usage: iommufd-probe [--json] [--color|--no-color] [--device PATH] [--schema]

Reports what this machine can do with iommufd: /dev/iommu and why it is missing, uAPI features
found by probing the running kernel, and for every PCI device and VFIO cdev whether it can take
I/O page faults (IOPF), with the reason when not.
  --json        the report as JSON (schema: schema/probe.schema.json in the package)
  --color       colour the text output even when stdout is not a terminal
  --no-color    never colour (NO_COLOR in the environment does the same)
  --device PATH the iommufd device node (default /dev/iommu)
  --schema      print the JSON Schema of the --json report
  -h, --help    this text
Exit status: 0 IOPF available for at least one device; 1 iommufd usable but no IOPF-capable
device; 2 no iommufd (no /dev/iommu, or a node that is not an iommufd); 3 /dev/iommu present
but this user cannot open it; 64 usage error; 70 the probe itself failed.`;

export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
  env: Record<string, string | undefined>;
  version?: string;
  /** The JSON Schema of the report, for --schema (the bin reads the package's schema/probe.schema.json). */
  schema?: () => string;
}

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  let json = false;
  let color: boolean | undefined;
  let devicePath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '--color') color = true;
    else if (a === '--no-color') color = false;
    else if (a === '--device' && i + 1 < argv.length) devicePath = argv[++i];
    else if (a.startsWith('--device=')) devicePath = a.slice('--device='.length);
    else if (a === '-h' || a === '--help') {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    } else if (a === '--schema') {
      if (io.schema === undefined) {
        io.stderr.write('iommufd-probe: --schema: no schema at hand; it is schema/probe.schema.json in the package\n');
        return ProbeExit.INTERNAL;
      }
      io.stdout.write(io.schema());
      return 0;
    } else {
      io.stderr.write(`iommufd-probe: unknown argument ${JSON.stringify(a)}\n${USAGE}\n`);
      return ProbeExit.USAGE;
    }
  }
  let report: ProbeReport;
  try {
    report = await probe({ devicePath, toolVersion: io.version });
  } catch (e) {
    io.stderr.write(`iommufd-probe: the probe failed: ${(e as Error)?.stack ?? String(e)}\n`);
    return ProbeExit.INTERNAL;
  }
  if (json) io.stdout.write(formatJson(report));
  else {
    const env = io.env;
    const useColor = color ?? (env.NO_COLOR !== undefined && env.NO_COLOR !== '' ? false
      : env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' ? true : io.stdout.isTTY === true);
    io.stdout.write(formatText(report, { color: useColor }));
  }
  return report.summary.exitCode;
}
