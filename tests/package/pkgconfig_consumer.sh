#!/bin/sh
# Builds tests/consumer/main.cpp against the installed sgf with pkg-config alone (no CMake) and runs it.
# usage: pkgconfig_consumer.sh PREFIX LIBDIR CXX SOURCE OUTDIR
set -eu
prefix=$1 libdir=$2 cxx=$3 source=$4 out=$5
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists --print-errors sgf-eigen
model=$(pkg-config --variable=default_model sgf)
flags=$(pkg-config --cflags --libs sgf-eigen)
echo "pkg-config: sgf-eigen $(pkg-config --modversion sgf-eigen): $flags"
mkdir -p "$out"
# shellcheck disable=SC2086  # the flags are words
"$cxx" -std=c++20 -O1 "$source" -o "$out/consumer-pc" -DSGF_DEFAULT_MODEL="\"$model\"" $flags
"$out/consumer-pc"
