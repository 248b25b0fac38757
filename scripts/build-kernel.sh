#!/usr/bin/env bash
# Builds (or finds in the cache) the rig's guest kernel from Debian's linux-source package.
#
#   scripts/build-kernel.sh newest   # the newest linux-source-N.M in Debian (unstable)
#   scripts/build-kernel.sh 6.12     # the LTS from bookworm-security
#
# Prints the bzImage path on stdout (progress goes to stderr). The image is cached under
# $IOMMUFD_CACHE (default ~/.cache/iommufd-node) keyed by the source package version and a hash of
# the config fragments and the build recipe, and is rebuilt only when that key changes.
# apt runs with a private sources list and state dir: the host's apt setup is left untouched.
set -euo pipefail

series=${1:-newest}
here=$(cd "$(dirname "$0")" && pwd)
cache=${IOMMUFD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iommufd-node}
aptdir=$cache/apt
log() { printf '[kernel %s] %s\n' "$series" "$*" >&2; }

mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/etc"
cat >"$aptdir/etc/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian unstable main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
apt_opts=(-o "Dir::Etc::SourceList=$aptdir/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache" -o Debug::NoLocking=1
  -o APT::Sandbox::User=root)

fragments=("$here/kernel/iommufd.config")
case $series in
  newest) ;;
  6.12) ;;
  *) log "unknown series '$series' (newest or 6.12)"; exit 2 ;;
esac

# Callers may run at once (two rigs, a test beside a build): the lists are refreshed under one
# lock, and each image is looked up and built under its own (below), so a second caller waits and
# then finds the image instead of deleting the tree the first one is building in.
mkdir -p "$cache/kernels"
exec 8>"$aptdir/.lock"
flock 8
# Refresh the package lists at most once a day, so a cached run does not depend on the network.
stamp=$aptdir/lists/.updated
if [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
  log "refreshing Debian package lists (private apt state in $aptdir)"
  if apt-get "${apt_opts[@]}" -qq update >&2; then touch "$stamp"; else log "apt update failed; using old lists"; fi
fi

if [ "$series" = newest ]; then
  pkg=$(apt-cache "${apt_opts[@]}" search --names-only '^linux-source-[0-9]+\.[0-9]+$' | cut -d' ' -f1 |
    sort -t- -k3,3V | tail -n1)
else
  pkg=linux-source-$series
fi
[ -n "$pkg" ] || { log "no linux-source package found"; exit 1; }
pkgver=$(apt-cache "${apt_opts[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')
[ -n "$pkgver" ] && [ "$pkgver" != "(none)" ] || { log "$pkg has no candidate version"; exit 1; }
major=${pkg#linux-source-}
case $major in 6.*) ;; *) fragments+=("$here/kernel/iommufd-7.config") ;; esac

# Bump when the build steps below change what ends up in the image.
recipe=2
key=$( (echo "recipe $recipe"; cat "${fragments[@]}") | sha256sum | cut -c1-12)
out=$cache/kernels/$pkg-$pkgver-$key
exec 8>&-
exec 9>"$cache/kernels/.$pkg.lock"
flock 9
if [ -f "$out/bzImage" ]; then
  log "cached: $out/bzImage"
  echo "$out/bzImage"
  exit 0
fi

work=$cache/build/$pkg-$pkgver
log "building $pkg $pkgver (config key $key) in $work; ~10 min on 2 cores"
rm -rf "$work"
mkdir -p "$work"
(cd "$work" && apt-get "${apt_opts[@]}" -qq download "$pkg=$pkgver" >&2)
dpkg-deb --fsys-tarfile "$work"/"$pkg"_*.deb | tar -x -C "$work" --wildcards './usr/src/*.tar.xz'
log "unpacking source"
tar -xJf "$work"/usr/src/"$pkg".tar.xz -C "$work"
src=$work/$pkg
cat "${fragments[@]}" >"$work/fragment.config"
make -C "$src" -s KCONFIG_ALLCONFIG="$work/fragment.config" allnoconfig >&2
make -C "$src" -s olddefconfig >&2

# Fail loudly when Kconfig silently dropped a requested option (a missing dependency).
missing=0
while IFS= read -r line; do
  case $line in CONFIG_*=*) ;; *) continue ;; esac
  grep -qxF "$line" "$src/.config" || { log "option did not survive olddefconfig: $line"; missing=1; }
done <"$work/fragment.config"
[ $missing = 0 ] || exit 1

start=$(date +%s)
jobs=$(nproc)
log "compiling with -j$jobs"
# Progress: one line per 200 objects, so CI logs show the build is alive.
if ! make -C "$src" -j"$jobs" bzImage 2>&1 |
  awk '/^  (CC|LD|AR|AS) / { if (++n % 200 == 0) { printf "[kernel] %d objects\n", n; fflush() } }
       / [Ee]rror[: ]|\*\*\*/ { print; fflush() }' >&2; then
  log "kernel build failed"; exit 1
fi
# Filled beside the cache entry and renamed into place when complete: an interrupted build never
# leaves an image that looks cached.
new=$out.new
rm -rf "$new"
mkdir -p "$new"
cp "$src/arch/x86/boot/bzImage" "$new/bzImage"
cp "$src/.config" "$new/config"
cp "$src/include/uapi/linux/iommufd.h" "$new/iommufd.h"   # to check lib's uAPI mirror against
echo "$pkg $pkgver" >"$new/version"
# The kernel's own iommufd selftests, from the same tree, against its uapi headers (npm run
# test:kernel runs them in the rig). A tree whose selftests do not build against its own headers
# (Debian's 6.12) keeps the compiler's errors instead, for the runner to report.
log "building tools/testing/selftests/iommu"
make -C "$src" -s headers >&2
mkdir -p "$new/selftests"
if make -C "$src/tools/testing/selftests/iommu" -s KHDR_INCLUDES="-isystem $src/usr/include" \
    >"$new/selftests/build.log" 2>&1; then
  cp "$src/tools/testing/selftests/iommu/iommufd" "$src/tools/testing/selftests/iommu/iommufd_fail_nth" \
    "$new/selftests/"
else
  log "the selftests do not build against this tree's headers (kept in $out/selftests/build.log)"
fi
mv "$new" "$out"
log "built in $(($(date +%s) - start)) s: $out/bzImage"
rm -rf "$work"
echo "$out/bzImage"
