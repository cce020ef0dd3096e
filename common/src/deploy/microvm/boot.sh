#!/bin/sh
# hls-swarm microVM boot init (generated; do not edit). Loads the guest's
# modules, mounts the component's base (a read-only squashfs on the disk
# whose serial is @SERIAL@) under a writable tmpfs, and goes on in it with
# the base's /init.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 'init: loading modules'
@MODULES@stop() {
  echo "init: $1; stopping"
  cat /proc/partitions
  poweroff -f
}
# the disk's name depends on the order the devices were found in
base=""
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do
  for d in /sys/block/vd*; do
    if [ "$(cat "$d/serial" 2>/dev/null)" = @SERIAL@ ]; then base="/dev/${d##*/}"; fi
  done
  [ -n "$base" ] && break
  sleep 0.2
done
[ -n "$base" ] || stop "no base disk (serial @SERIAL@)"
mkdir -p /base /rw /newroot
mount -t squashfs -o ro "$base" /base || stop "cannot mount the base $base"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/base,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || stop "cannot mount the root"
for m in proc sys dev; do mount --move "/$m" "/newroot/$m"; done
exec switch_root /newroot /init
