// The one layer of argument checks every public call makes before the addon sees a value (the
// addon keeps its own checks as a last line; a user never sees them). Errors are Node's shapes:
//   wrong type                         TypeError  ERR_INVALID_ARG_TYPE
//   right type, out of range           RangeError ERR_OUT_OF_RANGE  (negative, NaN, a fraction,
//                                      Infinity, too large; a number not in a numeric set)
//   right type, not an allowed value   TypeError  ERR_INVALID_ARG_VALUE (a string not in the set,
//                                      a malformed PCI address, an object of another Iommufd)
//   a closed receiver or argument      IommufdError ERR_IOMMUFD_CLOSED (errors.ts: closedError)
// and the message is `<Call>: <name> must be <what>, got <value>`, where <Call> is the call as a
// user writes it ('Iommufd.allocHwpt', 'decodeVevent') and <name> the public parameter or option
// ('options.deviceId'). Every check is one typeof and a range test; the error is built only when
// it fails.
import { closedError } from './errors.js';

const U32_MAX = 2 ** 32 - 1;
const U64_MAX = 2n ** 64n - 1n;

/** How a message shows the value it got, as Node's own errors do. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'undefined': return 'undefined';
    case 'function': return `function ${value.name || '<anonymous>'}`;
    case 'object': {
      if (Array.isArray(value)) return 'an array';
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return `an instance of ${typeof name === 'string' && name !== '' ? name : 'Object'}`;
    }
    case 'string': return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)}`;
    case 'bigint': return `bigint ${value}n`;
    case 'symbol': return `symbol ${value.description ?? ''}`;
    default: return `${typeof value} ${String(value)}`;
  }
}

/** Node's shape for a wrong argument type. */
export function invalidArgType(call: string, name: string, expected: string, actual: unknown): TypeError {
  return Object.assign(new TypeError(`${call}: ${name} must be ${expected}, got ${describeValue(actual)}`), { code: 'ERR_INVALID_ARG_TYPE' });
}

/** Node's shape for a value of the right type that is not one of the allowed ones. */
export function invalidArgValue(call: string, name: string, expected: string, actual: unknown): TypeError {
  return Object.assign(new TypeError(`${call}: ${name} must be ${expected}, got ${describeValue(actual)}`), { code: 'ERR_INVALID_ARG_VALUE' });
}

/** Node's shape for a value out of range. */
export function outOfRange(call: string, name: string, range: string, actual: unknown): RangeError {
  return Object.assign(new RangeError(`${call}: ${name} must be ${range}, got ${describeValue(actual)}`), { code: 'ERR_OUT_OF_RANGE' });
}

const span = (min: number, max: number) => `an integer from ${min} to ${max}`;

/** The error for a value that is not an integer in [min, max] (the failing path of every integer check). */
export function integerError(call: string, name: string, value: unknown, min: number, max: number, what = span(min, max)): Error {
  return typeof value === 'number' ? outOfRange(call, name, what, value) : invalidArgType(call, name, 'an integer', value);
}

/** An integer in [min, max]. */
export function checkInteger(call: string, name: string, value: unknown, min: number, max: number): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  throw integerError(call, name, value, min, max);
}

/** An optional integer in [min, max]: undefined, or the number. */
export function optionalInteger(call: string, name: string, value: unknown, min: number, max: number): number | undefined {
  return value === undefined ? undefined : checkInteger(call, name, value, min, max);
}

/** An unsigned 32-bit integer (a u32 field of the uAPI). */
export function checkU32(call: string, name: string, value: unknown): number {
  return checkInteger(call, name, value, 0, U32_MAX);
}

/** An iommufd object id: ids start at 1 and are u32 fields. */
export function checkId(call: string, name: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= U32_MAX) return value;
  throw integerError(call, name, value, 1, U32_MAX, `an object id (an integer from 1 to ${U32_MAX})`);
}

/** A finite number in [min, max], fractions allowed. */
export function checkNumber(call: string, name: string, value: unknown, min: number, max: number): number {
  if (typeof value === 'number' && value >= min && value <= max) return value; // NaN fails both
  if (typeof value !== 'number') throw invalidArgType(call, name, 'a number', value);
  throw outOfRange(call, name, `a number from ${min} to ${max}`, value);
}

/** A number out of a small set (an access width): anything else of type number is out of range. */
export function checkNumberOf<T extends number>(call: string, name: string, value: unknown, allowed: readonly T[]): T {
  if (allowed.includes(value as T)) return value as T;
  const list = allowed.length === 2 ? `${allowed[0]} or ${allowed[1]}` : `${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}`;
  if (typeof value !== 'number') throw invalidArgType(call, name, `${list} (a number)`, value);
  throw outOfRange(call, name, list, value);
}

/** A bigint in 0..2^64-1 (a u64 field); a number is the wrong type. */
export function checkU64(call: string, name: string, value: unknown): bigint {
  if (typeof value === 'bigint' && value >= 0n && value <= U64_MAX) return value;
  if (typeof value !== 'bigint') throw invalidArgType(call, name, 'a bigint', value);
  throw outOfRange(call, name, 'a bigint from 0n to 2n ** 64n - 1n', value);
}

