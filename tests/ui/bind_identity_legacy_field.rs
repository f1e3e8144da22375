// The tracker-bind identity is closed: no mission_key can be attached.
use spec_kitty::contract::types::TrackerBindIdentity;

fn build(identity: TrackerBindIdentity) -> String {
    identity.mission_key
}

fn main() {}
