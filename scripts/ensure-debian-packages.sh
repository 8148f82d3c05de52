#!/bin/sh
# Install Debian packages with apt-get when a program the tests need is missing.
#   scripts/ensure-debian-packages.sh PROGRAM SKIP_VARIABLE "what it is for" PACKAGE...
# Nothing happens when PROGRAM is on the PATH (or in /usr/bin) or SKIP_VARIABLE=1.
set -eu
program=$1 skip_variable=$2 purpose=$3
shift 3
eval "skip=\${$skip_variable:-}"
if [ "$skip" = 1 ]; then
	echo "$skip_variable=1: $purpose skipped"
	exit 0
fi
if command -v "$program" >/dev/null 2>&1 || [ -x "/usr/bin/$program" ]; then
	exit 0
fi
if [ "$(id -u)" = 0 ]; then sudo=""
elif command -v sudo >/dev/null 2>&1; then sudo="sudo"
else
	echo "error: $program is missing and installing it needs root or sudo." >&2
	echo "Install it with: apt-get install $*" >&2
	echo "or skip $purpose locally with $skip_variable=1" >&2
	exit 1
fi
echo "Installing Debian's $program for $purpose: apt-get install $*"
log=".apt-install-$program.log"
if ! { $sudo apt-get update -q && \
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	echo "error: could not install $* with apt-get (full log: $log)." >&2
	echo "Install it by hand, or skip $purpose locally with $skip_variable=1" >&2
	exit 1
fi
rm -f "$log"
