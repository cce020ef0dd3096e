//! The LL-HLS server: FFmpeg's dash muxer writes each segment of each
//! rendition as CMAF chunks while it encodes (`chunk-stream<i>-<n>.m4s.tmp`,
//! renamed when whole); this server lists every chunk as a part of a Low-Latency
//! HLS media playlist, holds blocking playlist reloads until the part they ask
//! for exists, and streams a hinted part as it is written. nginx serves it
//! to viewers (TLS, HTTP/2, a collapsing cache).
//!
//! * [`chunks`] — the MP4 boxes of init segments and chunks (`mp4-atom`);
//! * [`state`] — segments and parts, playlists and the blocking rules, sans IO;
//! * [`settings`] — what the server is told, built from the origin's config;
//! * [`server`] — the files watched and the HTTP served.

pub mod chunks;
pub mod server;
pub mod settings;
pub mod state;
