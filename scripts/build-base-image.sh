#!/usr/bin/env bash
# Build a Debian bookworm base image without any image registry: debootstrap + docker import.
#
#   scripts/build-base-image.sh [NAME] [--force] [--mirror URL]
#
# NAME defaults to devops-paradise/base:bookworm. The image is skipped when it already exists, unless
# --force. The Debian mirror is the one this host's apt uses (deb822 *.sources or sources.list), else
# http://deb.debian.org/debian; an apt proxy (Acquire::http(s)::Proxy) is honoured too. Only a Debian
# mirror is needed: this is the path for air-gapped hosts and hosts behind a corporate proxy.
# Then build the instance images on top of it:  BASE_IMAGE=devops-paradise/base:bookworm
# (bridge/host/images.py builds the foundation image images/base on it automatically when no registry
# is reachable; the serena, quality and bridge images build FROM that foundation).
set -euo pipefail

NAME=devops-paradise/base:bookworm
FORCE=0
MIRROR=${DEBIAN_MIRROR:-}
SUITE=bookworm
while (($#)); do
  case "$1" in
    --force) FORCE=1 ;;
    --mirror) MIRROR=${2:?--mirror needs a URL}; shift ;;
    --mirror=*) MIRROR=${1#--mirror=} ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "build-base-image: unknown option $1" >&2; exit 2 ;;
    *) NAME=$1 ;;
  esac
  shift
done

say() { echo "build-base-image: $*" >&2; }
fail() { say "error: $*"; exit 1; }

docker info >/dev/null 2>&1 || fail "no Docker engine answers (run scripts/ensure-docker.sh)"
if [[ $FORCE -eq 0 ]] && docker image inspect "$NAME" >/dev/null 2>&1; then
  say "$NAME already exists (use --force to rebuild)"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || fail "debootstrap needs root"

# --- which Debian mirror this host's apt uses ---------------------------------------------------
host_uri_for() {  # $1: path suffix to match ("debian" or "debian-security"); prints the first URI
  local want=$1 uri
  for uri in $( { grep -hE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//'
                  grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
                    | sed -E 's/\[[^]]*\]//' | awk '{print $2}'; } | tr ' ' '\n'); do
    uri=${uri%/}
    [[ ${uri##*/} == "$want" ]] && { echo "$uri"; return 0; }
  done
  return 1
}
MIRROR=${MIRROR:-$(host_uri_for debian || echo http://deb.debian.org/debian)}
MIRROR=${MIRROR%/}
SECURITY=${DEBIAN_SECURITY_MIRROR:-$(host_uri_for debian-security || echo "${MIRROR%/debian}/debian-security")}

# apt's proxy, if any, for debootstrap's downloads (it uses wget, which reads *_proxy)
if command -v apt-config >/dev/null 2>&1; then
  eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy APT_HTTPS_PROXY Acquire::https::Proxy)"
  [[ -n "${APT_HTTP_PROXY:-}" && -z "${http_proxy:-}" ]] && export http_proxy=$APT_HTTP_PROXY
  [[ -n "${APT_HTTPS_PROXY:-}" && -z "${https_proxy:-}" ]] && export https_proxy=$APT_HTTPS_PROXY
fi

# --- tools ---------------------------------------------------------------------------------------
if ! command -v debootstrap >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || fail "debootstrap is missing and there is no apt-get to install it"
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2 || fail "cannot install debootstrap"
fi
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if [[ ! -f $KEYRING ]] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >&2 || true
fi
KEYRING_ARGS=()
[[ -f $KEYRING ]] && KEYRING_ARGS=(--keyring="$KEYRING")

# --- debootstrap into a temp dir, then import ----------------------------------------------------
ROOTFS=$(mktemp -d -t paradise-rootfs.XXXXXX)
trap 'rm -rf --one-file-system "$ROOTFS"' EXIT
started=$SECONDS
say "debootstrap --variant=minbase $SUITE from $MIRROR (about half a minute)"
if ! debootstrap --variant=minbase "${KEYRING_ARGS[@]}" "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1; then
  tail -n 20 "$ROOTFS.log" >&2
  fail "debootstrap failed (full log: $ROOTFS.log)"
fi
rm -f "$ROOTFS.log"

# apt inside the image uses the same mirror, with updates and security fixes
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
# image hygiene: no caches, no docs, no recommends (same spirit as the official Debian images)
cat >"$ROOTFS/etc/apt/apt.conf.d/90paradise-image" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Acquire::GzipIndexes "true";
EOF
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log \
  "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/tmp/*
: >"$ROOTFS/etc/machine-id"

say "importing as $NAME"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["bash"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase (debootstrap from $MIRROR)\"" \
  --change 'LABEL devops-paradise.base=true' \
  - "$NAME" >/dev/null
size=$(docker image inspect "$NAME" --format '{{.Size}}')
say "built $NAME in $((SECONDS - started))s ($((size / 1024 / 1024)) MB)"
