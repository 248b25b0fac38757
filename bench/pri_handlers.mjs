// The real-path benchmark's serveInWorker() handlers (bench/pri_node.mjs), on the worker's thread:
// each maps the faulting pages into the IOAS through the IoasMapper of an IoasHandle the main
// thread made (a worker has no Ioas of its own), then answers.
import { fileURLToPath, pathToFileURL } from 'node:url';

const pkg = pathToFileURL(`${process.env.IOMMUFD_BENCH_PKG ?? fileURLToPath(new URL('build/pkg', import.meta.url))}/`);
const { IoasMapper } = await import(new URL('dist/esm/index.js', pkg).href);
const now = () => process.hrtime.bigint();
let mapper;

/** One page of the handle's memory (offset 0) at each group's faulting page; the answers written
 *  before it returns (flush), and its times in data.stamps: [delivered, answered, map ns, calls]. */
export function rtt(batch, data) {
  const t1 = now();
  mapper ??= IoasMapper.open(data.descriptor);
  const a = now();
  for (let g = 0, n = batch.groupCount; g < n; g++) mapper.map(0, 4096, { iova: batch.addressBigInt(batch.first(g)) });
  const op = now() - a;
  for (let g = 0, n = batch.groupCount; g < n; g++) batch.answer(g);
  batch.flush();
  const s = data.stamps;
  s[0] = t1;
  s[1] = now();
  s[2] = op;
  Atomics.add(s, 3, 1n);
}

/** Throughput: every page of every group mapped (the same page of the handle's memory), then answered. */
export function tput(batch, data) {
  mapper ??= IoasMapper.open(data.descriptor);
  for (let g = 0, n = batch.groupCount; g < n; g++) {
    for (let r = batch.first(g), end = r + batch.size(g); r < end; r++) mapper.map(0, 4096, { iova: batch.addressBigInt(r) });
    batch.answer(g);
  }
}
