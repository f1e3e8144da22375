// The wire envelope has no feature-era field to read or set.
use spec_kitty::contract::types::Envelope;

fn stamp(envelope: &mut Envelope) {
    envelope.feature_number = Some(7);
}

fn main() {}
