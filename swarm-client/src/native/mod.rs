//! The native engine's viewer: a player that behaves as PLAYER.md defines,
//! split into a sans-IO state machine (`player`, `buffer`, `abr`, `playlist`)
//! and an async driver that does the HTTP (`http`, `viewer`). What it
//! measures goes into the results' `Recorder`.

pub mod abr;
pub mod buffer;
pub mod http;
pub mod player;
pub mod playlist;
pub mod viewer;
