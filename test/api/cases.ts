// The cases test/api/spec.ts describes, generated, and how one is run and judged. A runner (host or
// guest) supplies the World the calls need and the receivers in their states: open (for the bad
// arguments, which must be refused before anything happens), closed, and fresh (for the valid call).
import { expect } from 'vitest';
import * as main from '../../lib/index.js';
import * as testing from '../../lib/testing.js';
import { type CallSpec, type Code, ENDED, type Param, type ReceiverKind, type Ty, type World } from './spec.js';

export type Expect =
  /** Refused: this code, a message that starts with the call and names `name`. */
  | { code: Code; name: string }
  /** Accepted: 'ok' it succeeds; 'kernel' it passes the checks and gets the kernel's word (success,
   *  or an IommufdError naming the syscall), never an argument error. */
  | { accept: 'ok' | 'kernel' };

export interface Case {
  spec: CallSpec;
  /** What the case tries: 'options.deviceId: negative (-1)'. */
  label: string;
  receiver: 'open' | 'closed' | 'fresh';
  args: (w: World) => unknown[];
  expect: Expect;
}

const TYPE = 'ERR_INVALID_ARG_TYPE';
const VALUE = 'ERR_INVALID_ARG_VALUE';
const RANGE = 'ERR_OUT_OF_RANGE';
const CLOSED = 'ERR_IOMMUFD_CLOSED';

interface Bad { label: string; value: (w: World, args: unknown[]) => unknown; code: Code; name?: string; args?: (w: World) => unknown[] }
const bad = (label: string, value: unknown, code: Code, name?: string): Bad => ({ label, value: () => value, code, name });

/** The bytes of a valid byte input, copied. */
function bytesOf(v: unknown): Uint8Array {
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) as ArrayBuffer);
  return new Uint8Array((v as ArrayBuffer).slice(0));
}
function shared(b: Uint8Array): Uint8Array {
  const s = new Uint8Array(new SharedArrayBuffer(b.byteLength));
  s.set(b);
  return s;
}

/** The wrong-type values every type refuses (null and undefined by the parameter's own rules). */
function wrongTypes(p: Param, values: [string, unknown][]): Bad[] {
  const out = values.map(([label, v]) => bad(label, v, TYPE));
  if (!p.nullable) out.push(bad('null', null, TYPE));
  if (!p.optional) out.push(bad('undefined (required)', undefined, TYPE));
  return out;
}

