#!/usr/bin/env bash
# Builds (or finds in the cache) the rig's `--qemu iopf` QEMU: a lean qemu-system-x86_64 from
# Debian's QEMU source package, with the project's intel-iommu patch and PRI test device on top.
#
#   scripts/build-qemu.sh            # Debian's qemu 1:10.2.2+ds-1 (from unstable's deb-src)
#   QEMU_DEB_VERSION=... scripts/build-qemu.sh
#
# Prints the binary's path on stdout (progress goes to stderr). The binary is cached under
# $IOMMUFD_CACHE/qemu (default ~/.cache/iommufd-node/qemu) as <upstream version>-<key>/, the key
# being a hash of this recipe (configure flags, device list) and of everything under
# scripts/qemu/ (patches/*.patch, applied in name order after Debian's own patches; hw/*.c, the
# project's devices, added to hw/misc with a Kconfig symbol each; devices.mak and expect.txt).
# It is rebuilt only when that key changes.
#
# Like build-kernel.sh, apt runs with a private sources list and state dir: the host's apt setup
# is left untouched. Meson >= 1.5 is needed and bookworm has 1.0.1, so bookworm-backports' meson
# (pure Python) is unpacked into the cache and used through PYTHONPATH; nothing is installed
# system-wide except, when missing and running as root, the few build packages listed below.
# Every build step runs under `nice -n 19`. ~8 min on 2 cores (measured: docs/qemu-pri-facts.md).
set -euo pipefail

