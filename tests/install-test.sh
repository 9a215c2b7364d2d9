#!/bin/sh
# The install story, end to end, as a user outside the tree meets it:
#
#  1. the README's API tour is examples/fetch.c's http_get(), verbatim;
#  2. `make install DESTDIR=<tmp>` from the build directory;
#  3. exactly the public headers are installed, each identical to its source
#     (no src/ header, no config.h), everything lands under the prefix, and
#     the shared and static libraries and nio.pc are there;
#  4. the man pages: a page (or a .so link to one) for every public
#     function, every reference of an installed page to a nio page resolves
#     to an installed file, and `man` (when installed) shows
#     nio_tcp_connect_host from the staged tree;
#  5. the examples are installed in the documentation directory
#     (.../doc/nio/examples), each identical to its source, and built from
#     there with nothing but `pkg-config --cflags --libs nio` against the
#     staged prefix (PKG_CONFIG_SYSROOT_DIR=<tmp>), strict C11 with -Werror,
#     and run with LD_LIBRARY_PATH on the staged lib (ldd must resolve
#     libnio there): fetch connects by name to localhost and gets a delayed
#     response from tests/support/nio-test-httpd; echo-server serves
#     echo-client, which sends 6 MiB, half-closes and checks every byte of
#     the echo; the reactor checks its own run; line-server serves
#     echo-client over a Unix socket (6 MiB echoed line by line, the
#     connection ended with nio_tcp_finish) and stops cleanly on SIGTERM;
#     embed-poll and embed-uv (with libuv's pkg-config flags, when libuv is
#     installed) fetch from the delayed server with nio driven from their
#     own loops; and a few lines check that the installed headers' version
#     (NIO_VERSION_STRING, NIO_VERSION_HEX) is the installed library's
#     (nio_version());
#  6. fetch again with `pkg-config --static` and -static: a fully static
#     program (libnio.a, libcares.a, libc.a) that runs without the staged
#     lib;
#  7. the CMake package: lib/cmake/nio/nioConfig.cmake and its version file
#     are installed, and an outside CMake project (find_package(nio 0.1
#     REQUIRED), target_link_libraries(fetch PRIVATE nio::nio)) finds the
#     staged prefix through CMAKE_PREFIX_PATH alone, builds the installed
#     fetch.c against the shared library and, with NIO_USE_STATIC_LIBS and
#     -static, fully static, and both fetch from the delayed server; a
#     version this nio is not (find_package(nio 9.0)) is refused.  Only a
#     note when cmake is not installed (apt-get install cmake).
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

examples="reactor.c echo-server.c echo-client.c fetch.c line-server.c embed-poll.c embed-uv.c"
fetch_c=$top_srcdir/examples/fetch.c
[ -f "$fetch_c" ] || fail "no $fetch_c (top_srcdir=$top_srcdir)"
[ -f "$top_builddir/Makefile" ] || fail "no Makefile in top_builddir=$top_builddir"

# ------------------------------------------------ 1. README tour == fetch.c
# fetch.c: the lines between "/* README: begin */" and "/* README: end */";
# README.md: the ```c block after the line "<!-- examples/fetch.c -->".
tour_c=$(sed -n '/^\/\* README: begin \*\/$/,/^\/\* README: end \*\/$/p' "$fetch_c" | sed '1d;$d')
tour_md=$(awk '/^<!-- examples\/fetch.c -->$/ { mark = 1; next }
               mark && /^```c$/ { inblock = 1; next }
               inblock && /^```$/ { exit }
               inblock && !/^#include / && !(/^$/ && !started) { started = 1; print }' \
    "$top_srcdir/README.md")
[ -n "$tour_c" ] || fail "no README: begin/end markers in $fetch_c"
[ -n "$tour_md" ] || fail "README.md has no \`\`\`c block after <!-- examples/fetch.c -->"
if [ "$tour_c" != "$tour_md" ]; then
    echo "$me: README.md's API tour differs from http_get() in examples/fetch.c:" >&2
    printf '%s\n' "$tour_c" >"${TMPDIR:-/tmp}/nio-tour-c.$$"
    printf '%s\n' "$tour_md" >"${TMPDIR:-/tmp}/nio-tour-md.$$"
    diff -u "${TMPDIR:-/tmp}/nio-tour-c.$$" "${TMPDIR:-/tmp}/nio-tour-md.$$" >&2
    rm -f "${TMPDIR:-/tmp}/nio-tour-c.$$" "${TMPDIR:-/tmp}/nio-tour-md.$$"
    fail "copy the block from fetch.c into README.md (or the other way)"
