// What the mock-device guest tests share: a fault-enabled HWPT for the kernel's test device, a
// full setup, and the small waits. One helper per step, as in the kernel's selftests.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { expect } from 'vitest';
import { type FaultGroup, type FaultQueue, type FaultQueueOptions, HWPT_ALLOC_NEST_PARENT, type Hwpt, Iommufd } from '../../../lib/index.js';
import { HWPT_DATA_SELFTEST, MockDevice, selftestHwptData } from '../../../lib/testing.js';
import { pagingFaultSupported } from '../rig.js';

/** Iommufds a test opened; closeAll() (an afterEach) closes them. */
export const open: Iommufd[] = [];
export async function closeAll(): Promise<void> {
  for (const fd of open.splice(0)) await fd.close();
}

export type Kind = 'paging' | 'nested';
/** Paging HWPTs take a fault queue from 6.13; nested ones on every kernel the rig boots. */
export const kinds: Kind[] = pagingFaultSupported() ? ['paging', 'nested'] : ['nested'];

/** A fault-enabled HWPT for the mock device: paging on the IOAS, or nested on a NEST_PARENT one. */
export function faultHwpt(iommufd: Iommufd, ioasId: number, dev: MockDevice, queue: FaultQueue, kind: Kind): Hwpt {
  if (kind === 'paging') return iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioasId, faultQueue: queue });
  const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioasId, flags: HWPT_ALLOC_NEST_PARENT });
  return iommufd.allocHwpt({
    deviceId: dev.deviceId, parentId: parent.id, faultQueue: queue, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData(),
  });
}

/** An IOAS, a mock device on it, a fault queue and a fault-enabled HWPT the device is moved to. */
export function setup(kind: Kind, options?: FaultQueueOptions) {
  const iommufd = Iommufd.open();
  open.push(iommufd);
  const ioas = iommufd.allocIoas();
  const dev = MockDevice.create(iommufd, ioas.id);
  const queue = iommufd.allocFaultQueue(options);
  const hwpt = faultHwpt(iommufd, ioas.id, dev, queue, kind);
  dev.replace(hwpt.id);
  return { iommufd, ioas, dev, queue, hwpt };
}

export async function take(queue: FaultQueue, n: number): Promise<FaultGroup[]> {
  const out: FaultGroup[] = [];
  for (let i = 0; i < n; i++) {
    const r = await queue.next();
    if (r.done) throw new Error(`queue ended after ${i} of ${n} groups`);
    out.push(r.value);
  }
  return out;
}

/** Lets the event loop turn a few times so the pump can run and responses flush. */
export const settle = () => new Promise((r) => setTimeout(r, 50));

/** Open fds of this process. */
export const fdCount = () => readdirSync('/proc/self/fd').length;

/** Child-process fixtures (test/guest/fixtures): a crash, a leak or a hang is the child's result. */
export const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;

export interface Run { code: number | null; signal: string | null; stdout: string; stderr: string; ms: number }

/** Runs a fixture with node; kills it after `timeoutMs` (then signal is SIGKILL). */
export function node(args: string[], timeoutMs: number, onStdout?: (text: string, kill: () => void) => void, env?: NodeJS.ProcessEnv): Promise<Run> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  const kill = () => child.kill('SIGKILL');
  child.stdout.on('data', (d) => { stdout += d; onStdout?.(stdout, kill); });
  child.stderr.on('data', (d) => { stderr += d; });
  const timer = setTimeout(kill, timeoutMs);
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(timer);
    resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
  }));
}

export const json = (r: Run) => {
  expect(r.stderr).not.toMatch(/FATAL|Abort|Segmentation/);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
};
