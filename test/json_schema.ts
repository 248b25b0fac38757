// A small JSON Schema (2020-12) validator for the keywords schema/probe.schema.json uses. Any
// other keyword throws, so the schema cannot quietly rely on something that is not checked here.
type Schema = boolean | { [k: string]: unknown };

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', '$defs', '$comment', 'examples']);
const KEYWORDS = new Set(['type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'items', 'pattern', 'minimum', 'maximum', '$ref', 'allOf', 'oneOf']);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(v: unknown, t: string): boolean {
  const actual = typeOf(v);
  return actual === t || (t === 'number' && actual === 'integer');
}

/** Returns the list of violations ("path: message"); empty when `value` is valid. */
export function validate(root: Schema, value: unknown): string[] {
  const errors: string[] = [];
  const resolve = (ref: string): Schema => {
    if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
    let at: unknown = root;
    for (const part of ref.slice(2).split('/')) at = (at as Record<string, unknown>)?.[part];
    if (at === undefined) throw new Error(`unresolved $ref ${ref}`);
    return at as Schema;
  };
  const check = (schema: Schema, v: unknown, path: string, errors: string[]): void => {
    if (schema === true) return;
    if (schema === false) {
      errors.push(`${path}: not allowed`);
      return;
    }
    for (const k of Object.keys(schema)) {
      if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) throw new Error(`${path}: unsupported schema keyword ${k}`);
    }
    if (schema.$ref !== undefined) check(resolve(schema.$ref as string), v, path, errors);
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      if (!types.some((t) => typeMatches(v, t))) {
        errors.push(`${path}: expected ${types.join('|')}, got ${typeOf(v)}`);
        return;
      }
    }
    if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(v)) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
    if (schema.enum !== undefined && !(schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(v))) {
      errors.push(`${path}: ${JSON.stringify(v)} is not one of ${JSON.stringify(schema.enum)}`);
    }
    if (typeof v === 'string' && schema.pattern !== undefined && !new RegExp(schema.pattern as string, 'u').test(v)) {
      errors.push(`${path}: ${JSON.stringify(v)} does not match ${schema.pattern}`);
    }
    if (typeof v === 'number') {
      if (schema.minimum !== undefined && v < (schema.minimum as number)) errors.push(`${path}: ${v} < ${schema.minimum}`);
      if (schema.maximum !== undefined && v > (schema.maximum as number)) errors.push(`${path}: ${v} > ${schema.maximum}`);
    }
    if (schema.allOf !== undefined) for (const s of schema.allOf as Schema[]) check(s, v, path, errors);
    if (schema.oneOf !== undefined) {
      const passing = (schema.oneOf as Schema[]).filter((s) => {
        const own: string[] = [];
        check(s, v, path, own);
        return own.length === 0;
      });
      if (passing.length !== 1) errors.push(`${path}: matches ${passing.length} of the oneOf alternatives, not exactly one`);
    }
    if (typeOf(v) === 'object') {
      const obj = v as Record<string, unknown>;
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) errors.push(`${path}: missing required ${r}`);
      for (const [k, val] of Object.entries(obj)) {
        if (k in props) check(props[k], val, `${path}.${k}`, errors);
        else if (schema.additionalProperties !== undefined) check(schema.additionalProperties as Schema, val, `${path}.${k}`, errors);
      }
    }
    if (Array.isArray(v) && schema.items !== undefined) v.forEach((item, i) => check(schema.items as Schema, item, `${path}[${i}]`, errors));
  };
  check(root, value, '$', errors);
  return errors;
}
