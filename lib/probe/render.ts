// The renderers: the report as text for people, and as JSON (schema/probe.schema.json).
import type { Finding, ProbeReport, Tri } from './types.js';

/** The --json output: the report, one property per line. */
export function formatJson(r: ProbeReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

export function formatText(r: ProbeReport, { color = false }: { color?: boolean } = {}): string {
  const paint = (code: number) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const green = paint(32);
  const red = paint(31);
  const yellow = paint(33);
  const bold = paint(1);
  const dim = paint(2);
  const tri = (t: Tri | boolean | null, width = 0) => {
    const s = t === true ? 'yes' : t === false ? 'no' : t === null ? '?' : t;
    const padded = s.padEnd(width);
    return s === 'yes' ? green(padded) : s === 'no' ? red(padded) : yellow(padded);
  };
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  out(bold(`iommufd-probe ${r.tool.version}: Linux ${r.kernel.release} (${r.kernel.machine}), uid ${r.user.uid}`));
  if (r.kernel.iommuParameters.length) out(`  kernel parameters: ${r.kernel.iommuParameters.join(' ')}`);
  out();
  out(bold('iommufd'));
  const f = r.iommufd;
  if (f.present) {
    out(`  ${f.path}: present, ${f.mode} uid ${f.uid} gid ${f.gid}, opens for this user: ${tri(f.canOpen)}${f.openError ? ` (${f.openError})` : ''}`);
  } else out(`  ${f.path}: ${red('absent')}`);
  if (f.reason) out(`  why: ${f.reason}`);
  const cfg = Object.entries(f.kernelConfig.options).map(([k, v]) => `${k}=${v}`).join(' ');
  out(`  kernel config: ${f.kernelConfig.source ? `${f.kernelConfig.source}: ${cfg || '(none of the relevant options)'}` : 'not readable'}`);
  out(`  module: ${f.moduleLoaded ? 'iommufd in /sys/module' : 'no /sys/module/iommufd'}${f.moduleFile ? `, ${f.moduleFile}` : ''}; misc device: ${f.miscMinor === null ? 'not registered' : `10:${f.miscMinor}`}`);
  out();
  out(bold('IOMMUs'));
  if (r.iommus.length === 0) out('  none in /sys/class/iommu (no IOMMU enabled: firmware setting, or intel_iommu=/amd_iommu= on the kernel command line)');
  const nameWidth = Math.max(0, ...r.iommus.map((m) => m.name.length));
  for (const m of r.iommus) {
    out(`  ${m.name.padEnd(nameWidth)}  ${m.kind.padEnd(9)}  page requests ${tri(m.pageRequests, 7)}  PASID ${tri(m.pasid, 7)}  nesting ${tri(m.nesting, 7)}`);
    out(`    ${dim(m.detail)}`);
  }
  out();
  out(bold('uAPI features (probed)'));
  const feat: [string, Finding][] = [
    ['fault queues', r.features.faultQueue],
    ['fault on paging HWPTs', r.features.pagingHwptFault],
    ['vEVENTQ', r.features.veventq],
    ['PASID attach', r.features.pasidAttach],
    ['kernel test device', r.features.testDevice],
  ];
  for (const [name, x] of feat) out(`  ${name.padEnd(22)} ${tri(x.status, 7)} ${dim(x.detail)}`);
  if (r.features.testDevice.status === 'yes') {
    out(`  ${''.padEnd(22)} ${'attach'.padEnd(7)} ${tri(r.features.testDevice.attach)}: ${dim(r.features.testDevice.attachDetail)}`);
    out(`  ${''.padEnd(22)} ${'vEVENT'.padEnd(7)} ${tri(r.features.testDevice.vevent)}: ${dim(r.features.testDevice.veventDetail)}`);
  }
  out();
  out(bold('Devices'));
  if (r.devices.length === 0) out('  no PCI devices and no VFIO cdevs');
  else {
    const head = ['ADDRESS', 'ID', 'DRIVER', 'GROUP', 'IOMMU', 'ATS', 'PRI', 'PASID', 'IOPF'];
    const rows = r.devices.map((d) => [
      d.address, d.vendorId ? `${d.vendorId}:${d.deviceId}` : d.bus, d.driver ?? '-', d.iommuGroup === null ? '-' : String(d.iommuGroup),
      d.iommu ?? '-', yn(d.pcie?.ats), yn(d.pcie?.pri), yn(d.pcie?.pasid), d.verdict.iopf,
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    out(`  ${head.map((h, i) => h.padEnd(widths[i])).join('  ')}`);
    r.devices.forEach((d, n) => {
      const row = rows[n];
      const cells = row.map((c, i) => (i === row.length - 1 ? tri(d.verdict.iopf, widths[i]) : c.padEnd(widths[i])));
      out(`  ${cells.join('  ')}`);
      out(`    ${dim(d.verdict.summary)}`);
      if (d.hwInfo) out(`    ${dim(`hw info: ${d.hwInfo.typeName}, max PASID bits ${d.hwInfo.maxPasidLog2}`)}`);
      if (d.iopfAttach || d.nestedAttach) {
        const step = (x: Finding | null) => (x === null ? '-' : tri(x.status));
        out(`    fault path: ${d.verdict.path ?? 'none'} (paging HWPT ${step(d.iopfAttach)}, nested HWPT ${step(d.nestedAttach)})`);
      }
    });
  }
  out();
  const s = r.summary;
  const mark = s.exitCode === 0 ? green : s.exitCode === 1 ? yellow : red;
  out(`${bold('Result:')} ${mark(s.text)} (exit ${s.exitCode})`);
  return `${lines.join('\n')}\n`;
}

function yn(b: boolean | null | undefined): string {
  return b === true ? 'yes' : b === false ? 'no' : '?';
}
