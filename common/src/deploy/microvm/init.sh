#!/bin/sh
# hls-swarm microVM base init (generated; do not edit). The base holds the
# component's programs; the profile's files and its init come from the
# host at each start, through QEMU's firmware config, and unpack over it.
export PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin
mkdir -p /dev/pts /dev/shm /run
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
config=/sys/firmware/qemu_fw_cfg/by_name/@CONFIG@/raw
if [ ! -r "$config" ]; then
  echo "init: no profile config from the host ($config); stopping"
  poweroff -f
fi
echo 'init: profile config'
(cd / && cpio -i -d -m -u < "$config")
exec @PROFILE_INIT@
