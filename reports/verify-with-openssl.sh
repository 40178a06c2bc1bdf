#!/usr/bin/env bash
# Verifies a signed kfconform report without kfconform, using only openssl (3.x), jq, base64 and
# sha256sum, so a reviewer need not trust the tool that produced the report.
#
# Usage: verify-with-openssl.sh RESULTS_DIR PUBLIC_KEY_PEM
#
# RESULTS_DIR holds report.json, junit.xml, report.html, evidence/ and report.dsse.json (a DSSE v1 envelope
# around an in-toto Statement v1). PUBLIC_KEY_PEM is the signer's Ed25519 key in SPKI PEM
# ("-----BEGIN PUBLIC KEY-----"). Exit status: 0 verified, 1 verification failed, 2 usage.
set -euo pipefail
export LC_ALL=C

fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$#" -ne 2 ]; then
    echo "usage: $0 RESULTS_DIR PUBLIC_KEY_PEM" >&2
    exit 2
fi
dir=$1
pub=$2
envelope="$dir/report.dsse.json"
for tool in openssl jq base64 sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$0: needs $tool on PATH" >&2; exit 2; }
done
[ -f "$envelope" ] || fail "$envelope: missing"
[ -f "$pub" ] || { echo "$0: $pub: missing" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The envelope must carry an in-toto Statement.
payload_type=$(jq -er '.payloadType' "$envelope") || fail "envelope: no payloadType"
[ "$payload_type" = "application/vnd.in-toto+json" ] ||
    fail "envelope: payloadType is '$payload_type', expected application/vnd.in-toto+json"
jq -er '.payload' "$envelope" | base64 -d >"$work/payload.json" ||
    fail "envelope: payload is not valid base64"

# 2. Rebuild the DSSE v1 pre-authentication encoding, the bytes that were signed:
#    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal bytes.
body_len=$(($(wc -c <"$work/payload.json")))
printf 'DSSEv1 %d %s %d ' "${#payload_type}" "$payload_type" "$body_len" >"$work/pae.bin"
cat "$work/payload.json" >>"$work/pae.bin"

# 3. At least one signature must verify under the given key (keyid is only a hint).
count=$(jq -e '.signatures | length' "$envelope") || fail "envelope: no signatures array"
verified=0
for ((i = 0; i < count; i++)); do
    jq -er ".signatures[$i].sig" "$envelope" | base64 -d >"$work/sig.bin" ||
        fail "envelope: signature $((i + 1)) is not valid base64"
    if openssl pkeyutl -verify -pubin -inkey "$pub" -rawin \
        -in "$work/pae.bin" -sigfile "$work/sig.bin" >/dev/null 2>&1; then
        echo "signature $((i + 1)) of $count: verified with $pub"
        verified=1
    fi
done
[ "$verified" -eq 1 ] || fail "no signature by the key in $pub"

# 4. The payload is a kfconform Statement; its subjects are safe relative paths.
jq -e '._type == "https://in-toto.io/Statement/v1"
       and .predicateType == "https://kfconform.io/attestation/conformance/v1"' \
    "$work/payload.json" >/dev/null || fail "payload: not a kfconform in-toto Statement v1"
jq -r '.subject[].name' "$work/payload.json" >"$work/names"
# No absolute paths, no . or .. segments, no empty segments, no backslashes or control characters:
# a subject must never make this script read outside RESULTS_DIR.
if jq -e '[.subject[].name | test("^/|(^|/)\\.\\.?(/|$)|//|/$|^$|\\\\|[[:cntrl:]]")] | any' \
    "$work/payload.json" >/dev/null; then
    fail "payload: a subject name is not a relative path inside the results directory"
fi
for required in report.json junit.xml report.html; do
    grep -qxF "$required" "$work/names" || fail "$required: not a subject"
done

# 5. Every subject's sha256 matches the file on disk.
jq -r '.subject[] | "\(.digest.sha256 // "missing")  \(.name)"' "$work/payload.json" >"$work/sums"
(cd "$dir" && sha256sum --check --strict --quiet) <"$work/sums" || fail "subject digests do not match"

# 6. No evidence was added after signing, and evidence holds only regular files.
if [ -e "$dir/evidence" ]; then
    odd=$(cd "$dir" && find evidence ! -type f ! -type d)
    [ -z "$odd" ] || fail "not regular files under evidence/: $odd"
    (cd "$dir" && find evidence -type f) | sort >"$work/on-disk"
    sort "$work/names" >"$work/signed"
    extra=$(comm -23 "$work/on-disk" "$work/signed")
    [ -z "$extra" ] || fail "evidence not covered by the signature: $extra"
fi

echo "OK: $(wc -l <"$work/names" | tr -d ' ') subjects match; verdicts:"
jq -r '.predicate.verdicts[] | "  \(.profile): \(if .conformant then "conformant" else "not conformant" end)"' \
    "$work/payload.json"
