//! The LL server's watcher: reads the encoder's files when they change
//! (inotify; every 100 ms besides, and every 10 ms where inotify is not
//! to be had) — its init segments once (again when the encoder starts
//! again), the segment being written from where the last read ended — into
//! the state, and wakes the requests held for what came.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::chunks::{read_chunks, read_init};
use super::server::{now_ms, read_range, Shared};
use super::state::{Anchor, Rendition};

/// How often the encoder's files are read without inotify.
const TICK: Duration = Duration::from_millis(10);
/// How often they are read besides inotify's events.
const TICK_WITH_EVENTS: Duration = Duration::from_millis(100);

/// The encoder's writes and renames in `dir`, as a stream of events.
fn file_events(dir: &Path) -> Option<inotify::EventStream<[u8; 4096]>> {
    use inotify::{Inotify, WatchMask};
    let events = Inotify::init().ok()?;
    events
        .watches()
        .add(
            dir,
            WatchMask::MODIFY | WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO | WatchMask::CREATE,
        )
        .ok()?;
    events.into_event_stream([0; 4096]).ok()
}

/// Where the watcher is in one rendition's files.
struct Cursor {
    /// The encoder's segment number being read, and the MSN it becomes.
    n: u64,
    /// Where the next read of that file starts.
    offset: u64,
    /// Its size at the last read (growth wakes streamed parts).
    size: u64,
}

/// When and which init segment the encoder wrote: a new one means the
/// encoder started again.
fn init_stamp(shared: &Shared, stream: usize) -> Option<(u64, SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(shared.dir.join(format!("init-stream{stream}.m4s"))).ok()?;
    Some((m.ino(), m.modified().ok()?))
}

/// Reads the encoder's files every [`TICK`] into the state, forever.
pub async fn watch_files(shared: Arc<Shared>) {
    let mut cursors: Vec<Option<Cursor>> =
        shared.settings.renditions.iter().map(|_| None).collect();
    let mut anchor: Anchor = None;
    let first_stream = shared.settings.renditions[0].stream;
    let mut stamp = init_stamp(&shared, first_stream);
    let mut events = file_events(&shared.dir);
    let mut tick = tokio::time::interval(if events.is_some() {
        TICK_WITH_EVENTS
    } else {
        TICK
    });
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        match events.as_mut() {
            Some(stream) => {
                use inotify::StreamExt;
                tokio::select! {
                    _ = tick.tick() => {}
                    event = stream.next() => {
                        if !matches!(event, Some(Ok(_))) {
                            // the stream ended: read on the short tick
                            events = None;
                            tick = tokio::time::interval(TICK);
                        }
                    }
                }
            }
            None => {
                tick.tick().await;
            }
        }
        let mut changed = false;
        let mut grew = false;
        // which renditions gained a part (their held requests are woken)
        let mut gained = vec![false; cursors.len()];
        let now = init_stamp(&shared, first_stream);
        if now.is_some() && now != stamp {
            if stamp.is_some() {
                // the encoder started again: its numbers start at 1 again,
                // its timeline at 0; MSNs go on from the newest
                let mut st = shared.renditions.lock().expect("state");
                for r in st.iter_mut() {
                    r.restart();
                }
                // a segment one rendition began and another did not (cut
                // before its first part): a gap in the other, so that the
                // MSNs after the restart follow on in every rendition
                let cut: Vec<_> = st
                    .iter()
                    .flat_map(|r| r.segments.iter().rev().take(1).cloned())
                    .collect();
                for r in st.iter_mut() {
                    for like in &cut {
                        r.fill_gap(like);
                    }
                }
                let newest = st.iter().filter_map(Rendition::newest).max();
                if let Some(n) = newest {
                    shared.base.store(n, Ordering::Relaxed);
                }
                anchor = None;
                for c in cursors.iter_mut() {
                    *c = Some(Cursor {
                        n: 1,
                        offset: 0,
                        size: 0,
                    });
                }
                changed = true;
                gained.iter_mut().for_each(|g| *g = true);
                eprintln!(
                    "ll-server: the encoder started again; a discontinuity after MSN {newest:?}"
                );
            }
            stamp = now;
        }
        let base = shared.base.load(Ordering::Relaxed);
        for (i, r) in shared.settings.renditions.iter().enumerate() {
            let (c, g) = read_rendition(&shared, i, r.stream, base, &mut cursors[i], &mut anchor);
            changed |= c;
            gained[i] |= c;
            grew |= g;
        }
        if changed {
            // under the state's lock: a version names one state, so a
            // playlist rendered at a version holds what that version does
            let _st = shared.renditions.lock().expect("state");
            shared.changed.send_modify(|v| *v += 1);
            for (i, _) in gained.iter().enumerate().filter(|(_, g)| **g) {
                shared.woken[i].send_modify(|v| *v += 1);
            }
        }
        if grew || changed {
            shared.grew.send_modify(|v| *v += 1);
        }
    }
}

