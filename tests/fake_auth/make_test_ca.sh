#!/bin/sh
# make_test_ca.sh OUTDIR
#
# Creates the throw-away PKI that the fake Commerce Layer auth server and the
# integration tests use, so TLS verification stays ON everywhere in the tests:
#
#   ca.pem / ca.key                 test CA (trust anchor for the daemon's upstream.ca_file)
#   server.pem / server.key         signed by the CA; SAN DNS:localhost, DNS:auth.localhost,
#                                   IP:127.0.0.1
#   wronghost.pem / wronghost.key   signed by the same CA; SAN DNS:wrong.example only, for the
#                                   "certificate does not match the host" test
#
# DNS:auth.localhost is there because the official @commercelayer/js-auth library always
# talks to "https://auth.<domain>"; the faithfulness test (js/) points it at
# domain "localhost:PORT" and must not disable verification.
#
# Idempotent: when OUTDIR already holds a complete, consistent set that is valid for at
# least another day, nothing is done. Otherwise a fresh set is made in a temporary
# directory and moved in, under a lock, so concurrent test processes never see half a set.
# Quiet on success; keys are EC P-256 so the whole run takes a few milliseconds.
set -eu

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: make_test_ca.sh OUTDIR" >&2
    exit 2
fi
outdir=$1
command -v openssl >/dev/null 2>&1 || { echo "make_test_ca.sh: openssl not found" >&2; exit 1; }
mkdir -p "$outdir"

files="ca.pem ca.key server.pem server.key wronghost.pem wronghost.key"

set_is_complete() {
    for f in $files; do
        [ -s "$outdir/$f" ] || return 1
    done
    openssl verify -CAfile "$outdir/ca.pem" "$outdir/server.pem" "$outdir/wronghost.pem" \
        >/dev/null 2>&1 || return 1
    # Regenerate a set that is about to expire instead of failing a test run next week.
    openssl x509 -in "$outdir/server.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    openssl x509 -in "$outdir/ca.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    return 0
}

generate() {
    tmp=$(mktemp -d "$outdir/.ca-tmp.XXXXXX")
    # shellcheck disable=SC2064  # expand $tmp now: it is local to this run
    trap "rm -rf '$tmp'" EXIT INT TERM
    # Quiet on success, but never swallow the reason of a failure.
    run() {
        "$@" >"$tmp/openssl.log" 2>&1 || {
            echo "make_test_ca.sh: failed: $*" >&2
            cat "$tmp/openssl.log" >&2
            exit 1
        }
    }

    # CA: basicConstraints and keyUsage critical, key identifiers present, so that strict
    # verifiers (OpenSSL's X509_V_FLAG_X509_STRICT, newer Python defaults) accept it.
    run openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 -sha256 \
        -subj "/O=cl-tokend tests/CN=cl-tokend test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"

    leaf() { # name cn san
        cat >"$tmp/$1.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$3
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
        run openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$tmp/$1.key" -out "$tmp/$1.csr" -subj "/O=cl-tokend tests/CN=$2"
        # A random serial: two sets made by different runs never share one.
        run openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
            -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
            -extfile "$tmp/$1.ext" -out "$tmp/$1.pem"
    }
    leaf server localhost "DNS:localhost,DNS:auth.localhost,IP:127.0.0.1"
    leaf wronghost wrong.example "DNS:wrong.example"

    chmod 0644 "$tmp"/*.pem
    chmod 0600 "$tmp"/*.key
    # Keys first, certificates last, so a reader that finds ca.pem last-written finds all.
    for f in ca.key server.key wronghost.key server.pem wronghost.pem ca.pem; do
        mv -f "$tmp/$f" "$outdir/$f"
    done
    rm -rf "$tmp"
    trap - EXIT INT TERM
}

if set_is_complete; then
    exit 0
fi

# Serialise concurrent runs on the same OUTDIR (two test processes starting at once).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$outdir/.make_test_ca.lock"
    flock 9
    # Someone else may have finished while we waited for the lock.
    if set_is_complete; then
        exit 0
    fi
fi
generate
set_is_complete || { echo "make_test_ca.sh: generated set does not verify" >&2; exit 1; }
