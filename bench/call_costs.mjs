// What one call costs here, on the host or in a guest (npx iommufd-rig -- node bench/call_costs.mjs,
// after npm run build:ts): an addon call (pump.ref), a JS call, a Promise, and a job scheduled with
// queueMicrotask() against a resolved promise's then(), each followed by an await. ns per call.
const { binding } = await import('../dist/esm/core/binding.js');
const fd = binding.eventfd();
const pump = new binding.EventPump(fd, 64);
pump.setCallbacks(() => {}, () => {}, () => {});
pump.start();
const now = () => process.hrtime.bigint();
const N = 200000;
let x = 0;
function f(a) { x += a; }
const R = Promise.resolve();
const job = () => { x++; };
const tests = {
  'js call': () => { for (let i = 0; i < N; i++) f(i & 1); },
  'pump.ref': () => { for (let i = 0; i < N; i++) pump.ref((i & 1) === 1); },
  'new Promise': () => { for (let i = 0; i < N; i++) new Promise((r) => { x += r ? 1 : 0; }); },
};
for (let r = 0; r < 3; r++) {
  const out = [];
  for (const [k, fn] of Object.entries(tests)) { const t = now(); fn(); out.push(`${k} ${(Number(now() - t) / N).toFixed(1)}`); }
  for (const [k, s] of [['queueMicrotask', queueMicrotask], ['R.then', (j) => { R.then(j); }]]) {
    const t = now();
    for (let i = 0; i < N; i++) { s(job); await undefined; }
    out.push(`${k}+await ${(Number(now() - t) / N).toFixed(1)}`);
  }
  { const t = now(); for (let i = 0; i < N; i++) await undefined; out.push(`await ${(Number(now() - t) / N).toFixed(1)}`); }
  console.log(out.join(' | '), 'ns');
}
pump.stop(); pump.close();