/** The bad values of a parameter's type, with the code each must get; `accept`: values of other kinds it must take. */
function classes(p: Param, ty: Ty): { bad: Bad[]; accept: { label: string; value: (w: World, args: unknown[]) => unknown }[] } {
  const accept: { label: string; value: (w: World, args: unknown[]) => unknown }[] = [];
  let out: Bad[];
  switch (ty.t) {
    case 'int': {
      const max = (w: World, args: unknown[]) => ty.maxAt?.(args, w) ?? ty.max;
      out = [
        ...wrongTypes(p, [['a string', '1'], ['an object', {}], ['an array', [1]], ['a boolean', true], ['a bigint (for a number)', BigInt(ty.min)]]),
        bad('negative', -1, RANGE), bad('NaN', NaN, RANGE), bad('a fraction', ty.min + 0.5, RANGE), bad('Infinity', Infinity, RANGE),
        bad('-Infinity', -Infinity, RANGE),
        { label: 'too large (max + 1)', value: (w, args) => max(w, args) + 1, code: RANGE },
      ];
      if (ty.min > 0) out.push(bad(`below ${ty.min}`, ty.min - 1, RANGE));
      break;
    }
    case 'number':
      out = [...wrongTypes(p, [['a string', '1'], ['an object', {}], ['a boolean', true], ['a bigint (for a number)', 1n]]),
        bad('NaN', NaN, RANGE), bad('Infinity', Infinity, RANGE), bad('negative', ty.min - 1, RANGE), bad('too large', ty.max * 2 + 1, RANGE)];
      break;
    case 'numberOf':
      out = [...wrongTypes(p, [['a string', String(ty.values[0])], ['an object', {}], ['a bigint (for a number)', BigInt(ty.values[0])]]),
        bad('not in the set (3)', 3, RANGE), bad('zero', 0, RANGE), bad('negative', -1, RANGE), bad('NaN', NaN, RANGE), bad('a fraction', 1.5, RANGE),
        bad('too large', 8, RANGE)];
      break;
    case 'u64':
      out = [...wrongTypes(p, [['a string', '1'], ['a number (for a bigint)', 1], ['an object', {}], ['a boolean', true]]),
        bad('negative', -1n, RANGE), bad('2n ** 64n', 2n ** 64n, RANGE)];
      break;
    case 'bool':
      out = wrongTypes(p, [['a string', 'true'], ['a number', 1], ['an object', {}]]);
      break;
    case 'string':
      out = wrongTypes(p, [['a number', 1], ['an object', {}], ['a bigint', 1n], ['a boolean', true], ['an array', ['x']]]);
      break;
    case 'path':
      out = [...wrongTypes(p, [['a number', 1], ['an object', {}], ['a bigint', 1n]]), bad('an empty string', '', VALUE)];
      break;
    case 'enum':
      out = [...wrongTypes(p, [['a number', 42], ['an object', {}], ['a bigint', 1n], ['a boolean', true]]),
        bad("'maybe'", 'maybe', VALUE), bad('an empty string', '', VALUE), bad('upper case', ty.values[0].toUpperCase(), VALUE)];
      break;
    case 'fn':
      out = wrongTypes(p, [['a string', 'x'], ['an object', {}], ['a number', 1], ['an array', []]]);
      break;
    case 'signal':
      out = wrongTypes(p, [['an object', {}], ['a string', 'x'], ['a number', 1], ['a look-alike', { aborted: false, addEventListener() {}, removeEventListener() {} }]]);
      break;
    case 'bytes':
      out = wrongTypes(p, [['a string', 'x'], ['a number', 4], ['an object', {}], ['an array', [1, 2, 3, 4]], ['a bigint', 1n]]);
      accept.push(
        { label: 'a DataView', value: (_w, a) => { const b = bytesOf(at(p, a)); return new DataView(b.buffer); } },
        { label: 'a view of a SharedArrayBuffer', value: (_w, a) => shared(bytesOf(at(p, a))) },
        { label: 'a DataView of a SharedArrayBuffer', value: (_w, a) => new DataView(shared(bytesOf(at(p, a))).buffer) },
        { label: 'a SharedArrayBuffer', value: (_w, a) => shared(bytesOf(at(p, a))).buffer },
        { label: 'an ArrayBuffer', value: (_w, a) => bytesOf(at(p, a)).buffer },
        { label: 'a Buffer', value: (_w, a) => Buffer.from(bytesOf(at(p, a))) },
      );
      break;
    case 'u8':
      out = [...wrongTypes(p, [['a string', 'x'], ['a number', 4], ['an object', {}], ['an array', [0]]]),
        { label: 'a DataView', value: (_w, a) => new DataView(bytesOf(at(p, a)).buffer), code: TYPE },
        { label: 'an ArrayBuffer', value: (_w, a) => bytesOf(at(p, a)).buffer, code: TYPE },
        { label: 'a SharedArrayBuffer', value: (_w, a) => shared(bytesOf(at(p, a))).buffer, code: TYPE },
        bad('a Uint16Array', new Uint16Array(16), TYPE)];
      accept.push(
        { label: 'a view of a SharedArrayBuffer', value: (_w, a) => shared(bytesOf(at(p, a))) },
        { label: 'a Buffer', value: (_w, a) => Buffer.from(bytesOf(at(p, a))) },
      );
      break;
    case 'dataView':
      out = [...wrongTypes(p, [['a string', 'x'], ['a number', 4], ['an object', {}]]),
        { label: 'a Uint8Array', value: (_w, a) => bytesOf(at(p, a)), code: TYPE },
        { label: 'an ArrayBuffer', value: (_w, a) => bytesOf(at(p, a)).buffer, code: TYPE }];
      accept.push({ label: 'a DataView of a SharedArrayBuffer', value: (_w, a) => new DataView(shared(bytesOf(at(p, a))).buffer) });
      break;
    case 'pciAddress':
      out = [...wrongTypes(p, [['a number', 1], ['an object', {}]]), bad('no domain', '00:01.0', VALUE), bad('upper case', '0000:00:0A.0', VALUE),
        bad('function 8', '0000:00:01.8', VALUE), bad('a trailing newline', '0000:00:01.0\n', VALUE), bad('an empty string', '', VALUE)];
      break;
    case 'cloneable':
      out = [bad('a function', () => 0, TYPE), bad('a symbol', Symbol('x'), TYPE)];
      break;
    case 'instance':
      out = wrongTypes(p, [['a string', 'x'], ['a number', 1], ['an object', {}], ['an array', []],
        ['a look-alike', { id: 1, closed: false, destroyed: false, fd: 3 }]]);
      if (ty.closable) out.push({ label: `a closed ${ty.cls}`, value: (w) => w.closedArg[ty.cls], code: CLOSED });
      if (ty.foreign) out.push({ label: `another Iommufd's ${ty.cls}`, value: (w) => w.foreign[ty.cls], code: VALUE });
      break;
    case 'target':
      out = [...wrongTypes(p, [['a string', 'x'], ['a boolean', true], ['a bigint (for a number)', 1n], ['an array', []]]),
        bad('negative', -1, RANGE), bad('0 (no object has id 0)', 0, RANGE), bad('a fraction', 1.5, RANGE), bad('NaN', NaN, RANGE),
        bad('2^32', 2 ** 32, RANGE), bad('an object without an id', {}, TYPE), bad('an object with a string id', { id: '1' }, TYPE),
        bad('an object with a negative id', { id: -1 }, RANGE),
        { label: 'a destroyed Ioas', value: (w) => w.closedArg.Ioas, code: CLOSED },
        { label: 'a destroyed Hwpt', value: (w) => w.closedArg.Hwpt, code: CLOSED },
        { label: "another Iommufd's Ioas", value: (w) => w.foreign.Ioas, code: VALUE }];
      break;
    case 'object':
      out = wrongTypes(p, [['a string', 'x'], ['a number', 1], ['an array', []], ['a boolean', true]]);
      break;
    case 'array':
      out = wrongTypes(p, [['a string', 'x'], ['an object', {}], ['a number', 1]]);
      break;
  }
  return { bad: [...out, ...(p.extra ?? [])], accept };
}

