#!/bin/sh
# The install story, end to end, as a user outside the tree meets it:
#
#  1. the README's API tour is tests/outside/outside.c's http_get(), verbatim;
#  2. `make install DESTDIR=<tmp>` from the build directory;
#  3. exactly the public headers are installed, each identical to its source
#     (no src/ header, no config.h), everything lands under the prefix, and
#     the shared and static libraries and nio.pc are there;
#  4. tests/outside/outside.c, which includes only <nio.h>, builds with
#     nothing but `pkg-config --cflags --libs nio` against the staged prefix
#     (PKG_CONFIG_SYSROOT_DIR=<tmp>), runs with LD_LIBRARY_PATH on the staged
#     lib (ldd must resolve libnio there), connects by name to localhost and
#     fetches a delayed response from tests/support/nio-test-httpd;
#  5. again with `pkg-config --static` and -static: a fully static program
#     (libnio.a, libcares.a, libc.a) that runs without the staged lib.
#
# Runs under `make check` and `make distcheck` (read-only srcdir, VPATH build):
# the harness exports top_builddir and top_srcdir.  SKIP (77) only when
# pkg-config is missing.  Temporary files live in one mktemp directory,
# removed on exit; the server is stopped on exit.
set -u

me=install-test
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$top_builddir}
MAKE=${MAKE:-make}

fail() {
    echo "$me: FAIL: $*" >&2
    exit 1
}
note() { echo "$me: $*"; }

outside_c=$top_srcdir/tests/outside/outside.c
[ -f "$outside_c" ] || fail "no $outside_c (top_srcdir=$top_srcdir)"
[ -f "$top_builddir/Makefile" ] || fail "no Makefile in top_builddir=$top_builddir"

# ------------------------------------------------ 1. README tour == outside.c
# outside.c: the lines between "/* README: begin */" and "/* README: end */";
# README.md: the ```c block after the line "<!-- tests/outside/outside.c -->".
tour_c=$(sed -n '/^\/\* README: begin \*\/$/,/^\/\* README: end \*\/$/p' "$outside_c" | sed '1d;$d')
tour_md=$(awk '/^<!-- tests\/outside\/outside.c -->$/ { mark = 1; next }
               mark && /^```c$/ { inblock = 1; next }
               inblock && /^```$/ { exit }
               inblock && !/^#include / && !(/^$/ && !started) { started = 1; print }' \
    "$top_srcdir/README.md")
[ -n "$tour_c" ] || fail "no README: begin/end markers in $outside_c"
[ -n "$tour_md" ] || fail "README.md has no \`\`\`c block after <!-- tests/outside/outside.c -->"
if [ "$tour_c" != "$tour_md" ]; then
    echo "$me: README.md's API tour differs from http_get() in tests/outside/outside.c:" >&2
    printf '%s\n' "$tour_c" >"${TMPDIR:-/tmp}/nio-tour-c.$$"
    printf '%s\n' "$tour_md" >"${TMPDIR:-/tmp}/nio-tour-md.$$"
    diff -u "${TMPDIR:-/tmp}/nio-tour-c.$$" "${TMPDIR:-/tmp}/nio-tour-md.$$" >&2
    rm -f "${TMPDIR:-/tmp}/nio-tour-c.$$" "${TMPDIR:-/tmp}/nio-tour-md.$$"
    fail "copy the block from outside.c into README.md (or the other way)"
fi
note "README.md's API tour is outside.c's http_get() (compiled below)"

# ------------------------------------------------ prerequisites
if ! command -v pkg-config >/dev/null 2>&1; then
    echo "$me: SKIP: *** pkg-config is not installed: the install test builds" >&2
    echo "$me: SKIP: *** an outside program with pkg-config only (apt-get install pkgconf) ***" >&2
    exit 77
fi

