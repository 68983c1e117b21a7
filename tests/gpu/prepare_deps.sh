#!/usr/bin/env bash
# Run HERE before a GPU session. Fills .deps/ (git-ignored), which every device call carries
# (carry: [".deps"]): the Debian headers the GPU machine lacks (doctest, stb) and a copy of the
# RetinaFace weights from ../shared/data, which the device tool does not send (the detection
# fixture and the GPU detector tests need them; limn_models.retinaface finds them in .deps/data).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .deps/debs .deps/data
(cd .deps/debs && apt-get download doctest-dev libstb-dev libstb0 >/dev/null)
for deb in .deps/debs/*.deb; do dpkg -x "$deb" .deps; done
rm -rf .deps/debs  # unpacked: the archives need not travel
weights=../shared/data/retinaface-mobilenet0.25.pth
if [ -f "$weights" ]; then
  install -m 0644 "$weights" ../shared/data/retinaface-mobilenet0.25.LICENSE .deps/data/
else
  echo "warning: $weights not found: the detection tests will fail on the GPU machine" >&2
fi
ls .deps/usr/include .deps/data
du -sh .deps
