#!/bin/sh
# The poll suite again, with the pipe waker forced instead of eventfd.
NIO_WAKER=pipe exec "${top_builddir:-.}/tests/check_poll"
