# Packages for every component × profile, named as the old flake named them:
#   <component>[-<profile>]                runner (or `run` wrapper)
#   <component>-container[-<profile>]      OCI archive
#   <component>-vm[-<profile>]             microVM (bin/microvm-run)
#   <component>-kubernetes[-<profile>]     Kubernetes manifests (image hls-swarm-<component>:<profile>)
#   <component>-<file>-config[-<profile>]  generated config files (test-origin-nginx-config)
# A profile's aliases get the same packages (stress-test is also stress).
{ pkgs, src, registry }:
let
  inherit (pkgs) lib;
  hls-swarm = import ./package.nix { inherit pkgs src registry; };
  tools = import ./tools.nix { inherit pkgs; };
  kernel = pkgs.linuxPackages.kernel;

  has = c: target: builtins.elem target c.targets;
  inputsOf = c: map (p: tools.${p}) (builtins.filter (p: p != c.name) c.programs);
  buildTools = c: inputsOf c ++ [ tools.bash pkgs.coreutils ];

  # `<component> <target> --profile <p> ...` run at build time
  artifact = c: p: name: cmd: pkgs.runCommand name
    { nativeBuildInputs = buildTools c ++ [ pkgs.makeWrapper ]; }
    ''
      export HOME=$TMPDIR
      ${hls-swarm}/bin/${c.name} ${cmd}
    '';

  runner = c: p:
    if has c "runner" then
      artifact c p "${c.name}-${p}" ''
        runner --profile ${p} --out $out
        wrapProgram $out/bin/${c.runner} --prefix PATH : ${lib.makeBinPath (inputsOf c ++ [ hls-swarm ])}
      ''
    else
      pkgs.writeShellApplication {
        name = "${c.name}-${p}";
        runtimeInputs = inputsOf c;
        text = ''exec ${hls-swarm}/bin/${c.name} run --profile ${p} "$@"'';
      };

  container = c: p: artifact c p "${c.name}-container-${p}" ''
    container --profile ${p} --out $out/${c.name}-${p}.oci.tar --cache-dir $TMPDIR/layers
  '';

  vm = c: p: pkgs.runCommand "${c.name}-vm-${p}"
    { nativeBuildInputs = buildTools c ++ [ tools.busybox pkgs.makeWrapper ]; }
    ''
      export HOME=$TMPDIR
      ${hls-swarm}/bin/${c.name} microvm --profile ${p} --out $out \
        --kernel ${kernel}/${pkgs.stdenv.hostPlatform.linux-kernel.target} \
        --modules-dir ${kernel.modules}/lib/modules/${kernel.modDirVersion}
      wrapProgram $out/bin/microvm-run --prefix PATH : ${lib.makeBinPath [ pkgs.qemu_kvm pkgs.coreutils ]}
    '';

  kubernetes = c: p: artifact c p "${c.name}-kubernetes-${p}"
    "kubernetes --profile ${p} --image hls-swarm-${c.name}:${p} --out $out";

  configs = c: p: artifact c p "${c.name}-configs-${p}" "configs --profile ${p} --out $out";
  configFile = c: p: file: pkgs.runCommand "${c.name}-${lib.removeSuffix ".conf" file}-config-${p}" { } ''
    cp ${configs c p}/${file} $out
  '';

  # every name a profile answers to
  namesOf = prof: [ prof.name ] ++ prof.aliases;

  perProfile = c: prof:
    let p = prof.name; in
    lib.concatMap
      (n: [
        { name = "${c.name}-${n}"; value = runner c p; }
      ]
      ++ lib.optional (has c "container") { name = "${c.name}-container-${n}"; value = container c p; }
      ++ lib.optional (has c "microvm") { name = "${c.name}-vm-${n}"; value = vm c p; }
      ++ lib.optional (has c "kubernetes") { name = "${c.name}-kubernetes-${n}"; value = kubernetes c p; }
      ++ map (f: { name = "${c.name}-${lib.removeSuffix ".conf" f}-config-${n}"; value = configFile c p f; }) c.config_files)
      (namesOf prof);

  # the unsuffixed names build the first profile (`default`)
  defaults = c:
    let p = (builtins.head c.profiles).name; in
    [ { name = c.name; value = runner c p; } ]
    ++ lib.optional (has c "container") { name = "${c.name}-container"; value = container c p; }
    ++ lib.optional (has c "microvm") { name = "${c.name}-vm"; value = vm c p; }
    ++ lib.optional (has c "kubernetes") { name = "${c.name}-kubernetes"; value = kubernetes c p; }
    ++ map (f: { name = "${c.name}-${lib.removeSuffix ".conf" f}-config"; value = configFile c p f; }) c.config_files;
in
builtins.listToAttrs (lib.concatMap (c: defaults c ++ lib.concatMap (perProfile c) c.profiles) registry.components)
// {
  inherit hls-swarm;
  default = hls-swarm;
}
