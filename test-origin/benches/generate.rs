//! Generating every text artifact of every profile.

use common::render::Template;
use common::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use test_origin::nginx::{nginx_config, Flavour, LocalSite};
use test_origin::{cache, ffmpeg, sysctl, TestOrigin};

fn profiles() -> Vec<String> {
    common::profile_names::<TestOrigin>().unwrap()
}

fn load(p: &str) -> common::Loaded<TestOrigin> {
    common::load::<TestOrigin>(&Request {
        profile: p.into(),
        ..Default::default()
    })
    .unwrap()
}

fn generate_all(l: &common::Loaded<TestOrigin>) -> usize {
    let local = Flavour::Local(LocalSite::fixed("127.0.0.1", 17080, "/srv/hls", "/run/t"));
    let dir = Template::text(l.config.server.hls_dir.as_str());
    let mut n = 0;
    n += ffmpeg::ffmpeg_args(&l.config, &l.derived, &dir).len();
    n += nginx_config(&l.config, &l.derived, &Flavour::Full)
        .as_plain()
        .unwrap()
        .len();
    n += nginx_config(&l.config, &l.derived, &local)
        .as_plain()
        .unwrap()
        .len();
    n += cache::cache_policy(&l.config).manifest.len();
    n += common::render::sysctl::sysctl_conf("t", &sysctl::sysctls()).len();
    n
}

fn bench(c: &mut Criterion) {
    let names = profiles();
    let loaded: Vec<_> = names.iter().map(|p| load(p)).collect();
    c.bench_function("test-origin/generate-all-profiles", |b| {
        b.iter(|| loaded.iter().map(generate_all).sum::<usize>())
    });
    c.bench_function("test-origin/load-and-generate-all-profiles", |b| {
        b.iter(|| names.iter().map(|p| generate_all(&load(p))).sum::<usize>())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
