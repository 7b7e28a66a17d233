#!/usr/bin/env bash
# Removes the benchmark namespaces made by setup.sh (and ends what runs in them).
exec "$(dirname "${BASH_SOURCE[0]}")/setup.sh" down
