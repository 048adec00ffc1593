#!/bin/bash
# Packaging: cmake --install honours DESTDIR and prefix and never writes
# /etc; make package's .deb (CPack) has the expected layout, stripped ELF
# files (debug information in omnicast-dbgsym_*.ddeb), Depends covering what
# every ELF file links, /etc/omnicast/omnicast.conf as a conffile without
# secrets that passes --check-config, maintainer scripts that are POSIX sh
# with set -e, and no lintian error. As root where dpkg works (a container),
# it also installs, upgrades over an edited conffile, removes and purges the
# package and checks the user, the files and the data at each step.
source "$(dirname "$0")/lib.sh"

DESTDIR="$T/root" cmake --install "$OMNI_BUILD" --prefix /opt/omni >"$T/install.log" 2>&1 || fail "cmake --install"
for f in opt/omni/bin/omnicastd opt/omni/bin/omnicast opt/omni/include/omnicast/connector.h \
         opt/omni/lib/systemd/system/omnicastd.service opt/omni/lib/sysusers.d/omnicast.conf \
         opt/omni/share/doc/omnicast/omnicast.conf.example; do
  [ -e "$T/root/$f" ] || fail "cmake --install did not install $f"
done
pc=$(ls "$T"/root/opt/omni/lib*/pkgconfig/omnicast-connector.pc) || fail "pkg-config file"
grep -q '^prefix=/opt/omni$' "$pc" || fail "the .pc file does not name the install prefix: $(head -1 "$pc")"
[ ! -e "$T/root/etc" ] || fail "cmake --install wrote under /etc (only the .deb has the conffile)"
ok "cmake --install into DESTDIR with a prefix; the .pc names it; nothing in /etc"

rm -f "$OMNI_BUILD"/omnicast_*_amd64.deb "$OMNI_BUILD"/omnicast-dbgsym_*_amd64.ddeb
(cd "$OMNI_BUILD" && timeout 300 cpack -G DEB >"$T/cpack.log" 2>&1) || { cat "$T/cpack.log"; fail "cpack"; }
deb=$(ls "$OMNI_BUILD"/omnicast_*_amd64.deb | head -1)
ddeb=$(ls "$OMNI_BUILD"/omnicast-dbgsym_*_amd64.ddeb | head -1) || fail "no omnicast-dbgsym .ddeb"
dpkg -x "$deb" "$T/deb"
for f in usr/bin/omnicastd usr/bin/omnicast usr/include/omnicast/connector.h \
         usr/lib/systemd/system/omnicastd.service usr/lib/sysusers.d/omnicast.conf \
         usr/lib/tmpfiles.d/omnicast.conf usr/share/doc/omnicast/docs/delivery.md \
         usr/lib/omnicast/plugins/oc_example.so usr/lib/pkgconfig/omnicast-connector.pc \
         usr/share/doc/omnicast/copyright usr/share/doc/omnicast/changelog.gz \
         etc/omnicast/omnicast.conf; do
  [ -e "$T/deb/$f" ] || fail "the .deb lacks /$f"
done
grep -q '^prefix=/usr$' "$T/deb/usr/lib/pkgconfig/omnicast-connector.pc" || fail "the packaged .pc file's prefix is not /usr"
"$T/deb/usr/bin/omnicastd" --version | q '^omnicastd ' || fail "the packaged daemon does not run"
grep -q '^ExecStart=/usr/bin/omnicastd' "$T/deb/usr/lib/systemd/system/omnicastd.service" || fail "unit path"
ok "the .deb unpacks to the expected layout and the daemon runs"

