// The README and docs/*.md stay true to the repository: every relative link and #anchor resolves,
// every `npm run X` and `npx iommufd-X` they name exists in package.json, and the option tables of
// the rig (docs/rig.md) and of the guest-suite runner (docs/testing.md) list exactly the options
// the scripts' own usage text lists, and docs/errors.md's "Every code" table has a row for each of
// the library's error codes (ErrorCodes) and no code the library does not throw. (The probe's
// table is checked by probe.test.ts.)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../lib/core/errors.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const read = (file: string) => readFileSync(join(root, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; bin: Record<string, string> };

/** The markdown with fenced code blocks blanked out (line numbers kept). */
function withoutFences(md: string): string {
  let fence: string | undefined;
  return md.split('\n').map((line) => {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (m && (fence === undefined || (m[1][0] === fence[0] && m[1].length >= fence.length && line.trim() === m[1]))) {
      fence = fence === undefined ? m[1] : undefined;
      return '';
    }
    return fence === undefined ? line : '';
  }).join('\n');
}

/** GitHub's heading anchor: the rendered text, lower-cased, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/`([^`]*)`/g, '$1') // code spans: their content
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/\*+/g, ''); // emphasis
  return text.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** Every anchor a markdown file's headings make, duplicates numbered as GitHub numbers them. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of withoutFences(md).matchAll(/^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** [text](target) links outside code, with their line numbers. */
