#!/usr/bin/env node
// iommufd-probe: can this machine deliver I/O page faults to a program through iommufd, and if not,
// why not? The logic is lib/probe/ (the CLI is lib/probe/cli.ts), run here from the package's built
// dist/.
//
//   iommufd-probe [--json] [--color|--no-color] [--device PATH] [--schema]
//
// --schema prints the JSON Schema of the --json output (schema/probe.schema.json).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

let main;
try {
  ({ main } = await import('../dist/esm/probe/cli.js'));
} catch (e) {
  process.stderr.write(`iommufd-probe: cannot load the iommufd package (${e.message}); in a source checkout run: npm run build\n`);
  process.exit(70);
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const schema = () => readFileSync(join(root, 'schema/probe.schema.json'), 'utf8');
process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, version, schema });