# stripped: no symbol table, no .debug_info; the .ddeb has them by build ID
dpkg-deb -x "$ddeb" "$T/dbg"
nelf=0
while IFS= read -r f; do
  nelf=$((nelf + 1))
  file -b "$f" | q ', stripped' || fail "${f#"$T"/deb} is not stripped: $(file -b "$f")"
  ! readelf -S "$f" 2>/dev/null | q '\.debug_info' || fail "${f#"$T"/deb} still has .debug_info"
  id=$(readelf -n "$f" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
  dbg="$T/dbg/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
  [ -n "$id" ] && [ -f "$dbg" ] || fail "no debug file for ${f#"$T"/deb} (build ID '$id')"
  readelf -S "$dbg" 2>/dev/null | q '\.debug_info' || fail "$dbg has no .debug_info"
done < <(find "$T/deb" -type f -exec sh -c 'file -b "$1" | grep -q "^ELF"' _ {} \; -print)
[ "$nelf" -ge 3 ] || fail "expected at least 3 ELF files in the .deb, found $nelf"
ok "$nelf ELF files stripped; their debug information is in $(basename "$ddeb") by build ID"

# Depends names the package of every library an ELF file links
depends=$(dpkg-deb -f "$deb" Depends)
ldconfig -p >"$T/ldconfig.txt"
declare -A PKG_OF=()
echo "$depends" | q 'adduser' || fail "Depends lacks adduser (postinst uses it): $depends"
while IFS= read -r f; do
  for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}' "$T/ldconfig.txt")
    [ -n "$path" ] || fail "cannot find $lib (needed by ${f#"$T"/deb})"
    # dpkg -S reads the whole package database: once per library, not
    # once per ELF file that links it
    pkg=${PKG_OF[$path]:-}
    if [ -z "$pkg" ]; then
      pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) || true
      [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1) || true
      [ -n "$pkg" ] || fail "no package owns $path"
      PKG_OF[$path]=$pkg
    fi
    echo "$depends" | q -E "(^|, )$pkg( |,|$)" || fail "${f#"$T"/deb} links $lib ($pkg), not in Depends: $depends"
  done
done < <(find "$T/deb/usr/bin" "$T/deb/usr/lib/omnicast" -type f)
for lib in $(readelf -d "$T/deb/usr/bin/omnicast" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  case $lib in libcurl*|libevent*) fail "the CLI links $lib";; esac
done
ok "Depends covers every linked library: $depends"

# the conffile, the maintainer scripts
dpkg-deb -e "$deb" "$T/ctl"
grep -qx '/etc/omnicast/omnicast.conf' "$T/ctl/conffiles" || fail "conffiles does not list /etc/omnicast/omnicast.conf"
! grep -Eiq '^[[:space:]]*[a-z_]*(token|secret|password|auth_token)[[:space:]]*=' "$T/deb/etc/omnicast/omnicast.conf" \
  || fail "the shipped configuration holds a secret"
sed 's|/var/lib/omnicast/outbox.jsonl|'"$T"'/outbox.jsonl|' "$T/deb/etc/omnicast/omnicast.conf" >"$T/shipped.conf"
"$T/deb/usr/bin/omnicastd" --config "$T/shipped.conf" --check-config >"$T/check.log" 2>&1 \
  || { cat "$T/check.log"; fail "the shipped configuration does not pass --check-config"; }
for s in postinst prerm postrm; do
  [ -x "$T/ctl/$s" ] || fail "no executable $s"
  head -1 "$T/ctl/$s" | q -x '#!/bin/sh' || fail "$s is not #!/bin/sh"
  grep -qx 'set -e' "$T/ctl/$s" || fail "$s lacks set -e"
  sh -n "$T/ctl/$s" || fail "$s: sh -n"
  if command -v dash >/dev/null; then dash -n "$T/ctl/$s" || fail "$s: dash -n"; fi
done
grep -q 'systemctl disable' "$T/ctl/prerm" || fail "prerm does not disable the service"
grep -q 'test -d /run/systemd/system\|\[ -d /run/systemd/system \]' "$T/ctl/postinst" || fail "postinst: daemon-reload not guarded"
ok "conffiles lists /etc/omnicast/omnicast.conf (no secret, passes --check-config); scripts are sh with set -e"

# lintian: no error (the warnings it gives are listed in docs/operations.md)
if ! command -v lintian >/dev/null; then
  echo "skip - lintian is not installed and could not be (make deps installs it)"
else
  root_flag=; [ "$(id -u)" = 0 ] && root_flag=--allow-root
  timeout 300 lintian $root_flag "$deb" >"$T/lintian.log" 2>&1 || true
  if grep -q '^E: ' "$T/lintian.log"; then cat "$T/lintian.log"; fail "lintian reports errors"; fi
  ok "lintian: no error ($(grep -c '^W: ' "$T/lintian.log" || true) warnings)"
fi

# install / upgrade / remove / purge, only as root, only on a machine where
# nothing of omnicast exists yet (never touch a real installation), one
# such run at a time
if [ "$(id -u)" != 0 ] || [ -n "${OMNI_NO_DPKG_INSTALL:-}" ]; then
  echo "skip - dpkg install, remove and purge need root (and OMNI_NO_DPKG_INSTALL unset)"
  exit 0
fi
# (the lock first: the suites of two builds run side by side, and the one
# that waits then finds the machine as clean as the other left it, rather
# than finding the other's installation and skipping)
exec 9>/tmp/omnicast-test-package.lock
flock -w 300 9 || fail "another test_package holds /tmp/omnicast-test-package.lock"
if dpkg-query -W -f='${Status}' omnicast 2>/dev/null | q 'installed\|config-files' \
   || getent passwd omnicast >/dev/null || getent group omnicast >/dev/null \
   || [ -e /var/lib/omnicast ] || [ -e /etc/omnicast ]; then
  echo "skip - an omnicast package, user or directory exists on this machine: not installing over it"
  exit 0
