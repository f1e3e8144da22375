//! The remote side: everything that talks to the spec-kitty SaaS.
//!
//! * [`settings`]: enablement, server URL policy, timeouts and retry options.
//! * [`credentials`]: upstream's TOML credentials file (0600), [`credentials::Secret`].
//! * [`request`]: the HTTP client, bounded reads, and the one request loop (bearer token,
//!   401 → refresh once, jittered backoff honouring `Retry-After`, a refused TLS certificate
//!   named and final) that batch sync and the socket's token exchange share.
//! * [`session`]: login, refresh under the credentials lock, ws-token.
//! * [`tls`]: naming a refused server certificate.
//! * [`batch`]: chokepoint 2's transport: gzip batches and their per-event answers.
//! * [`ws`]: chokepoint 6, the live WebSocket.
//! * [`push_content`]: chokepoint 4, one artifact body to `/api/dossier/push-content/`.
//! * [`tracker`]: chokepoint 5, the tracker client's one request path (gate, bearer, team,
//!   401/429/202, error envelopes); [`tracker_bind`]: its bind calls and answers.
//!
//! Nothing here opens the queue or knows the domain: the use-cases `crate::app::sync` and
//! `crate::app::body_sync` page the queues, gate the rows and apply the answers.

pub mod batch;
pub mod credentials;
pub mod push_content;
pub mod request;
pub mod session;
pub mod settings;
pub mod tls;
pub mod tracker;
pub mod tracker_bind;
pub mod ws;

pub use ws::{WsError, WsOptions, WsStatus};
