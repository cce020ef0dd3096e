# The nixpkgs package of each host program a component names in
# nix/profiles.json ("programs").
{ pkgs }:
{
  ffmpeg = pkgs.ffmpeg-headless;
  ffprobe = pkgs.ffmpeg-headless;
  nginx = pkgs.nginx;
  ss = pkgs.iproute2;
  bash = pkgs.bash;
  env = pkgs.coreutils;
  busybox = pkgs.pkgsStatic.busybox;
}
