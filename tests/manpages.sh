#!/bin/sh
# The man pages against the public headers, so that neither drifts:
#
#  - every NIO_EXTERN prototype in include/nio.h and include/nio/*.h appears,
#    exactly (types, parameter names, order), in the SYNOPSIS of some page
#    docs/*.3 or docs/*.7;
#  - every prototype in a SYNOPSIS is one of those, exactly;
#  - every function in a page's SYNOPSIS is listed in its NAME, and every
#    nio_ name in NAME is in its SYNOPSIS;
#  - every nio_xxx identifier and NIO_XXX macro a page mentions anywhere
#    (text, examples) exists in the headers (NIO_BACKEND and NIO_WAKER are
#    environment variables; nio_tcp and friends are page names);
#  - every reference to a nio page, name(section), resolves: to a page in
#    docs/, or to a name in the NAME line of a page of that section, for
#    which `make install` puts a .so link (docs/manlinks.sh), so that
#    `man nio_tcp_connect_host` works;
#  - every public function is in the NAME line of a section 3 page (and so
#    gets its page or link);
#  - each page's .TH says the headers' version (NIO_VERSION_STRING);
#  - each page renders with groff -ww without a warning (when groff is here);
#  - each EXAMPLE program (a .nf block of an EXAMPLE section with the line
#    #include <nio.h>) compiles against the headers with -std=c11 -Wall
#    -Wextra -Werror, and a block marked with a roff comment naming a file
#    (.\" examples/echo-server.c, just before its .nf) is that file,
#    verbatim;
#  - with a build tree (top_builddir, which the test harness exports), each
#    EXAMPLE program is also linked against the built libnio.la and run to
#    completion on loopback, as run_example below says, with assertions on
#    what it prints: a program with no recipe there fails the check.
#
# Exit 0 when all hold, 1 with the differences otherwise.  Runs from any
# directory; the test harness exports top_srcdir and top_builddir.  Without
# a build tree the examples are only compiled (-fsyntax-only, with $CC or
# cc) and a note says so.
set -u
LC_ALL=C
export LC_ALL

me=manpages
srcdir=${top_srcdir:-${srcdir:-.}}
[ -f "$srcdir/include/nio.h" ] || srcdir=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$srcdir/include/nio.h" ] || {
    echo "$me: FAIL: cannot find include/nio.h (set top_srcdir)" >&2
    exit 1
}
headers="$srcdir/include/nio.h $(ls "$srcdir"/include/nio/*.h)"
pages=$(ls "$srcdir"/docs/*.3 "$srcdir"/docs/*.7 2>/dev/null)
[ -n "$pages" ] || {
    echo "$me: FAIL: no man pages in $srcdir/docs" >&2
    exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nio-manpages.XXXXXX") || exit 1
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP PIPE

# One spelling for a prototype: single spaces, none around '*', '(' , ')'
# and ',', no trailing ';'.
normalize() {
    sed -e 's/[[:space:]][[:space:]]*/ /g' -e 's/^ //' -e 's/ $//' -e 's/;$//' -e 's/ $//' \
        -e 's/ *\* */*/g' -e 's/ *( */(/g' -e 's/ *) */)/g' -e 's/ *, */,/g'
}

