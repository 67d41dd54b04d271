#!/usr/bin/env bash
# Installs what the test suite exercises beyond cargo, so tests that would otherwise
# skip run: poppler, ffmpeg, exiftool, LibreOffice, libheif and librsvg (media pipeline), Chromium
# and the npm packages of the browser tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
# Media pipeline, optional tools: exiftool (with Archive::Zip, which it needs for office
# documents), LibreOffice Writer without a GUI (office documents to PDF; 48 packages,
# ~260 MB, ~40 s on the CI machine), libheif's heif-convert/heif-enc (HEIC) and librsvg's
# rsvg-convert (SVG).
command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
perl -MArchive::Zip -e1 >/dev/null 2>&1 || need+=(libarchive-zip-perl)
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-writer-nogui)
command -v heif-convert >/dev/null 2>&1 || need+=(libheif-examples)
command -v rsvg-convert >/dev/null 2>&1 || need+=(librsvg2-bin)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# A local S3 server for the scale-out tests.
python3 -c 'import moto.server' 2>/dev/null || pip install -q 'moto[server]'
if [ ! -d tests/e2e/node_modules/playwright-core ]; then

    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
