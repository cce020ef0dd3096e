//! The nginx config generator (SPEC §3 "nginx"): one generator, two flavours.
//!
//! * [`Flavour::Full`] — the production config of the container, VM and NixOS
//!   targets: `user nginx`, system paths, listens on every address.
//! * [`Flavour::Local`] — for a local run: no `user`, pid/temp/log files inside a
//!   private run directory, the run's listen address, port and HLS root.
//!
//! Both are rendered from the same code below; only the paths and the listen
//! line differ.

use std::fmt::Write;

use common::render::nginx::quote;
use common::render::Template;

use crate::cache::cache_policy;
use crate::config::{Config, SegmentType};
use crate::derive::Derived;

/// Where and how the config is used.
#[derive(Clone, Debug)]
pub enum Flavour {
    Full,
    Local(LocalSite),
}

/// The paths and address of a local run. Each may hold variables (for the
/// runner script, where they are read from the environment at run time).
#[derive(Clone, Debug)]
pub struct LocalSite {
    /// `ADDRESS:PORT` to listen on.
    pub listen: Template,
    /// The HLS directory served.
    pub root: Template,
    /// A private directory for the pid file and temp files.
    pub run_dir: Template,
    /// Where access logs go when logging is on.
    pub log_dir: Template,
    /// The TLS certificate chain and key nginx reads when TLS is on.
    pub tls_cert: Template,
    pub tls_key: Template,
    /// The Unix socket of the LL-HLS server (Low-Latency HLS).
    pub ll_socket: Template,
}

impl LocalSite {
    /// A fixed site: listen on `addr:port`, serve `root`, keep state in `run_dir`.
    pub fn fixed(addr: &str, port: u16, root: &str, run_dir: &str) -> Self {
        Self {
            listen: Template::text(format!("{addr}:{port}")),
            root: Template::text(root),
            run_dir: Template::text(run_dir),
            log_dir: Template::text(format!("{run_dir}/logs")),
            tls_cert: Template::text(format!("{run_dir}/tls/cert.pem")),
            tls_key: Template::text(format!("{run_dir}/tls/key.pem")),
            ll_socket: Template::text(format!("{run_dir}/ll.sock")),
        }
    }
}

/// The end of each access-log line: the CMCD — the four headers, then
/// the `CMCD` query argument (as sent, URL-encoded) — and the connection's
/// serial number (requests on one connection share it).
const LOG_TAIL: &str = " \"$http_cmcd_session\" \"$http_cmcd_object\" \"$http_cmcd_request\" \"$http_cmcd_status\" \"$arg_cmcd\" $connection";

/// The CORS header of every location that answers with content.
const CORS: &str = "            add_header Access-Control-Allow-Origin \"*\" always;";

/// The user the full flavour runs its workers as.
pub const NGINX_USER: &str = "nginx";

/// Where the full flavour finds its TLS certificate and key, made or given:
/// the credentials systemd hands the nginx unit (`LoadCredential=`),
/// readable by its dynamic user alone.
pub const SERVICE_TLS_DIR: &str = "/run/credentials/hls-nginx.service";

/// The LL-HLS server's RuntimeDirectory when run by systemd: `/run/<this>`.
pub const SERVICE_LL_RUN: &str = "hls-ll-server";

/// The LL-HLS server's socket when run by systemd: in its
/// RuntimeDirectory, connectable by nginx's dynamic user.
pub const SERVICE_LL_SOCKET: &str = "/run/hls-ll-server/ll.sock";

struct Paths {
    listen: Template,
    root: Template,
    pid: Template,
    temp: Template,
    log_dir: Template,
    tls_cert: Template,
    tls_key: Template,
    ll_socket: Template,
}