# ------------------------------------------------ the headers' prototypes
# From a line starting with NIO_EXTERN to the ';' that ends it, joined.
# shellcheck disable=SC2086
awk '
    /^NIO_EXTERN[ \t]/ { acc = ""; on = 1 }
    on {
        line = $0
        sub(/\/\*.*\*\//, "", line)
        acc = acc " " line
        if (line ~ /;/) {
            sub(/^ *NIO_EXTERN[ \t]+/, "", acc)
            sub(/;.*/, "", acc)
            print acc
            on = 0
        }
    }' $headers | normalize | sort -u >"$tmp/h.protos"
[ -s "$tmp/h.protos" ] || {
    echo "$me: FAIL: no NIO_EXTERN prototypes found in $headers" >&2
    exit 1
}
fname() { sed -n 's/.*[^a-z0-9_]\(nio_[a-z0-9_]*\)(.*/\1/p'; }
fname <"$tmp/h.protos" | sort -u >"$tmp/h.funcs"

# Every nio_ identifier and NIO_ macro of the headers (names, types, tags,
# fields, enum values, macros).
# shellcheck disable=SC2086
cat $headers | grep -o 'nio_[a-z0-9_]*' | sort -u >"$tmp/h.idents"
# shellcheck disable=SC2086
cat $headers | grep -o 'NIO_[A-Z0-9_]*' | sort -u >"$tmp/h.macros"
version=$(sed -n 's/^#define NIO_VERSION_STRING "\(.*\)"/\1/p' "$srcdir/include/nio/common.h")

# ------------------------------------------------ a page's SYNOPSIS as text
# The roff of one section, as a reader sees its words: font-alternating
# macros (.BI, .BR, ...) join their arguments, .B and .I join them with
# spaces, other requests end a line, escapes become their characters.
section_text() { # page section
    awk -v want="$2" '
        function args(s,    out, n, a, i, c, q) {
            n = 0; a = ""; q = 0
            for (i = 1; i <= length(s); i++) {
                c = substr(s, i, 1)
                if (c == "\"") { if (q) { q = 0; ARG[++n] = a; a = ""; got = 0 } else { q = 1; got = 1 } continue }
                if (!q && (c == " " || c == "\t")) { if (a != "") { ARG[++n] = a; a = "" } continue }
                a = a c
            }
            if (a != "") ARG[++n] = a
            return n
        }
        /^\.SH/ { on = ($0 ~ ("^\\.SH \"?" want "\"?$")); next }
        !on { next }
        /^\.(BI|BR|IB|IR|RB|RI)[ \t]/ {
            n = args(substr($0, 5)); out = ""
            for (i = 1; i <= n; i++) out = out ARG[i]
            print out; next
        }
        /^\.(B|I)[ \t]/ {
            n = args(substr($0, 4)); out = ""
            for (i = 1; i <= n; i++) out = out (i > 1 ? " " : "") ARG[i]
            print out; next
        }
        /^\./ { print ""; next }
        { print }
    ' "$1" | sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\(dq/"/g' -e 's/\\&//g' \
        -e 's/\\e/\\/g' -e 's/\\ / /g'
}

# Prototypes in a SYNOPSIS: statements split at ';' (a #include line stands
# alone), those of the form "type nio_name(...)".
synopsis_protos() { # page
    section_text "$1" SYNOPSIS | awk '
        /^#/ { next }
        { acc = acc " " $0 }
        END { print acc }' | tr ';' '\n' | normalize |
        grep '^[A-Za-z_][A-Za-z0-9_ *]*[ *]nio_[a-z0-9_]*(.*)$' || true
}

status=0
bad() {
    echo "$me: $*" >&2
    status=1
}

# ------------------------------------------------ running the EXAMPLEs
# The compiler and flags of the build (a sanitizer build's programs need
# its runtime), and libtool to link against the uninstalled libnio.la.
builddir=${top_builddir:-}
mkvar() { sed -n "s/^$1 = //p" "$builddir/Makefile" | head -n 1; }
linking=
if [ -n "$builddir" ]; then
    if [ -f "$builddir/libnio.la" ] && [ -x "$builddir/libtool" ]; then
        linking=yes
        CC=$(mkvar CC)
        san=$(mkvar SAN_CFLAGS)
    else
        bad "no built library in top_builddir=$builddir (libnio.la, libtool): build it first"
    fi
fi

pids=
# Start a server program in the background (for at most 120 s), its
# stdout in $1; sets server_pid, and port from the first line of output
# that sed script $2 turns into a number.
start_server() { # outfile sed-script program args...
    out=$1
    script=$2
    shift 2
    timeout 120 "$@" >"$out" 2>"$out.err" &
    server_pid=$!
    pids="$pids $server_pid"
    port=
    i=0
    while [ $i -lt 100 ]; do
        port=$(sed -n "$script" "$out" | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    bad "$*: no port on its output: $(cat "$out" "$out.err")"
    return 1
}
stop_server() {
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
}

# Run a program (at most 60 s), its stdout in $tmp/run.out; nonzero exit
# is a failure.
run() { # what program args...
    what=$1
    shift
    timeout 60 "$@" >"$tmp/run.out" 2>"$tmp/run.err"
    rc=$?
    [ $rc -eq 0 ] && return 0
    bad "$what: \`$*\` failed (exit status $rc); stdout, stderr:"
    sed 's/^/    /' "$tmp/run.out" "$tmp/run.err" >&2
    return 1
}

# A line of $2 (default: the last run's stdout) matches extended regex $1.
expect() { # what regex [file]
    grep -Eq -- "$2" "${3:-$tmp/run.out}" && return 0
    bad "$1: no output line matches /$2/; it printed:"
    sed 's/^/    /' "${3:-$tmp/run.out}" >&2
    return 1
}

# How each EXAMPLE program runs to completion by itself on loopback, and
# what it must print.  $1: the page, $2: the program's number on the page
# (1, 2, ...), $3: the built program.  A new EXAMPLE program needs a case.
run_example() { # page k program
    what="$1: EXAMPLE $2"
    case $1.$2 in
    nio.7.1)
        # Connect by name to the delayed HTTP server (on 127.0.0.1 and
        # ::1), with the 100 ms ticks going on meanwhile.
        start_server "$tmp/httpd.out" 's/^listening on port \([0-9][0-9]*\).*/\1/p' \
            "$builddir/tests/support/nio-test-httpd" -p 0 || return
        run "$what" "$3" localhost "$port" &&
            expect "$what" "^localhost port $port: connected \((127\.0\.0\.1|\[::1\]):$port\) after [0-9]+ ms \(dns [0-9]+ ms, attempts [1-9][0-9]*\)\$"
        stop_server
        ;;
    nio_poll.3.1)
        # Embedded in a poll(2) loop: three ticks of a repeating timer.
        run "$what" "$3" && expect "$what" '^tick 3$'
        ;;
    nio_signal.3.1)
        # SIGCHLD of a child that ends at once, SIGALRM a second later,
        # during waits without timeout.
        run "$what" "$3" && expect "$what" '^signal SIGALRM arrived as an event$' &&
            expect "$what" '^a child exited with status 3$'
        ;;
    nio_unix.3.1)
        # A Unix socket in /tmp, a client and the server's view of it.
        run "$what" "$3" && expect "$what" "^process [0-9]+ \\(uid $(id -u)\\) said hello\$"
        ;;
    nio_resolver.3.1)
        # The fast path: localhost (RFC 6761) and a literal, no DNS traffic.
        run "$what" "$3" && expect "$what" '^127\.0\.0\.1:0$' && expect "$what" '^\[::1\]:0$'
        run "$what" "$3" 192.0.2.7 && expect "$what" '^192\.0\.2\.7:0$'
        ;;
    nio_dns_records.3.1)
        # localhost's A record from the fast path (RFC 6761): no DNS traffic.
        run "$what" "$3" localhost A &&
            expect "$what" "$(printf '^localhost\\.\t0\tIN\tA\t127\\.0\\.0\\.1$')"
        ;;
    nio_tcp.3.1)
        # The echo server, one connection, against examples/echo-client:
        # 8 MiB and a half-close, every byte checked.
        start_server "$tmp/echo.out" 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
            "$3" 0 1 || return
        if ! run "$what" "$builddir/examples/echo-client" "$port" 8388608; then
            stop_server
            return
        fi
        expect "$what" '^sent 8388608 bytes, received 8388608 bytes back, all equal$'
        # Its one connection served, the server ends by itself.
        wait "$server_pid" || bad "$what: the server failed: $(cat "$tmp/echo.out.err")"
        expect "$what" '^served 1 connections, 8388608 bytes$' "$tmp/echo.out"
        ;;
    *)
        bad "$what: no recipe in tests/manpages.sh's run_example: how does it run by itself?"
        ;;
    esac
}

