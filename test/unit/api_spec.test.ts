// test/api/spec.ts must describe every public call: each function the entry points export, and
// each constructor, static, method, getter and setter of each class they export (its prototype
// chain up to Object, Error or EventEmitter; '_'-prefixed names and symbols are internals). A new
// public call without a spec entry fails here, and so does an entry for a call that is gone.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import * as main from '../../lib/index.js';
import * as testing from '../../lib/testing.js';
import { casesOf } from '../api/cases.js';
import { type CallSpec, spec } from '../api/spec.js';

const isClass = (v: unknown): v is new (...a: never[]) => unknown => typeof v === 'function' && /^class\b/.test(Function.prototype.toString.call(v));
const STOP = new Set<unknown>([Object.prototype, Error.prototype, EventEmitter.prototype, Function.prototype]);

/** Every public call of the entry points, as `kind call` ('method Iommufd.allocHwpt'). */
function publicCalls(): string[] {
  const calls = new Set<string>();
  for (const [name, value] of Object.entries({ ...main, ...testing })) {
    if (typeof value !== 'function') continue;
    if (!isClass(value)) {
      calls.add(`function ${name}`);
      continue;
    }
    calls.add(`constructor new ${name}`);
    for (const key of Object.getOwnPropertyNames(value)) {
      if (['length', 'name', 'prototype'].includes(key) || key.startsWith('_')) continue;
      calls.add(`static ${name}.${key}`);
    }
    for (let proto = value.prototype as object; proto && !STOP.has(proto); proto = Object.getPrototypeOf(proto)) {
      for (const key of Object.getOwnPropertyNames(proto)) {
        if (key === 'constructor' || key.startsWith('_')) continue;
        const d = Object.getOwnPropertyDescriptor(proto, key)!;
        if (d.get) calls.add(`getter ${name}.${key}`);
        if (d.set) calls.add(`setter ${name}.${key}`);
        if (typeof d.value === 'function') calls.add(`method ${name}.${key}`);
      }
    }
  }
  return [...calls].sort();
}

const described = (s: CallSpec) => `${s.kind} ${s.call}`;

describe('test/api/spec.ts', () => {
  it('describes every public call of iommufd and iommufd/testing', () => {
    const have = new Set(spec.map(described));
    expect(publicCalls().filter((c) => !have.has(c)), 'public calls with no spec entry').toEqual([]);
  });

  it('describes nothing that is not there (an internal entry names a \'_\' internal or a constructor)', () => {
    const calls = new Set(publicCalls());
    const stale = spec.filter((s) => !calls.has(described(s)) && !(s.internal && s.call.split('.')[1]?.startsWith('_')));
    expect(stale.map(described)).toEqual([]);
  });

  it('names each call once; every walked call has a valid call and cases', () => {
    const names = spec.map(described);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    for (const s of spec.filter((x) => !x.internal)) {
      expect(s.valid, s.call).toBeTypeOf('function');
      expect(casesOf(s).length, s.call).toBeGreaterThan(0);
      if (s.kind === 'method' || s.kind === 'getter' || s.kind === 'setter') expect(s.receiver, s.call).toBeDefined();
    }
  });

  it('counts', () => {
    const walked = spec.filter((s) => !s.internal);
    const byRunner: Record<string, CallSpec[]> = {};
    for (const s of walked) (byRunner[s.runner] ??= []).push(s);
    const params = (ps: CallSpec['params']): number => ps.reduce((n, p) => n + 1 + (p.ty.t === 'object' ? params(p.ty.fields) : 0), 0);
    const line = (list: CallSpec[]) => `${list.length} calls, ${list.reduce((n, s) => n + params(s.params), 0)} parameters and option fields, ${list.reduce((n, s) => n + casesOf(s).length, 0)} cases`;
    console.log(`spec: ${line(walked)}; ${spec.length - walked.length} listed, not walked (internal)`);
    for (const [runner, list] of Object.entries(byRunner)) console.log(`  ${runner}: ${line(list)}`);
    console.log(`public calls found in the entry points: ${publicCalls().length}`);
  });
});
