#!/usr/bin/env bash
# Installs what the project needs on a Debian machine, doing only what is missing: QEMU and the
# kernel build tools from apt (as root, no prompts), the npm dependencies, the native addon.
# Runs before `npm test` and `npm run demo` (pretest/predemo), so each works on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[setup] %s\n' "$*" >&2; }

need=()
for cmd_pkg in qemu-system-x86_64:qemu-system-x86 bc:bc bison:bison flex:flex cpio:cpio xz:xz-utils \
  perl:perl-base make:make gcc:gcc g++:g++ python3:python3 stty:coreutils dpkg-deb:dpkg apt-get:apt; do
  command -v "${cmd_pkg%%:*}" >/dev/null || need+=("${cmd_pkg#*:}")
done
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)  # the arm64 prebuild
[ -f /usr/include/libelf.h ] || need+=(libelf-dev)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
[ -f /usr/include/sys/capability.h ] || need+=(libcap-dev)   # the kernel's iommufd selftests
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing: ${need[*]}; install them (apt-get install ${need[*]}) or run as root"
    exit 1
  fi
  say "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >&2
fi
[ -f build/Release/iommufd.node ] || { say "building the native addon"; npx node-gyp rebuild >&2; }
# dist/ (the package's entry points) when missing or older than any source in lib/.
if [ ! -f dist/esm/index.js ] || [ -n "$(find lib -newer dist/esm/index.js -print -quit)" ]; then
  say "building dist/"
  node scripts/build-ts.mjs >&2
fi
