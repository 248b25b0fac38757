// What the guest kernel reports of this process and of memory, as the guest tests read it.
import { readFileSync } from 'node:fs';

/** A /proc/meminfo field's number (pages for HugePages_*, kB for the rest). */
export function meminfo(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/meminfo`);
  return Number(m[1]);
}

/** mm->pinned_vm of this process, in bytes (/proc/self/status VmPin): what IOAS maps pin. */
export function vmPin(): number {
  const m = /^VmPin:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmPin in /proc/self/status');
  return Number(m[1]) * 1024;
}
