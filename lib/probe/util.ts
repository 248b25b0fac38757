// Small helpers the probe's collectors share: errno names, sysfs reads that answer null instead of
// throwing, and the Finding constructor.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { basename } from 'node:path';
import { IommufdError } from '../core/errors.js';
import type { Finding, Tri } from './types.js';

const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);
// Name 95 the way libuv (and so every IommufdError) does.
errnoNames.set(constants.errno.ENOTSUP, 'ENOTSUP');

export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

export function codeOf(e: unknown): string {
  const code = e instanceof IommufdError ? e.code : e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

export function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

export function link(path: string): string | null {
  try {
    return basename(readlinkSync(path));
  } catch {
    return null;
  }
}

export function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export const finding = (status: Tri, detail: string, errno: string | null = null): Finding => ({ status, detail, errno });