# What `man NAME` finds once installed: each page under its own name and
# the .so links that docs/manlinks.sh makes at `make install` (one for each
# other name of a page's NAME line), made here the same way.  One
# "name.section" a line.
mkdir "$tmp/man"
for page in $pages $(ls "$srcdir"/docs/*.1 2>/dev/null); do
    mkdir -p "$tmp/man/man${page##*.}"
    cp "$page" "$tmp/man/man${page##*.}/"
done
if [ -f "$srcdir/docs/manlinks.sh" ]; then
    # shellcheck disable=SC2086
    sh "$srcdir/docs/manlinks.sh" install "$tmp/man" $pages >"$tmp/links.out" 2>&1 ||
        bad "docs/manlinks.sh install failed: $(cat "$tmp/links.out")"
else
    bad "no docs/manlinks.sh: make install would put no .so links"
fi
(cd "$tmp/man" && ls man*/) | sed -n 's/^\(.*\)\.\([1-8]\)$/\1.\2/p' | sort -u >"$tmp/installed.names"

: >"$tmp/m.protos"
nexamples=0
nrun=0
cc=${CC:-cc}
command -v "${cc%% *}" >/dev/null 2>&1 || cc=
for page in $pages; do
    name=$(basename "$page")
    synopsis_protos "$page" >"$tmp/p.protos"
    cat "$tmp/p.protos" >>"$tmp/m.protos"

    # Prototypes that are not the headers'.
    while IFS= read -r p; do
        grep -qxF "$p" "$tmp/h.protos" && continue
        f=$(echo "$p" | fname)
        h=$(grep "[^a-z0-9_]$f(" "$tmp/h.protos" || true)
        if [ -n "$h" ]; then
            bad "$name: SYNOPSIS prototype differs from the header:"
            echo "    page:   $p" >&2
            echo "    header: $h" >&2
        else
            bad "$name: SYNOPSIS declares $f, which no public header does: $p"
        fi
    done <"$tmp/p.protos"

    # NAME and SYNOPSIS list the same functions.
    section_text "$page" NAME | tr '\n' ' ' | sed 's/ - .*//' | tr ',' '\n' |
        sed 's/^ *//; s/ *$//' | grep '^nio_' | sort -u >"$tmp/p.name"
    fname <"$tmp/p.protos" | sort -u >"$tmp/p.funcs"
    for f in $(comm -23 "$tmp/p.funcs" "$tmp/p.name"); do
        bad "$name: $f is in SYNOPSIS but not in NAME"
    done
    for f in $(comm -13 "$tmp/p.funcs" "$tmp/p.name"); do
        bad "$name: $f is in NAME but not in SYNOPSIS"
    done

    # Names mentioned anywhere must exist.
    for id in $(sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' "$page" |
        grep -o 'nio_[a-z0-9_]*' | grep -v '_$' | sort -u); do
        case $id in nio_poll | nio_tcp | nio_resolver | nio_dns_records | nio_unix | nio_tls) continue ;; esac
        grep -qxF "$id" "$tmp/h.idents" || bad "$name: mentions $id, which no public header has"
    done
    for id in $(sed -e '/^\.TH /d' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$page" |
        grep -o 'NIO_[A-Z0-9_]*\**' | grep -v '[*_]$' | sort -u); do
        case $id in NIO_BACKEND | NIO_WAKER) continue ;; esac
        grep -qxF "$id" "$tmp/h.macros" || bad "$name: mentions $id, which no public header defines"
    done

    # References to nio's own pages resolve (other pages, such as
    # epoll(7), are the system's).
    for ref in $(sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/"//g' "$page" |
        grep -o 'nio[a-z0-9_-]* *([1-8])' | sed 's/ *(\(.\))/.\1/' | sort -u); do
        grep -qxF "$ref" "$tmp/installed.names" ||
            bad "$name: refers to ${ref%.*}(${ref##*.}), which is no page and no name of a page's NAME line"
    done

    # .TH NAME SECTION DATE "nio VERSION" ...
    th=$(sed -n 's/^\.TH [^"]*"nio \([^"]*\)".*/\1/p' "$page")
    [ "$th" = "$version" ] || bad "$name: .TH says nio '$th', the headers $version"

    # EXAMPLE programs: one file each, $tmp/PAGE.K.c, and PAGE.K.from for
    # a block marked as a copy of a file of the source tree.
    awk -v dir="$tmp" -v base="$name" '
        /^\.SH/ { ex = ($0 ~ /^\.SH "?EXAMPLES?"?$/); next }
        !ex { next }
        blk && /^\.fi/ {
            blk = 0
            if (prog) {
                f = dir "/" base "." (++k) ".c"
                for (i = 1; i <= n; i++) print L[i] > f
                close(f)
                if (from != "") { print from > (f ".from"); close(f ".from") }
            }
            from = ""
            next
        }
        blk { L[++n] = $0; if ($0 == "#include <nio.h>") prog = 1; next }
        /^\.\\" [a-z][a-z0-9_\/.-]*$/ { from = substr($0, 5); next }
        /^\.nf/ { blk = 1; n = 0; prog = 0; next }
        { from = "" }
    ' "$page"
    for ex in "$tmp/$name".*.c; do
        [ -f "$ex" ] || continue
        k=${ex%.c}
        k=${k##*.}
        nexamples=$((nexamples + 1))
        sed -i -e 's/\\-/-/g' -e 's/\\(dq/"/g' -e 's/\\&//g' -e 's/\\e/\\/g' "$ex"
        if [ -f "$ex.from" ]; then
            from=$(cat "$ex.from")
            if [ ! -f "$srcdir/$from" ]; then
                bad "$name: EXAMPLE $k is marked as $from, which does not exist"
            elif ! cmp -s "$srcdir/$from" "$ex"; then
                bad "$name: EXAMPLE $k differs from $from (copy the file into the page, escaped):"
                diff -u "$srcdir/$from" "$ex" | sed 's/^/    /' >&2
            fi
        fi
        [ -n "$cc" ] || continue
        if [ -z "$linking" ]; then
            # shellcheck disable=SC2086
            $cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$srcdir/include" "$ex" \
                >"$tmp/cc.out" 2>&1 || {
                bad "$name: EXAMPLE $k does not compile:"
                sed 's/^/    /' "$tmp/cc.out" >&2
            }
            continue
        fi
        mkdir -p "$tmp/bin"
        # shellcheck disable=SC2086
        if ! "$builddir/libtool" --silent --mode=link --tag=CC $cc -std=c11 -Wall -Wextra \
            -Werror $san -I"$srcdir/include" -o "$tmp/bin/$name.$k" "$ex" \
            "$builddir/libnio.la" >"$tmp/cc.out" 2>&1; then
            bad "$name: EXAMPLE $k does not compile and link against libnio.la:"
            sed 's/^/    /' "$tmp/cc.out" >&2
            continue
        fi
        run_example "$name" "$k" "$tmp/bin/$name.$k"
        nrun=$((nrun + 1))
    done

    if command -v groff >/dev/null 2>&1; then
        groff -ww -man -Tutf8 -z "$page" >"$tmp/groff.out" 2>&1
        if [ -s "$tmp/groff.out" ]; then
            bad "$name: groff -ww -man warns:"
            sed 's/^/    /' "$tmp/groff.out" >&2
        fi
    fi