mkvar() { sed -n "s/^$1 = //p" "$top_builddir/Makefile" | head -n 1; }
CC=$(mkvar CC)
prefix=$(mkvar prefix)
san=$(mkvar SAN_CFLAGS)
[ -n "$CC" ] || CC=cc
[ -n "$prefix" ] || fail "cannot read prefix from $top_builddir/Makefile"
httpd_bin=$top_builddir/tests/support/nio-test-httpd
[ -x "$httpd_bin" ] || fail "no $httpd_bin: build it first (make check builds it)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nio-install.XXXXXX") || fail "mktemp -d"
httpd_pid=
cleanup() {
    if [ -n "$httpd_pid" ]; then
        kill "$httpd_pid" 2>/dev/null
        wait "$httpd_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE
stage=$tmp/stage

# ------------------------------------------------ 2. make install DESTDIR
# A clean environment for the sub-make: the check run's MAKEFLAGS (-j, -k,
# jobserver descriptors) are not the install's business.
if ! (unset MAKEFLAGS MFLAGS MAKELEVEL; cd "$top_builddir" &&
    $MAKE install DESTDIR="$stage") >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log" >&2
    fail "make install DESTDIR=$stage failed"
fi
note "make install DESTDIR=<tmp> (prefix $prefix)"

# ------------------------------------------------ 3. what was installed
[ -d "$stage$prefix" ] || fail "nothing installed under $stage$prefix"
outside_prefix=$(cd "$stage" && find . \( -type f -o -type l \) -print |
    sed 's|^\.||' | while read -r f; do
        case $f in "$prefix"/*) ;; *) echo "$f" ;; esac
    done)
[ -z "$outside_prefix" ] || fail "installed outside the prefix $prefix: $outside_prefix"

nio_h=$(find "$stage" -name nio.h -type f)
[ "$(printf '%s\n' "$nio_h" | grep -c .)" = 1 ] || fail "expected one nio.h, found: $nio_h"
incdir=$(dirname "$nio_h")
# Every installed header is a public one, byte for byte...
for h in $(cd "$stage" && find . -name '*.h' | sed 's|^\./|/|'); do
    case $h in
    "${incdir#"$stage"}"/*) rel=${h#"${incdir#"$stage"}"/} ;;
    *) fail "a header installed outside the include directory: $h" ;;
    esac
    case $rel in
    config.h | */config.h) fail "config.h was installed ($h)" ;;
    esac
    [ -f "$top_srcdir/include/$rel" ] ||
        fail "installed header $h is not a public header (no include/$rel in the source)"
    cmp -s "$top_srcdir/include/$rel" "$stage$h" ||
        fail "installed $h differs from include/$rel"
done
# ...and every public header is installed (a new one must join
# nioinclude_HEADERS in Makefile.am).
for src in "$top_srcdir"/include/*.h "$top_srcdir"/include/nio/*.h; do
    rel=${src#"$top_srcdir"/include/}
    [ -f "$incdir/$rel" ] || fail "public header include/$rel was not installed"
done
nh=$(cd "$stage" && find . -name '*.h' | grep -c .)
note "headers: exactly the $nh public ones, identical to include/ (no src/ header, no config.h)"

pc=$(find "$stage" -name nio.pc -path '*/pkgconfig/*' -type f)
[ -n "$pc" ] || fail "nio.pc was not installed"
# Which libraries this build makes (configure --disable-shared/-static).
lt_conf() { sed -n "1,/^# ### END LIBTOOL CONFIG/s/^$1=//p" "$top_builddir/libtool" | head -n 1; }
shared=yes
static=yes
if [ -f "$top_builddir/libtool" ]; then
    [ "$(lt_conf build_libtool_libs)" = no ] && shared=no
    [ "$(lt_conf build_old_libs)" = no ] && static=no
fi
lib=$(find "$stage" \( -name 'libnio.so' -o -name 'libnio.a' \) | head -n 1)
[ -n "$lib" ] || fail "neither libnio.so nor libnio.a was installed"
libdir=$(dirname "$lib")
[ "$shared" = no ] || [ -e "$libdir/libnio.so" ] || fail "libnio.so was not installed"
[ "$static" = no ] || [ -f "$libdir/libnio.a" ] || fail "libnio.a was not installed"
note "libraries in $libdir (shared: $shared, static: $static), nio.pc"

# ------------------------------------------------ 4. an outside program
# Only pkg-config says where nio is.  The .pc carries the configure prefix;
# the sysroot maps it into the staging directory, as DESTDIR did.
PKG_CONFIG_SYSROOT_DIR=$stage
PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs nio) || fail "pkg-config --cflags --libs nio failed"
case $flags in
*"-I$incdir"*"-L$libdir"* | *"-L$libdir"*"-I$incdir"*) ;;
*) fail "pkg-config gave '$flags', not the staged $incdir and $libdir" ;;
esac
sflags=$(pkg-config --static --cflags --libs nio) || fail "pkg-config --static failed"
note "pkg-config --cflags --libs nio: $flags"

# Strict C11 with the project's warnings-as-errors stance: the public headers
# must need nothing beyond what a careful user's program defines.  A
# sanitizer build's library needs the sanitizer runtime in the program too.
cflags="-std=c11 -Wall -Wextra -Wpedantic -Werror $san"

if command -v c++ >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    printf '#include <nio.h>\nint main() { return nio_version() == 0; }\n' |
        c++ -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags nio) - \
            >"$tmp/cxx.log" 2>&1 || {
        cat "$tmp/cxx.log" >&2
        fail "<nio.h> does not compile as C++11"
    }
    note "<nio.h> compiles as C++11"
fi

"$httpd_bin" -p 0 >"$tmp/httpd.out" 2>"$tmp/httpd.err" &
httpd_pid=$!
port=
i=0
while [ $i -lt 100 ]; do
    port=$(sed -n 's/^listening on port \([0-9][0-9]*\).*/\1/p' "$tmp/httpd.out")
    [ -n "$port" ] && break
    kill -0 "$httpd_pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || {
    cat "$tmp/httpd.err" >&2
    fail "nio-test-httpd did not report its port"
}
note "nio-test-httpd listening on port $port"

