// Guest RAM on huge pages, against the kernel's test device: hugetlbfs (allocPages hugePages
// 'hugetlb', MAP_HUGETLB from pages this file reserves in /proc/sys/vm/nr_hugepages and gives back)
// and THP (hugePages 'thp', madvise(MADV_HUGEPAGE)). Each is mapped through Ioas.map with an IOVA the
// kernel picks, which io_pagetable.c's iopt_alloc_iova aligns to min(roundup_pow_of_two(length),
// the address's own alignment, HPAGE_SIZE with CONFIG_TRANSPARENT_HUGEPAGE else PAGE_SIZE); pinned
// (smaps shows the huge pages, VmPin counts them), unmapped; then faulted on demand by the mock
// device through a DemandPager over a huge-page window. Without reserved pages, MAP_HUGETLB is a
// typed ENOMEM naming allocPages and the option.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allocPages, DemandPager, IommufdError, Iommufd, PGFAULT_PERM_READ, PGFAULT_PERM_WRITE } from '../../../lib/index.js';
import { MockDevice } from '../../../lib/testing.js';
import { reserveHugePages } from '../hugepages.js';
import { meminfo, vmPin } from '../proc.js';
import { closeAll, kinds, open, setup } from './helpers.js';

afterEach(closeAll);

const PAGE = 4096;
const MiB = 1 << 20;
const WINDOW = 0x1000_0000n; // inside the mock domain's aperture, 2 MiB aligned
const NR = '/proc/sys/vm/nr_hugepages';
const thp = existsSync('/sys/kernel/mm/transparent_hugepage');
/** The cap io_pagetable.c puts on an automatic IOVA's alignment (HPAGE_SIZE: 2 MiB on x86). */
const maxAlign = thp ? 2 * MiB : PAGE;


/** The smaps fields (kB) of the mapping that starts at `start`. */
function smaps(start: bigint): Record<string, number> {
  const text = readFileSync('/proc/self/smaps', 'utf8');
  const head = `${start.toString(16)}-`;
  const at = text.split('\n').findIndex((l) => l.startsWith(head));
  expect(at, `a mapping at 0x${start.toString(16)} in /proc/self/smaps`).toBeGreaterThanOrEqual(0);
  const out: Record<string, number> = {};
  for (const l of text.split('\n').slice(at + 1)) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(l);
    if (m) out[m[1]] = Number(m[2]);
    else if (/^[0-9a-f]+-/.test(l)) break;
  }
  return out;
}

/** The user address of memory allocPages just made (smaps is keyed by it, the IOVA rule reads its
 *  alignment): the one new mapping of exactly that length. */
function addressOf(before: Set<string>, length: number): bigint {
  const found = readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l && !before.has(l)).map((l) => l.split(' ')[0].split('-').map((h) => BigInt(`0x${h}`)))
    .filter(([s, e]) => e - s === BigInt(length));
  expect(found.length, 'one new mapping of the allocated length').toBe(1);
  return found[0][0];
}
const maps = () => new Set(readFileSync('/proc/self/maps', 'utf8').split('\n'));

/** What iopt_alloc_iova aligns an automatic IOVA to. */
function expectedAlign(length: number, address: bigint): bigint {
  let pow = 1n;
  while (pow < BigInt(length)) pow <<= 1n;
  const low = address & -address;
  const a = [pow, low, BigInt(maxAlign)].reduce((x, y) => (y < x ? y : x));
  return a < BigInt(PAGE) ? BigInt(PAGE) : a;
}

let nrBefore = '';
beforeAll(() => { nrBefore = readFileSync(NR, 'utf8').trim(); });
afterAll(() => { writeFileSync(NR, nrBefore); });