fn paths(c: &Config, flavour: &Flavour) -> Paths {
    match flavour {
        Flavour::Full => Paths {
            listen: Template::text(c.server.port.to_string()),
            root: Template::text(c.server.hls_dir.as_str()),
            pid: Template::text("/run/nginx.pid"),
            // nginx creates only the last component of a temp path: keep them
            // directly in /tmp (mode 1777 in the image)
            temp: Template::text("/tmp/nginx_"),
            log_dir: Template::text(c.logging.directory.as_str()),
            tls_cert: Template::text(format!("{SERVICE_TLS_DIR}/{}", common::deploy::tls::CERT)),
            tls_key: Template::text(format!("{SERVICE_TLS_DIR}/{}", common::deploy::tls::KEY)),
            ll_socket: Template::text(SERVICE_LL_SOCKET),
        },
        Flavour::Local(site) => Paths {
            listen: site.listen.clone(),
            root: site.root.clone(),
            pid: site.run_dir.join("/nginx.pid"),
            temp: site.run_dir.join("/"),
            log_dir: site.log_dir.clone(),
            tls_cert: site.tls_cert.clone(),
            tls_key: site.tls_key.clone(),
            ll_socket: site.ll_socket.clone(),
        },
    }
}

/// A quoted nginx string of a template: the text is quoted, variables are left
/// for the caller to fill in with values that were validated as safe paths.
fn q(t: &Template) -> Template {
    match t.as_plain() {
        Some(s) => Template::text(quote(&s)),
        None => {
            let mut out = Template::text("\"");
            out.push(t);
            out.push_text("\"");
            out
        }
    }
}