// The root parameter and the path below it of a parameter or field name ('options.faultQueue').
function locate(s: CallSpec, name: string): { index: number; path: string[] } {
  const keys = name.replace(/\[(\d+)\]/g, '.$1').split('.');
  const index = s.params.findIndex((p) => p.name === keys[0]);
  if (index < 0) throw new Error(`${s.call}: no parameter for ${name}`);
  return { index, path: keys.slice(1) };
}

/** The value at a parameter's place in `args`. */
function at(p: Param & { index?: number; path?: string[] }, args: unknown[]): unknown {
  let v: unknown = args[p.index!];
  for (const k of p.path!) v = (v as Record<string, unknown>)[k];
  return v;
}

/** `args` with the value at (index, path) replaced; objects on the way are copied, never changed. */
function replace(args: unknown[], index: number, path: string[], value: unknown): unknown[] {
  const out = [...args];
  while (out.length <= index) out.push(undefined);
  const set = (o: unknown, keys: string[]): unknown => {
    if (keys.length === 0) return value;
    const copy = (Array.isArray(o) ? [...o] : { ...((o ?? {}) as object) }) as Record<string, unknown>;
    copy[keys[0]] = set(copy[keys[0]], keys.slice(1));
    return copy;
  };
  out[index] = set(out[index], path);
  return out;
}

/** Every parameter, option field and array element, depth first; a field's cases vary its parent's base call unless it has its own. */
function fieldsOf(params: Param[], base?: Param['base']): Param[] {
  return params.flatMap((p) => {
    const q = p.base || !base ? p : { ...p, base };
    const inner = p.ty.t === 'object' ? fieldsOf(p.ty.fields, q.base)
      : p.ty.t === 'array' ? fieldsOf([{ name: `${p.name}[0]`, ty: p.ty.of }], q.base) : [];
    return [q, ...inner];
  });
}

