//! What a run shows while it runs. On a terminal: a full-screen live view
//! (ratatui) redrawn once a second — viewers and ramp (or the load shape's
//! stage), throughput, requests/s, segment TTFB and errors with sparklines,
//! the viewers active against the target line, the errors by kind. Elsewhere (CI, logs, `--plain`): one status line a second.
//! Ctrl-C still stops the run (the terminal keeps its signals; only echo and
//! line editing are off while the view is up), and the view is gone before
//! the summary is printed.

use std::collections::BTreeMap;
use std::io::Stdout;
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, Gauge, GraphType, Paragraph, Sparkline,
};
use ratatui::Terminal;

use crate::results::{Second, Seconds};
use crate::table::rate;

/// One second of a run, as the display shows it.
pub struct Frame<'a> {
    pub url: &'a str,
    pub engine: &'a str,
    pub elapsed: Duration,
    pub duration: Option<Duration>,
    /// The viewers aimed at now.
    pub target: u64,
    pub active: u64,
    /// Share of the viewers whose ramp start has passed.
    pub ramp: f64,
    /// The load shape's stage under way (from 0) and how many it has.
    pub stage: Option<(usize, usize)>,
    pub restarts: u64,
    pub stalled: u64,
    /// Native viewers only.
    pub rebuffers: Option<u64>,
    /// Failed requests by kind (`HTTP 404`, `timeout`, …), so far.
    pub errors: BTreeMap<String, u64>,
    /// Body bytes received so far.
    pub received: u64,
    /// The run's seconds so far.
    pub series: &'a Seconds,
    /// The plain status line (what is printed when there is no live view).
    pub line: String,
}

/// Where the once-a-second status goes.
pub enum Display {
    /// One line a second, rewritten in place when `tty`.
    Lines {
        tty: bool,
    },
    Live(Box<Live>),
}

impl Display {
    /// The live view when stdout is a terminal that can show it (and `plain`
    /// was not asked for), else status lines.
    pub fn choose(tty: bool, plain: bool) -> Display {
        let dumb = std::env::var("TERM").map_or(true, |t| t.is_empty() || t == "dumb");
        if tty && !plain && !dumb {
            match Live::start() {
                Ok(l) => return Display::Live(Box::new(l)),
                Err(e) => crate::log::warning(
                    "live-view",
                    &format!("no live view ({e}); status lines instead"),
                ),
            }
        }
        Display::Lines { tty }
    }

    pub fn show(&mut self, f: &Frame) {
        match self {
            Display::Lines { tty } => super::print_status(*tty, &f.line),
            Display::Live(l) => l.draw(f),
        }
    }

    /// Leaves the live view (or ends the rewritten line).
    pub fn finish(&mut self) {
        match self {
            Display::Lines { tty: true } => println!(),
            Display::Lines { tty: false } => {}
            Display::Live(l) => l.stop(),
        }
    }
}

/// The full-screen view.
pub struct Live {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    saved: Option<nix::sys::termios::Termios>,
    up: bool,
}

