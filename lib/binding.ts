// The native addon, loaded once per process (and once per worker: its state is per environment).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface HwInfoRaw {
  type: number;
  capabilities: bigint;
  maxPasidLog2: number;
  data: Uint8Array;
}

export interface NativeFaultPump {
  start(): void;
  stop(): void;
  read(): void;
  write(responses: Uint8Array): Int32Array | undefined;
  close(): void;
}

export interface Binding {
  setErrorClass(cls: Function): void;
  open(path?: string): number;
  close(fd: number): void;
  destroy(fd: number, id: number): void;
  getHwInfo(fd: number, devId: number, dataLen?: number): HwInfoRaw;
  ioasAlloc(fd: number): number;
  ioasIovaRanges(fd: number, ioasId: number): { ranges: { start: bigint; last: bigint }[]; alignment: bigint };
  ioasMap(fd: number, ioasId: number, memory: ArrayBuffer | ArrayBufferView, iova: bigint | undefined, flags: number): bigint;
  ioasUnmap(fd: number, ioasId: number, iova: bigint, length: bigint): bigint;
  hwptAlloc(fd: number, options: { devId: number; ptId: number; flags?: number; faultId?: number; dataType?: number; data?: Uint8Array }): number;
  faultQueueAlloc(fd: number): { id: number; fd: number };
  FaultPump: new (
    faultFd: number,
    onBatch: (view: Uint8Array, byteLength: number) => void,
    onError: (err: Error) => void,
    bufferRecords?: number,
  ) => NativeFaultPump;
  selftest: {
    mockDomain(fd: number, ptId: number): { stdevId: number; hwptId: number; idevId: number };
    mockDomainReplace(fd: number, stdevId: number, ptId: number): void;
    triggerIopf(fd: number, fault: { devId: number; pasid?: number; grpid?: number; perm?: number; addr?: bigint }, count?: number): void;
  };
}

// lib/ (sources, under vitest) and dist/ (built) both sit one level below the package root.
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
export const binding: Binding = require('node-gyp-build')(root);
