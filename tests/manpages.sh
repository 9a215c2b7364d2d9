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
#  - each EXAMPLE program (a .nf block that starts with #include <nio.h>)
#    compiles against the headers with -std=c11 -Wall -Wextra -Werror (when
#    a C compiler is here: $CC, else cc).
#
# Exit 0 when all hold, 1 with the differences otherwise.  Runs from any
# directory; the test harness exports top_srcdir.
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
trap 'rm -rf "$tmp"' EXIT
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
        case $id in nio_poll | nio_tcp | nio_resolver) continue ;; esac
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

    # EXAMPLE programs compile.
    awk -v dir="$tmp" -v base="$name" '
        /^\.SH/ { ex = ($0 ~ /^\.SH "?EXAMPLES?"?$/); next }
        ex && /^\.nf/ { blk = 1; first = 1; next }
        ex && /^\.fi/ { if (out != "") close(out); blk = 0; out = ""; next }
        blk && first { first = 0; if ($0 == "#include <nio.h>") out = dir "/" base "." (++k) ".c" }
        blk && out != "" { print > out }
    ' "$page"
    for ex in "$tmp/$name".*.c; do
        [ -f "$ex" ] || continue
        [ -n "$cc" ] || break
        sed -i -e 's/\\-/-/g' -e 's/\\(dq/"/g' -e 's/\\&//g' -e 's/\\e/\\/g' "$ex"
        # shellcheck disable=SC2086
        if ! $cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$srcdir/include" "$ex" \
            >"$tmp/cc.out" 2>&1; then
            bad "$name: an EXAMPLE program does not compile:"
            sed 's/^/    /' "$tmp/cc.out" >&2
        fi
        nexamples=$((nexamples + 1))
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
if [ $status -eq 0 ]; then
    echo "$me: PASS: $nprotos public prototypes, each in a SYNOPSIS of $npages pages, all exact;"
    echo "$me: $nexamples EXAMPLE programs compile${cc:+ ($cc)}"
fi
exit $status
