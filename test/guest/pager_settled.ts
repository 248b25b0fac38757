// Waiting for a DemandPager's worker to be quiet. The worker's native map step answers a fault
// before JS runs: the latency of what it served is counted when the worker's JS next runs (at the
// latest its idle tick, 100 ms), and that same turn may evict ahead. So a test that compares the
// stats with VmPin first waits for every answer's latency, then for the stats and VmPin to stay the
// same over 50 ms.
import type { DemandPager } from '../../lib/index.js';
import { vmPin } from './proc.js';

export async function pagerSettled(pager: DemandPager, answers: number, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  const snapshot = () => JSON.stringify({ ...pager.stats, vmPin: vmPin() });
  let last = '';
  for (;;) {
    const now = snapshot();
    if (pager.stats.latency.count === answers && now === last) return;
    if (Date.now() - t0 > ms) throw new Error(`the pager did not settle within ${ms} ms: ${pager.stats.latency.count} of ${answers} latencies counted`);
    last = now;
    await new Promise((r) => setTimeout(r, 50));
  }
}
