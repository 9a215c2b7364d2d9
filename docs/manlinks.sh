#!/bin/sh
# One man page per public function name, as a .so link to the page that
# documents it, so that `man nio_tcp_connect_host` finds nio_resolver(3).
#
#   manlinks.sh install   MANDIR PAGE...
#   manlinks.sh uninstall MANDIR PAGE...
#
# For each PAGE (a source path such as docs/nio_tcp.3), every name of its
# NAME line other than the page's own gets MANDIR/manS/NAME.S holding the
# one line ".so manS/PAGE" (S: the page's section).  The NAME line is the
# list: a function documented on a page has its link, with no second list
# to keep in step (tests/manpages.sh checks that every public function is
# on one).  A real page of that name is never overwritten; uninstall
# removes only the links this script writes.  Called by `make install` /
# `make uninstall` (Makefile.am) and by tests/manpages.sh.
set -u

me=manlinks
usage() {
    echo "usage: $me install|uninstall MANDIR PAGE..." >&2
    exit 2
}
[ $# -ge 2 ] || usage
mode=$1
mandir=$2
shift 2
case $mode in install | uninstall) ;; *) usage ;; esac

# The names of a page's NAME line: the text between ".SH NAME" and the next
# ".SH", up to " \- ", split at commas.
names() { # page
    awk '/^\.SH/ { on = ($0 ~ /^\.SH "?NAME"?$/); next } on { printf "%s ", $0 }' "$1" |
        sed 's/ \\- .*//' | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep '^[a-z]'
}

status=0
for page in "$@"; do
    [ -f "$page" ] || {
        echo "$me: no page $page" >&2
        exit 1
    }
    file=$(basename "$page")
    sect=${file##*.}
    base=${file%.*}
    dir=$mandir/man$sect
    line=".so man$sect/$file"
    for n in $(names "$page"); do
        [ "$n" = "$base" ] && continue
        link=$dir/$n.$sect
        if [ "$mode" = uninstall ]; then
            [ -f "$link" ] && [ "$(cat "$link")" = "$line" ] && rm -f "$link"
            continue
        fi
        # A real page (not a .so line) of that name stays.
        if [ -f "$link" ] && [ "$(sed -n '1s/^\(\.so\) .*/\1/p' "$link")" != .so ]; then
            continue
        fi
        mkdir -p "$dir" && printf '%s\n' "$line" >"$link" && chmod 644 "$link" || {
            echo "$me: cannot write $link" >&2
            status=1
        }
    done
done
exit $status
