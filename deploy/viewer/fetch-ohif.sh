#!/usr/bin/env bash
# The OHIF viewer's prebuilt app (npm @ohif/app, its dist/ folder), pinned, unpacked into
# $1 (default ~/.cache/radraft/ohif/<version>). Used by the viewer test and by sites that
# want a viewer beside radraft; nothing is built, nothing runs at install.
set -euo pipefail
VERSION="${OHIF_VERSION:-3.13.2}"
DEST="${1:-$HOME/.cache/radraft/ohif/$VERSION}"
if [ -f "$DEST/dist/index.html" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is needed to fetch @ohif/app (apt-get install npm)"; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "@ohif/app@$VERSION" >/dev/null)
mkdir -p "$DEST"
tar -xzf "$WORK"/ohif-app-"$VERSION".tgz -C "$WORK"
rm -rf "$DEST/dist"
mv "$WORK/package/dist" "$DEST/dist"
cp "$WORK/package/LICENSE" "$DEST/LICENSE"
echo "OHIF $VERSION in $DEST/dist"