/** The cases of one call: each bad class of each parameter and field, the closed receiver, the valid call. */
export function casesOf(s: CallSpec): Case[] {
  if (s.internal || !s.valid) return [];
  const cases: Case[] = [];
  for (const param of fieldsOf(s.params)) {
    const { index, path } = locate(s, param.name);
    const where = Object.assign({}, param, { index, path });
    const base = param.base ?? s.valid;
    const { bad: bads, accept } = classes(where, param.ty);
    for (const b of bads) {
      cases.push({
        spec: s, label: `${param.name}: ${b.label}`, receiver: 'open', expect: { code: b.code, name: b.name ?? param.name },
        args: b.args ?? ((w) => { const args = base(w); return replace(args, index, path, b.value(w, args)); }),
      });
    }
    for (const a of param.accept === 'none' ? [] : accept) {
      cases.push({
        spec: s, label: `${param.name}: ${a.label} (accepted)`, receiver: 'fresh', expect: { accept: (param.accept as 'ok' | 'kernel' | undefined) ?? 'kernel' },
        args: (w) => { const args = base(w); return replace(args, index, path, a.value(w, args)); },
      });
    }
  }
  if (s.closed === 'throws') {
    cases.push({ spec: s, label: 'a closed receiver', receiver: 'closed', args: s.valid, expect: { code: ENDED.includes(s.receiver!) ? 'ERR_IOMMUFD_BATCH_ENDED' : CLOSED, name: '' } });
    for (const [i, args] of (s.closedOk?.({} as World) ?? []).entries()) {
      cases.push({ spec: s, label: `a closed receiver, allowed arguments ${i + 1}`, receiver: 'closed', args: () => args, expect: { accept: 'ok' } });
    }
  } else if (s.closed === 'ok') {
    cases.push({ spec: s, label: 'a closed receiver (allowed)', receiver: 'closed', args: s.valid, expect: { accept: 'ok' } });
  }
  cases.push({ spec: s, label: 'a valid call', receiver: 'fresh', args: s.valid, expect: { accept: s.outcome ?? 'ok' } });
  return cases;
}

const classes_: Record<string, unknown> = { ...main, ...testing };

/** Makes the call: a thrown error or the result (a promise for async calls, awaited by the caller). */
export function invoke(s: CallSpec, receiver: unknown, args: unknown[]): unknown {
  const name = s.call.replace(/^new /, '').split('.');
  switch (s.kind) {
    case 'function': return (classes_[name[0]] as (...a: unknown[]) => unknown)(...args);
    case 'static': return (classes_[name[0]] as Record<string, (...a: unknown[]) => unknown>)[name[1]](...args);
    case 'constructor': return new (classes_[name[0]] as new (...a: unknown[]) => unknown)(...args);
    case 'getter': return (receiver as Record<string, unknown>)[name[1]];
    case 'setter': (receiver as Record<string, unknown>)[name[1]] = args[0]; return undefined;
    case 'method': return (receiver as Record<string, (...a: unknown[]) => unknown>)[name[1]](...args);
  }
}

export type Outcome = { threw: unknown } | { rejected: unknown } | { value: unknown };

/** Runs a call; an async call's promise is awaited (a sync throw from it is recorded as such). */
export async function outcomeOf(s: CallSpec, receiver: unknown, args: unknown[]): Promise<Outcome> {
  let value: unknown;
  try {
    value = invoke(s, receiver, args);
  } catch (e) {
    return { threw: e };
  }
  if (s.async && value instanceof Promise) {
    try {
      return { value: await value };
    } catch (e) {
      return { rejected: e };
    }
  }
  return { value };
}

/** The same, synchronously: for calls made inside a batch handler. */
export function outcomeSync(s: CallSpec, receiver: unknown, args: unknown[]): Outcome {
  try {
    return { value: invoke(s, receiver, args) };
  } catch (e) {
    return { threw: e };
  }
}

const classOf: Record<string, string> = { ERR_INVALID_ARG_TYPE: 'TypeError', ERR_INVALID_ARG_VALUE: 'TypeError', ERR_OUT_OF_RANGE: 'RangeError', ERR_IOMMUFD_CLOSED: 'IommufdError', ERR_IOMMUFD_BATCH_ENDED: 'IommufdError' };
const ARG_CODES = ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE'];

const show = (e: unknown) => (e instanceof Error ? `${e.name} ${(e as { code?: string }).code ?? '(no code)'}: ${e.message}` : String(e));

