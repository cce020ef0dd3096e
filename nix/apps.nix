# Apps: every runner package (the unsuffixed name runs the first profile),
# the microVM run scripts, and `nginx-config` (prints the origin's nginx
# config; arguments are passed on, e.g. `-- --profile low-latency`).
{ pkgs, registry, packages }:
let
  inherit (pkgs) lib;
  app = drv: exe: { type = "app"; program = "${drv}/bin/${exe}"; };
  runnerExe = c: p: if c.runner != null then c.runner else "${c.name}-${p}";
  perProfile = c: prof:
    let has = t: builtins.elem t c.targets; in
    lib.concatMap
      (n:
        [ { name = "${c.name}-${n}"; value = app packages."${c.name}-${n}" (runnerExe c prof.name); } ]
        ++ lib.optional (has "microvm") { name = "${c.name}-vm-${n}"; value = app packages."${c.name}-vm-${n}" "microvm-run"; })
      ([ prof.name ] ++ prof.aliases);
  unsuffixed = c:
    let first = (builtins.head c.profiles).name; in
    [ { name = c.name; value = app packages.${c.name} (runnerExe c first); } ]
    ++ lib.optional (builtins.elem "microvm" c.targets) { name = "${c.name}-vm"; value = app packages."${c.name}-vm" "microvm-run"; };
  nginxConfig = pkgs.writeShellScriptBin "nginx-config" ''
    exec ${packages.hls-swarm}/bin/test-origin nginx-config "$@"
  '';
in
builtins.listToAttrs (lib.concatMap (c: unsuffixed c ++ lib.concatMap (perProfile c) c.profiles) registry.components)
// {
  default = app packages.hls-swarm "test-origin";
  nginx-config = app nginxConfig "nginx-config";
}
