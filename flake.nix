# hls-swarm for Nix users: the same package and app names as the old flake,
# generated from nix/profiles.json (written by `cargo xtask nix-profiles`).
# Every artifact is built by the workspace's own binaries; nix/ only wires
# them to nixpkgs.
{
  description = "hls-swarm: a live HLS test origin and a swarm of simulated viewers";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      registry = builtins.fromJSON (builtins.readFile ./nix/profiles.json);
    in
    {
      packages = forAllSystems (pkgs: import ./nix/packages.nix { inherit pkgs registry; src = self; });
      apps = forAllSystems (pkgs: import ./nix/apps.nix {
        inherit pkgs registry;
        packages = self.packages.${pkgs.stdenv.hostPlatform.system};
      });
      devShells = forAllSystems (pkgs: { default = import ./nix/shell.nix { inherit pkgs; }; });
      nixosModules = import ./nix/modules.nix { inherit self registry; inherit (nixpkgs) lib; };
    };
}
