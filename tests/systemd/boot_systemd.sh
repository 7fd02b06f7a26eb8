#!/bin/sh
# PID 1 of fresh pid, mount, uts, net and cgroup namespaces (systemd_ns.py starts it with
# unshare): builds a root that is an overlay of / on a tmpfs, with fresh /dev, /proc, /run
# and /tmp, pivots into it and execs systemd. Nothing systemd writes reaches the host: its
# /tmp is not the host's /tmp (systemd-tmpfiles empties /tmp at boot), its network is
# loopback only, and units that would touch the host's kernel settings are masked.
#   boot_systemd.sh SCRATCH SHARE SOURCE
# SCRATCH: an empty folder for the tmpfs; SHARE: bound read-only at /srv/cltokend-test;
# SOURCE: the source tree, bound read-only at /srv/cltokend-src.
set -eu
scratch=$1 share=$2 source=$3

mount -t tmpfs -o mode=0755 cltokend-test "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$scratch/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/root"
root=$scratch/root

# /dev: a tmpfs with the harmless nodes bound from the host (no disks, no consoles).
mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    : > "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"

# /sys without the host's cgroup mounts (systemd mounts its own cgroup2, rooted at our
# cgroup namespace), read-only; a proc of the new pid namespace with /proc/sys read-only,
# so that no sysctl reaches the host's kernel.
mount --bind /sys "$root/sys"
mount -o remount,bind,ro "$root/sys"
mount -t proc proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"

mkdir -p "$root/srv/cltokend-test" "$root/srv/cltokend-src"
mount --bind "$share" "$root/srv/cltokend-test"
mount -o remount,bind,ro "$root/srv/cltokend-test"
mount --bind "$source" "$root/srv/cltokend-src"
mount -o remount,bind,ro "$root/srv/cltokend-src"

# Units that would act on the host's kernel or are pointless here.
for unit in systemd-modules-load.service systemd-sysctl.service systemd-binfmt.service \
            proc-sys-fs-binfmt_misc.automount systemd-tmpfiles-setup-dev.service kmod-static-nodes.service \
            systemd-random-seed.service systemd-timesyncd.service systemd-pstore.service \
            sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
            dev-hugepages.mount dev-mqueue.mount timers.target getty.target; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

hostname cltokend-test
ip link set lo up

cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
# Shared inside (still private towards the host, unshare made every mount private): a
# service's credentials are mounted in a helper's namespace and must propagate back.
mount --make-rshared /

# The guard against the trap: never boot systemd on the host's own file system or /tmp.
[ "$(stat -f -c %T /)" = overlayfs ] || { echo "boot_systemd.sh: / is not the overlay" >&2; exit 1; }
[ "$(stat -f -c %T /tmp)" = tmpfs ] || { echo "boot_systemd.sh: /tmp is not a fresh tmpfs" >&2; exit 1; }

# container=: systemd skips what only a real machine does (and reads its kernel command
# line from its own arguments); cgroup v2 only, inside our cgroup namespace.
export container=cltokend-test
exec /lib/systemd/systemd --system --unit=basic.target systemd.unified_cgroup_hierarchy=1