function links(md: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  withoutFences(md).split('\n').forEach((raw, i) => {
    const line = raw.replace(/(`+)(?:(?!\1).)+?\1/g, 'code'); // code spans are not links
    for (const m of line.matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ target: m[1], line: i + 1 });
  });
  return out;
}

/** The first table whose header row starts with `| option |`: each row's code spans that name options, in order. */
function optionTable(md: string): string[][] {
  const lines = md.split('\n');
  const start = lines.findIndex((l) => /^\|\s*option\s*\|/.test(l));
  if (start < 0) return [];
  const rows: string[][] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    const first = /^\|((?:[^|\\]|\\.)*)\|/.exec(l)?.[1] ?? '';
    rows.push([...first.matchAll(/`([^`]+)`/g)].map((m) => m[1].replace(/\\\|/g, '|')).filter((o) => o.startsWith('-')));
  }
  return rows;
}

/** The row text of option table rows, code spans unwrapped and whitespace collapsed. */
function optionRows(md: string): string[] {
  const lines = md.split('\n');
  const start = lines.findIndex((l) => /^\|\s*option\s*\|/.test(l));
  const rows: string[] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    rows.push(l.replace(/\\\|/g, '|').replace(/`/g, '').replace(/\s+/g, ' '));
  }
  return rows;
}

describe('links in README.md and docs/*.md', () => {
  it('finds the files and their links', () => {
    expect(docs).toContain('README.md');
    expect(docs.length).toBeGreaterThan(5);
    expect(links(read('README.md')).length).toBeGreaterThan(5);
  });

  it('makes GitHub anchors', () => {
    expect(slug('Real page requests: `--qemu iopf`')).toBe('real-page-requests---qemu-iopf');
    expect(slug('What the kernel does (and this library relies on)')).toBe('what-the-kernel-does-and-this-library-relies-on');
    expect(slug('vIOMMU events: `VeventQueue`')).toBe('viommu-events-veventqueue');
    expect(slug('The probe: `iommufd-probe`')).toBe('the-probe-iommufd-probe');
    expect(slug('fault_queue and **bold**')).toBe('fault_queue-and-bold');
    expect([...anchors('# A\n## A\n```\n# not a heading\n```\n### A b\n')]).toEqual(['a', 'a-1', 'a-b']);
  });

  it.each(docs)('%s: every relative link reaches a file, and every #anchor a heading', (file) => {
    const broken: string[] = [];
    for (const { target, line } of links(read(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const hash = target.indexOf('#');
      const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const to = path === '' ? join(root, file) : resolve(root, dirname(file), path);
      const where = `${file}:${line}: ${target}`;
      if (!to.startsWith(`${root}/`) && to !== root) broken.push(`${where} (outside the repository)`);
      else if (!existsSync(to)) broken.push(`${where} (no ${relative(root, to)})`);
      else if (anchor !== undefined) {
        if (!to.endsWith('.md')) broken.push(`${where} (an anchor into a file that is not markdown)`);
        else if (!anchors(readFileSync(to, 'utf8')).has(anchor)) broken.push(`${where} (no heading "#${anchor}" in ${relative(root, to)})`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('commands the README and docs name', () => {
  it('every `npm run X` and `npm test` in README.md is a package.json script', () => {
    const readme = read('README.md');
    const named = [...readme.matchAll(/\bnpm run ([\w:.-]+)/g)].map((m) => m[1]);
    expect(named).toContain('demo');
    if (/\bnpm test\b/.test(readme)) named.push('test');
    expect(named).toContain('test');
    expect([...new Set(named)].filter((s) => !(s in pkg.scripts))).toEqual([]);
  });

  it('every `npm run X` in docs/*.md is a package.json script, and every `npx iommufd-X` a bin', () => {
    const missing: string[] = [];
    for (const file of docs) {
      const md = read(file);
      for (const m of md.matchAll(/\bnpm run ([\w:.-]+)/g)) if (!(m[1] in pkg.scripts)) missing.push(`${file}: npm run ${m[1]}`);
      for (const m of md.matchAll(/\bnpx (iommufd-[\w-]+)/g)) if (!(m[1] in pkg.bin)) missing.push(`${file}: npx ${m[1]}`);
    }
    expect(missing).toEqual([]);
  });
});

describe("the README's project layout", () => {
  it('has a row for every folder of lib/ and no row for a folder that is gone', () => {
    const rows = [...read('README.md').matchAll(/^\| `(lib\/[\w-]+)` \|/gm)].map((m) => m[1]).sort();
    const folders = readdirSync(join(root, 'lib'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `lib/${d.name}`).sort();
    expect(rows).toEqual(folders);
  });
});

describe('option tables', () => {
  it('docs/rig.md lists exactly the options `iommufd-rig --help` lists, with their arguments and defaults', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts/rig.mjs'), '--help'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    const usage = r.stdout;
    expect(usage).toMatch(/^usage: iommufd-rig/);
    // Option lines start with two spaces and a dash; their continuation lines with more spaces.
    const entries: { forms: string[]; text: string }[] = [];
    for (const line of usage.split('\n')) {
      const m = /^ {2}(-\S.*?)(?: {2,}(.*)|$)/.exec(line);
      if (m) entries.push({ forms: m[1].split(/,\s*/), text: m[2] ?? '' });
      else if (/^ {3,}\S/.test(line) && entries.length > 0) entries[entries.length - 1].text += ` ${line.trim()}`;
    }
    expect(entries.map((e) => e.forms[0])).toContain('--kernel newest|6.12|PATH');
    const md = read('docs/rig.md');
    const table = optionTable(md);
    expect(table.flat().sort()).toEqual(entries.flatMap((e) => e.forms).sort());
    // Each default the usage states is in that option's row.
    const rows = optionRows(md);
    for (const e of entries) {
      const row = rows.find((x) => x.startsWith(`| ${e.forms[0]} `) || x.startsWith(`| ${e.forms[0]},`));
      expect(row, e.forms.join(', ')).toBeDefined();
      for (const d of e.text.matchAll(/\(([^()]*\bdefault\b[^()]*)\)/g)) expect(row, e.forms.join(', ')).toContain(d[1].replace(/\s+/g, ' '));
    }
  });

  it('docs/testing.md lists exactly the options scripts/test-guest.mjs says it takes', () => {
    const script = read('scripts/test-guest.mjs');
    const synopsis = /node scripts\/test-guest\.mjs (.*)$/m.exec(script)?.[1];
    expect(synopsis).toBeDefined();
    const forms = [...synopsis!.matchAll(/\[(-[^\]]+)\]/g)].map((m) => m[1]);
    expect(forms).toContain('--env NAME=VALUE');
    // The script reads each option it names.
    for (const f of forms) expect(script).toContain(`'${f.split(' ')[0]}'`);
    expect(optionTable(read('docs/testing.md')).flat().sort()).toEqual([...forms].sort());
  });
});

describe('docs/errors.md', () => {
  it('"Every code" has a row for each code of ErrorCodes (lib/core/errors.ts), and each ERR_ code it names is thrown by lib/', () => {
    const md = withoutFences(read('docs/errors.md'));
    const section = /^## Every code\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(md)?.[1];
    expect(section).toBeDefined();
    // The first cell of each row: one or more codes, each in backticks (`ENOENT` (`open`) names a syscall after it).
    const codes = section!.split('\n').filter((l) => /^\| `/.test(l))
      .flatMap((l) => [...l.split('|')[1].matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]));
    const ours = codes.filter((c) => c.startsWith('ERR_IOMMUFD_'));
    expect(new Set(ours).size, 'a code has two rows').toBe(ours.length);
    expect([...ours].sort()).toEqual(Object.values(ErrorCodes).sort());
    // Node's own ERR_ codes the table names: thrown by lib/ (args.ts and others), or a module
    // loader's (serveInWorker passes its code on).
    const sources = readdirSync(join(root, 'lib'), { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.(ts|mjs|cjs)$/.test(f)).map((f) => read(join('lib', f))).join('\n');
    for (const c of codes.filter((x) => x.startsWith('ERR_') && !x.startsWith('ERR_IOMMUFD_') && x !== 'ERR_MODULE_NOT_FOUND')) {
      expect(sources, c).toContain(`'${c}'`);
    }
  });
});
