#!/usr/bin/env bash
# Builds xleaf's Debian package with dpkg-deb alone (no debhelper, nothing
# downloaded): static binaries, the systemd unit, the configuration as a
# conffile, the maintainer scripts next to this file. Run by `make deb`
# after `make release`: VERSION, ARCH and OUT come from there.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VERSION:?}" "${ARCH:?}" "${OUT:?}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/xleaf"

for cmd in xleafd xleafctl; do # built by make release, with VERSION
	install -D -m 0755 "bin/release/$cmd" "$root/usr/bin/$cmd"
done
install -d "$root/lib/systemd/system" "$root/etc/xleaf" "$root/usr/share/doc/xleaf/examples" \
	"$root/usr/share/bash-completion/completions" "$root/DEBIAN"
sed 's|@BINDIR@|/usr/bin|g; s|@DOCDIR@|/usr/share/doc/xleaf|g' dist/xleafd.service >"$root/lib/systemd/system/xleafd.service"
install -m 0644 dist/xleaf.conf "$root/etc/xleaf/xleaf.conf"
install -m 0644 dist/xleaf.conf "$root/usr/share/doc/xleaf/examples/xleaf.conf"
install -m 0644 README.md "$root/usr/share/doc/xleaf/README.md"
install -m 0644 dist/deb/copyright "$root/usr/share/doc/xleaf/copyright"
install -m 0644 dist/xleafctl.bash "$root/usr/share/bash-completion/completions/xleafctl"
for s in postinst prerm postrm; do
	install -m 0755 "dist/deb/$s" "$root/DEBIAN/$s"
done
echo /etc/xleaf/xleaf.conf >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: xleaf
Version: $VERSION
Architecture: $ARCH
Maintainer: xleaf developers <xleaf@localhost>
Installed-Size: $size
Depends: iproute2
Recommends: init-system-helpers
Section: net
Priority: optional
Homepage: https://github.com/xleaf/xleaf
Description: EVPN-driven VXLAN/VRF data path for Linux leaf switches
 xleafd terminates VXLAN from the fabric and routes each tenant packet in
 its VRF's own table in XDP, following routes leaked between VRFs, with an
 embedded BGP EVPN speaker (GoBGP) that reads Cumulus's nv set
 configurations. xleafctl shows what it does, in FRR's layouts or JSON.
 .
 The unit is enabled, not started: write /etc/xleaf/xleaf.conf first.
CONTROL
mkdir -p "$OUT"
dpkg-deb --root-owner-group -Zxz --build "$root" "$OUT/xleaf_${VERSION}_${ARCH}.deb" >/dev/null
echo "$OUT/xleaf_${VERSION}_${ARCH}.deb"
