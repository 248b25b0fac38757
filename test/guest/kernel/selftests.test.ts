// The kernel's own iommufd selftests (tools/testing/selftests/iommu), built by build-kernel.sh from
// the same Debian source tree as this guest's kernel and against that tree's uapi headers, run as a
// peer check: the rig's kernel must be one a distro would ship (THP, hugetlbfs, debugfs fault
// injection), or the library's guest tests would be testing a kernel no user has.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rig } from '../rig.js';

const dir = join(rig.kernelDir, 'selftests');
const built = existsSync(join(dir, 'iommufd'));
// A run of the full iommufd suite under TCG takes minutes; the harness bounds each test itself.
const RUN_MS = 25 * 60_000;

interface TapResult { passed: string[]; failed: string[]; skipped: Map<string, string>; plan: number; status: number | null }

/** Runs one selftest binary and reads its TAP (kselftest_harness.h: "ok N name # SKIP why"). */
function runSelftest(name: string): TapResult {
  const r = spawnSync(join(dir, name), [], { cwd: '/tmp', encoding: 'utf8', timeout: RUN_MS, maxBuffer: 256 << 20, killSignal: 'SIGKILL' });
  if (r.error) throw r.error;
  const out: TapResult = { passed: [], failed: [], skipped: new Map(), plan: -1, status: r.status };
  for (const line of r.stdout.split('\n')) {
    const plan = /^1\.\.(\d+)$/.exec(line);
    if (plan) out.plan = Number(plan[1]);
    const m = /^(ok|not ok) \d+ (\S+)(?: # (SKIP|XFAIL)\s*(.*))?$/.exec(line);
    if (!m) continue;
    if (m[3]) out.skipped.set(m[2], m[4]);
    else (m[1] === 'ok' ? out.passed : out.failed).push(m[2]);
  }
  const total = out.passed.length + out.failed.length + out.skipped.size;
  console.log(`${name} on ${rig.kernelRelease}: ${out.passed.length} passed, ${out.failed.length} failed, ${out.skipped.size} skipped of ${out.plan}` +
    (total === out.plan ? '' : ` (${out.plan - total} never reported: the harness stopped)`));
  for (const f of out.failed) console.log(`  not ok ${f}`);
  return out;
}

/** Skips the suite was designed to take: the no_viommu variants have no vIOMMU to test. */
const designedSkip = (test: string) => /\.no_viommu\./.test(test);

describe.runIf(built)(`the kernel's iommufd selftests (${rig.kernelRelease})`, () => {
  // Huge pages for the hugepage variants (dirty tracking up to 256 MiB of them): reserved here,
  // given back after, as a test host would.
  let hugeBefore = '0';
  beforeAll(() => {
    hugeBefore = readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim();
    writeFileSync('/proc/sys/vm/nr_hugepages', '300');
    expect(Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8'))).toBeGreaterThanOrEqual(140);
  });
  afterAll(() => writeFileSync('/proc/sys/vm/nr_hugepages', hugeBefore));

  it('iommufd: every test passes, skips only the designed ones', () => {
    const r = runSelftest('iommufd');
    expect(r.plan).toBeGreaterThan(100);
    expect(r.failed).toEqual([]);
    expect([...r.skipped.keys()].filter((t) => !designedSkip(t))).toEqual([]);
    expect(r.passed.length + r.skipped.size).toBe(r.plan);
    expect(r.status).toBe(0);
  }, RUN_MS + 60_000);

  it('iommufd_fail_nth: every ioctl error path the kernel injects into passes (none skipped)', () => {
    // The harness needs debugfs fault injection (FAILSLAB, FAIL_PAGE_ALLOC): without it all skip.
    expect(existsSync('/sys/kernel/debug/failslab')).toBe(true);
    const r = runSelftest('iommufd_fail_nth');
    expect(r.plan).toBeGreaterThan(0);
    expect(r.failed).toEqual([]);
    expect([...r.skipped.keys()]).toEqual([]);
    expect(r.passed.length).toBe(r.plan);
    expect(r.status).toBe(0);
  }, RUN_MS + 60_000);
});

describe.runIf(!built)(`the kernel's iommufd selftests do not build from this tree (${rig.kernelRelease})`, () => {
  it('because they use uapi names the tree\'s own headers lack: each named', () => {
    // build-kernel.sh kept the compiler's output; the test reports which names are missing, and
    // checks each against the tree's include/uapi/linux/iommufd.h it copied beside the image.
    const log = readFileSync(join(dir, 'build.log'), 'utf8');
    const uapi = readFileSync(join(rig.kernelDir, 'iommufd.h'), 'utf8');
    const names = new Set<string>();
    // gcc quotes with ' or with ‘ ’, depending on the locale.
    for (const m of log.matchAll(/error: (?:[‘'](\w+)[’'] undeclared|[^\n]*has no member named [‘'](\w+)[’']|unknown type name [‘'](\w+)[’'])/g)) {
      names.add(m[1] ?? m[2] ?? m[3]);
    }
    console.log(`selftests of ${rig.kernelRelease} do not build: names missing from its uapi: ${[...names].sort().join(', ')}`);
    expect(names.size).toBeGreaterThan(0);
    // Every missing name is one the selftests expect in the uapi and this tree's header has not.
    for (const n of names) expect(uapi.includes(n), n).toBe(false);
  });
});
