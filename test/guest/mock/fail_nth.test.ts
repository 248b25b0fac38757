// Kernel fault injection over every call the library makes on the mock device, the way the
// kernel's iommufd_fail_nth selftest does it: fail the Nth slab or page allocation of the calling
// thread (/proc/thread-self/fail-nth, with failslab and fail_page_alloc told not to spare
// GFP_KERNEL or highmem allocations) for N = 1, 2, ... until the call succeeds. Each sweep runs in
// a child (test/guest/fixtures/fail-nth.mjs, node --expose-gc) so that a crash is its result; every
// failure there must be a typed error naming the ioctl, leave no fd and no object, and let the
// iommufd close. The kernel must not WARN or BUG meanwhile (/dev/kmsg).
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelVersion } from '../rig.js';
import { fixture, node } from './helpers.js';

const DEBUGFS = '/sys/kernel/debug';
const [major, minor] = kernelVersion();
const atLeast = (a: number, b: number) => major > a || (major === a && minor >= b);

// The knobs the selftest sets (setup_fault_injection), with what they were, restored after.
const saved = new Map<string, string>();
function set(path: string, value: string): void {
  saved.set(path, readFileSync(path, 'utf8').trim());
  writeFileSync(path, value);
}

/** Kernel log records since `from` (a /dev/kmsg fd opened non-blocking at the start). */
function kmsg(fd: number): string[] {
  const out: string[] = [];
  const buf = Buffer.alloc(8192);
  for (;;) {
    try {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      out.push(buf.subarray(0, n).toString());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
      if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue; // records overwritten meanwhile
      throw e;
    }
  }
  return out;
}

let log = -1;
beforeAll(() => {
  expect(existsSync(`${DEBUGFS}/failslab`), 'CONFIG_FAILSLAB with debugfs mounted (the rig kernel has it)').toBe(true);
  expect(existsSync(`${DEBUGFS}/fail_page_alloc`), 'CONFIG_FAIL_PAGE_ALLOC').toBe(true);
  expect(existsSync('/proc/thread-self/fail-nth'), 'CONFIG_FAULT_INJECTION_DEBUG_FS: /proc/<tid>/fail-nth').toBe(true);
  // Hugetlb pages for the huge-page map sweeps (each iteration maps a fresh 2 MiB page).
  set('/proc/sys/vm/nr_hugepages', '64');
  expect(Number(/^HugePages_Total:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1])).toBe(64);
  set(`${DEBUGFS}/failslab/ignore-gfp-wait`, 'N');
  set(`${DEBUGFS}/fail_page_alloc/ignore-gfp-wait`, 'N');
  set(`${DEBUGFS}/fail_page_alloc/ignore-gfp-highmem`, 'N');
  for (const d of readdirSync(DEBUGFS).filter((n) => n.startsWith('fail'))) {
    if (existsSync(`${DEBUGFS}/${d}/verbose`)) set(`${DEBUGFS}/${d}/verbose`, '0');
  }
  log = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  kmsg(log); // what was there before
});
afterAll(() => {
  for (const [path, value] of saved) writeFileSync(path, value);
  if (log >= 0) closeSync(log);
});

interface Sweep { name: string; present: boolean; n: number; codes: Record<string, number>; tolerated: number; failures: unknown[] }

async function sweep(name: string): Promise<Sweep> {
  const r = await node(['--expose-gc', fixture('fail-nth.mjs'), name], 280_000);
  expect(r.signal, `${name}: the sweep ran to its end (stderr: ${r.stderr.slice(-2000)})`).toBeNull();
  expect(r.stderr).not.toMatch(/FATAL|Abort|Segmentation/);
  expect(r.code, r.stderr.slice(-2000)).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Sweep;
}

// What each call needs from the kernel: vIOMMUs from 6.13, vEVENTQs from 6.15.
const calls: [string, boolean][] = [
  ['Iommufd.open', true],
  ['Iommufd.allocIoas', true],
  ['Ioas.map', true],
  ['Ioas.map (automatic IOVA)', true],
  ['Ioas.map (hugetlb)', true],
  ['Ioas.map (thp)', true],
  ['Ioas.unmap', true],
  ['Ioas.iovaRanges', true],
  ['Iommufd.allocHwpt (NEST_PARENT)', true],
  ['Iommufd.allocHwpt (nested, faultQueue)', true],
  ['Iommufd.allocFaultQueue', true],
  ['MockDevice.create', true],
  ['MockDevice.replace', true],
  ['Hwpt.invalidate', true],
  ['FaultQueue.close (fault fd read, INVALID answers written)', true],
  ['Iommufd.allocViommu', atLeast(6, 13)],
  ['Viommu.allocVdevice', atLeast(6, 13)],
  ['Viommu.allocVeventQueue', atLeast(6, 15)],
];

describe('fail-nth over every library call on the mock device', () => {
  it('the fixture sweeps exactly these calls', async () => {
    const r = await node([fixture('fail-nth.mjs'), '--list'], 60_000);
    expect(JSON.parse(r.stdout.trim())).toEqual(calls.map(([name]) => name));
  });

  it.each(calls)('%s: every injected allocation failure a typed error, nothing left, until it succeeds', async (name, present) => {
    const s = await sweep(name);
    // Present where the kernel version says so, and absent (ENOTTY) where it does not: never a skip.
    expect(s.present, `${name} on ${major}.${minor}`).toBe(present);
    if (!present) return;
    expect(s.failures).toEqual([]);
    console.log(`fail-nth ${name}: succeeded at N=${s.n}; failed with ${JSON.stringify(s.codes)}; ${s.tolerated} injected failures the kernel absorbed`);
    const log2 = kmsg(log).filter((l) => /WARNING:|BUG:|Oops|refcount_t|list_del corruption|kernel BUG/.test(l));
    expect(log2, 'no kernel WARN or BUG during the sweep').toEqual([]);
  }, 300_000);
});