/// The nginx config text.
pub fn nginx_config(c: &Config, d: &Derived, flavour: &Flavour) -> Template {
    let p = paths(c, flavour);
    let cache = cache_policy(c);
    let log = &c.logging;
    let mut t = Template::new();
    let w = &mut t;

    // `write!` into a Template only appends text; it cannot fail.
    macro_rules! out {
        ($($arg:tt)*) => { let _ = writeln!(w, $($arg)*); };
    }

    out!("# nginx config for the hls-swarm test origin (generated; do not edit)");
    if matches!(flavour, Flavour::Full) {
        out!("user {NGINX_USER};");
    }
    out!("worker_processes auto;");
    out!("worker_rlimit_nofile 65535;");
    w.push_text("pid ");
    w.push(&q(&p.pid));
    out!(";");
    out!("error_log stderr warn;");
    out!();
    out!("events {{");
    out!("    worker_connections 16384;");
    out!("    use epoll;");
    out!("    multi_accept on;");
    out!("}}");
    out!();
    out!("http {{");
    out!("    types {{");
    out!("        application/vnd.apple.mpegurl m3u8;");
    out!("        video/mp2t ts;");
    out!("        video/iso.segment m4s;");
    out!("        video/mp4 mp4;");
    out!("        text/html html;");
    out!("        application/json json;");
    out!("        text/plain txt log;");
    out!("    }}");
    out!("    default_type application/octet-stream;");
    out!("    charset_types application/vnd.apple.mpegurl;");
    out!();
    for dir in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        w.push_text(&format!("    {dir}_temp_path "));
        w.push(&q(&p.temp.join(&format!("{dir}_temp"))));
        out!(";");
    }
    out!();
    // The tuning below is what won side by side against a stock config
    // (`cargo xtask bench --only origin`; ARCHITECTURE.md "Origin tuning").
    // The stream lives in memory (tmpfs), so no thread pool, `aio` or
    // `directio`: each cost a third of the requests/s from the page cache.
    out!("    sendfile on;");
    out!("    tcp_nopush on;");
    out!("    keepalive_timeout 30s;");
    out!("    keepalive_requests 10000;");
    out!("    reset_timedout_connection on;");
    out!(
        "    open_file_cache max={} inactive=30s;",
        d.open_file_cache_max
    );
    out!("    open_file_cache_valid 10s;");
    out!("    open_file_cache_min_uses 1;");
    out!("    open_file_cache_errors on;");
    out!("    gzip off;");
    // Only GET, HEAD and OPTIONS are served: no request needs a body or a long
    // header, and a client that sends its request slowly is cut off.
    out!("    client_body_buffer_size 128k;");
    out!("    client_max_body_size 1k;");
    out!("    client_header_buffer_size 1k;");
    out!("    large_client_header_buffers 4 8k;");
    out!("    client_header_timeout 10s;");
    out!("    client_body_timeout 10s;");
    // a viewer on a slow link reads a segment for seconds, but never stalls 30 s
    out!("    send_timeout 30s;");
    out!("    server_tokens off;");
    out!();
    if c.low_latency.enable {
        // the LL-HLS server behind; a cache that collapses the viewers'
        // identical requests (a blocking reload names its part: all who wait
        // for it ask the same URL) into one
        out!("    upstream ll_server {{");
        w.push_text("        server ");
        let mut upstream = Template::text("unix:");
        upstream.push(&p.ll_socket);
        w.push(&q(&upstream));
        out!(";");
        out!("        keepalive 512;");
        out!("        keepalive_requests 100000;");
        out!("        keepalive_timeout 60s;");
        out!("    }}");
        w.push_text("    proxy_cache_path ");
        w.push(&q(&p.temp.join("ll_cache")));
        out!(" levels=1:2 keys_zone=ll:16m max_size=512m inactive=1m use_temp_path=off;");
        out!();
    }
    // each line ends in the request's CMCD (CTA-5004; "-" when none), so
    // that a swarm's results join to the log by session id
    out!("    log_format timing '$remote_addr [$time_local] \"$request\" $status $body_bytes_sent $request_time{LOG_TAIL}';");
    out!("    log_format hls_perf '$time_iso8601 $status $request_time $body_bytes_sent $uri{LOG_TAIL}';");
    out!();

    // One access_log line (or `off`) for a log file, with buffering from config.
    let access_log = |w: &mut Template, indent: &str, file: Option<(&str, &str)>| {
        w.push_text(&format!("{indent}access_log "));
        match file {
            Some((name, format)) if log.enabled => {
                w.push(&q(&p.log_dir.join(&format!("/{name}"))));
                let _ = write!(
                    w,
                    " {format} buffer={} flush={}",
                    log.buffer, log.flush_interval
                );
                if log.gzip > 0 {
                    let _ = write!(w, " gzip={}", log.gzip);
                }
            }
            _ => w.push_text("off"),
        }
        w.push_text(";\n");
    };
    let other_log = (!log.segments_only).then_some((log.files.access.as_str(), "timing"));
    let manifest_log = (!log.segments_only).then_some((log.files.manifests.as_str(), "timing"));
    let segment_log = Some((log.files.segments.as_str(), "hls_perf"));

    out!("    server {{");
    w.push_text("        listen ");
    w.push(&p.listen);
    if c.tls.enable {
        // HTTP/2 and HTTP/1.1 by ALPN; nginx 1.22 names http2 on `listen`
        out!(" ssl http2 reuseport;");
        let (cert, key) = (&p.tls_cert, &p.tls_key);
        w.push_text("        ssl_certificate ");
        w.push(&q(cert));
        out!(";");
        w.push_text("        ssl_certificate_key ");
        w.push(&q(key));
        out!(";");
        out!("        ssl_protocols TLSv1.2 TLSv1.3;");
        out!("        ssl_session_cache shared:tls:10m;");
        out!("        ssl_session_timeout 1h;");
    } else {
        out!(" reuseport;");
    }
    w.push_text("        root ");
    w.push(&q(&p.root));
    out!(";");
    access_log(w, "        ", other_log);
    out!();
    out!("        # only GET, HEAD and OPTIONS; OPTIONS is a CORS preflight on any path");
    out!("        if ($request_method !~ ^(GET|HEAD|OPTIONS)$) {{");
    out!("            return 405;");
    out!("        }}");
    out!("        add_header Access-Control-Allow-Origin \"*\" always;");
    out!("        add_header Access-Control-Allow-Methods \"GET, HEAD, OPTIONS\" always;");
    out!("        add_header Access-Control-Allow-Headers \"Range\" always;");
    out!("        add_header Access-Control-Max-Age \"86400\" always;");
    out!("        if ($request_method = OPTIONS) {{");
    out!("            return 204;");
    out!("        }}");
    out!();
    let cors = CORS;
    // what a playlist location holds after its own lines: its cache header,
    // CORS, the playlist type and its log
    let playlist_rest = |w: &mut Template, cache_control: &str| {
        let _ = writeln!(
            w,
            "            add_header Cache-Control \"{cache_control}\" always;\n{cors}"
        );
        let _ = writeln!(w, "            types {{ }}");
        let _ = writeln!(w, "            default_type application/vnd.apple.mpegurl;");
        access_log(w, "            ", manifest_log);
        let _ = writeln!(w, "        }}");
    };
    if !c.low_latency.enable {
        out!("        location = /{} {{", c.hls.master_playlist);
        out!("            open_file_cache_errors off;");
        playlist_rest(w, &cache.master);
        out!();
    }
    // first of the regex locations: no dotfile (an editor's swap file, a
    // `.git`) is ever served or listed
    out!("        location ~ /\\. {{");
    out!("            access_log off;");
    out!("            return 404;");
    out!("        }}");
    out!();
    if c.low_latency.enable {
        ll_location(w, cors, &|w| access_log(w, "            ", other_log));
    } else {
        static_media(w, c, &cache, &playlist_rest, &|w| {
            access_log(w, "            ", segment_log)
        });
    }
    out!("        location = /health {{");
    out!("            access_log off;");
    out!("            add_header Cache-Control \"no-store\" always;");
    out!("            default_type text/plain;");
    out!("            return 200 \"OK\\n\";");
    out!("        }}");
    out!();
    out!("        location = /nginx_status {{");
    out!("            access_log off;");
    out!("            add_header Cache-Control \"no-store\" always;");
    out!("            allow 127.0.0.0/8;");
    out!("            allow ::1;");
    for net in &c.server.status_allow {
        out!("            allow {net};");
    }
    out!("            deny all;");
    out!("            stub_status;");
    out!("        }}");
    out!();
    for (loc, format) in [("/files/json/", "json"), ("/files/", "html")] {
        out!("        location ^~ {loc} {{");
        w.push_text("            alias ");
        w.push(&q(&p.root.join("/")));
        out!(";");
        out!("            autoindex on;");
        out!("            autoindex_format {format};");
        // `^~` skips the server's regex locations: repeat the dotfile rule
        out!("            location ~ /\\. {{");
        out!("                return 404;");
        out!("            }}");
        out!("            add_header Cache-Control \"no-store\" always;");
        out!("{cors}");
        out!("        }}");
        out!();
    }
    out!("    }}");
    out!("}}");
    t
}

