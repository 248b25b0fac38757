// The Node side of the vEVENTQ drain (bench/node_bench.mjs runs these modes; the C side is
// fault_bench vevent-drain): the kernel test device's vIOMMU reports selftest vEVENTs
// (MockDevice.triggerVevent), N at a time, queued before the clock starts, and a VeventQueue reads
// them, through the batch view (setBatchHandler: no object per event) or the async iterator (a
// Vevent per event, its payload decoded). Both check what C checks: every event's virt_id, and
// the sequence numbers (the events lost, counted where the kernel dropped them).
//
//   vevent-drain N WARMUP REPS        for await (const e of queue), e.decoded.virtId
//   vevent-drain-view N WARMUP REPS   queue.setBatchHandler(...), batch.view at batch.dataOffset(i)
//
// On a kernel without vEVENTQs (before 6.15) a mode prints {skipped: why} instead of failing.
const VIRT_ID = 0x99;
const SPAN = 2 ** 31; // sequence numbers run 0..INT_MAX, then 0

export async function veventModes({ pkg, now }) {
  const { Iommufd, HWPT_ALLOC_NEST_PARENT, VEVENTQ_MAX_DEPTH } = await import(new URL('dist/esm/index.js', pkg).href);
  const { MockDevice, HWPT_DATA_SELFTEST, selftestHwptData, VIOMMU_TYPE_SELFTEST, VEVENTQ_TYPE_SELFTEST } =
    await import(new URL('dist/esm/testing.js', pkg).href);

  // The selftests' flow, as fault_bench's VeventSetup: a vIOMMU over a NEST_PARENT HWPT, its
  // vEVENTQ (the kernel's deepest), the vDEVICE, then the device onto a nested HWPT of the vIOMMU.
  // Returns {skipped} where the kernel has no vIOMMU or vEVENTQ (ENOTTY).
  function setup() {
    const iommufd = Iommufd.open();
    try {
      const ioas = iommufd.allocIoas();
      const dev = MockDevice.create(iommufd, ioas.id);
      const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
      const viommu = iommufd.allocViommu({ deviceId: dev.deviceId, parent, type: VIOMMU_TYPE_SELFTEST });
      const queue = viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST, depth: VEVENTQ_MAX_DEPTH });
      viommu.allocVdevice({ deviceId: dev.deviceId, virtId: BigInt(VIRT_ID) });
      const nested = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: viommu.id, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData() });
      dev.replace(nested.id);
      return { iommufd, dev, queue };
    } catch (e) {
      void iommufd.close();
      if (e?.code === 'ENOTTY') return { skipped: e.message }; // names the ioctl and the kernel it needs
      throw e;
    }
  }

  // What both consumers count: events read, events lost (LOST_EVENTS headers and sequence gaps,
  // as the queue reports them), events with another virt_id, and sequence numbers that do not
  // follow from the last one and the losses (none expected: a check of the accounting).
  const tally = () => ({ delivered: 0, lost: 0, bad: 0, misordered: 0, prev: SPAN - 1 });

  // The batch view: one call per read, the fields read in place.
  function viewConsumer(queue) {
    const t = tally();
    const state = { target: 0, done: () => {} };
    queue.setBatchHandler((batch) => {
      const view = batch.view;
      for (let i = 0, n = batch.length; i < n; i++) {
        const seq = batch.sequence(i);
        const lost = batch.lost(i);
        if (lost > 0) t.lost += lost;
        if (batch.isLostHeader(i)) {
          t.prev = seq;
          continue;
        }
        if (seq !== (t.prev + lost + 1) % SPAN) t.misordered++;
        t.prev = seq;
        if (view.getUint32(batch.dataOffset(i), true) !== VIRT_ID) t.bad++;
        t.delivered++;
      }
      if (t.delivered + t.lost >= state.target) state.done();
    });
    const drain = (k) => new Promise((resolve) => {
      state.target = t.delivered + t.lost + k;
      state.done = resolve;
    });
    return { t, drain };
  }

  // The async iterator: a Vevent per event (a VeventLoss where events were lost), decoded.
  function iterConsumer(queue) {
    const t = tally();
    const drain = async (k) => {
      let seen = 0;
      for await (const e of queue) {
        if (e.kind === 'event') {
          if (e.sequence !== (t.prev + 1) % SPAN) t.misordered++;
          t.prev = e.sequence;
          if (e.decoded.virtId !== VIRT_ID) t.bad++;
          t.delivered++;
          seen++;
        } else {
          t.lost += e.count;
          t.prev = e.last;
          seen += e.count;
        }
        if (seen >= k) break;
      }
    };
    return { t, drain };
  }

  // As fault_bench vevent-drain: WARMUP events drained first (the JIT), then REPS times N queued
  // and drained; the nanoseconds from queued to the last one handled.
  async function drain(how, n, warmup, reps) {
    if (n > VEVENTQ_MAX_DEPTH || warmup > VEVENTQ_MAX_DEPTH) throw new Error(`vevent-drain: N and WARMUP must be at most ${VEVENTQ_MAX_DEPTH}`);
    const s = setup();
    if (s.skipped) return { mode: 'vevent-drain', how, n, skipped: s.skipped };
    const { iommufd, dev, queue } = s;
    const { t, drain: consume } = how === 'view' ? viewConsumer(queue) : iterConsumer(queue);
    const once = async (k) => {
      const done = consume(k);
      dev.triggerVevent(k);
      const t0 = now();
      await done;
      return Number(now() - t0);
    };
    const coldNs = warmup > 0 ? await once(warmup) : 0;
    const nsAll = [];
    for (let i = 0; i < reps; i++) nsAll.push(await once(n));
    const { delivered, lost, overflows, gaps } = queue.stats;
    await queue.close();
    await iommufd.close();
    if (t.bad || t.misordered) throw new Error(`vevent-drain ${how}: ${t.bad} events with another virt_id, ${t.misordered} out of sequence`);
    return {
      mode: 'vevent-drain', how, n, delivered: t.delivered, lost: t.lost, overflows, gaps, bad: t.bad,
      stats: { delivered, lost }, depth: VEVENTQ_MAX_DEPTH, warmup, coldNs, nsAll,
    };
  }

  return {
    'vevent-drain': (a, b, c) => drain('iter', Number(a), Number(b ?? 0), Number(c ?? 1)),
    'vevent-drain-view': (a, b, c) => drain('view', Number(a), Number(b ?? 0), Number(c ?? 1)),
  };
}