if [ "$shared" = yes ]; then
    # shellcheck disable=SC2086
    $CC $cflags -o "$tmp/outside" "$outside_c" $flags >"$tmp/cc.log" 2>&1 || {
        cat "$tmp/cc.log" >&2
        fail "$CC $cflags outside.c \$(pkg-config --cflags --libs nio)"
    }
    note "built tests/outside/outside.c with $CC $cflags \$(pkg-config --cflags --libs nio)"
    if command -v ldd >/dev/null 2>&1; then
        resolved=$(LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ldd "$tmp/outside" |
            sed -n 's/^[[:space:]]*libnio\.so[^ ]* => \([^ ]*\).*/\1/p')
        case $resolved in
        "$libdir"/*) ;;
        *) fail "outside resolves libnio to '$resolved', not the staged $libdir" ;;
        esac
    fi
    LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$tmp/outside" "$port" 200 ||
        fail "the outside program (shared, LD_LIBRARY_PATH=<staged lib>) failed"
else
    note "not building against libnio.so: this build makes no shared library"
fi

# ------------------------------------------------ 5. static
if [ "$static" = no ]; then
    note "not linking -static: this build makes no static library"
elif [ -n "$san" ]; then
    note "not linking -static: this is a sanitizer build ($san), whose runtime"
    note "cannot be linked fully statically; the plain build's run covers it"
else
    # glibc warns that getservbyname & co. need its shared libraries at run
    # time when linked statically: expected, and not used on nio's paths.
    # shellcheck disable=SC2086
    $CC $cflags -static -o "$tmp/outside-static" "$outside_c" $sflags >"$tmp/cc-static.log" 2>&1 || {
        cat "$tmp/cc-static.log" >&2
        fail "$CC $cflags -static outside.c \$(pkg-config --static --cflags --libs nio)"
    }
    if command -v ldd >/dev/null 2>&1 && ldd "$tmp/outside-static" 2>&1 | grep -q '=>'; then
        fail "outside-static is not statically linked: $(ldd "$tmp/outside-static" 2>&1)"
    fi
    note "built -static with \$(pkg-config --static --cflags --libs nio): $sflags"
    "$tmp/outside-static" "$port" 100 || fail "the static outside program failed"
fi

note "PASS"
exit 0