describe('huge-page guest RAM', () => {
  it('MAP_HUGETLB without reserved pages: an IommufdError ENOMEM naming allocPages and options.hugePages', () => {
    writeFileSync(NR, '0');
    expect(meminfo('HugePages_Free')).toBe(0);
    let err: unknown;
    try { allocPages(2 * MiB, { hugePages: 'hugetlb' }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(IommufdError);
    expect(err).toMatchObject({ code: 'ENOMEM', errno: -12, syscall: 'mmap' });
    expect((err as Error).message).toMatch(/allocPages: options\.hugePages 'hugetlb'.*HugePages_Free: 0/);
  });

  it('the kernel reports CONFIG_TRANSPARENT_HUGEPAGE (the rig kernel is built as a distro one)', () => {
    expect(thp).toBe(true);
  });

  for (const kind of ['hugetlb', 'thp'] as const) {
    it(`${kind}: 8 MiB mapped with an automatic IOVA, 2 MiB aligned; without a domain nothing is pinned, with the mock device's it is pinned on huge pages; unmapped`, () => {
      const length = 8 * MiB;
      if (kind === 'hugetlb') reserveHugePages(64);
      const before = maps();
      const memory = allocPages(length, { hugePages: kind });
      const address = addressOf(before, length);
      expect(address % BigInt(2 * MiB), 'huge-page memory is 2 MiB aligned').toBe(0n);
      const align = expectedAlign(length, address);
      expect(align).toBe(BigInt(maxAlign));
      const iommufd = Iommufd.open();
      open.push(iommufd);
      const pin0 = vmPin();
      const free0 = kind === 'hugetlb' ? meminfo('HugePages_Free') : 0;
      // An IOAS without a domain: the IOVA is chosen, the pages only referenced (pinned lazily).
      const lazy = iommufd.allocIoas();
      const small = allocPages(PAGE);
      const smallIova = lazy.map(small);
      const iova = lazy.map(memory);
      // The lowest hole past the small mapping, moved up to the alignment.
      expect(iova % align, `auto IOVA 0x${iova.toString(16)} aligned to 0x${align.toString(16)}`).toBe(0n);
      expect(iova).toBe(((smallIova + BigInt(PAGE) + align - 1n) / align) * align);
      expect(vmPin()).toBe(pin0);
      expect(lazy.unmap()).toBe(BigInt(length + PAGE));
      // The mock device's domain: the map pins (VmPin counts 4 KiB pages) and faults in huge pages.
      const ioas = iommufd.allocIoas();
      const dev = MockDevice.create(iommufd, ioas.id);
      const smallIova2 = ioas.map(small);
      const iova2 = ioas.map(memory);
      expect(iova2 % align).toBe(0n);
      expect(iova2).toBe(((smallIova2 + BigInt(PAGE) + align - 1n) / align) * align);
      expect(vmPin() - pin0).toBe(length + PAGE);
      const s = smaps(address);
      if (kind === 'hugetlb') {
        expect(s.Private_Hugetlb).toBe(length / 1024);
        expect(free0 - meminfo('HugePages_Free'), 'the pin faulted in 4 huge pages').toBe(4);
      } else {
        expect(s.AnonHugePages, 'THP backs the pinned range').toBeGreaterThan(0);
        console.log(`thp: AnonHugePages ${s.AnonHugePages} kB of ${length / 1024} kB after the pin`);
      }
      expect(ioas.unmap(iova2)).toBe(BigInt(length));
      expect(vmPin() - pin0).toBe(PAGE);
      dev.destroy();
      expect(ioas.unmap()).toBe(BigInt(PAGE));
      expect(vmPin()).toBe(pin0);
    });

    it.each(kinds)(`${kind}: a DemandPager over a 16 MiB huge-page window serves mock faults (%s HWPT), reads and writes, every page once; VmPin back to its start`, async (hwptKind) => {
      const length = 16 * MiB;
      if (kind === 'hugetlb') reserveHugePages(64);
      const memory = allocPages(length, { hugePages: kind });
      const { dev, ioas, queue } = setup(hwptKind);
      const pin0 = vmPin();
      const pager = await DemandPager.start({ ioas, faultQueue: queue, memory, iova: WINDOW, budget: BigInt(4 * MiB) });
      // One fault in every 512 KiB: on every huge page, at offsets inside it.
      const sent = 32;
      for (let i = 0; i < sent; i++) {
        dev.triggerIopf({ addr: WINDOW + BigInt(i * 512 * 1024 + (i % 7) * PAGE), groupId: i, perm: i % 2 ? PGFAULT_PERM_WRITE : PGFAULT_PERM_READ });
      }
      const t0 = Date.now();
      while (pager.stats.answered < sent) {
        if (Date.now() - t0 > 60_000) throw new Error(`${pager.stats.answered} of ${sent} faults answered in 60 s`);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(pager.stats).toMatchObject({ faults: sent, success: sent, invalid: 0, refused: 0, mapErrors: 0, mappedPages: sent });
      expect(vmPin() - pin0).toBe(pager.stats.mappedBytes);
      const closed = await pager.close();
      expect(closed).toMatchObject({ answeredInvalid: 0, unmappedBytes: BigInt(sent * PAGE) });
      expect(vmPin()).toBe(pin0);
      expect(await queue.close()).toEqual({ answeredInvalid: 0 });
    });
  }
});