/// The locations of a stream nginx serves from its files: playlists,
/// segments and (fMP4) init segments, each with its cache header.
fn static_media(
    w: &mut Template,
    c: &Config,
    cache: &crate::cache::CachePolicy,
    playlist_rest: &dyn Fn(&mut Template, &str),
    segment_log: &dyn Fn(&mut Template),
) {
    let cors = CORS;
    macro_rules! out {
        ($($arg:tt)*) => { let _ = writeln!(w, $($arg)*); };
    }
    out!("        location ~ \\.m3u8$ {{");
    out!("            open_file_cache_valid 1s;");
    // a playlist asked for before it exists must not stay a cached 404
    out!("            open_file_cache_errors off;");
    playlist_rest(w, &cache.manifest);
    out!();
    let ext = c.hls.segment_type.extension();
    let segment_type = match c.hls.segment_type {
        SegmentType::Ts => "video/mp2t",
        SegmentType::Fmp4 => "video/iso.segment",
    };
    // what a media location holds after its own lines: its cache header,
    // CORS, its type and the segment log
    let media_rest = |w: &mut Template, cache_control: &str, mime: &str| {
        let _ = writeln!(
            w,
            "            add_header Cache-Control \"{cache_control}\" always;\n{cors}"
        );
        let _ = writeln!(w, "            add_header Access-Control-Expose-Headers \"Content-Length,Content-Range\" always;");
        // nginx's static module sends `Accept-Ranges: bytes` for files itself
        let _ = writeln!(w, "            types {{ }}");
        let _ = writeln!(w, "            default_type {mime};");
        segment_log(w);
        let _ = writeln!(w, "        }}");
    };
    out!("        location ~ \\.{ext}$ {{");
    media_rest(w, &cache.segment, segment_type);
    out!();
    if c.hls.segment_type == SegmentType::Fmp4 {
        // `init.mp4`, or `init_<i>.mp4` for the i-th rendition of a ladder
        out!("        location ~ \\.mp4$ {{");
        media_rest(w, &cache.init, "video/mp4");
        out!();
    }
}

