# `nix develop`: the Rust toolchain and every program the tests run.
{ pkgs }:
pkgs.mkShell {
  packages = with pkgs; [
    cargo
    clippy
    rustc
    rustfmt
    ffmpeg-headless
    nginx
    shellcheck
    skopeo
    umoci
    podman
    qemu_kvm
    iproute2
    pkgsStatic.busybox
  ];
}
