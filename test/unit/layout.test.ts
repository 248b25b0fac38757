// The layout of lib/ shows the design, and this keeps it so: folders by concern whose imports run
// one way (entry points -> concerns -> core -> the addon), no import circle anywhere (type-only
// imports count: they are what ties a reader's understanding in a knot), entry points that only
// hand names on, and no source file grown into a warehouse.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const lib = join(root, 'lib');

// Lower ranks are imported by higher ones, never the reverse; folders of one rank do not import
// each other. '.' is the two entry points (index.ts, testing.ts).
const RANK: Record<string, number> = { core: 0, fault: 1, vevent: 1, objects: 2, device: 3, paging: 3, testing: 4, probe: 5, '.': 6 };

const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
const sources = walk(lib).filter((f) => /\.(ts|mts|cts|mjs|cjs)$/.test(f));

/** lib-relative paths of the lib files `file` imports (static, dynamic and require), types included. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)'(\.[^']+)'/gm)].map((m) => m[1]);
  return specs.map((s) => {
    const target = normalize(join(dirname(file), s)).replace(/\.js$/, '.ts');
    const candidates = [target, target.replace(/\.cjs$/, '.cjs'), target.replace(/\.mjs$/, '.mjs')];
    const found = candidates.find((c) => sources.includes(c));
    if (!found) throw new Error(`${relative(root, file)} imports ${s}, which is no file in lib/`);
    return relative(lib, found);
  });
}

const graph = new Map(sources.map((f) => [relative(lib, f), importsOf(f)]));
const folderOf = (f: string) => (f.includes('/') ? f.split('/')[0] : '.');

describe('lib/ layout', () => {
  it('every folder is a known concern', () => {
    expect([...new Set([...graph.keys()].map(folderOf))].sort()).toEqual(Object.keys(RANK).sort());
  });

  it('imports between folders run one way: entry points -> concerns -> core', () => {
    const wrong: string[] = [];
    for (const [file, deps] of graph) {
      for (const dep of deps) {
        const [a, b] = [folderOf(file), folderOf(dep)];
        if (a !== b && RANK[b] >= RANK[a]) wrong.push(`${file} -> ${dep}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('no import circle, not even inside a folder', () => {
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        circles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    expect(circles).toEqual([]);
  });

  it('the entry points define nothing: they hand names on', () => {
    for (const entry of ['index.ts', 'testing.ts']) {
      const code = readFileSync(join(lib, entry), 'utf8').replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
      const statements = code.split(';').map((s) => s.trim()).filter(Boolean);
      for (const s of statements) expect(s, entry).toMatch(/^export (\*|type \{|\{)[\s\S]*\bfrom '\.\/[^']+'$/);
    }
  });

  it('no source file in lib/ or native/ over 500 lines', () => {
    const big = [...walk(lib), ...walk(join(root, 'native'))]
      .map((f) => ({ f: relative(root, f), lines: readFileSync(f, 'utf8').split('\n').length }))
      .filter((x) => x.lines > 500);
    expect(big).toEqual([]);
  });
});
