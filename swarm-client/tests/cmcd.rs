//! CMCD (CTA-5004, PLAYER.md §8) end to end: native viewers send it to the
//! real test origin, whose logged profile writes each request's CMCD
//! headers in nginx's access log; the log is joined to the swarm's results
//! by each viewer's session id.

mod support;

use testkit::origin::TestOrigin;

/// With `cmcd = "headers"` every request of a viewer carries its session
/// id: the origin's log has as many lines with it as the viewer made
/// requests (one more at most: a request cut short by the stop), with the
/// content id, object type and buffer figures; with `cmcd = "query"` the
/// same id is in each request's `CMCD=` argument.
#[test]
fn the_origin_log_joins_to_each_viewer_by_its_session_id() {
    let _g = testkit::serial();
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_str().unwrap();
    let mut origin = TestOrigin::start(
        &[
            "-p",
            "debug",
            "--log-dir",
            dir,
            "--set",
            "logging.gzip=0",
            "--set",
            "logging.flushInterval=\"1s\"",
        ],
        3,
    );
    let url = origin.url();
    let path = url::Url::parse(&url).unwrap().path().to_owned();
    let run = |mode: &str, clients: &str, secs: &str| {
        support::run_to_end(
            &url,
            &[
                "--seed",
                "3",
                "--set",
                &format!("clients={clients}"),
                "--set",
                "rampRate=10",
                "--set",
                &format!("cmcd={mode}"),
                "--duration",
                secs,
            ],
            0,
        )
    };
    let (v, out) = run("headers", "3", "6s");
    let (q, _) = run("query", "1", "3s");
    origin.stop();
    let lines = support::log_lines(logs.path());

    assert_eq!(v.viewers.len(), 3);
    let mut sids = Vec::new();
    for viewer in &v.viewers {
        let sid = viewer
            .sid
            .clone()
            .unwrap_or_else(|| panic!("no sid: {out}"));
        let mark = format!("sid=\\x22{sid}\\x22");
        let mine: Vec<&String> = lines.iter().filter(|l| l.contains(&mark)).collect();
        let made = viewer.counts.segments + viewer.counts.playlists;
        assert!(
            made > 5 && (made..=made + 1).contains(&(mine.len() as u64)),
            "viewer {} made {made} requests, the log has {} with its sid",
            viewer.id,
            mine.len()
        );
        // the session: content id (the URL's path), HLS, live
        assert!(
            mine.iter()
                .all(|l| l.contains(&format!("cid=\\x22{path}\\x22,sf=h,")) && l.contains(",st=l")),
            "{mine:#?}"
        );
        // segments: muxed media with its duration and, once playing, the
        // buffer length; playlists: object type m
        let segments: Vec<&&String> = mine.iter().filter(|l| l.contains(".ts \"")).collect();
        assert!(
            segments
                .iter()
                .all(|l| l.contains("\"d=") && l.contains(",ot=av")),
            "{segments:#?}"
        );
        assert!(
            segments.iter().any(|l| l.contains("\"bl=")),
            "{segments:#?}"
        );
        assert!(
            mine.iter()
                .filter(|l| l.contains(".m3u8 HTTP/"))
                .all(|l| l.contains("\"ot=m\"")),
            "{mine:#?}"
        );
        sids.push(sid);
    }
    sids.sort();
    sids.dedup();
    assert_eq!(sids.len(), 3, "each viewer its own session id");

    // query mode: the id in the request line, URL-encoded
    let sid = q.viewers[0].sid.clone().expect("a sid in query mode");
    let in_query = format!("sid%3D%22{sid}%22");
    let mine = lines.iter().filter(|l| l.contains(&in_query)).count() as u64;
    let made = q.viewers[0].counts.segments + q.viewers[0].counts.playlists;
    assert!(
        made > 2 && (made..=made + 1).contains(&mine),
        "made {made}, logged {mine}"
    );
}

/// CMCD is the native viewers': with the ffmpeg engine it is refused before
/// anything runs (exit 2, the key named); a content id CTA-5004 cannot
/// carry is refused too.
#[test]
fn cmcd_mistakes_are_refused_before_the_run() {
    let stderr = |args: &[&str]| {
        let out = std::process::Command::new(support::BIN)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let url = "http://127.0.0.1:1/x.m3u8";
    let e = stderr(&["run", url, "--engine", "ffmpeg", "--set", "cmcd=headers"]);
    assert!(e.contains("cmcd") && e.contains("native viewers"), "{e}");
    let e = stderr(&["run", url, "--set", "cmcd=header"]);
    assert!(e.contains("cmcd"), "{e}");
    let long = format!("cmcdContentId={}", "x".repeat(65));
    let e = stderr(&["run", url, "--set", &long]);
    assert!(e.contains("cmcdContentId"), "{e}");
}
