// What the fail-nth guest tests share (mock/fail_nth.test.ts, iopf/fail_nth.test.ts): the knobs
// tools/testing/selftests/iommu/iommufd_fail_nth.c sets (failslab and fail_page_alloc told not to
// spare GFP_KERNEL or highmem allocations, quiet), restored after the file; the kernel log, for
// WARN or BUG during a sweep; and one sweep run in a child (test/guest/fixtures/fail-nth*.mjs,
// node --expose-gc), so that a crash is its result.
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import { reserveHugePages } from './hugepages.js';
import { fixture, node } from './mock/helpers.js';

const DEBUGFS = '/sys/kernel/debug';

export interface Sweep {
  name: string;
  present: boolean;
  /** When absent: the error the kernel refused the unarmed call with. */
  refusal?: { code: string; syscall: string; message: string };
  n: number;
  codes: Record<string, number>;
  tolerated: number;
  failures: unknown[];
}

/** Kernel log records since the last call (a /dev/kmsg fd opened non-blocking). */
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

/** Sets up fault injection for the file (and `hugePages` hugetlb pages); restores it after. */
export function useFailNth(hugePages = 0): { warnings: () => string[] } {
  const saved = new Map<string, string>();
  const set = (path: string, value: string) => {
    saved.set(path, readFileSync(path, 'utf8').trim());
    writeFileSync(path, value);
  };
  let log = -1;
  beforeAll(() => {
    expect(existsSync(`${DEBUGFS}/failslab`), 'CONFIG_FAILSLAB with debugfs mounted (the rig kernel has it)').toBe(true);
    expect(existsSync(`${DEBUGFS}/fail_page_alloc`), 'CONFIG_FAIL_PAGE_ALLOC').toBe(true);
    expect(existsSync('/proc/thread-self/fail-nth'), 'CONFIG_FAULT_INJECTION_DEBUG_FS: /proc/<tid>/fail-nth').toBe(true);
    if (hugePages > 0) {
      saved.set('/proc/sys/vm/nr_hugepages', readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim());
      reserveHugePages(hugePages);
    }
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
  /** WARN, BUG and the like in the kernel log since the last call. */
  const warnings = () => kmsg(log).filter((l) => /WARNING:|BUG:|Oops|refcount_t|list_del corruption|kernel BUG/.test(l));
  return { warnings };
}

/** The case names a fixture sweeps (fixture --list). */
export async function listCases(file: string, args: string[] = []): Promise<string[]> {
  const r = await node([fixture(file), ...args, '--list'], 60_000);
  expect(r.code, r.stderr.slice(-2000)).toBe(0);
  return JSON.parse(r.stdout.trim()) as string[];
}

// Under `npm run test:sanitize` the sweeps run the normal addon without the ASan runtime: fail-nth
// fails the kernel allocations of the armed thread, and ASan's allocator maps memory from the
// kernel often enough that it, not the call, meets the failure (an ASan out-of-memory abort).
const sweepEnv = (): NodeJS.ProcessEnv | undefined => {
  if (process.env.IOMMUFD_SANITIZE !== '1') return undefined;
  const { LD_PRELOAD: _preload, IOMMUFD_ADDON: _addon, ...env } = process.env;
  return env;
};

/** One case swept in a child: fixture [args...] name. */
export async function sweep(file: string, name: string, args: string[] = [], timeoutMs = 280_000): Promise<Sweep> {
  const r = await node(['--expose-gc', fixture(file), ...args, name], timeoutMs, undefined, sweepEnv());
  expect(r.signal, `${name}: the sweep ran to its end (stderr: ${r.stderr.slice(-2000)})`).toBeNull();
  expect(r.stderr).not.toMatch(/FATAL|Abort|Segmentation/);
  expect(r.code, r.stderr.slice(-2000)).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Sweep;
}

/** The line each sweep logs: where it succeeded, how it failed before. */
export function report(s: Sweep): string {
  return `fail-nth ${s.name}: succeeded at N=${s.n}; failed with ${JSON.stringify(s.codes)}; ${s.tolerated} injected failures the kernel absorbed`;
}
