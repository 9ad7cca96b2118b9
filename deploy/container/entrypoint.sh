#!/bin/sh
# Fetch the models when the mounted directory has none (idempotent: a second fetch only
# verifies), then run the gateway. SWITCHBOARD_FETCH_MODELS=off skips the fetch.
set -e
if [ "${1:-serve}" = "serve" ] && [ "${SWITCHBOARD_FETCH_MODELS:-on}" != "off" ]; then
  switchboard models fetch --dir "$SWITCHBOARD_MODELS"
fi
exec switchboard "$@"