/// One tick of one rendition: its init segment once, then whatever its
/// current segment file gained. Returns (parts changed, file grew).
fn read_rendition(
    shared: &Shared,
    i: usize,
    stream: usize,
    base: u64,
    cursor: &mut Option<Cursor>,
    anchor: &mut Anchor,
) -> (bool, bool) {
    let has_track = shared.renditions.lock().expect("state")[i].track.is_some();
    if !has_track {
        let init = shared.dir.join(format!("init-stream{stream}.m4s"));
        let Ok(bytes) = std::fs::read(&init) else {
            return (false, false);
        };
        let Ok(track) = read_init(&bytes) else {
            // written but not whole yet: read again at the next tick
            return (false, false);
        };
        shared.renditions.lock().expect("state")[i].track = Some(track);
    }
    let c = match cursor {
        Some(c) => c,
        None => {
            // start at the newest segment file there is
            let Some(n) = newest_segment(&shared.dir, stream) else {
                return (false, false);
            };
            cursor.insert(Cursor {
                n,
                offset: 0,
                size: 0,
            })
        }
    };
    let mut changed = false;
    let mut grew = false;
    // the file being written, or, once renamed, the whole one
    for _ in 0..4 {
        let tmp = shared.file(stream, c.n, true);
        let done = shared.file(stream, c.n, false);
        let (path, complete) = if tmp.exists() {
            (tmp, false)
        } else if done.exists() {
            (done, true)
        } else {
            break;
        };
        let Ok(bytes) = read_range(&path, c.offset, None) else {
            break;
        };
        let size = c.offset + bytes.len() as u64;
        grew |= size != c.size;
        c.size = size;
        let mut st = shared.renditions.lock().expect("state");
        let r = &mut st[i];
        let track = r.track.clone().expect("read above");
        let bytes = Bytes::from(bytes);
        match read_chunks(&track, c.offset, &bytes) {
            Ok((chunks, next)) => {
                let read = Some((c.offset, &bytes));
                changed |= r.add_chunks(base + c.n, c.n, &chunks, read, now_ms(), anchor);
                c.offset = next;
            }
            Err(e) => {
                eprintln!("ll-server: {}: {e}; skipping the segment", path.display());
                c.offset = size;
            }
        }
        if !complete {
            break;
        }
        changed |= r.complete(base + c.n);
        r.trim(shared.settings.list_size + 4);
        drop(st);
        // the whole file once, outside the lock: each request for the
        // segment is then a copy from memory, as each part's is
        if let Ok(whole) = read_range(&path, 0, None) {
            shared.renditions.lock().expect("state")[i].keep_bytes(base + c.n, whole.into());
        }
        c.n += 1;
        c.offset = 0;
        c.size = 0;
    }
    (changed, grew)
}

/// The number of the newest (last written) `chunk-stream<stream>-<n>.m4s[.tmp]`
/// in `dir`: files of an earlier run of the encoder may have larger numbers.
fn newest_segment(dir: &Path, stream: usize) -> Option<u64> {
    let prefix = format!("chunk-stream{stream}-");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix(&prefix)?
                .split('.')
                .next()?
                .parse::<u64>()
                .ok()?;
            Some((e.metadata().ok()?.modified().ok()?, n))
        })
        .max()
        .map(|(_, n)| n)
}
