#!/bin/bash
# Packaging: cmake --install honours DESTDIR and prefix; make package's .deb
# (CPack) unpacks (dpkg -x) into the expected layout with its dependencies
# declared, and the unpacked daemon runs.
source "$(dirname "$0")/lib.sh"

DESTDIR="$T/root" cmake --install "$OMNI_BUILD" --prefix /opt/omni >"$T/install.log" 2>&1 || fail "cmake --install"
for f in opt/omni/bin/omnicastd opt/omni/bin/omnicast opt/omni/include/omnicast/connector.h \
         opt/omni/lib/systemd/system/omnicastd.service opt/omni/lib/sysusers.d/omnicast.conf \
         opt/omni/share/doc/omnicast/omnicast.conf.example; do
  [ -e "$T/root/$f" ] || fail "cmake --install did not install $f"
done
ls "$T"/root/opt/omni/lib*/pkgconfig/omnicast-connector.pc >/dev/null || fail "pkg-config file"
ok "cmake --install into DESTDIR with a prefix"

(cd "$OMNI_BUILD" && cpack -G DEB >"$T/cpack.log" 2>&1) || { cat "$T/cpack.log"; fail "cpack"; }
deb=$(ls "$OMNI_BUILD"/omnicast_*_amd64.deb | head -1)
dpkg -x "$deb" "$T/deb"
for f in usr/bin/omnicastd usr/bin/omnicast usr/include/omnicast/connector.h \
         usr/lib/systemd/system/omnicastd.service usr/lib/sysusers.d/omnicast.conf \
         usr/lib/tmpfiles.d/omnicast.conf usr/share/doc/omnicast/docs/delivery.md \
         usr/lib/omnicast/plugins/oc_example.so; do
  [ -e "$T/deb/$f" ] || fail "the .deb lacks /$f"
done
dpkg -I "$deb" | q 'Depends: .*libhiredis0.14' || fail "dependencies not declared"
dpkg -e "$deb" "$T/ctl" && grep -q systemd-sysusers "$T/ctl/postinst" || fail "postinst does not create the user"
"$T/deb/usr/bin/omnicastd" --version | q '^omnicastd ' || fail "the packaged daemon does not run"
grep -q '^ExecStart=/usr/bin/omnicastd' "$T/deb/usr/lib/systemd/system/omnicastd.service" || fail "unit path"
ok "the .deb unpacks to the expected layout; postinst creates the user; the daemon runs"