/// Low-Latency HLS: everything but the server's own pages goes to the
/// LL-HLS server, through a cache for what is asked for again (complete
/// parts and segments, plain playlists; the query in the key). Its cache
/// headers are the LL server's; a part it streams as written
/// (`X-Accel-Buffering: no`) goes on as it comes and is not cached;
/// blocking reloads are not cached either.
fn ll_location(w: &mut Template, cors: &str, log: &dyn Fn(&mut Template)) {
    macro_rules! out {
        ($($arg:tt)*) => { let _ = writeln!(w, $($arg)*); };
    }
    out!("        location / {{");
    out!("            proxy_pass http://ll_server;");
    out!("            proxy_http_version 1.1;");
    out!("            proxy_set_header Connection \"\";");
    out!("            proxy_connect_timeout 2s;");
    // a held request answers within three target durations (at most 3 min)
    out!("            proxy_read_timeout 200s;");
    out!("            proxy_cache ll;");
    out!("            proxy_cache_key $uri$is_args$args;");
    // Blocking reloads go past the cache to the LL server, which holds
    // them and answers each within milliseconds of its part: nginx's cache
    // lock, which would collapse them, looks again only every 500 ms, and
    // held them 0.4 s past their part (cargo xtask bench --only ll).
    out!("            proxy_cache_bypass $arg__HLS_msn;");
    out!("            proxy_no_cache $arg__HLS_msn;");
    out!("            add_header X-Cache $upstream_cache_status always;");
    out!("{cors}");
    // Age: hls.js tunes in by it behind a cache
    out!("            add_header Access-Control-Expose-Headers \"Age,Content-Length,Content-Range\" always;");
    // a player's resource timing (the protocol, the phases) across origins
    out!("            add_header Timing-Allow-Origin \"*\" always;");
    log(w);
    out!("        }}");
    out!();
}

/// Arguments for `nginx` to run `conf` in the foreground with `prefix`.
pub fn nginx_args(prefix: &Template, conf: &Template) -> Vec<Template> {
    vec![
        Template::text("-p"),
        prefix.clone(),
        Template::text("-c"),
        conf.clone(),
        Template::text("-g"),
        Template::text("daemon off;"),
    ]
}

/// Directories that must exist before nginx starts (nginx creates its temp
/// directories itself, but not the log directory).
pub fn required_dirs(c: &Config, flavour: &Flavour) -> Vec<Template> {
    let p = paths(c, flavour);
    if c.logging.enabled {
        vec![p.log_dir]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ll_socket_of_a_service_is_in_its_runtime_directory() {
        let dir = std::path::Path::new(SERVICE_LL_SOCKET).parent().unwrap();
        assert_eq!(dir, std::path::Path::new("/run").join(SERVICE_LL_RUN));
        // nginx and systemd read the path unquoted: no byte that needs it
        assert!(SERVICE_LL_SOCKET
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._".contains(&b)));
    }
}
