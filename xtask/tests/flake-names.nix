# Evaluates nix/packages.nix and nix/apps.nix against a stand-in for nixpkgs
# (nixpkgs cannot be fetched here): every derivation is a name and an
# outPath. Prints the package and app names and where each app points.
{ root }:
let
  drv = name: { inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; overrideAttrs = _: drv name; };
  lib = {
    concatMap = f: l: builtins.concatLists (map f l);
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: l: if c then l else [ ];
    removeSuffix = s: str:
      let n = builtins.stringLength s; m = builtins.stringLength str; in
      if m >= n && builtins.substring (m - n) n str == s then builtins.substring 0 (m - n) str else str;
    makeBinPath = l: builtins.concatStringsSep ":" (map (p: "${p}/bin") l);
  };
  pkgs = {
    inherit lib;
    runCommand = name: _: _: drv name;
    writeShellApplication = a: drv a.name;
    writeShellScriptBin = name: _: drv name;
    rustPlatform.buildRustPackage = a: drv a.pname;
    makeWrapper = drv "makeWrapper";
    coreutils = drv "coreutils";
    bash = drv "bash";
    ffmpeg-headless = drv "ffmpeg";
    nginx = drv "nginx";
    iproute2 = drv "iproute2";
    qemu_kvm = drv "qemu";
    pkgsStatic.busybox = drv "busybox";
    linuxPackages.kernel = drv "linux" // { modules = drv "linux-modules"; modDirVersion = "6.1.0"; };
    stdenv.hostPlatform.linux-kernel.target = "bzImage";
  };
  registry = builtins.fromJSON (builtins.readFile (root + "/nix/profiles.json"));
  packages = import (root + "/nix/packages.nix") { inherit pkgs registry; src = root; };
  apps = import (root + "/nix/apps.nix") { inherit pkgs registry packages; };
in
{
  packages = builtins.attrNames packages;
  apps = builtins.mapAttrs (_: a: a.program) apps;
  packageNames = builtins.mapAttrs (_: p: p.name) packages;
  modules = builtins.attrNames (import (root + "/nix/modules.nix") { self = { }; inherit registry lib; });
}
