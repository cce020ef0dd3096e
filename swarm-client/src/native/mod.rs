//! The native engine's player, as PLAYER.md defines it: a sans-IO state
//! machine (`player`, `buffer`, `abr`, `playlist`, `ll_tags` — the typed
//! Low-Latency HLS tags, `cmcd` — what a viewer tells the CDN) and the
//! HTTP it is fed through (`http`). It knows nothing of the swarm around it: the async
//! driver that runs a viewer and records its figures is
//! `engine::native_viewer`.

pub mod abr;
pub mod buffer;
pub mod cmcd;
pub mod failure;
pub mod http;
pub mod ll_tags;
pub mod player;
pub mod playlist;
