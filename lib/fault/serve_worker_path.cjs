// Where serve_worker.mjs is: next to this file in dist/esm/fault and dist/cjs/fault. From lib/fault
// (the tests run the TypeScript sources), the built one in dist/esm/fault: a worker cannot load
// TypeScript.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

module.exports = existsSync(join(__dirname, 'serve.js')) ? join(__dirname, 'serve_worker.mjs') : join(__dirname, '..', '..', 'dist', 'esm', 'fault', 'serve_worker.mjs');
