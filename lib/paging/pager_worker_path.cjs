// Where pager_worker.mjs is: next to this file in dist/esm/paging and dist/cjs/paging. From
// lib/paging (the tests run the TypeScript sources), the built one in dist/esm/paging: a worker
// cannot load TypeScript.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

module.exports = existsSync(join(__dirname, 'pager.js')) ? join(__dirname, 'pager_worker.mjs') : join(__dirname, '..', '..', 'dist', 'esm', 'paging', 'pager_worker.mjs');
