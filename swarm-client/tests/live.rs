//! The live view as a person sees it: `run` in a real terminal (tmux),
//! read back with `capture-pane`.

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::origin::TestOrigin;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

/// A detached tmux session of its own, killed when dropped.
struct Tmux(String);

impl Tmux {
    fn start(command: &str) -> Tmux {
        let name = format!("hls-swarm-live-{}", std::process::id());
        testkit::run_ok(
            testkit::tool("tmux", "tmux")
                .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "36"])
                .arg(format!("TERM=xterm-256color {command}; sleep 60")),
        );
        Tmux(name)
    }

    fn screen(&self) -> String {
        testkit::run_ok(Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]))
    }

    /// Waits (up to `limit`) until the screen shows `text`; the screen.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) || t.elapsed() > limit {
                return s;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// A test origin, and `swarm-client run` on it with `args` in a terminal.
fn swarm_in_tmux(args: &str) -> (TestOrigin, Tmux) {
    let origin = TestOrigin::start(&[], 3);
    let tmux = Tmux::start(&format!(
        "{BIN} run {} {args} --metrics-addr 127.0.0.1:0",
        origin.url()
    ));
    (origin, tmux)
}

#[test]
fn run_on_a_terminal_shows_the_live_view_and_ctrl_c_still_stops_it() {
    let _g = testkit::serial();
    let (_origin, tmux) = swarm_in_tmux("--set clients=3 --set rampRate=10");
    let screen = tmux.wait_for("active 3/3", Duration::from_secs(15));
    for part in [
        "hls-swarm · native engine",
        " Viewers ",
        "active 3/3 · ramp 100 %",
        " Throughput ",
        " Requests ",
        " Segment TTFB p50 ",
        " Viewers 3/3 (target) ",
        " Errors 0/s ",
        "stalled 0 · rebuffers 0",
        "Errors by kind",
        "none",
        "Ctrl-C stops the run",
    ] {
        assert!(screen.contains(part), "no `{part}` in:\n{screen}");
    }
    // a few seconds on, the sparklines have bars
    let screen = tmux.wait_for("█", Duration::from_secs(10));
    assert!(screen.contains('█'), "{screen}");
    // Ctrl-C in the terminal stops the run: the view is gone, the summary is there
    testkit::run_ok(Command::new("tmux").args(["send-keys", "-t", &tmux.0, "C-c"]));
    let screen = tmux.wait_for("summary: 3 viewers", Duration::from_secs(15));
    assert!(screen.contains("summary: 3 viewers"), "{screen}");
    assert!(screen.contains("(interrupted)"), "{screen}");
    assert!(
        !screen.contains("Errors by kind"),
        "the live view is gone:\n{screen}"
    );
}

#[test]
fn plain_keeps_status_lines_on_a_terminal() {
    let _g = testkit::serial();
    let (_origin, tmux) = swarm_in_tmux("--set clients=2 --duration 4s --plain");
    let screen = tmux.wait_for("summary: 2 viewers", Duration::from_secs(20));
    assert!(screen.contains("summary: 2 viewers"), "{screen}");
    assert!(screen.contains("viewers 2/2 (ramp 100 %)"), "{screen}");
    assert!(!screen.contains("Errors by kind"), "{screen}");
}