debver=${QEMU_DEB_VERSION:-1:10.2.2+ds-1}
upver=${debver#*:}; upver=${upver%%+*}; upver=${upver%-*}          # 1:10.2.2+ds-1 -> 10.2.2
here=$(cd "$(dirname "$0")" && pwd)
cache=${IOMMUFD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iommufd-node}
base=$cache/qemu
aptdir=$base/apt
projdir=$here/qemu            # patches/, devices.mak, expect.txt (all optional)
meson_deb_version=1.7.0-1~bpo12+1
log() { printf '[qemu %s] %s\n' "$upver" "$*" >&2; }
nice19() { nice -n 19 "$@"; }

# Build packages from bookworm (command or file to look for : package).
need=()
for probe in gcc:gcc patch:patch ninja:ninja-build pkg-config:pkgconf dpkg-source:dpkg-dev xz:xz-utils \
  /usr/include/glib-2.0/glib.h:libglib2.0-dev /usr/include/zlib.h:zlib1g-dev \
  /usr/lib/python3/dist-packages/setuptools:python3-setuptools; do
  what=${probe%%:*}
  case $what in /*) [ -e "$what" ] ;; *) command -v "$what" >/dev/null ;; esac || need+=("${probe#*:}")
done
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then log "missing: ${need[*]} (apt-get install ${need[*]})"; exit 1; fi
  log "apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive nice19 apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive nice19 apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; }
fi

# Everything the rig needs, nothing else (--without-default-devices: Kconfig's "default y" and
# "imply" are off, so each device is named; q35 selects its own chipset, serial and fw_cfg).
devices_mak='CONFIG_Q35=y
CONFIG_VTD=y
CONFIG_PCIE_PORT=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_9P=y
CONFIG_EDU=y'
[ -f "$projdir/devices.mak" ] && devices_mak+=$'\n'$(grep -v '^#' "$projdir/devices.mak")
configure_flags=(--target-list=x86_64-softmmu --without-default-features --without-default-devices
  --with-devices-x86_64=iommufd-rig --enable-tcg --enable-kvm --enable-attr --enable-virtfs
  --disable-fdt -Dwrap_mode=nodownload --disable-docs --disable-install-blobs --disable-debug-info
  --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu)

# Bump when the steps below change what ends up in the binary.
recipe=2
key=$( {
  echo "recipe $recipe $debver meson $meson_deb_version"
  printf '%s\n' "${configure_flags[@]}" "$devices_mak"
  if [ -d "$projdir" ]; then
    (cd "$projdir" && find . -type f ! -name '*~' -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
  fi
} | sha256sum | cut -c1-12)
out=$base/$upver-$key
bin=$out/bin/qemu-system-x86_64

check() {  # the devices and properties the rig relies on
  local b=$1 devs props line
  devs=$("$b" -device help 2>&1) || return 1
  props=$("$b" -device intel-iommu,help 2>&1) || return 1
  for d in intel-iommu pcie-root-port virtio-9p-pci edu; do
    grep -q "name \"$d\"" <<<"$devs" || { log "check: no device $d"; return 1; }
  done
  for p in x-scalable-mode x-pasid-mode x-flts device-iotlb dma-drain intremap; do
    grep -q "^  $p=" <<<"$props" || { log "check: intel-iommu has no property $p"; return 1; }
  done
  # scripts/qemu/expect.txt: "device NAME" or "property DEVICE NAME", one a line.
  if [ -f "$projdir/expect.txt" ]; then
    while read -r kind a b2; do
      case $kind in
        device) grep -q "name \"$a\"" <<<"$devs" || { log "check: no device $a"; return 1; } ;;
        property) "$b" -device "$a,help" 2>&1 | grep -q "^  $b2=" ||
          { log "check: $a has no property $b2"; return 1; } ;;
      esac
    done < <(grep -v '^#' "$projdir/expect.txt")
  fi
  # Realize the rig's IOMMU + devices once (also finds the BIOS through --firmwarepath).
  echo quit | timeout 60 "$b" -nodefaults -no-user-config -display none -machine q35 -accel tcg \
    -device intel-iommu,intremap=on,x-scalable-mode=on,device-iotlb=on,x-pasid-mode=on,svm=on \
    -device edu -device iommufd-pri-testdev \
    -device pcie-root-port,id=rp0,chassis=1 -monitor stdio >/dev/null 2>"$out/check.err" ||
    { log "check: smoke start failed: $(cat "$out/check.err")"; return 1; }
}

if [ -x "$bin" ]; then
  # A cached binary that fails its check would fail it again after a rebuild (firmware missing
  # on this host, say): say so instead of spending ten minutes. QEMU_REBUILD=1 forces a build.
  if check "$bin"; then
    log "cached: $bin"
    echo "$bin"
    exit 0
  fi
  [ "${QEMU_REBUILD:-0}" = 1 ] || { log "cached $bin fails its check (QEMU_REBUILD=1 rebuilds)"; exit 1; }
fi

apt_opts=(-o "Dir::Etc::SourceList=$aptdir/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache" -o Dir::State::status=/dev/null
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/etc"
sources='deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian unstable main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main'
stamp=$aptdir/lists/.updated
# Refresh the lists at most once a day (a cached run needs no network), or when the list changed.
if [ "$(cat "$aptdir/etc/sources.list" 2>/dev/null)" != "$sources" ]; then
  printf '%s\n' "$sources" >"$aptdir/etc/sources.list"
  rm -f "$stamp"
fi
if [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
  log "refreshing Debian package lists (private apt state in $aptdir)"
  if nice19 apt-get "${apt_opts[@]}" -qq update >&2; then touch "$stamp"; else log "apt update failed; using old lists"; fi
fi

# Source package (kept: ~39 MB). dpkg-source checks the .dsc's checksums when unpacking.
dl=$base/dl/$debver
if ! ls "$dl"/*.dsc >/dev/null 2>&1; then
  log "downloading qemu=$debver source"
  mkdir -p "$dl"
  (cd "$dl" && nice19 apt-get "${apt_opts[@]}" -qq source --download-only "qemu=$debver" >&2) ||
    { log "cannot download qemu=$debver (is it still in unstable?)"; rm -rf "$dl"; exit 1; }
fi

# Meson from bookworm-backports, unpacked (not installed).
mesondir=$base/tools/meson-$meson_deb_version
if [ ! -d "$mesondir/usr/lib/python3/dist-packages/mesonbuild" ]; then
  log "fetching meson $meson_deb_version"
  mkdir -p "$base/tools/dl"
  (cd "$base/tools/dl" && nice19 apt-get "${apt_opts[@]}" -qq download "meson=$meson_deb_version" >&2)
  rm -rf "$mesondir.tmp" && mkdir -p "$mesondir.tmp"
  dpkg-deb -x "$base/tools/dl/meson_${meson_deb_version/:/%3a}_all.deb" "$mesondir.tmp"
  mv "$mesondir.tmp" "$mesondir"
fi
export PYTHONPATH=$mesondir/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}

work=$base/build/qemu-$upver-$key
src=$work/src
log "unpacking into $work (Debian patches: debian/patches/series)"
rm -rf "$work"
mkdir -p "$work"
nice19 dpkg-source -q -x "$dl"/*.dsc "$src" >"$work/unpack.log" 2>&1 ||
  { cat "$work/unpack.log" >&2; log "dpkg-source failed"; exit 1; }
shopt -s nullglob
for p in "$projdir"/patches/*.patch; do
  log "applying $(basename "$p")"
  nice19 patch -d "$src" -p1 --forward --batch --no-backup-if-mismatch <"$p" >&2 ||
    { log "patch failed: $p"; exit 1; }
done
# The project's devices: hw/NAME.c becomes hw/misc/NAME.c under CONFIG_NAME (upper case, _ for -),
# turned on by devices.mak. PCIe endpoints with MSI, so they depend on what edu and nvme need.
for c in "$projdir"/hw/*.c; do
  name=$(basename "$c" .c); sym=$(tr 'a-z-' 'A-Z_' <<<"$name")
  cp "$c" "$src/hw/misc/$name.c"
  printf "system_ss.add(when: 'CONFIG_%s', if_true: files('%s.c'))\n" "$sym" "$name" >>"$src/hw/misc/meson.build"
  printf '\nconfig %s\n    bool\n    default y if TEST_DEVICES\n    depends on PCI_EXPRESS && MSI_NONBROKEN\n' "$sym" \
    >>"$src/hw/misc/Kconfig"
done
shopt -u nullglob
# Build fix for --without-default-devices on 10.2: ACPI_X86 selects ACPI_CXL, so hw/acpi/cxl.c is
# linked and calls cxl_fmws_get_all_sorted(), which only hw/cxl/cxl-host.c (CONFIG_CXL) defines:
# the link fails. cxl_build_cedt() runs only with -machine cxl=on, so a stub is enough.
# (CONFIG_CXL=y instead needs PXB and CXL_MEM_DEVICE too: tried, it fails to link further.)
if ! grep -q cxl_fmws_get_all_sorted "$src/hw/cxl/cxl-host-stubs.c"; then
  printf '\n/* iommufd-node build fix (scripts/build-qemu.sh) */\nGSList *cxl_fmws_get_all_sorted(void) { return NULL; }\n' \
    >>"$src/hw/cxl/cxl-host-stubs.c"
fi
printf '# generated by scripts/build-qemu.sh\n%s\n' "$devices_mak" \
  >"$src/configs/devices/x86_64-softmmu/iommufd-rig.mak"

mkdir -p "$work/build"
start=$(date +%s)
log "configuring"
(cd "$work/build" && nice19 "$src/configure" --python=/usr/bin/python3 --prefix="$out" \
  "${configure_flags[@]}" >"$work/configure.log" 2>&1) ||
  { tail -n 30 "$work/configure.log" >&2; log "configure failed (log: $work/configure.log)"; exit 1; }
configured=$(date +%s)
jobs=$(nproc)
log "compiling with -j$jobs (~1400 steps)"
# Progress: one line per 200 steps, so CI logs show the build is alive.
if ! nice19 ninja -C "$work/build" -j"$jobs" qemu-system-x86_64 2>&1 |
  awk '/^\[[0-9]+\/[0-9]+\]/ { split($1, a, /[\[\/]/); if (a[2] % 200 == 0) { print "[qemu] " $1; fflush() } }
       /error:|FAILED:/ { print; fflush() }' >&2 || [ ! -x "$work/build/qemu-system-x86_64" ]; then
  log "qemu build failed"; exit 1
fi
mkdir -p "$out/bin"
cp "$work/build/qemu-system-x86_64" "$bin.tmp" && mv "$bin.tmp" "$bin"
check "$bin" || { rm -f "$bin"; log "built binary failed its check"; exit 1; }
"$bin" -device intel-iommu,help >"$out/intel-iommu.properties" 2>&1
{ echo "qemu $debver"; echo "key $key"; echo "configure $((configured - start)) s"
  echo "build $(($(date +%s) - configured)) s"; } >"$out/version"
log "built in $(($(date +%s) - start)) s (configure $((configured - start)) s): $bin"
rm -rf "$work"
echo "$bin"
