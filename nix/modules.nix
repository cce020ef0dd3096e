# nixosModules.<component> for every component with a nixos-module target:
# the module its binary generates for the first profile (`default`), and
# nixosModules.<component>-<profile> for each profile. The modules take the
# workspace package from this flake (as pkgs.hls-swarm).
{ self, registry, lib }:
let
  moduleOf = c: p: { pkgs, ... }:
    let
      package = self.packages.${pkgs.stdenv.hostPlatform.system}.hls-swarm;
      generated = pkgs.runCommand "${c.name}-nixos-module-${p}" { } ''
        ${package}/bin/${c.name} nixos-module --profile ${p} --out $out
      '';
    in
    {
      imports = [ "${generated}/${c.name}.nix" ];
      nixpkgs.overlays = [ (final: prev: { hls-swarm = package; }) ];
    };
  withModule = builtins.filter (c: builtins.elem "nixos-module" c.targets) registry.components;
  named = c: [ { name = c.name; value = moduleOf c (builtins.head c.profiles).name; } ]
    ++ map (prof: { name = "${c.name}-${prof.name}"; value = moduleOf c prof.name; }) c.profiles;
in
builtins.listToAttrs (lib.concatMap named withModule)
