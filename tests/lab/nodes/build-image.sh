#!/usr/bin/env bash
# Build the Debian bookworm "node" image for the molecule `nodes` scenario, without any registry:
# debootstrap from the Debian mirror this machine's apt already uses, then `podman import`.
# The rootfs tarball is cached under $NODES_CACHE (default ~/.cache/k8s-ai-conformance/nodes) so a
# second build (or a fresh podman store) only re-imports it. Re-run with NODES_IMAGE_REBUILD=1 to
# bootstrap again.
#
# The image is a "node that already has containerd": systemd as PID 1, Debian's containerd (1.6.x,
# config version 2) and runc, python3 for Ansible. The gvisor role must not install containerd.
set -euo pipefail

IMAGE="${NODES_IMAGE:-localhost/k8s-ai-conformance/node:bookworm}"
SUITE="${NODES_SUITE:-bookworm}"
CACHE="${NODES_CACHE:-$HOME/.cache/k8s-ai-conformance/nodes}"
PACKAGES="systemd,systemd-sysv,dbus,containerd,runc,python3,python3-apt,ca-certificates,iproute2,procps,kmod"
TARBALL="$CACHE/rootfs-$SUITE.tar"

mirror() {
  # The first deb URI apt is configured with (deb822 .sources or one-line sources.list).
  local uri
  uri=$(grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1 || true)
  fi
  uri="${NODES_MIRROR:-$uri}"
  if [ -z "$uri" ]; then
    echo "build-image.sh: no Debian mirror: apt has no deb source (/etc/apt/sources.list[.d]); set NODES_MIRROR=<mirror URL>" >&2
    return 1
  fi
  echo "$uri"
}

need() { command -v "$1" >/dev/null 2>&1 || { echo "build-image.sh: '$1' not found (apt-get install -y $2)" >&2; exit 2; }; }
need podman podman
need debootstrap debootstrap

if podman image exists "$IMAGE" && [ -z "${NODES_IMAGE_REBUILD:-}" ]; then
  echo "image $IMAGE present"
  exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ] || [ -n "${NODES_IMAGE_REBUILD:-}" ]; then
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  source_uri=$(mirror) || exit 2
  echo "debootstrap $SUITE from $source_uri (packages: $PACKAGES)"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$source_uri" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap.log" >&2; exit 1; }
  # Container hygiene: no getty/udev/timers fighting the host, machine-id made at first boot.
  chroot "$root" systemctl mask getty.target systemd-udevd.service systemd-udevd-kernel.socket \
    systemd-udevd-control.socket apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    systemd-logind.service >/dev/null 2>&1 || true
  : >"$root/etc/machine-id"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
fi

podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  "$TARBALL" "$IMAGE" >/dev/null
echo "image $IMAGE imported from $TARBALL"
