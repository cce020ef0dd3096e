# The workspace, built from Cargo.lock with nixpkgs' Rust tooling: one
# package with every component's binary.
{ pkgs, src, registry }:
let
  cargoToml = builtins.fromTOML (builtins.readFile (src + "/Cargo.toml"));
in
pkgs.rustPlatform.buildRustPackage {
  pname = "hls-swarm";
  version = cargoToml.workspace.package.version;
  inherit src;
  cargoLock.lockFile = src + "/Cargo.lock";
  cargoBuildFlags = pkgs.lib.concatMap (c: [ "-p" c.name ]) registry.components;
  # the tests run the real nginx, FFmpeg, podman and QEMU: `cargo xtask check`
  doCheck = false;
  meta = {
    description = "A live HLS test origin and a swarm of simulated viewers";
    mainProgram = "test-origin";
  };
}
