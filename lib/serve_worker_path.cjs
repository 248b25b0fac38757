// Where serve_worker.mjs is: next to this file in dist/esm and dist/cjs. From lib/ (the tests run
// the TypeScript sources), the built one in dist/esm: a worker cannot load TypeScript.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

module.exports = existsSync(join(__dirname, 'serve.js')) ? join(__dirname, 'serve_worker.mjs') : join(__dirname, '..', 'dist', 'esm', 'serve_worker.mjs');
