// Loads the addon for both the ESM and the CommonJS build: the package root is the nearest folder
// up from here with binding.gyp (lib/, dist/esm/ and dist/cjs/ sit at different depths).
'use strict';
const { existsSync } = require('node:fs');
const { dirname, join } = require('node:path');

let root = __dirname;
while (!existsSync(join(root, 'binding.gyp')) && dirname(root) !== root) root = dirname(root);
// IOMMUFD_ADDON names another build of the addon (the sanitizer build: npm run test:sanitize).
module.exports = process.env.IOMMUFD_ADDON ? require(process.env.IOMMUFD_ADDON) : require('node-gyp-build')(root);