done

# Every header prototype is documented somewhere.
sort -u "$tmp/m.protos" -o "$tmp/m.protos"
for f in $(comm -23 "$tmp/h.protos" "$tmp/m.protos" | fname); do
    grep "[^a-z0-9_]$f(" "$tmp/m.protos" >/dev/null && continue # reported above
    bad "$f is in the headers but in no man page SYNOPSIS: $(grep "[^a-z0-9_]$f(" "$tmp/h.protos")"
done

# Every public function gets a page of its own name (a .so link to the
# page that documents it): it must be a NAME of a section 3 page.
for f in $(cat "$tmp/h.funcs"); do
    grep -qxF "$f.3" "$tmp/installed.names" ||
        bad "$f: no page or link $f.3 would be installed (name it in a section 3 page's NAME line), so \`man $f\` would find nothing"
done

nprotos=$(grep -c . "$tmp/h.protos")
npages=$(echo "$pages" | wc -w)
command -v groff >/dev/null 2>&1 || echo "$me: note: groff is not installed; rendering not checked"
[ -n "$cc" ] || echo "$me: note: no C compiler (CC=${CC:-cc}); EXAMPLE programs not compiled"
[ -n "$cc" ] && [ -z "$linking" ] &&
    echo "$me: note: no build tree (top_builddir); EXAMPLE programs compiled, not run"
if [ $status -eq 0 ]; then
    echo "$me: PASS: $nprotos public prototypes, each in a SYNOPSIS of $npages pages, all exact;"
    echo "$me: every nio page referred to exists once installed, one for every function;"
    if [ -n "$linking" ]; then
        echo "$me: $nexamples EXAMPLE programs built ($cc) and $nrun run, their output as expected"
    else
        echo "$me: $nexamples EXAMPLE programs compile${cc:+ ($cc)}"
    fi
fi
exit $status
