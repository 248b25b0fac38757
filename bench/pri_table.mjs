// The real-path benchmark's summary (bench/results-pri*.json) and its tables on stdout.

function format(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r) => r.map((x, c) => String(x)[c < 2 ? 'padEnd' : 'padStart'](widths[c])).join('  ')).join('\n');
}

const ratio = (a, b) => (a === null || b === null || !b ? '-' : `${(a / b).toFixed(2)}x`);
const dash = (x) => (x === null || x === undefined ? '-' : x);

export function summarize({ scenarios, VARIANTS, fields, samples, roundP50, pct, us, info, pagerLatency, tputPages }) {
  const summary = {};
  for (const sc of scenarios) {
    summary[sc] = {};
    for (const v of VARIANTS[sc]) {
      const key = `${sc}/${v}`;
      if (sc === 'tput') {
        const rates = samples[key];
        summary.tput[v] = { pagesPerSecond: { p50: Math.round(pct(rates, 50)), min: Math.round(Math.min(...rates)), max: Math.round(Math.max(...rates)) }, roundP50: roundP50[key] };
      } else {
        summary[sc][v] = { ...Object.fromEntries(fields.map((k) => [k, { p50: us(pct(samples[key][k], 50)), p99: us(pct(samples[key][k], 99)) }])), roundP50: roundP50[key] };
      }
    }
  }
  for (const [v, runs] of Object.entries(pagerLatency)) if (summary.paging?.[v]) summary.paging[v].pagerLatencyPerRun = runs;

  const out = [];
  const rtt = scenarios.filter((sc) => sc !== 'tput');
  if (rtt.length) {
    const both = rtt.includes('paging') && rtt.includes('nested');
    const thread = summary.paging?.['C thread'];
    const rows = [['scenario', 'variant', 'p50 us', 'p99 us', 'rounds\' p50s', 'Node/C', ...(thread ? ['/C thread'] : []), ...(both ? ['nested/paging'] : []),
      'delivered', 'handler', 'of which iommu', 'completion', 'baseline']];
    for (const sc of rtt) {
      for (const v of VARIANTS[sc]) {
        const s = summary[sc][v];
        const vsPaging = sc === 'nested' && summary.paging?.[v] ? ratio(s.total.p50, summary.paging[v].total.p50) : '';
        rows.push([sc === 'paging' ? `paging (${info.pagingStage} stage)` : sc, v, s.total.p50, s.total.p99, `${Math.min(...s.roundP50)}-${Math.max(...s.roundP50)}`,
          ratio(s.total.p50, summary[sc].C.total.p50), ...(thread ? [sc === 'paging' ? ratio(s.total.p50, thread.total.p50) : ''] : []), ...(both ? [vsPaging] : []),
          ...['delivered', 'handler', 'iommu', 'completion', 'baseline'].map((k) => dash(s[k].p50))]);
      }
    }
    out.push(format(rows));
    for (const v of VARIANTS.paging ?? []) {
      const runs = summary.paging?.[v]?.pagerLatencyPerRun;
      if (runs) out.push(`${v}'s own read-to-answer latency p50 per run (us): ${runs.map((l) => l.p50).join(', ')}; groups served natively per run: ${runs.map((l) => l.servedNatively).join(', ')}`);
    }
  }
  if (summary.tput) {
    const rows = [['throughput', 'variant', 'pages/s p50', 'waves min-max', 'rounds\' p50s', 'Node/C']];
    for (const v of VARIANTS.tput) {
      const s = summary.tput[v];
      rows.push([`${tputPages / 64} slots x 64 pages`, v, s.pagesPerSecond.p50, `${s.pagesPerSecond.min}-${s.pagesPerSecond.max}`, `${Math.min(...s.roundP50)}-${Math.max(...s.roundP50)}`,
        ratio(s.pagesPerSecond.p50, summary.tput.C.pagesPerSecond.p50)]);
    }
    out.push(format(rows));
  }
  return { summary, table: out.join('\n\n') };
}