impl Live {
    fn start() -> std::io::Result<Live> {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        use ratatui::crossterm::{cursor, execute, terminal};
        let stdin = std::io::stdin();
        // no echo and no line editing, but Ctrl-C is still SIGINT
        let saved = tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut quiet = t.clone();
            quiet
                .local_flags
                .remove(LocalFlags::ECHO | LocalFlags::ICANON);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
        }
        let mut out = std::io::stdout();
        execute!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
        let terminal = Terminal::new(CrosstermBackend::new(out))?;
        Ok(Live {
            terminal,
            saved,
            up: true,
        })
    }

    fn stop(&mut self) {
        use ratatui::crossterm::{cursor, execute, terminal};
        if !self.up {
            return;
        }
        self.up = false;
        let _ = execute!(
            self.terminal.backend_mut(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }

    fn draw(&mut self, f: &Frame) {
        let _ = self.terminal.draw(|ui| render(ui, f));
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` values of a series figure.
fn last(series: &Seconds, n: usize, f: impl Fn(&Second) -> u64) -> Vec<u64> {
    let from = series.len().saturating_sub(n);
    series.iter_from(from).map(|s| f(&s)).collect()
}

/// The last `n` values of a series figure as chart points: (seconds
/// back from now, negative, value).
fn points(series: &Seconds, n: usize, f: impl Fn(&Second) -> u64) -> Vec<(f64, f64)> {
    let v = last(series, n, f);
    let k = v.len() as f64;
    v.into_iter()
        .enumerate()
        .map(|(i, y)| (i as f64 + 1.0 - k, y as f64))
        .collect()
}

/// The viewers active against the target line, over the last seconds.
fn viewers_chart<'a>(f: &Frame, active: &'a [(f64, f64)], target: &'a [(f64, f64)]) -> Chart<'a> {
    let top = active.iter().chain(target).map(|p| p.1).fold(1.0, f64::max);
    let from = active.first().map_or(-1.0, |p| p.0.min(-1.0));
    Chart::new(vec![
        Dataset::default()
            .name("target")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::DarkGray))
            .data(target),
        Dataset::default()
            .name("active")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Cyan))
            .data(active),
    ])
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" Viewers {}/{} (target) ", f.active, f.target)),
    )
    .x_axis(Axis::default().bounds([from, 0.0]))
    .y_axis(Axis::default().bounds([0.0, top * 1.05]))
    .hidden_legend_constraints((Constraint::Ratio(0, 1), Constraint::Ratio(0, 1)))
}

/// The origin's figures of the last second, when they are read.
fn origin_line(now: Option<&Second>) -> String {
    let Some(s) = now else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(c) = s.origin_connections {
        parts.push(format!("{c} conn"));
    }
    if let Some(r) = s.origin_requests {
        parts.push(format!("{r:.0} req/s"));
    }
    if let Some(c) = s.origin_cpu {
        parts.push(format!("CPU {c:.2} cores"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("origin {}", parts.join(" · "))
    }
}

fn render(ui: &mut ratatui::Frame, f: &Frame) {
    let area = ui.area();
    let rows = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(5),
        Constraint::Min(5),
        Constraint::Length(4),
        Constraint::Length(1),
    ])
    .split(area);
    let until = f.duration.map_or_else(
        || "until Ctrl-C".to_owned(),
        |d| format!("of {} s", d.as_secs()),
    );
    ui.render_widget(
        Paragraph::new(format!(
            "hls-swarm · {} engine · {} · {:.0} s {until}",
            f.engine,
            f.url,
            f.elapsed.as_secs_f64()
        )),
        rows[0],
    );
    let ratio = if f.target > 0 {
        (f.active as f64 / f.target as f64).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ui.render_widget(
        Gauge::default()
            .block(Block::default().borders(Borders::ALL).title(" Viewers "))
            .gauge_style(Style::default().fg(Color::Blue))
            .ratio(ratio)
            .label(format!(
                "active {}/{} · {} · restarts {} · stalled {}",
                f.active,
                f.target,
                match f.stage {
                    Some((i, n)) => format!("stage {} of {n}", i + 1),
                    None => format!("ramp {:.0} %", f.ramp * 100.0),
                },
                f.restarts,
                f.stalled
            )),
        rows[1],
    );
    let now = f.series.last();
    let now = now.as_ref();
    let width = usize::from(area.width / 3).saturating_sub(2).max(1);
    let ttfb = now
        .and_then(|s| {
            Some(format!(
                "p50 {:.2} p99 {:.2} ms",
                s.ttfb_p50_ms?, s.ttfb_p99_ms?
            ))
        })
        .unwrap_or_else(|| "-".into());
    type Pick = fn(&Second) -> u64;
    let panels: [(String, Pick, Color); 4] = [
        (
            format!(" Throughput {} ", rate(now.map_or(0.0, |s| s.bytes as f64))),
            |s| s.bytes,
            Color::Green,
        ),
        (
            format!(" Requests {}/s ", now.map_or(0, |s| s.requests)),
            |s| s.requests,
            Color::Magenta,
        ),
        (
            format!(" Segment TTFB {ttfb} "),
            |s| s.ttfb_p99_ms.map_or(0, |v| (v * 1000.0) as u64),
            Color::Yellow,
        ),
        (
            format!(" Errors {}/s ", now.map_or(0, |s| s.errors)),
            |s| s.errors,
            Color::Red,
        ),
    ];
    let mut cells = Layout::horizontal([Constraint::Ratio(1, 3); 3])
        .split(rows[2])
        .to_vec();
    cells.extend(
        Layout::horizontal([Constraint::Ratio(1, 3); 3])
            .split(rows[3])
            .iter(),
    );
    // the viewers' panel comes fourth, before the errors
    let sparks = [cells[0], cells[1], cells[2], cells[4]];
    for ((title, pick, color), cell) in panels.into_iter().zip(&sparks) {
        ui.render_widget(
            Sparkline::default()
                .block(Block::default().borders(Borders::ALL).title(title))
                .data(last(f.series, width, pick))
                .style(Style::default().fg(color)),
            *cell,
        );
    }
    let active = points(f.series, width, |s| s.active);
    let target = points(f.series, width, |s| s.target);
    ui.render_widget(viewers_chart(f, &active, &target), cells[3]);
    let rebuffers = f
        .rebuffers
        .map_or_else(|| "-".to_owned(), |r| r.to_string());
    ui.render_widget(
        Paragraph::new(vec![
            Line::from(format!("stalled {} · rebuffers {rebuffers}", f.stalled)),
            Line::from(format!("received {}", crate::table::bytes(f.received))),
            Line::from(origin_line(now)),
        ])
        .block(Block::default().borders(Borders::ALL).title(" Playback ")),
        cells[5],
    );
    let errors = if f.errors.is_empty() {
        "none".to_owned()
    } else {
        f.errors
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    ui.render_widget(
        Paragraph::new(errors).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Errors by kind "),
        ),
        rows[4],
    );
    ui.render_widget(
        Paragraph::new("Ctrl-C stops the run and prints the summary"),
        rows[5],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_view_shows_the_viewers_against_the_target_line() {
        let series: Seconds = (0..20u64)
            .map(|i| Second {
                t: 1000 + i,
                active: i.min(10),
                target: if i < 12 { i.min(10) } else { 4 },
                bytes: 1000,
                ..Default::default()
            })
            .collect();
        let f = Frame {
            url: "http://127.0.0.1:1/s.m3u8",
            engine: "native",
            elapsed: Duration::from_secs(20),
            duration: Some(Duration::from_secs(60)),
            target: 4,
            active: 10,
            ramp: 1.0,
            stage: Some((2, 5)),
            restarts: 0,
            stalled: 1,
            rebuffers: Some(2),
            errors: BTreeMap::new(),
            received: 20_000,
            series: &series,
            line: String::new(),
        };
        let mut t = Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
        t.draw(|ui| render(ui, &f)).unwrap();
        let text: String = t
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(text.contains("active 10/4 · stage 3 of 5"), "{text}");
        assert!(text.contains("Viewers 10/4 (target)"), "{text}");
        assert!(text.contains("stalled 1 · rebuffers 2"), "{text}");
        // the chart draws both lines: braille dots in the viewers' panel
        assert!(text.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)));
        let last = points(&series, 5, |s| s.target);
        assert_eq!(
            last,
            [
                (-4.0, 4.0),
                (-3.0, 4.0),
                (-2.0, 4.0),
                (-1.0, 4.0),
                (0.0, 4.0)
            ]
        );
    }
}
