#!/bin/sh
# Install the pinned JS quality toolchain next to this script (or into DIR, which holds a copy of
# package.json and package-lock.json): the quality image runs it into /opt/quality-node, .ci/run into this
# directory for the process runtime.    sh install.sh [DIR]
# npm ci installs exactly the lockfile's tree; no package needs an install script, and Playwright must not
# download a browser (it drives Debian's chromium).
set -eu
dir=${1:-$(dirname "$0")}
cd "$dir"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
# Debian bookworm's npm 9 does not link the node-linux-<arch> package's `node` into .bin (npm 10+ does);
# without the link the tools would run on an older system Node.
if [ ! -e node_modules/.bin/node ]; then
  for node in node_modules/node-linux-*/bin/node; do
    if [ -x "$node" ]; then ln -s "../${node#node_modules/}" node_modules/.bin/node; fi
  done
fi
if [ -x node_modules/.bin/node ]; then
  echo "JS quality toolchain in $(pwd) on Node $(node_modules/.bin/node --version)"
else
  echo "warning: no Node 22 package for this platform; the JS quality tools use $(command -v node)" >&2
fi
