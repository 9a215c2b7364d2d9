#!/bin/sh
# Build-and-run check of the book's reactor example (examples/reactor.c).
exec "${top_builddir:-.}/examples/reactor" --check
