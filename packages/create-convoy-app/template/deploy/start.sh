#!/bin/sh
# The container's command (the Dockerfile's CMD): sync the schema, then become the server.
#
# `exec` replaces this shell with node, so node is the container's main process and the
# SIGTERM of `docker stop` or a platform's deploy reaches Convoy itself: calls in flight finish,
# every sync stream gets its closing event, and the process exits 0.
#
# Where a release step migrates once per deploy (Fly's release_command, Railway's
# preDeployCommand), set CONVOY_MIGRATE_ON_START=false so that starting a machine does not repeat it.
set -eu
cd "$(dirname "$0")/.."

case "${CONVOY_MIGRATE_ON_START:-true}" in
  false | 0 | no) ;;
  *) ./node_modules/.bin/convoy migrate ;;
esac

exec node convoy/_generated/http.js