/** Judges an outcome: undefined if it is what the case expects, else what went wrong. */
export function judge(c: Case, o: Outcome): string | undefined {
  const error = 'threw' in o ? o.threw : 'rejected' in o ? o.rejected : undefined;
  const failed = 'threw' in o || 'rejected' in o;
  if ('code' in c.expect) {
    if (!failed) return 'accepted';
    if (c.spec.async && 'threw' in o) return `threw instead of rejecting: ${show(error)}`;
    const e = error as Error & { code?: unknown };
    const want = classOf[c.expect.code];
    if (!(e instanceof Error)) return `not an Error: ${String(e)}`;
    if (e.name !== want || (want !== 'IommufdError' && !(e instanceof (want === 'TypeError' ? TypeError : RangeError)))) return `wanted a ${want} ${c.expect.code}, got ${show(e)}`;
    if (e.code !== c.expect.code) return `wanted ${c.expect.code}, got ${show(e)}`;
    if (!e.message.startsWith(`${c.spec.call}: `)) return `message does not start with "${c.spec.call}: ": ${e.message}`;
    if (!e.message.includes(c.expect.name)) return `message does not name ${c.expect.name}: ${e.message}`;
    return undefined;
  }
  if (!failed) return undefined;
  const e = error as Error & { code?: unknown; syscall?: unknown };
  if (c.expect.accept === 'kernel' && e instanceof main.IommufdError && typeof e.syscall === 'string' && !ARG_CODES.includes(String(e.code))) return undefined;
  return `refused: ${show(e)}`;
}

/** Fails the test with every case that went wrong, one per line. */
export function expectNoFailures(call: string, failures: string[]): void {
  expect(failures, `${call}: ${failures.length} cases failed`).toEqual([]);
}

/** What a runner gives the walk: worlds (a new one for each valid call) and closed receivers. */
export interface Harness {
  world(): World | Promise<World>;
  /** Receivers of this kind in their closed states (closed, destroyed, of a closed iommufd, an ended
   *  batch), each with the case's arguments made from its own world before it was closed. */
  closed(kind: ReceiverKind, args: (w: World) => unknown[]): Closed[] | Promise<Closed[]>;
  /** Releases a world. */
  done?(w: World): void | Promise<void>;
}

export interface Closed { receiver: unknown; args: unknown[] }

export interface Walked { call: string; cases: number; runs: number; failures: string[] }

/** Walks one call's cases: bad arguments on an open receiver, closed receivers, fresh worlds for the accepted and valid calls. */
export async function walk(s: CallSpec, h: Harness, only?: (c: Case) => boolean): Promise<Walked> {
  // The open receiver's cases first, then the closed ones, then the fresh worlds: a runner with one
  // device may have to close the open receiver's to make another.
  const order = { open: 0, closed: 1, fresh: 2 };
  const cases = casesOf(s).filter((c) => only?.(c) ?? true).sort((a, b) => order[a.receiver] - order[b.receiver]);
  const failures: string[] = [];
  let runs = 0;
  const shared = await h.world();
  try {
    for (const c of cases) {
      const fresh = c.receiver === 'fresh' ? await h.world() : undefined;
      const w = fresh ?? shared;
      try {
        const receivers: { receiver: unknown; args?: unknown[] }[] = c.receiver === 'closed'
          ? await h.closed(s.receiver!, c.args) : [{ receiver: s.receiver ? w[s.receiver] : undefined }];
        if (receivers.length === 0) failures.push(`${c.label}: the runner has no closed ${s.receiver}`);
        for (const [k, { receiver, args }] of receivers.entries()) {
          if (fresh) s.before?.(w);
          const o = await outcomeOf(s, receiver, args ?? c.args(w));
          runs++;
          const f = judge(c, o);
          if (f) failures.push(`${c.label}${receivers.length > 1 ? ` (closed receiver ${k + 1})` : ''}: ${f}`);
          if (fresh && 'value' in o) await s.after?.(o.value, w);
        }
      } catch (e) {
        failures.push(`${c.label}: the runner failed: ${show(e)}`);
      } finally {
        if (fresh) await h.done?.(fresh);
      }
    }
  } finally {
    await h.done?.(shared);
  }
  return { call: s.call, cases: cases.length, runs, failures };
}

export type Makers = { [K in keyof World]?: (w: World) => World[K] };

/** A World whose members are made when first used (a valid call's world makes only what it needs). */
export function lazyWorld(makers: Makers): World & { made: () => (keyof World)[] } {
  const made = new Map<string, unknown>();
  const w = { made: () => [...made.keys()] as (keyof World)[] } as World & { made: () => (keyof World)[] };
  for (const [key, make] of Object.entries(makers)) {
    Object.defineProperty(w, key, {
      get() {
        if (!made.has(key)) made.set(key, (make as (w: World) => unknown)(w));
        return made.get(key);
      },
      enumerable: true,
    });
  }
  return w;
}
