#!/usr/bin/env bash
# Run HERE before a GPU session: unpacks the Debian headers the GPU machine lacks (doctest, stb)
# into .deps/ (git-ignored), which the device call carries (carry: [".deps"]).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .deps/debs
(cd .deps/debs && apt-get download doctest-dev libstb-dev libstb0 >/dev/null)
for deb in .deps/debs/*.deb; do dpkg -x "$deb" .deps; done
ls .deps/usr/include