fi

# dpkg_run ARGS: dpkg, waiting (bounded) while another dpkg/apt holds the lock
dpkg_run() {
  local deadline=$((SECONDS + 120)) rc
  while :; do
    rc=0
    DEBIAN_FRONTEND=noninteractive timeout 300 dpkg --force-confold "$@" >"$T/dpkg.log" 2>&1 || rc=$?
    [ $rc -ne 0 ] && grep -q 'lock' "$T/dpkg.log" && [ $SECONDS -lt $deadline ] && { sleep 1; continue; }
    [ $rc -eq 0 ] || { cat "$T/dpkg.log"; return $rc; }
    return 0
  done
}
# nothing of omnicast existed before: whatever a failed step leaves is ours
purge_on_exit() {
  dpkg --purge omnicast >/dev/null 2>&1 || true
  getent passwd omnicast >/dev/null && { userdel omnicast >/dev/null 2>&1 || true; }
  getent group omnicast >/dev/null && { groupdel omnicast >/dev/null 2>&1 || true; }
  rm -rf /var/lib/omnicast /var/log/omnicast /etc/omnicast
}
trap 'pkg_rc=$?; purge_on_exit; (exit $pkg_rc); cleanup' EXIT

dpkg_run -i "$deb" || fail "dpkg -i"
getent passwd omnicast | q ':/var/lib/omnicast:/usr/sbin/nologin$' || fail "user: $(getent passwd omnicast)"
getent group omnicast >/dev/null || fail "no group omnicast"
[ "$(stat -c '%U:%G %a' /var/lib/omnicast)" = "omnicast:omnicast 750" ] || fail "/var/lib/omnicast: $(stat -c '%U:%G %a' /var/lib/omnicast)"
[ "$(stat -c '%U:%G %a' /etc/omnicast)" = "root:omnicast 750" ] || fail "/etc/omnicast: $(stat -c '%U:%G %a' /etc/omnicast)"
[ "$(stat -c '%U:%G %a' /etc/omnicast/omnicast.conf)" = "root:omnicast 640" ] || fail "omnicast.conf: $(stat -c '%U:%G %a' /etc/omnicast/omnicast.conf)"
timeout 30 runuser -u omnicast -- /usr/bin/omnicastd --config /etc/omnicast/omnicast.conf --check-config >"$T/check.log" 2>&1 \
  || { cat "$T/check.log"; fail "the installed configuration does not pass --check-config as user omnicast"; }
# postinst again (dpkg-reconfigure does the same): idempotent
uid=$(id -u omnicast)
sh /var/lib/dpkg/info/omnicast.postinst configure "$(dpkg-deb -f "$deb" Version)" || fail "postinst configure twice"
[ "$(id -u omnicast)" = "$uid" ] || fail "postinst twice changed the user"
ok "dpkg -i: user and group omnicast, /var/lib/omnicast and /etc/omnicast owned and closed; postinst idempotent"

# the edited conffile survives a reinstall (upgrade path: prerm upgrade, postinst configure VERSION)
echo "# edited by test_package" >>/etc/omnicast/omnicast.conf
echo data >/var/lib/omnicast/marker
dpkg_run -i "$deb" || fail "dpkg -i over an installed package"
grep -q '^# edited by test_package$' /etc/omnicast/omnicast.conf || fail "reinstall overwrote the edited conffile"
ok "reinstall keeps the edited conffile"

dpkg_run -r omnicast || fail "dpkg -r"
[ ! -e /usr/bin/omnicastd ] || fail "remove left /usr/bin/omnicastd"
[ -f /var/lib/omnicast/marker ] || fail "remove deleted the data in /var/lib/omnicast"
getent passwd omnicast >/dev/null || fail "remove deleted the user"
grep -q '^# edited by test_package$' /etc/omnicast/omnicast.conf || fail "remove deleted the conffile"
ok "dpkg -r: binaries gone; data, user and configuration kept"

dpkg_run -P omnicast || fail "dpkg -P"
! getent passwd omnicast >/dev/null || fail "purge left the user"
! getent group omnicast >/dev/null || fail "purge left the group"
[ ! -e /var/lib/omnicast ] || fail "purge left /var/lib/omnicast"
[ ! -e /etc/omnicast ] || fail "purge left /etc/omnicast"
ok "dpkg -P: user, group, state and configuration gone"
