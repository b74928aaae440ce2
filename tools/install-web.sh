#!/bin/sh
# meson install: web/dist (deploy/build-web) -> $DESTDIR<prefix>/<datadir>/gangway/web.
# Without a built console it says so and installs nothing (the broker then
# answers /ui/ with how to build it).
set -eu
dist="$MESON_SOURCE_ROOT/web/dist"
case "$1" in
/*) dest="${DESTDIR:-}$1" ;;
*) dest="$MESON_INSTALL_DESTDIR_PREFIX/$1" ;;
esac
if [ ! -f "$dist/index.html" ]; then
    echo "install-web: $dist not built (deploy/build-web); the console is not installed" >&2
    exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
cp -R "$dist/." "$dest/"
echo "Installing web console to $dest"
