// The hugetlb pool is the guest's, shared by every test file: a file that needs n pages makes n
// free on top of whatever is still in use (a page in use stays counted, as a surplus page, after
// nr_hugepages is lowered), and gives the pool back as it found it.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import { meminfo } from './proc.js';

const NR = '/proc/sys/vm/nr_hugepages';

/** Hugetlb pages that back a mapping now (HugePages_Total - HugePages_Free). */
export function hugePagesInUse(): number {
  return meminfo('HugePages_Total') - meminfo('HugePages_Free');
}

/** Sets the pool so that `n` pages are free (what is in use plus n); asserts the kernel found them. */
export function reserveHugePages(n: number): void {
  writeFileSync(NR, String(hugePagesInUse() + n));
  expect(meminfo('HugePages_Free'), `${n} free huge pages (${hugePagesInUse()} in use) in 3 GiB of guest RAM`).toBeGreaterThanOrEqual(n);
}

/** reserveHugePages(n) before the file's tests; the pool's size as it was after them. */
export function useHugePages(n: number): void {
  let before = '';
  beforeAll(() => {
    before = readFileSync(NR, 'utf8').trim();
    reserveHugePages(n);
  });
  afterAll(() => { writeFileSync(NR, before); });
}