export function optionalU64(call: string, name: string, value: unknown): bigint | undefined {
  return value === undefined ? undefined : checkU64(call, name, value);
}

export function optionalBoolean(call: string, name: string, value: unknown): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw invalidArgType(call, name, 'a boolean', value);
}

export function checkString(call: string, name: string, value: unknown): string {
  if (typeof value === 'string') return value;
  throw invalidArgType(call, name, 'a string', value);
}

export function checkFunction<F extends Function>(call: string, name: string, value: unknown): F {
  if (typeof value === 'function') return value as F;
  throw invalidArgType(call, name, 'a function', value);
}

export function optionalFunction<F extends Function>(call: string, name: string, value: unknown): F | undefined {
  return value === undefined ? undefined : checkFunction<F>(call, name, value);
}

/** One of a set of strings: another type is ERR_INVALID_ARG_TYPE, another string ERR_INVALID_ARG_VALUE. */
export function checkOneOf<T extends string>(call: string, name: string, value: unknown, allowed: readonly T[]): T {
  if (allowed.includes(value as T)) return value as T;
  const list = allowed.map((a) => `'${a}'`).join(' or ');
  if (typeof value !== 'string') throw invalidArgType(call, name, `${list} (a string)`, value);
  throw invalidArgValue(call, name, list, value);
}

/** An options object (plain or not; not null, not an array); undefined is {} when `optional`. */
export function checkOptions<T extends object>(call: string, value: unknown, optional: boolean, name = 'options'): T {
  if (value === undefined && optional) return {} as T;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as T;
  throw invalidArgType(call, name, 'an object', value);
}

export function optionalSignal(call: string, name: string, value: unknown): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  throw invalidArgType(call, name, 'an AbortSignal', value);
}

/**
 * Bytes the call reads (driver data, memory to map, data to write): an ArrayBuffer, a
 * SharedArrayBuffer or any view of either (typed array, DataView, Buffer), as a Uint8Array over
 * the same memory (no copy).
 */
export function checkBytes(call: string, name: string, value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer)) return new Uint8Array(value);
  throw invalidArgType(call, name, 'an ArrayBuffer, a SharedArrayBuffer, a typed array or a DataView', value);
}

/** A Uint8Array (a Buffer too), over any kind of buffer. */
export function checkUint8Array(call: string, name: string, value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw invalidArgType(call, name, 'a Uint8Array', value);
}

/** A DataView, over any kind of buffer. */
export function checkDataView(call: string, name: string, value: unknown): DataView {
  if (value instanceof DataView) return value;
  throw invalidArgType(call, name, 'a DataView', value);
}

/** An offset into `view` that leaves `size` bytes. */
export function checkSpan(call: string, name: string, offset: unknown, size: number, view: { byteLength: number }): number {
  if (typeof offset === 'number' && Number.isInteger(offset) && offset >= 0 && offset + size <= view.byteLength) return offset;
  const max = view.byteLength - size;
  throw integerError(call, name, offset, 0, max,
    max < 0 ? `an offset of ${size} bytes within a view, but the view has only ${view.byteLength}` : `an integer from 0 to ${max} (${size} bytes within the ${view.byteLength}-byte view)`);
}

/**
 * An instance of `cls` (a lib class): anything else is ERR_INVALID_ARG_TYPE; a closed one
 * (`isClosed`) ERR_IOMMUFD_CLOSED.
 */
export function checkInstance<T>(call: string, name: string, value: unknown, cls: Function & { prototype: T }, what: string,
  isClosed?: (v: T) => boolean): T {
  if (!(value instanceof cls)) throw invalidArgType(call, name, what, value);
  if (isClosed?.(value as T)) throw closedError(call, `${name} (${cls.name})`);
  return value as T;
}

/**
 * The objects an Iommufd makes: another Iommufd's (a foreign object) is of the right type but the
 * wrong value, ERR_INVALID_ARG_VALUE: its id names some other object, or none, in this one.
 */
export function checkSameIommufd(call: string, name: string, value: { iommufd: unknown }, iommufd: unknown, expected: string): void {
  if (value.iommufd !== iommufd) throw invalidArgValue(call, name, expected, value);
}

/** The fd of an iommufd that must be open for `call`. */
export function iommufdFd(call: string, iommufd: { readonly closed: boolean; readonly fd: number }): number {
  if (iommufd.closed) throw closedError(call, 'its iommufd');
  return iommufd.fd;
}

/** The index-check failure of the hot paths (FaultBatch, VeventBatch): built only when it fails. */
export function indexError(call: string, name: string, value: unknown, count: number): Error {
  if (typeof value !== 'number') return invalidArgType(call, name, 'an integer', value);
  return outOfRange(call, name, count > 0 ? `an integer from 0 to ${count - 1}` : 'an index, but there are none', value);
}
