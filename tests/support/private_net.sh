#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a test binary in a network and mount namespace of its own (util-linux unshare, as root),
# where it may bind port 53 and bind-mount its own /etc/resolv.conf and /etc/hosts without
# touching the machine's. Without the rights, the binary runs as it is and skips with a message.
if unshare --net --mount true 2>/dev/null; then
  exec unshare --net --mount --propagation private env CONPOOL_PRIVATE_NET=1 "$@"
fi
exec "$@"
