# The body of bin/microvm-net; the generated header above sets BRIDGE, TAP,
# ADDRESS (the host's address on the bridge, the guest's gateway, with its
# prefix) and GUEST (the guest's address).
usage() {
  cat <<EOF
usage: microvm-net up|down|check
  up     create bridge $BRIDGE ($ADDRESS) and tap device $TAP in it, owned by
         \$OWNER (default: the user who ran sudo, else root); run as root;
         doing it again changes nothing
  down   remove $TAP and $BRIDGE (as root); nothing to remove is not an error
  check  say what is missing for the microVM's network; exit 1 if anything is
EOF
}
die() { printf 'microvm-net: error: %s\n' "$*" >&2; exit 1; }
need_root() {
  [[ $(id -u) -eq 0 ]] || die "$1 needs root: run \`sudo $0 $1\`"
  command -v ip >/dev/null 2>&1 || die "ip is not installed; install it with: sudo apt-get install iproute2"
}
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
# the UP flag in `ip -o link` output (not LOWER_UP, not the state)
is_up() { [[ $1 =~ [\<,]UP[,\>] ]]; }
# What is missing, one line each (nothing when all is in place). No pipes:
# `grep -q` ending early would fail them under pipefail.
missing() {
  local link addr
  if ! link_exists "$BRIDGE"; then
    echo "bridge $BRIDGE does not exist"
  else
    addr=$(ip -o addr show dev "$BRIDGE")
    link=$(ip -o link show dev "$BRIDGE")
    [[ $addr == *" $ADDRESS "* ]] || echo "bridge $BRIDGE does not have address $ADDRESS"
    is_up "$link" || echo "bridge $BRIDGE is down"
  fi
  if ! link_exists "$TAP"; then
    echo "tap device $TAP does not exist"
  else
    link=$(ip -o link show dev "$TAP")
    [[ $link == *" master $BRIDGE "* ]] || echo "tap device $TAP is not in bridge $BRIDGE"
    is_up "$link" || echo "tap device $TAP is down"
  fi
}
case ${1:-} in
  up)
    need_root up
    owner=${OWNER:-${SUDO_USER:-root}}
    id -u "$owner" >/dev/null 2>&1 || die "OWNER $owner is not a user here"
    link_exists "$BRIDGE" || ip link add name "$BRIDGE" type bridge
    ip addr replace "$ADDRESS" dev "$BRIDGE"
    ip link set dev "$BRIDGE" up
    link_exists "$TAP" || ip tuntap add dev "$TAP" mode tap user "$owner"
    ip link set dev "$TAP" master "$BRIDGE"
    ip link set dev "$TAP" up
    echo "microvm-net: $TAP in $BRIDGE ($ADDRESS) is up; the guest is $GUEST"
    ;;
  down)
    need_root down
    if link_exists "$TAP"; then ip link del dev "$TAP"; fi
    if link_exists "$BRIDGE"; then ip link del dev "$BRIDGE"; fi
    echo "microvm-net: $TAP and $BRIDGE removed"
    ;;
  check)
    command -v ip >/dev/null 2>&1 || die "ip is not installed; install it with: sudo apt-get install iproute2"
    gaps=$(missing)
    if [[ -n $gaps ]]; then
      printf 'microvm-net: the network is not ready:\n' >&2
      while IFS= read -r line; do printf '  %s\n' "$line"; done <<<"$gaps" >&2
      printf 'set it up with: sudo %s up\n' "$0" >&2
      exit 1
    fi
    echo "microvm-net: $TAP in $BRIDGE ($ADDRESS) is ready; the guest is $GUEST"
    ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
