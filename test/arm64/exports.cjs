// What the installed package exports, and a few calls through its addon, as one JSON line, under
// whichever Node runs this: scripts/test-arm64.mjs runs it in a project that installed the packed
// tarball, once with the host's x64 Node and once with an aarch64 Node under qemu-user, and
// compares the two. Everything printed must be the same on both but `arch` and `addon` (the .node
// file node-gyp-build chose). Constants are printed with their values: the addon computes some from
// struct layouts (vevent.dataSize, pumpControl), so a cross-compile ABI slip shows here.
'use strict';

/** The shape of an export: values for constants, names for functions' prototypes and statics. */
function shape(v, depth = 0) {
  if (v === null) return null;
  switch (typeof v) {
    case 'undefined': return '(undefined)';
    case 'bigint': return `${v}n`;
    case 'symbol': return String(v);
    case 'function': {
      const s = { function: v.name, length: v.length };
      if (v.prototype) s.prototype = Object.getOwnPropertyNames(v.prototype).filter((k) => k !== 'constructor').sort();
      const statics = Object.getOwnPropertyNames(v).filter((k) => !['length', 'name', 'prototype', 'arguments', 'caller'].includes(k)).sort();
      if (statics.length) s.statics = Object.fromEntries(statics.map((k) => [k, depth < 3 ? shape(v[k], depth + 1) : typeof v[k]]));
      return s;
    }
    case 'object': {
      if (ArrayBuffer.isView(v)) return { [v.constructor.name]: Array.from(v, String) };
      if (depth >= 4) return '(object)';
      const o = {};
      for (const k of Object.keys(v).sort()) o[k] = shape(v[k], depth + 1);
      if (Object.isFrozen(v) && Object.keys(v).length) o['(frozen)'] = true;
      return o;
    }
    default: return v;
  }
}

/** What a call returned, or the error it threw (name, code, syscall, message). */
function outcome(f) {
  try {
    return { returned: shape(f()) };
  } catch (e) {
    return { threw: e?.constructor?.name, code: e?.code, errno: e?.errno, syscall: e?.syscall, message: e?.message };
  }
}

(async () => {
  const cjs = require('iommufd');
  const cjsTesting = require('iommufd/testing');
  const esm = await import('iommufd');
  const esmTesting = await import('iommufd/testing');
  const addons = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
  if (addons.length !== 1) throw new Error(`expected one addon loaded, found ${JSON.stringify(addons)}`);
  const native = require.cache[addons[0]].exports;

  const calls = {};
  calls.openMissing = outcome(() => native.open('/nonexistent/iommu'));
  const fd = native.open('/dev/null');
  calls.ioasAllocOnDevNull = outcome(() => native.ioasAlloc(fd));
  calls.probeIoctlOnDevNull = outcome(() => native.probeIoctl(fd, native.ioctls.IOMMU_IOAS_ALLOC, new Uint8Array(16)));
  native.close(fd);
  calls.destroyBadFd = outcome(() => native.destroy(-1, 1));
  calls.ioasUnmapBadIova = outcome(() => native.ioasUnmap(0, 1, -1n, 0n));
  calls.allocPages = outcome(() => {
    const buf = native.allocPages(8192);
    const bytes = new Uint8Array(buf);
    bytes[0] = 1;
    bytes[8191] = 2;
    return { byteLength: buf.byteLength, first: bytes[0], last: bytes[8191] };
  });
  calls.eventfd = outcome(() => {
    const efd = native.eventfd();
    native.eventfdSignal(efd);
    native.close(efd);
    return typeof efd;
  });
  calls.errorClass = outcome(() => {
    try {
      native.open('/nonexistent/iommu');
    } catch (e) {
      return { cjs: e instanceof cjs.IommufdError, esm: e instanceof esm.IommufdError };
    }
    return 'no error';
  });

  process.stdout.write(`${JSON.stringify({
    arch: process.arch,
    node: process.version,
    addon: addons[0],
    exports: {
      'require("iommufd")': shape(cjs),
      'require("iommufd/testing")': shape(cjsTesting),
      'import("iommufd")': shape(esm),
      'import("iommufd/testing")': shape(esmTesting),
      addon: shape(native),
    },
    calls,
  })}\n`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