fi
note "README.md's API tour is examples/fetch.c's http_get() (built and run below)"

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
echo_pid=
cleanup() {
    for pid in $httpd_pid $echo_pid; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
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
# nioinclude_HEADERS in Makefile.am); <nio/tls.h> only by a build with
# the TLS layer (configured with OpenSSL), and then its man page too.
if grep -q '^#define NIO_HAVE_TLS 1' "$top_builddir/config.h" 2>/dev/null; then
    optional=
else
    optional=nio/tls.h
fi
for src in "$top_srcdir"/include/*.h "$top_srcdir"/include/nio/*.h; do
    rel=${src#"$top_srcdir"/include/}
    if [ "$rel" = "$optional" ]; then
        [ ! -f "$incdir/$rel" ] || fail "include/$rel was installed by a build without TLS"
        continue
    fi
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

# ------------------------------------------------ 4. man pages
man3=$(find "$stage" -name nio_tcp.3 -path '*/man3/*')
[ "$(printf '%s\n' "$man3" | grep -c .)" = 1 ] || fail "expected one man3/nio_tcp.3, found: $man3"
man3=$(dirname "$man3")
mandir=$(dirname "$man3")
funcs=$(for h in "$top_srcdir"/include/nio.h "$top_srcdir"/include/nio/*.h; do
        [ "${h#"$top_srcdir"/include/}" = "$optional" ] || cat "$h"
    done |
    sed -n 's/^NIO_EXTERN[^(]*[ *]\(nio_[a-z0-9_]*\)(.*/\1/p' | sort -u)
[ -n "$funcs" ] || fail "no NIO_EXTERN functions found in the headers"
nf=0
for f in $funcs; do
    [ -f "$man3/$f.3" ] || fail "no man page for $f: ${man3#"$stage"}/$f.3 was not installed"
    nf=$((nf + 1))
done
# Each .so link names an installed page, and every nio page that a page
# refers to, name(section), is there.
for page in "$mandir"/man*/*; do
    target=$(sed -n '1s/^\.so \(.*\)$/\1/p' "$page")
    [ -z "$target" ] || [ -f "$mandir/$target" ] ||
        fail "${page#"$stage"} is a link to $target, which is not installed"
    for ref in $(sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/"//g' "$page" |
        grep -o 'nio[a-z0-9_-]* *([1-8])' | sed 's/ *(\(.\))/.\1/' | sort -u); do
        [ -f "$mandir/man${ref##*.}/$ref" ] ||
            fail "${page#"$stage"} refers to ${ref%.*}(${ref##*.}), which is not installed"
    done
done
if command -v man >/dev/null 2>&1; then
    # -M: the staged tree only; the .so link must lead to nio_resolver(3).
    shown=$(MANPAGER=cat MANWIDTH=200 man -M "$mandir" 3 nio_tcp_connect_host 2>/dev/null)
    { printf '%s\n' "$shown" | grep -q '^NIO_RESOLVER(3)' &&
        printf '%s\n' "$shown" | grep -q 'int nio_tcp_connect_host(nio_poll \*poll'; } ||
        fail "man -M <staged> 3 nio_tcp_connect_host does not show nio_resolver(3)'s SYNOPSIS"
    note "man pages: one for each of the $nf public functions, every nio reference installed;"
    note "man nio_tcp_connect_host shows nio_resolver(3)"
else
    note "man pages: one for each of the $nf public functions, every nio reference installed"
fi

# ------------------------------------------------ 5. the examples
exdir=$(find "$stage" -name echo-server.c -path '*/doc/*/examples/*')
[ "$(printf '%s\n' "$exdir" | grep -c .)" = 1 ] ||
    fail "expected one .../doc/.../examples/echo-server.c installed, found: $exdir"
exdir=$(dirname "$exdir")
for ex in $examples; do
    [ -f "$exdir/$ex" ] || fail "examples/$ex was not installed in ${exdir#"$stage"}"
    cmp -s "$top_srcdir/examples/$ex" "$exdir/$ex" ||
        fail "installed ${exdir#"$stage"}/$ex differs from examples/$ex"
done
extra=$(cd "$exdir" && ls | while read -r f; do
    case " $examples " in *" $f "*) ;; *) echo "$f" ;; esac
done)
[ -z "$extra" ] || fail "installed in ${exdir#"$stage"} but not in this test's list: $extra"
note "examples installed in ${exdir#"$stage"}: $examples"

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
    # The option initialisers too: a C++ brace list may not narrow.
    # shellcheck disable=SC2046
    printf '#include <nio.h>\nint main() {\n nio_tcp_opts t = NIO_TCP_OPTS_INIT;\n nio_resolver_opts r = NIO_RESOLVER_OPTS_INIT;\n return nio_version() == 0 || t.size == 0 || r.size == 0;\n}\n' |
        c++ -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags nio) - \
            >"$tmp/cxx.log" 2>&1 || {
        cat "$tmp/cxx.log" >&2
        fail "<nio.h> does not compile as C++11"
    }
    note "<nio.h> compiles as C++11"
fi

# embed-uv needs libuv's flags too; without libuv it is left out.
uv_flags=
if pkg-config --exists libuv 2>/dev/null; then
    uv_flags=$(pkg-config --cflags --libs libuv)
fi

# Build an installed example with pkg-config's flags only: $2 the flags, $3
# (-static) more for the link.
build() { # name flags [-static]
    # shellcheck disable=SC2086
    $CC $cflags ${3:-} -o "$tmp/$1${3:-}" "$exdir/$1.c" $2 >"$tmp/cc.log" 2>&1 || {
        cat "$tmp/cc.log" >&2
        fail "$CC $cflags ${3:-} examples/$1.c \$(pkg-config ...) (the installed copy)"
    }
}
staged() { LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$@"; }
ms() { echo $(($(date +%s%N) / 1000000)); }

# Start a server in the background, its stdout in $1; sets started_pid,
# and port from the first line that sed script $2 turns into a number.
start() { # outfile sed-script program args...
    out=$1
    script=$2
    shift 2
    "$@" >"$out" 2>"$out.err" &
    started_pid=$!
    port=
    i=0
    while [ $i -lt 100 ]; do
        port=$(sed -n "$script" "$out" | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$started_pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    cat "$out.err" >&2
    fail "$* did not report its port"
}

start "$tmp/httpd.out" 's/^listening on port \([0-9][0-9]*\).*/\1/p' "$httpd_bin" -p 0
httpd_pid=$started_pid
httpd_port=$port
note "nio-test-httpd listening on port $httpd_port"

# fetch: GET /delay/200 by name; the whole response, no sooner than asked.
check_fetch() { # [staged] program
    t0=$(ms)
    "$@" localhost "$httpd_port" /delay/200 >"$tmp/fetch.out" 2>"$tmp/fetch.err" || {
        cat "$tmp/fetch.err" >&2
        fail "$* localhost $httpd_port /delay/200 failed"
    }
    took=$(($(ms) - t0))
    head -n 1 "$tmp/fetch.out" | grep -q '^HTTP/1\.1 200 OK' ||
        fail "$*: not a 200 response: $(head -c 200 "$tmp/fetch.out")"
    [ "$(tail -n 1 "$tmp/fetch.out")" = "delayed 200 ms" ] ||
        fail "$*: the body is not 'delayed 200 ms': $(tail -n 1 "$tmp/fetch.out")"
    [ "$took" -ge 200 ] || fail "$*: a response after $took ms, before the 200 ms delay"
}

if [ "$shared" = yes ]; then
    for ex in $examples; do
        case $ex in
        embed-uv.c) [ -z "$uv_flags" ] || build embed-uv "$flags $uv_flags" ;;
        *) build "${ex%.c}" "$flags" ;;
        esac
    done
    note "built the installed examples with $CC $cflags \$(pkg-config --cflags --libs nio)"
    if command -v ldd >/dev/null 2>&1; then
        resolved=$(staged ldd "$tmp/fetch" |
            sed -n 's/^[[:space:]]*libnio\.so[^ ]* => \([^ ]*\).*/\1/p')
        case $resolved in
        "$libdir"/*) ;;
        *) fail "fetch resolves libnio to '$resolved', not the staged $libdir" ;;
        esac
    fi

    # The installed headers and library are one release.
    cat >"$tmp/version.c" <<'EOF'
#include <nio.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    char hex[32];
    snprintf(hex, sizeof hex, "%d.%d.%d", NIO_VERSION_HEX >> 16, NIO_VERSION_HEX >> 8 & 0xff,
             NIO_VERSION_HEX & 0xff);
    printf("library %s, headers %s, NIO_VERSION_HEX %#08x\n", nio_version(), NIO_VERSION_STRING,
           (unsigned)NIO_VERSION_HEX);
    return strcmp(nio_version(), NIO_VERSION_STRING) != 0 || strcmp(hex, NIO_VERSION_STRING) != 0 ||
           strcmp(nio_err_name(NIO_ENOTFOUND), "NIO_ENOTFOUND") != 0;
}
EOF
    # shellcheck disable=SC2086
    $CC $cflags -o "$tmp/version" "$tmp/version.c" $flags >"$tmp/cc.log" 2>&1 || {
        cat "$tmp/cc.log" >&2
        fail "the version check does not build"
    }
    v=$(staged "$tmp/version") || fail "the installed library and headers disagree: $v"
    note "$v"

    check_fetch staged "$tmp/fetch"
    note "fetch localhost $httpd_port /delay/200: HTTP/1.1 200, the body as sent, in $took ms"

    # The echo server, one connection, against the checking client: 6 MiB
    # and a half-close, every byte back; then the server ends by itself.
    start "$tmp/echo.out" 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
        staged timeout 120 "$tmp/echo-server" 0 1
    echo_pid=$started_pid
    out=$(staged timeout 60 "$tmp/echo-client" "$port" 6291456 2>&1) ||
        fail "echo-client against echo-server: $out"
    [ "$out" = "sent 6291456 bytes, received 6291456 bytes back, all equal" ] ||
        fail "echo-client said: $out"
    wait "$echo_pid" || fail "echo-server failed: $(cat "$tmp/echo.out.err")"
    echo_pid=
    grep -qx 'served 1 connections, 6291456 bytes' "$tmp/echo.out" ||
        fail "echo-server said: $(cat "$tmp/echo.out")"
    note "echo-server 0 1 and echo-client $port 6291456: $out"

    staged timeout 60 "$tmp/reactor" --check >"$tmp/reactor.out" 2>&1 || {
        cat "$tmp/reactor.out" >&2
        fail "reactor --check failed"
    }
    note "reactor --check: $(tail -n 1 "$tmp/reactor.out")"

    # The line server on a Unix socket, one connection, against the checking
    # client: every byte back, the connection ended by nio_tcp_finish on
    # both sides, the socket file removed at exit.
    sock=$tmp/line.sock
    start "$tmp/line.out" 's|^listening on \(/.*\)$|0|p' \
        staged timeout 120 "$tmp/line-server" "$sock" 1
    echo_pid=$started_pid
    out=$(staged timeout 60 "$tmp/echo-client" "$sock" 6291456 2>&1) ||
        fail "echo-client against line-server: $out"
    [ "$out" = "sent 6291456 bytes, received 6291456 bytes back, all equal" ] ||
        fail "echo-client said: $out"
    wait "$echo_pid" || fail "line-server failed: $(cat "$tmp/line.out.err")"
    echo_pid=
    grep -q '^served 1 connections, [0-9]* lines$' "$tmp/line.out" ||
        fail "line-server said: $(cat "$tmp/line.out")"
    [ ! -e "$sock" ] || fail "line-server left its socket file $sock behind"
    note "line-server $sock 1 and echo-client $sock 6291456: $out"

    # SIGTERM: it stops accepting, finishes its connections, exits 0.  Run
    # through env, which execs it, so that the pid is the server's.
    start "$tmp/line2.out" 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
        env LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/line-server" \
        127.0.0.1:0
    echo_pid=$started_pid
    kill -TERM "$echo_pid"
    i=0
    while kill -0 "$echo_pid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -0 "$echo_pid" 2>/dev/null && fail "line-server still runs 10 s after SIGTERM"
    wait "$echo_pid" || fail "line-server did not exit 0 on SIGTERM: $(cat "$tmp/line2.out.err")"
    echo_pid=
    grep -q '^stopped by a signal: served 0 connections, 0 lines$' "$tmp/line2.out" ||
        fail "line-server on SIGTERM said: $(cat "$tmp/line2.out")"
    note "line-server stopped by SIGTERM: $(cat "$tmp/line2.out" | tail -n 1)"

    # nio driven from a program's own poll(2) loop, and from libuv's.
    check_fetch staged "$tmp/embed-poll"
    note "embed-poll localhost $httpd_port /delay/200: HTTP/1.1 200, the body as sent, in $took ms"
    if [ -n "$uv_flags" ]; then
        check_fetch staged "$tmp/embed-uv"
        note "embed-uv localhost $httpd_port /delay/200: HTTP/1.1 200, the body as sent, in $took ms"
    else
        note "embed-uv not built: libuv's pkg-config file is not installed (apt-get install libuv1-dev)"
    fi
else
    note "not building against libnio.so: this build makes no shared library"
fi

# ------------------------------------------------ 6. static
if [ "$static" = no ]; then
    note "not linking -static: this build makes no static library"
elif [ -n "$san" ]; then
    note "not linking -static: this is a sanitizer build ($san), whose runtime"
    note "cannot be linked fully statically; the plain build's run covers it"
else
    # glibc warns that getservbyname & co. need its shared libraries at run
    # time when linked statically: expected, and not used on nio's paths.
    build fetch "$sflags" -static
    if command -v ldd >/dev/null 2>&1 && ldd "$tmp/fetch-static" 2>&1 | grep -q '=>'; then
        fail "fetch-static is not statically linked: $(ldd "$tmp/fetch-static" 2>&1)"
    fi
    note "built fetch -static with \$(pkg-config --static --cflags --libs nio): $sflags"
    check_fetch "$tmp/fetch-static"
    note "fetch-static localhost $httpd_port /delay/200: HTTP/1.1 200, in $took ms"
fi

# ------------------------------------------------ 7. CMake
cmake_config=$(find "$stage" -name nioConfig.cmake -path '*/cmake/nio/*' -type f)
[ -n "$cmake_config" ] || fail "lib/cmake/nio/nioConfig.cmake was not installed"
[ -f "$(dirname "$cmake_config")/nioConfigVersion.cmake" ] ||
    fail "nioConfigVersion.cmake was not installed beside ${cmake_config#"$stage"}"
if ! command -v cmake >/dev/null 2>&1; then
    note "CMake package installed (${cmake_config#"$stage"}); not built against: cmake is"
    note "not installed (apt-get install cmake)"
    note "PASS"
    exit 0
fi
proj=$tmp/cmake-project
mkdir -p "$proj"
cp "$exdir/fetch.c" "$proj/fetch.c"
cat >"$proj/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.13)
project(nio_outside C)
find_package(nio ${NIO_WANT} REQUIRED)
add_executable(fetch fetch.c)
target_link_libraries(fetch PRIVATE nio::nio)
EOF
# Configure and build the outside project in $1, with more cmake options.
cmake_build() { # builddir options...
    bdir=$1
    shift
    (unset MAKEFLAGS MFLAGS MAKELEVEL
        cmake -S "$proj" -B "$bdir" -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$san" \
            -DCMAKE_PREFIX_PATH="$stage$prefix" -DNIO_WANT=0.1 "$@" &&
            cmake --build "$bdir") >"$bdir.log" 2>&1
}
if [ "$shared" = yes ]; then
    cmake_build "$tmp/cmake-shared" || {
        cat "$tmp/cmake-shared.log" >&2
        fail "the outside CMake project does not build against the staged nio (shared)"
    }
    if command -v ldd >/dev/null 2>&1; then
        resolved=$(staged ldd "$tmp/cmake-shared/fetch" |
            sed -n 's/^[[:space:]]*libnio\.so[^ ]* => \([^ ]*\).*/\1/p')
        case $resolved in
        "$libdir"/*) ;;
        *) fail "the CMake-built fetch resolves libnio to '$resolved', not the staged $libdir" ;;
        esac
    fi
    check_fetch staged "$tmp/cmake-shared/fetch"
    note "CMake: find_package(nio 0.1 REQUIRED) and nio::nio built fetch (shared); it"
    note "fetched localhost $httpd_port /delay/200 in $took ms"
fi
if [ "$static" = no ]; then
    note "CMake: not linking static: this build makes no static library"
elif [ -n "$san" ]; then
    note "CMake: not linking -static: a sanitizer build (see 6.)"
else
    cmake_build "$tmp/cmake-static" -DNIO_USE_STATIC_LIBS=ON -DCMAKE_EXE_LINKER_FLAGS=-static || {
        cat "$tmp/cmake-static.log" >&2
        fail "the outside CMake project does not build with NIO_USE_STATIC_LIBS and -static"
    }
    if command -v ldd >/dev/null 2>&1 && ldd "$tmp/cmake-static/fetch" 2>&1 | grep -q '=>'; then
        fail "the CMake-built static fetch is dynamic: $(ldd "$tmp/cmake-static/fetch" 2>&1)"
    fi
    check_fetch "$tmp/cmake-static/fetch"
    note "CMake: NIO_USE_STATIC_LIBS=ON and -static: libnio.a with its private dependencies"
    note "(c-ares, threads), fully static; fetched in $took ms"
fi
if cmake_build "$tmp/cmake-newer" -DNIO_WANT=9.0; then
    fail "find_package(nio 9.0) accepted this nio: the version file does not check"
fi
grep -q 'considered but not accepted' "$tmp/cmake-newer.log" ||
    fail "find_package(nio 9.0) failed, but not for the version: $(tail -n 5 "$tmp/cmake-newer.log")"
note "CMake: find_package(nio 9.0) refused by the version file"

note "PASS"
exit 0
